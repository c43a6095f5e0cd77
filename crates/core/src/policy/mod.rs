//! Record policy: what a node does with catalog records, as one sans-IO state machine that the node and the
//! simulator both run (design decision 4).
//!
//! [`RecordPolicy`] decides
//!
//! - **what to relay, and to whom.** A record published here (or released, see below) is sent whole to up to
//!   `eager_fanout + announce_fanout` random connected peers (none of them can hold it yet). A record that
//!   arrived and was stored is sent whole to [`PolicyConfig::eager_fanout`] random peers and announced by id to
//!   [`PolicyConfig::announce_fanout`] more; a peer that was announced a record it lacks requests it from the
//!   announcer. Never back to the peer it came from nor to peers known to hold it, only once per record (a
//!   bounded set of recently seen ids), and only while the record is young ([`PolicyConfig::relay_max_age`]),
//!   so a node catching up on an old catalog does not flood its peers.
//! - **what to admit.** The node validates each record and runs its admission rules (blocked authors, rate
//!   and size caps) and reports the [`Verdict`]. The policy remembers refused ids, so that reconciliation does
//!   not fetch them again, and counts invalid records per peer: past [`PolicyConfig::max_bad_records`] it asks
//!   for the peer to be disconnected. Admission refusals are not held against a peer (it cannot know this
//!   node's blocks and limits); duplicates cost nothing and are never relayed.
//! - **what is held back.** A fresh publication waits for a replica before anyone else learns of it (publisher
//!   push, [`crate::replication::PublisherPush`]): while held back it is not relayed, not served to a request,
//!   not offered by reconciliation ([`RecordPolicy::is_held_back`] for the driver's snapshot). Released, it
//!   goes out like a new publication.
//! - **what to serve.** Ids a peer asks for (a fetch, or found missing on its side by reconciliation) are
//!   answered with [`OutEvent::SendRecords`], held-back ones removed.
//! - **what reconciliation needs.** Every [`PolicyConfig::reconcile_interval`] (with jitter), and when an
//!   outbound connection opens, it starts a session ([`crate::reconcile`]) with a random connected peer. The
//!   ids a session finds missing here are requested once each (through the same bounded table as announced
//!   ids, with a time-out; past its capacity without one), without those refused before or already on their
//!   way, and what the peer lacks is offered to it by id.
//!
//! The driver feeds [`InEvent`]s with the current time and carries out the [`OutEvent`]s. Time is a
//! [`Duration`] since any origin the driver picks; randomness comes from the `R: RngCore` given to
//! [`RecordPolicy::new`], so a seeded generator makes a run reproducible. The policy never sees record bytes
//! or the store: the driver answers "is it stored?" and "is it valid?" and says so in the events.
//!
//! # Invariants (checked by the tests)
//!
//! - A record is forwarded at most once per node while its id is remembered, to at most
//!   `eager_fanout + announce_fanout` peers, never to the peer it came from nor to peers that announced it,
//!   and never while it is held back.
//! - A held-back record is never named in an [`OutEvent`] until it is released.
//! - At most [`PolicyConfig::max_reconciles`] sessions started by this node run at once, and a session that is
//!   never reported ended is forgotten after [`PolicyConfig::reconcile_timeout`].
//! - Memory is bounded whatever peers send: [`PolicyConfig::seen_capacity`] and
//!   [`PolicyConfig::refused_capacity`] ids, [`PolicyConfig::max_pending`] requests with at most
//!   [`MAX_ALTERNATES`] alternates each, [`PolicyConfig::max_peers`] peers. (Held-back records come only from
//!   local publishing.)

pub(crate) mod recent;
mod state;
#[cfg(test)]
mod tests;

#[cfg(test)]
mod pair;
#[cfg(test)]
mod pair_tests;
#[cfg(test)]
mod proptests;

use std::time::Duration;

use crate::record::RecordId;

pub use state::{PolicyCounts, RecordPolicy};

/// Most other announcers remembered per requested record, asked in turn when a request times out.
pub const MAX_ALTERNATES: usize = 4;
/// Largest accepted [`PolicyConfig::seen_capacity`], [`PolicyConfig::refused_capacity`] and
/// [`PolicyConfig::max_pending`].
pub const MAX_TRACKED_IDS: usize = 1 << 20;
/// Largest accepted [`PolicyConfig::max_peers`].
pub const MAX_PEERS_CEILING: usize = 4096;
/// Most ids answered for one [`InEvent::Requested`] (more is left to the next request).
pub const MAX_SERVE_IDS: usize = 4096;

