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

/// How many found addresses may wait in the channel for the node to take them.
const CHANNEL_CAPACITY: usize = 256;

/// When to announce and look up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RendezvousConfig {
    /// The kolokol wire port to announce.
    pub wire_port: u16,
    /// Time between rounds (announce + lookup): 10 min. Announcements expire on DHT nodes after about 30 min.
    pub interval: Duration,
    /// Time before the next round when the last one found nobody: 30 s.
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
            interval: Duration::from_secs(600),
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

impl Rendezvous {
    /// Starts announcing and looking up on `dht`, at once and then periodically.
    pub fn spawn(dht: Dht, config: RendezvousConfig) -> Rendezvous {
        let (tx, found) = mpsc::channel(CHANNEL_CAPACITY);
        let wake = Arc::new(Notify::new());
        let cancel = CancellationToken::new();
        let task = tokio::spawn(run(dht, config, tx, wake.clone(), cancel.clone()));
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
    tx: mpsc::Sender<SocketAddr>,
    wake: Arc<Notify>,
    cancel: CancellationToken,
) {
    loop {
        let round = async {
            let announce = dht.announce_rendezvous(config.wire_port);
            let lookup = dht.find_rendezvous(config.wire_port);
            let (announced, found) = tokio::join!(announce, lookup);
            if let Err(error) = announced {
                tracing::debug!(%error, "rendezvous announce failed");
            }
            found
        };
        let found = tokio::select! {
            _ = cancel.cancelled() => return,
            found = round => found,
        };
        tracing::debug!(found = found.len(), "rendezvous round");
        let wait = if found.is_empty() {
            config.retry_interval
        } else {
            config.interval
        };
        for addr in found {
            if tx.send(addr).await.is_err() {
                return;
            }
        }
        let wait = jittered(wait, config.jitter_percent);
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
            _ = wake.notified() => {}
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
