//! Propagation policy: how a new record travels from node to node, and when a node reconciles its catalog
//! with a peer (design decision 4).
//!
//! Two mechanisms work together:
//!
//! - **Push.** A record published here is sent whole to up to `eager_fanout + announce_fanout` random
//!   connected peers (none of them can hold it yet). A record received is sent whole to
//!   [`GossipConfig::eager_fanout`] random peers and announced by id to [`GossipConfig::announce_fanout`] more;
//!   a peer that was announced a record it lacks requests it from the announcer. Never back to the peer it came
//!   from nor to peers known to hold it, and only once per record (a bounded set of recently seen ids). A
//!   record crosses a network of thousands of nodes in a few seconds. The default sends nothing whole past the
//!   first hop: in the simulator (2,000 nodes, degree 8) that costs about 1.5 record sizes per node per record
//!   and about 3 s to reach every node, against 3.5 record sizes and 1.6 s with two eager peers.
//! - **Reconciliation.** Every [`GossipConfig::reconcile_interval`] (with jitter), and when an outbound
//!   connection opens, the node starts a reconciliation session ([`crate::reconcile`]) with a random connected
//!   peer. Whatever push missed (a lost message, a node that was offline, a partition that healed) arrives this
//!   way. Records learned by reconciliation are pushed on only while they are young
//!   ([`GossipConfig::push_max_age`]), so a node catching up on an old catalog does not flood its peers.
//!
//! [`Gossip`] is a sans-IO state machine: the node feeds it [`Event`]s with the current time and carries out
//! the [`Action`]s it returns (sending wire messages, running reconcile sessions, waking it up at
//! [`Action::ScheduleTimer`]). Time is a [`Duration`] since any origin the driver picks; randomness comes from
//! the `R: RngCore` given to [`Gossip::new`], so a seeded generator makes a run reproducible.
//!
//! # Invariants (checked by the tests)
//!
//! - A record is forwarded at most once per node while its id is remembered, to at most
//!   `eager_fanout + announce_fanout` peers, never to the peer it came from nor to peers that announced it.
//! - At most [`GossipConfig::max_reconciles`] sessions started by this node run at once, and a session that
//!   is never reported ended is forgotten after [`GossipConfig::reconcile_timeout`].
//! - Memory is bounded whatever peers send: [`GossipConfig::seen_capacity`] ids,
//!   [`GossipConfig::max_pending`] requests with at most [`MAX_ALTERNATES`] alternates each,
//!   [`GossipConfig::max_peers`] peers.

mod recent;
mod state;
#[cfg(test)]
mod tests;

#[cfg(test)]
mod proptests;

use std::time::Duration;

use crate::record::RecordId;

pub use state::{Gossip, GossipCounts};

/// Most other announcers remembered per requested record, asked in turn when a request times out.
pub const MAX_ALTERNATES: usize = 4;
/// Largest accepted [`GossipConfig::seen_capacity`] and [`GossipConfig::max_pending`].
pub const MAX_TRACKED_IDS: usize = 1 << 20;
/// Largest accepted [`GossipConfig::max_peers`].
pub const MAX_PEERS_CEILING: usize = 4096;

/// How a record reached this node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// Pushed by a peer, or fetched after a peer announced it.
    Push,
    /// Fetched after a reconciliation session found it missing. `age` is how old the record is by the
    /// node's clock (now minus the record's `created`, zero if in the future).
    Reconcile {
        /// The record's age.
        age: Duration,
    },
}

/// What happened, as the node tells it to [`Gossip::handle`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event<P> {
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
    /// This node published a record (it is stored).
    Published {
        /// The new record.
        id: RecordId,
    },
    /// A valid record new to the store arrived (a record already stored may be reported too: it is ignored).
    Received {
        /// The peer that sent it.
        from: P,
        /// The record.
        id: RecordId,
        /// How it came.
        via: Via,
    },
    /// A peer announced a record that is not in the store (the node checks that first).
    Announced {
        /// The announcer.
        from: P,
        /// The record.
        id: RecordId,
    },
    /// A session started by [`Action::StartReconcile`] ended, in any way.
    ReconcileEnded {
        /// The peer of the session.
        peer: P,
    },
    /// The time asked for with [`Action::ScheduleTimer`] has come (extra ticks are harmless).
    Tick,
}

/// What the node should do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action<P> {
    /// Send the whole record to the peer.
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
    /// Ask the peer for a record it announced.
    Request {
        /// The peer.
        from: P,
        /// The record.
        id: RecordId,
    },
    /// Start a reconciliation session as initiator with the peer; report its end with
    /// [`Event::ReconcileEnded`].
    StartReconcile {
        /// The peer.
        peer: P,
    },
    /// Deliver [`Event::Tick`] at this time (replaces any earlier request).
    ScheduleTimer {
        /// When.
        at: Duration,
    },
}

/// Parameters of the propagation policy. [`Default`] gives what a node uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GossipConfig {
    /// Peers that receive a record this node received whole, chosen at random: 0. Each one costs a whole
    /// record on most links, as the receiver often has it already; announcing costs 34 bytes and one more
    /// round trip per hop.
    pub eager_fanout: usize,
    /// Further peers that receive only its id: 8 (with the default overlay degree of 8, every peer).
    pub announce_fanout: usize,
    /// Record ids remembered to drop duplicates: 16,384.
    pub seen_capacity: usize,
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
    /// Records learned by reconciliation are pushed on only when younger than this: 1 hour.
    pub push_max_age: Duration,
    /// A requested record that has not arrived after this time is requested from another announcer: 5 s.
    pub request_timeout: Duration,
    /// Most requests waiting for their record: 4,096 (further announcements are left to reconciliation).
    pub max_pending: usize,
    /// Most peers tracked: 1,024.
    pub max_peers: usize,
}

impl Default for GossipConfig {
    fn default() -> Self {
        GossipConfig {
            eager_fanout: 0,
            announce_fanout: 8,
            seen_capacity: 16_384,
            reconcile_interval: Duration::from_secs(30),
            max_reconciles: 1,
            reconcile_timeout: Duration::from_secs(120),
            reconcile_on_connect: true,
            push_max_age: Duration::from_secs(3600),
            request_timeout: Duration::from_secs(5),
            max_pending: 4096,
            max_peers: 1024,
        }
    }
}

/// Why a [`GossipConfig`] was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GossipConfigError {
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

impl GossipConfig {
    /// Checks every parameter.
    pub fn validate(&self) -> Result<(), GossipConfigError> {
        let counts = [
            ("eager_fanout", self.eager_fanout, 0, MAX_PEERS_CEILING),
            (
                "announce_fanout",
                self.announce_fanout,
                0,
                MAX_PEERS_CEILING,
            ),
            ("seen_capacity", self.seen_capacity, 1, MAX_TRACKED_IDS),
            ("max_reconciles", self.max_reconciles, 1, MAX_PEERS_CEILING),
            ("max_pending", self.max_pending, 1, MAX_TRACKED_IDS),
            ("max_peers", self.max_peers, 1, MAX_PEERS_CEILING),
        ];
        for (field, value, min, max) in counts {
            if value < min || value > max {
                return Err(GossipConfigError::OutOfRange {
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
                return Err(GossipConfigError::ZeroDuration { field });
            }
        }
        Ok(())
    }
}