/// What the node found when it checked a record that arrived (validation first, then admission, then the
/// store).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Valid, admitted and new here: it is stored now.
    Stored,
    /// Valid and already stored.
    Duplicate,
    /// Not a valid record (bad signature, malformed, wrong network, ...): the sender's fault.
    Invalid,
    /// Valid but not admitted here (blocked author, rate or size cap): not the sender's fault.
    Refused,
    /// Not stored because this node could not check or store it (a local failure, such as a database error):
    /// neither the sender's fault nor remembered, so the record may be fetched again later.
    Unchecked,
}

/// What happened, as the driver tells it to [`RecordPolicy::handle`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InEvent<P> {
    /// A connection to a kolokol peer is open. `outbound` says we dialed it; only the dialing side starts the
    /// first reconciliation (one session covers both directions).
    PeerUp {
        /// The peer.
        peer: P,
        /// Whether we dialed it.
        outbound: bool,
    },
    /// The connection to `peer` closed.
    PeerDown {
        /// The peer.
        peer: P,
    },
    /// This node published a record (it is stored). With `hold_back` it waits for [`InEvent::Released`].
    Published {
        /// The new record.
        id: RecordId,
        /// Keep it to ourselves until a replica holds it.
        hold_back: bool,
    },
    /// A held-back record may now be known: it goes out like a new publication.
    Released {
        /// The record.
        id: RecordId,
    },
    /// A record arrived from a peer (pushed, fetched, or found by reconciliation) and was checked.
    Received {
        /// The peer that sent it.
        from: P,
        /// The record (of its bytes, whether or not they are valid).
        id: RecordId,
        /// How old the record is by the node's clock (now minus its signed creation time; zero if in the
        /// future or unknown).
        age: Duration,
        /// What the node made of it.
        verdict: Verdict,
    },
    /// A peer announced a record that is not in the store (the driver checks that first).
    Announced {
        /// The announcer.
        from: P,
        /// The record.
        id: RecordId,
    },
    /// A peer asked for records by id. Answered with [`OutEvent::SendRecords`] (the driver sends those it
    /// holds).
    Requested {
        /// The peer.
        from: P,
        /// The ids asked for.
        ids: Vec<RecordId>,
    },
    /// A step of a reconciliation session with `peer` found records we hold that it lacks (`have`) and records
    /// it holds that the store lacks (`need`; the driver removes those it holds).
    Reconciled {
        /// The peer of the session (either side may have started it).
        peer: P,
        /// Ours, missing there.
        have: Vec<RecordId>,
        /// Theirs, missing here.
        need: Vec<RecordId>,
    },
    /// A session started by [`OutEvent::StartReconcile`] ended, in any way.
    ReconcileEnded {
        /// The peer of the session.
        peer: P,
    },
    /// The time asked for with [`OutEvent::ScheduleTimer`] has come (extra ticks are harmless).
    Tick,
}

/// Why the policy asks for a peer to be disconnected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Misbehaviour {
    /// It sent more than [`PolicyConfig::max_bad_records`] invalid records on this connection.
    InvalidRecords(u32),
}

/// What the driver should do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutEvent<P> {
    /// Send the whole record to the peer (push or relay).
    SendRecord {
        /// The peer.
        to: P,
        /// The record.
        id: RecordId,
    },
    /// Tell the peer we hold the record (it may request it).
    Announce {
        /// The peer.
        to: P,
        /// The record.
        id: RecordId,
    },
    /// Ask the peer for a record (it announced it, or reconciliation found it missing here).
    Request {
        /// The peer.
        from: P,
        /// The record.
        id: RecordId,
    },
    /// Answer a request or a reconciliation: send the peer those of these records the store holds.
    SendRecords {
        /// The peer.
        to: P,
        /// The records, none held back.
        ids: Vec<RecordId>,
    },
    /// Start a reconciliation session as initiator with the peer; report its end with
    /// [`InEvent::ReconcileEnded`].
    StartReconcile {
        /// The peer.
        peer: P,
    },
    /// Close the connection to this peer (and ban it for a while: that decision is the driver's).
    Disconnect {
        /// The peer.
        peer: P,
        /// Why.
        reason: Misbehaviour,
    },
    /// Deliver [`InEvent::Tick`] at this time (replaces any earlier request).
    ScheduleTimer {
        /// When.
        at: Duration,
    },
}

