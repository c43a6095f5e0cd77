//! Discovery policy: when a node answers DHT queries, how long it waits for one DHT node's answer, and when it
//! looks for its network again. Pure decisions (no sockets, no clock): [`crate::dht`] and [`crate::rendezvous`]
//! only apply them.

use std::time::Duration;

/// Who decides whether the DHT node answers other nodes' queries from the start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ServerMode {
    /// The rule of [`answers_from_start`].
    #[default]
    Auto,
    /// Always answer from the start (`--dht-server`), also on the public DHT.
    Always,
    /// Never a full DHT node (BEP 43 read-only, whatever the network): a node that must not be listed, such as a
    /// bridge's, stays out of other nodes' routing tables even in a network of kolokol nodes only.
    Never,
}

/// Whether the DHT node is a full DHT node from the start (BEP 5: other nodes put it in their routing tables and
/// send it queries) rather than a read-only one (BEP 43: its queries say `ro`, so other nodes leave it out of
/// their routing tables). Either way `kolokol-dht` answers the queries that do reach it (from a client given
/// its address, such as a BitTorrent client using it as its entry point); a read-only node stays read-only.
///
/// The rule: **a node answers when its network has nothing else to answer.**
///
/// - Public routers off (`no_default_bootstrap`): the network is made of kolokol nodes only (a private network, a
///   national intranet after a cut-off, a test). Nobody else answers there, so every node must, or no lookup ever
///   gets an answer: a network of read-only nodes never forms, and a single answering node (the bootstrap node)
///   gets no answers to its own lookups and never meets a peer.
/// - Public routers allowed: the public DHT's millions of nodes answer; the node is read-only, so a node behind NAT
///   or on a phone does not spend its uplink and battery storing other people's announcements.
///
/// What answering shows a DHT observer is in SECURITY.md ("Discovery: who answers DHT queries").
pub fn answers_from_start(mode: ServerMode, public_routers_allowed: bool) -> bool {
    match mode {
        ServerMode::Always => true,
        ServerMode::Never => false,
        ServerMode::Auto => !public_routers_allowed,
    }
}

/// Default time to wait for one DHT node's answer: 1 s.
///
/// A lookup (and so every announce, rendezvous round and feed read) ends only when every node it asked
/// has answered or timed out, so a lookup that asks one node that never answers (gone, behind NAT, or dropping
/// our packets) lasts at least this long; on the public DHT nearly every lookup asks such a node. Answers that
/// come at all come fast: on the mainline DHT median lookups of 100-200 ms and consistently sub-second lookups
/// are reachable (Jimenez, Osmani, Knutsson, "Sub-second lookups on a large-scale Kademlia-based overlay",
/// IEEE P2P 2011). A 2 s timeout (the `mainline` crate's default) doubles every such lookup's floor for the few answers that arrive in
/// the second second, and a lookup asks several nodes in parallel, so one slow node's answer lost costs little.
/// On a link slower than this (a round trip near a second), raise it with `--dht-timeout-ms`.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(1);

/// When the next rendezvous round (announce + lookup of the network's nodes) starts.
///
/// A node that has too few peers retries soon and backs off: `first_retry`, then twice that after each round, up
/// to `retry_interval`, and then every `retry_interval`. A node with enough peers waits `interval`, and the
/// retry wait starts again from `first_retry`, so a node that loses its peers later looks again quickly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RendezvousSchedule {
    first_retry: Duration,
    retry_interval: Duration,
    interval: Duration,
    next_retry: Duration,
}

impl RendezvousSchedule {
    /// `first_retry <= retry_interval <= interval` is enforced by lowering the first two where needed.
    pub fn new(
        first_retry: Duration,
        retry_interval: Duration,
        interval: Duration,
    ) -> RendezvousSchedule {
        let retry_interval = retry_interval.min(interval);
        let first_retry = first_retry.min(retry_interval);
        RendezvousSchedule {
            first_retry,
            retry_interval,
            interval,
            next_retry: first_retry,
        }
    }

    /// The wait after a round, given whether the node now has enough peers.
    pub fn after_round(&mut self, enough_peers: bool) -> Duration {
        if enough_peers {
            self.next_retry = self.first_retry;
            return self.interval;
        }
        let wait = self.next_retry;
        self.next_retry = self.next_retry.saturating_mul(2).min(self.retry_interval);
        wait
    }

    /// How often a node waiting `interval` checks that it still has enough peers (and starts a round at once if
    /// not).
    pub fn recheck_interval(&self) -> Duration {
        self.retry_interval
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_network_of_kolokol_nodes_makes_every_node_answer_from_the_start() {
        assert!(answers_from_start(ServerMode::Auto, false));
        assert!(!answers_from_start(ServerMode::Auto, true));
        assert!(answers_from_start(ServerMode::Always, true));
        assert!(answers_from_start(ServerMode::Always, false));
        assert!(!answers_from_start(ServerMode::Never, false));
        assert!(!answers_from_start(ServerMode::Never, true));
    }

    #[test]
    fn retries_back_off_from_the_first_wait_to_the_retry_interval() {
        let s = Duration::from_secs;
        let mut schedule = RendezvousSchedule::new(s(1), s(30), s(600));
        let waits: Vec<Duration> = (0..8).map(|_| schedule.after_round(false)).collect();
        assert_eq!(waits, [s(1), s(2), s(4), s(8), s(16), s(30), s(30), s(30)]);
        assert_eq!(schedule.recheck_interval(), s(30));
    }

    #[test]
    fn enough_peers_waits_the_interval_and_resets_the_back_off() {
        let s = Duration::from_secs;
        let mut schedule = RendezvousSchedule::new(s(1), s(30), s(600));
        schedule.after_round(false);
        schedule.after_round(false);
        assert_eq!(schedule.after_round(true), s(600));
        assert_eq!(
            schedule.after_round(false),
            s(1),
            "peers lost: look again soon"
        );
    }

    #[test]
    fn a_short_interval_caps_every_wait() {
        let s = Duration::from_secs;
        let mut schedule = RendezvousSchedule::new(s(1), s(30), s(2));
        let waits: Vec<Duration> = (0..4).map(|_| schedule.after_round(false)).collect();
        assert_eq!(waits, [s(1), s(2), s(2), s(2)]);
        let mut tiny = RendezvousSchedule::new(s(5), s(30), s(2));
        assert_eq!(tiny.after_round(false), s(2));
        assert_eq!(tiny.after_round(true), s(2));
    }
}
