//! The stem phase of a new publication (Dandelion++, Fanti et al., SIGMETRICS 2018): a sans-IO state machine
//! that hides which node published (design decision 10).
//!
//! A fresh publication does not start from its publisher as a broadcast. It first travels a *stem*: each node
//! on it passes it to one relay, and only the node where the stem ends *fluffs* it, that is does what a
//! publisher does without a stem: push the record to its peers, seed, announce in the DHT, put the feed head.
//! [`Stem`] decides every step of that, as in the paper:
//!
//! - **Epochs.** Time is cut into epochs of [`StemConfig::epoch`] (10 min). At the start of each, a node picks
//!   [`StemConfig::relays`] (2) relays at random among its outbound peers. Over the network these choices form
//!   the paper's approximately 4-regular anonymity graph, and it changes only once an epoch, so an observer
//!   cannot learn it by watching many stems.
//! - **Roles, per source.** For the stems of each inbound peer the node is, for the whole epoch, a *diffuser*
//!   with probability [`StemConfig::diffuse_per_mille`] (q = 0.2) and otherwise a *relay*. The paper draws one
//!   role per node and epoch; here it is drawn per inbound peer, because with one role per node a spy can send
//!   the node a stem of its own, see it fluffed, and then know that every stem the node sends this epoch is the
//!   node's own publication (a diffuser relays nothing else). Per peer, fluffing the spy's stems says nothing
//!   about the node's other sources. The stem length per hop is the same: geometric with mean 1/q relay hops.
//! - **One-to-one routing.** Within an epoch every source of stem items (each inbound peer, and this node's
//!   own publications as one more source) is mapped to one relay, the sources spread evenly over the relays:
//!   everything from one source goes the same way for the whole epoch (the paper's defence against the
//!   fingerprinting of per-item random routing).
//! - **Stem or fluff.** A node relays what it received to the relay its source maps to, or fluffs it if it is a
//!   diffuser for that source. The publisher always forwards its own publication (never fluffs it first-hand), so the number of
//!   relay hops is at least one and geometric with mean 1/q: a stem holds the publisher and at least one other
//!   node. (The issue asks for "at least two": two *relay* hops cannot be guaranteed without telling the first
//!   relay that it is first, and what tells an honest relay tells a spy relay too. See `ARCHITECTURE.md`.)
//! - **Fetch before forwarding.** A relay that gets [`StemEvent::StemReceived`] first fetches the publication
//!   from that peer ([`StemAction::Fetch`]); only when the driver reports [`StemEvent::DataComplete`] does it
//!   forward or fluff. So every node of a stem holds every piece before the next one hears of it, and the node
//!   that fluffs can seed it.
//! - **A relay lost before it fetched.** If the relay we passed an item to disconnects before it has fetched
//!   every piece from us ([`StemEvent::Fetched`]), we pass the item to another relay: churn does not cut the
//!   stem there. (Origin and relay do this alike.)
//! - **Fail-safe.** A node that forwarded an item sets a timer ([`StemAction::ScheduleTimer`]). If it has not
//!   seen the item in fluff ([`StemEvent::SeenInFluff`]) when the timer fires, it fluffs the item itself. The
//!   delay is an allowance for the rest of the stem to fetch the data plus an exponential draw whose mean
//!   also grows with the publication's size: a hop takes long when it moves a video, and a draw short beside
//!   the hop time would make the upstream nodes, the publisher first, always fire first when a stem is cut (a
//!   relay went offline, or a spy swallows it). The paper's timers are exponential for the same reason.
//!
//! **An origin is not told from a relay.** The publisher's outputs for its own publication are those of a relay
//! that received it: one [`StemAction::SendStem`] to a relay of this epoch (drawn the same way as for an inbound
//! peer), one timer drawn from the same distribution. What a peer downstream sees (a stem message, then a fetch
//! answered from a complete copy) is the same. The test `stem::tests::origin_and_relay_send_the_same` and the
//! proptest `origin_outputs_match_a_relay_outputs` check it.
//!
//! A duplicate stem (an item already on its way here, as in a cycle) is ignored rather than fluffed at once, so
//! a spy cannot find the nodes of a stem by sending them the item again (an attack reported against the
//! Dandelion prototype); the fail-safe ends such a stem.
//!
//! The driver reports its outbound kolokol peers ([`StemEvent::PeerUp`], [`StemEvent::PeerDown`]), feeds the
//! events with the current time and carries out the actions. Randomness comes from the `R: RngCore` given to
//! [`Stem::new`]. Nothing here reads a clock or a socket.
//!
//! **Not yet run by the node.** The node still publishes as before (publisher push); wiring this machine into
//! the node's publish and relay paths is a later step. The simulator runs it (`kolokol-sim anonymity`).
//!
//! # What the driver must do (for the node's integration, which is not done yet)
//!
//! The machine's guarantees hold only if the node around it keeps the stem secret too:
//!
//! - report only **outbound** kolokol peers with [`StemEvent::PeerUp`] (relays are picked among them);
//! - check a stem's record through the one validation path before [`StemEvent::StemReceived`], and bound what a
//!   peer can make us fetch (a stem costs a whole publication's download);
//! - keep an item **held back** everywhere while its stem runs, on the publisher and on every relay: not stored
//!   as a catalog record, not offered by reconciliation, not relayed, not announced in the DHT, no feed head;
//!   serve its data only to the relay it was passed to ([`Stem::forwarded_to`]) and answer anyone else as if it
//!   were not here (so that a probe cannot find the nodes of a stem);
//! - when the fluff reaches a node that held the item in stem, behave towards the announcer as a node that
//!   lacked it would, or the announcer learns that this node was on the stem;
//! - report [`StemEvent::Fetched`] when the relay has fetched every piece, and keep the node's own publication
//!   until it is seen in fluff, starting its stem again after a restart (the simulator models exactly that);
//! - do on [`StemAction::Fluff`] everything the publisher does today (push, seed, announce, put the feed head),
//!   and nothing of it on the publisher's own node before its publication is seen in fluff.
//!
//! # Invariants (checked by the tests)
//!
//! - Every item this machine forwarded is fluffed by it when its timer fires unless it was seen in fluff
//!   first; the timer is at most [`StemConfig::max_failsafe`] away.
//! - A node never fluffs its own publication except by its fail-safe.
//! - Within an epoch, a source's items always go to the same relay.
//! - Memory is bounded whatever peers send: [`StemConfig::max_items`] items in progress,
//!   [`StemConfig::max_peers`] peers and routes, [`StemConfig::done_capacity`] finished ids.

