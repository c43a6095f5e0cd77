//! The periodic rendezvous: announce our wire port on the network's rendezvous infohash and look it up, handing
//! every kolokol node found to the node (which feeds them to its overlay as [`Source::Dht`] candidates).
//!
//! [`Source::Dht`]: kolokol_core::overlay::Source::Dht

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::dht::Dht;
use crate::policy::RendezvousSchedule;

/// How many found addresses may wait in the channel for the node to take them.
const CHANNEL_CAPACITY: usize = 256;

/// When to announce and look up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RendezvousConfig {
    /// The kolokol wire port to announce.
    pub wire_port: u16,
    /// Announce as well as look up (default). Off for a node that must not be listed (a hidden bridge): it only
    /// looks the others up.
    pub announce: bool,
    /// Time between rounds (announce + lookup) while the node has enough peers: 10 min. Announcements expire on
    /// DHT nodes after about 30 min.
    pub interval: Duration,
    /// First wait before another round while the node has too few peers: 1 s, doubled after each round up to
    /// `retry_interval` ([`RendezvousSchedule`]). Nodes started together announce at about the same time: the
    /// first lookups find few of the others, the next ones a second later find them.
    pub first_retry: Duration,
    /// Longest wait between rounds while the node has too few peers: 30 s.
    pub retry_interval: Duration,
    /// Each wait is shortened or lengthened by a random amount up to this fraction, in percent: 10. Nodes
    /// started together then do not query the DHT in lockstep.
    pub jitter_percent: u8,
}

impl RendezvousConfig {
    /// The defaults for a node whose wire port is `wire_port`.
    pub fn new(wire_port: u16) -> RendezvousConfig {
        RendezvousConfig {
            wire_port,
            announce: true,
            interval: Duration::from_secs(600),
            first_retry: Duration::from_secs(1),
            retry_interval: Duration::from_secs(30),
            jitter_percent: 10,
        }
    }
}

/// A running rendezvous task. Dropping it (or [`Rendezvous::stop`]) stops the task.
#[derive(Debug)]
pub struct Rendezvous {
    found: mpsc::Receiver<SocketAddr>,
    wake: Arc<Notify>,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

/// Tells the rendezvous whether the node has enough peers (then rounds slow down to `interval`).
pub type EnoughPeers = Box<dyn Fn() -> bool + Send + Sync>;

impl Rendezvous {
    /// Starts announcing and looking up on `dht`, at once and then periodically. With no view of the node's
    /// peers, a round that found someone counts as enough.
    pub fn spawn(dht: Dht, config: RendezvousConfig) -> Rendezvous {
        Self::spawn_inner(dht, config, None)
    }

    /// Like [`Rendezvous::spawn`], with the node's own judgement of whether it has enough peers, asked after each
    /// round and every `retry_interval` during the slow wait (a node that lost its peers looks again at once).
    pub fn spawn_with_peers(
        dht: Dht,
        config: RendezvousConfig,
        enough_peers: EnoughPeers,
    ) -> Rendezvous {
        Self::spawn_inner(dht, config, Some(enough_peers))
    }

    fn spawn_inner(
        dht: Dht,
        config: RendezvousConfig,
        enough_peers: Option<EnoughPeers>,
    ) -> Rendezvous {
        let (tx, found) = mpsc::channel(CHANNEL_CAPACITY);
        let wake = Arc::new(Notify::new());
        let cancel = CancellationToken::new();
        let task = tokio::spawn(run(
            dht,
            config,
            enough_peers,
            tx,
            wake.clone(),
            cancel.clone(),
        ));
        Rendezvous {
            found,
            wake,
            cancel,
            task: Some(task),
        }
    }

    /// The next kolokol node address found (each round yields every node it finds, deduplicated within the
    /// round). `None` once the task has stopped.
    pub async fn next(&mut self) -> Option<SocketAddr> {
        self.found.recv().await
    }

    /// Starts a round now instead of waiting (for example when the overlay has run out of candidates).
    pub fn lookup_now(&self) {
        self.wake.notify_one();
    }

    /// Stops the task and waits for it to end.
    pub async fn stop(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Rendezvous {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn run(
    dht: Dht,
    config: RendezvousConfig,
    enough_peers: Option<EnoughPeers>,
    tx: mpsc::Sender<SocketAddr>,
    wake: Arc<Notify>,
    cancel: CancellationToken,
) {
    let mut schedule =
        RendezvousSchedule::new(config.first_retry, config.retry_interval, config.interval);
    loop {
        let round = async {
            let announce = async {
                if config.announce
                    && let Err(error) = dht.announce_rendezvous(config.wire_port).await
                {
                    tracing::debug!(%error, "rendezvous announce failed");
                }
            };
            let lookup = dht.find_rendezvous(config.wire_port);
            let ((), found) = tokio::join!(announce, lookup);
            found
        };
        let found = tokio::select! {
            _ = cancel.cancelled() => return,
            found = round => found,
        };
        tracing::debug!(found = found.len(), "rendezvous round");
        let found_someone = !found.is_empty();
        for addr in found {
            if tx.send(addr).await.is_err() {
                return;
            }
        }
        let enough = || {
            enough_peers
                .as_ref()
                .map_or(found_someone, |enough| enough())
        };
        let slow = enough();
        let wait = jittered(schedule.after_round(slow), config.jitter_percent);
        let deadline = tokio::time::Instant::now() + wait;
        // During the slow wait, look again at once if the node has lost its peers.
        let recheck = if slow && enough_peers.is_some() {
            schedule.recheck_interval().max(Duration::from_millis(100))
        } else {
            wait
        };
        loop {
            let next_check = deadline.min(tokio::time::Instant::now() + recheck);
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep_until(next_check) => {}
                _ = wake.notified() => break,
            }
            if tokio::time::Instant::now() >= deadline || !enough() {
                break;
            }
        }
    }
}

/// `base` changed by a random amount of at most `percent` percent either way.
pub(crate) fn jittered(base: Duration, percent: u8) -> Duration {
    let spread = base.as_millis() as u64 * u64::from(percent.min(100)) / 100;
    if spread == 0 {
        return base;
    }
    let offset = rand::rng().random_range(0..=2 * spread);
    (base + Duration::from_millis(offset)).saturating_sub(Duration::from_millis(spread))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_bounds() {
        let base = Duration::from_secs(100);
        for _ in 0..1000 {
            let j = jittered(base, 10);
            assert!(
                j >= Duration::from_secs(90) && j <= Duration::from_secs(110),
                "{j:?}"
            );
        }
        assert_eq!(jittered(base, 0), base);
        assert_eq!(jittered(Duration::ZERO, 50), Duration::ZERO);
    }
}