/// Parameters of the record policy. [`Default`] gives what a node uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyConfig {
    /// Peers that receive a record this node received whole, chosen at random: 0. Each one costs a whole
    /// record on most links, as the receiver often has it already; announcing costs 34 bytes and one more
    /// round trip per hop.
    pub eager_fanout: usize,
    /// Further peers that receive only its id: 8 (with the default overlay degree of 8, every peer).
    pub announce_fanout: usize,
    /// Record ids remembered to drop duplicates: 16,384.
    pub seen_capacity: usize,
    /// Ids of refused and invalid records remembered, so that they are not fetched again: 16,384.
    pub refused_capacity: usize,
    /// Records older than this are stored but not relayed: 1 hour.
    pub relay_max_age: Duration,
    /// Invalid records a peer may send on one connection before the policy asks to disconnect it: 16.
    pub max_bad_records: u32,
    /// Mean time between two reconciliations started by this node: 30 s (each wait is drawn uniformly from
    /// half to one and a half times this).
    pub reconcile_interval: Duration,
    /// Most sessions started by this node at once: 1.
    pub max_reconciles: usize,
    /// A started session not reported ended within this time is forgotten: 120 s.
    pub reconcile_timeout: Duration,
    /// Whether a new outbound connection starts a reconciliation at once: yes (a node back online catches up
    /// in one session instead of waiting for the timer).
    pub reconcile_on_connect: bool,
    /// A requested record that has not arrived after this time is requested from another announcer: 5 s.
    pub request_timeout: Duration,
    /// Most requests waiting for their record: 4,096 (further announcements are left to reconciliation).
    pub max_pending: usize,
    /// Most peers tracked: 1,024.
    pub max_peers: usize,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            eager_fanout: 0,
            announce_fanout: 8,
            seen_capacity: 16_384,
            refused_capacity: 16_384,
            relay_max_age: Duration::from_secs(3600),
            max_bad_records: 16,
            reconcile_interval: Duration::from_secs(30),
            max_reconciles: 1,
            reconcile_timeout: Duration::from_secs(120),
            reconcile_on_connect: true,
            request_timeout: Duration::from_secs(5),
            max_pending: 4096,
            max_peers: 1024,
        }
    }
}

/// Why a [`PolicyConfig`] was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyConfigError {
    /// A count is outside its allowed range.
    #[error("{field} is {value}, outside {min}..={max}")]
    OutOfRange {
        field: &'static str,
        value: usize,
        min: usize,
        max: usize,
    },
    /// A duration is zero.
    #[error("{field} must be positive")]
    ZeroDuration { field: &'static str },
}

impl PolicyConfig {
    /// Checks every parameter.
    pub fn validate(&self) -> Result<(), PolicyConfigError> {
        let counts = [
            ("eager_fanout", self.eager_fanout, 0, MAX_PEERS_CEILING),
            (
                "announce_fanout",
                self.announce_fanout,
                0,
                MAX_PEERS_CEILING,
            ),
            ("seen_capacity", self.seen_capacity, 1, MAX_TRACKED_IDS),
            (
                "refused_capacity",
                self.refused_capacity,
                1,
                MAX_TRACKED_IDS,
            ),
            ("max_reconciles", self.max_reconciles, 1, MAX_PEERS_CEILING),
            ("max_pending", self.max_pending, 1, MAX_TRACKED_IDS),
            ("max_peers", self.max_peers, 1, MAX_PEERS_CEILING),
        ];
        for (field, value, min, max) in counts {
            if value < min || value > max {
                return Err(PolicyConfigError::OutOfRange {
                    field,
                    value,
                    min,
                    max,
                });
            }
        }
        let durations = [
            ("reconcile_interval", self.reconcile_interval),
            ("reconcile_timeout", self.reconcile_timeout),
            ("request_timeout", self.request_timeout),
        ];
        for (field, value) in durations {
            if value.is_zero() {
                return Err(PolicyConfigError::ZeroDuration { field });
            }
        }
        Ok(())
    }
}