mod state;
#[cfg(test)]
mod tests;

#[cfg(test)]
mod proptests;

use std::time::Duration;

pub use state::{Role, Stem, StemCounts};

/// Most [`StemConfig::max_items`], [`StemConfig::max_peers`] and [`StemConfig::done_capacity`] accepted.
pub const MAX_CAPACITY: usize = 1 << 20;
/// Most time allowed for the rest of a stem to fetch a publication, whatever its size: one day.
pub const MAX_ALLOWANCE: Duration = Duration::from_secs(86_400);
/// Largest multiple of [`StemConfig::failsafe_mean`] an exponential draw is cut to (so every timer is bounded).
pub const FAILSAFE_DRAW_CAP: f64 = 8.0;

/// What happened, as the driver tells it to [`Stem::handle`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StemEvent<P, I> {
    /// An outbound kolokol connection is open: the peer may be chosen as a relay (the paper picks relays among
    /// outbound connections, which an attacker cannot force on us by dialing).
    PeerUp {
        /// The peer.
        peer: P,
    },
    /// The connection to `peer` closed.
    PeerDown {
        /// The peer.
        peer: P,
    },
    /// This node published `id` (its data is complete here).
    Originate {
        /// The publication.
        id: I,
        /// Its size in bytes (as its record states).
        bytes: u64,
    },
    /// `from` passed `id` to us in stem (its record arrived and was valid).
    StemReceived {
        /// The previous hop.
        from: P,
        /// The publication.
        id: I,
        /// Its size in bytes (as its record states).
        bytes: u64,
    },
    /// Every piece of `id` asked for with [`StemAction::Fetch`] is now held and checked.
    DataComplete {
        /// The publication.
        id: I,
    },
    /// The fetch asked for with [`StemAction::Fetch`] failed (the previous hop vanished or sent bad data).
    FetchFailed {
        /// The publication.
        id: I,
    },
    /// `by`, the relay we passed `id` to, has fetched every piece of it from us: from now on the stem does not
    /// depend on us. (Until then, losing `by` makes us pass the item to another relay.)
    Fetched {
        /// The publication.
        id: I,
        /// The relay.
        by: P,
    },
    /// `id` arrived the ordinary way (fluff: pushed, announced or found by reconciliation): its stem is over.
    SeenInFluff {
        /// The publication.
        id: I,
    },
    /// The time asked for with [`StemAction::ScheduleTimer`] has come (extra ticks are harmless).
    Tick,
}

/// What the driver should do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StemAction<P, I> {
    /// Fetch every piece of `id` from `from` (the previous hop); report [`StemEvent::DataComplete`] or
    /// [`StemEvent::FetchFailed`].
    Fetch {
        /// The publication.
        id: I,
        /// The previous hop.
        from: P,
    },
    /// Pass `id` to `to` in stem (its record; the peer then fetches the data from us).
    SendStem {
        /// The relay.
        to: P,
        /// The publication.
        id: I,
    },
    /// End the stem here: do what a publisher does without a stem (push the record to peers, seed, announce in
    /// the DHT, put the feed head).
    Fluff {
        /// The publication.
        id: I,
    },
    /// Deliver [`StemEvent::Tick`] at this time (replaces any earlier request).
    ScheduleTimer {
        /// When.
        at: Duration,
    },
}

/// Parameters of the stem phase. [`Default`] gives what a node uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StemConfig {
    /// Length of an epoch (role and relays are drawn anew at its start): 10 min.
    pub epoch: Duration,
    /// Chance, in thousandths, that a node is a diffuser for an epoch (the paper's q): 200. The number of relay
    /// hops is geometric with mean 1000 / this (5), and every hop fetches the whole publication, so a larger q
    /// than cryptocurrencies use (they pass 250-byte transactions) keeps stems short in time.
    pub diffuse_per_mille: u16,
    /// Relays per epoch: 2 (the paper's 4-regular anonymity graph: two out, two in on average).
    pub relays: usize,
    /// Fixed part of every fail-safe delay: 20 s.
    pub failsafe_base: Duration,
    /// Time allowed per MiB of the publication for each expected hop of the rest of the stem: 2 s (a hop
    /// fetching at 0.5 MiB/s).
    pub failsafe_per_mib: Duration,
    /// Mean of the exponential part of the fail-safe delay: 30 s.
    pub failsafe_mean: Duration,
    /// Most items in progress (fetching, waiting for a relay or timed): 1,024. Stems beyond it are ignored
    /// (their senders' fail-safes fluff them).
    pub max_items: usize,
    /// Most peers known, and routes kept: 1,024.
    pub max_peers: usize,
    /// Finished ids remembered, so that a late duplicate starts nothing: 4,096.
    pub done_capacity: usize,
}

impl Default for StemConfig {
    fn default() -> Self {
        StemConfig {
            epoch: Duration::from_secs(600),
            diffuse_per_mille: 200,
            relays: 2,
            failsafe_base: Duration::from_secs(20),
            failsafe_per_mib: Duration::from_secs(2),
            failsafe_mean: Duration::from_secs(30),
            max_items: 1024,
            max_peers: 1024,
            done_capacity: 4096,
        }
    }
}

/// Why a [`StemConfig`] was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StemConfigError {
    /// A number is outside its allowed range.
    #[error("{field} is {value}, outside {min}..={max}")]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// Its value.
        value: usize,
        /// Smallest allowed.
        min: usize,
        /// Largest allowed.
        max: usize,
    },
    /// A duration is zero.
    #[error("{field} must be positive")]
    ZeroDuration {
        /// The field.
        field: &'static str,
    },
}

impl StemConfig {
    /// Checks every parameter.
    pub fn validate(&self) -> Result<(), StemConfigError> {
        let counts = [
            (
                "diffuse_per_mille",
                usize::from(self.diffuse_per_mille),
                1,
                1000,
            ),
            ("relays", self.relays, 1, 16),
            ("max_items", self.max_items, 1, MAX_CAPACITY),
            ("max_peers", self.max_peers, 1, MAX_CAPACITY),
            ("done_capacity", self.done_capacity, 1, MAX_CAPACITY),
        ];
        for (field, value, min, max) in counts {
            if value < min || value > max {
                return Err(StemConfigError::OutOfRange {
                    field,
                    value,
                    min,
                    max,
                });
            }
        }
        for (field, value) in [
            ("epoch", self.epoch),
            ("failsafe_base", self.failsafe_base),
            ("failsafe_mean", self.failsafe_mean),
        ] {
            if value.is_zero() {
                return Err(StemConfigError::ZeroDuration { field });
            }
        }
        Ok(())
    }

    /// Expected number of relay hops left at any node of a stem (1/q: the count is geometric, so memoryless).
    pub fn expected_hops(&self) -> u64 {
        1000u64.div_ceil(u64::from(self.diffuse_per_mille.max(1)))
    }

    /// The part of the fail-safe delay that does not depend on chance, for a publication of `bytes`: the base
    /// plus the allowance for the expected rest of the stem to fetch it.
    pub fn failsafe_floor(&self, bytes: u64) -> Duration {
        let mib = bytes as f64 / (1u64 << 20) as f64;
        let secs = self.failsafe_per_mib.as_secs_f64() * mib * self.expected_hops() as f64;
        // A size no record has (the record bounds it) must not overflow: the allowance is capped.
        let allowance = Duration::try_from_secs_f64(secs)
            .unwrap_or(MAX_ALLOWANCE)
            .min(MAX_ALLOWANCE);
        self.failsafe_base.saturating_add(allowance)
    }

    /// The longest fail-safe delay for a publication of `bytes`.
    pub fn max_failsafe(&self, bytes: u64) -> Duration {
        let mean = self.failsafe_draw_mean(bytes).as_secs_f64();
        let draw = Duration::try_from_secs_f64(mean * FAILSAFE_DRAW_CAP).unwrap_or(Duration::MAX);
        self.failsafe_floor(bytes).saturating_add(draw)
    }

    /// The mean of the exponential part of the fail-safe delay for a publication of `bytes`: the configured
    /// mean plus the same allowance as the floor's.
    pub fn failsafe_draw_mean(&self, bytes: u64) -> Duration {
        let allowance = self
            .failsafe_floor(bytes)
            .saturating_sub(self.failsafe_base);
        self.failsafe_mean.saturating_add(allowance)
    }
}
