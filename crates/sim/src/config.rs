//! Parameters of a simulated network.

use std::time::Duration;

use kolokol_core::policy::PolicyConfig;
use kolokol_core::reconcile::ReconcileConfig;

/// Everything a run depends on; the same value and seed give the same run.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Seed of every random choice.
    pub seed: u64,
    /// Number of nodes.
    pub nodes: usize,
    /// Target connections per node (half dialed by each node, half accepted): 8.
    pub degree: usize,
    /// Most inbound connections a node accepts: 32.
    pub max_inbound: usize,
    /// One-way link latency, drawn once per pair of nodes uniformly from this range: 50-200 ms.
    pub latency_min: Duration,
    /// See `latency_min`.
    pub latency_max: Duration,
    /// Probability that a message is lost once on the way; the transport (TCP) resends it after a timeout,
    /// so loss shows as delay: 1%.
    pub loss: f64,
    /// Bytes per second one link carries in each direction: 1 MB/s. Messages on a link queue behind each
    /// other.
    pub bandwidth: u64,
    /// Fraction of nodes offline at any moment: 0.2.
    pub churn: f64,
    /// Mean time a node stays offline when it goes (exponential): 2 min. The mean online time follows from
    /// `churn`.
    pub mean_offline: Duration,
    /// Mean time between two replacements of a node's oldest outbound connection by a fresh random one: 5 min.
    /// This is how the overlay keeps mixing (and how links across a healed partition appear).
    pub rotate_interval: Duration,
    /// Records every node holds at the start (published long ago).
    pub initial_records: usize,
    /// Size of one signed record in bytes: 1,500.
    pub record_bytes: u32,
    /// The record policy of every node (the state machine the real node runs).
    pub policy: PolicyConfig,
    /// The reconciliation parameters of every node.
    pub reconcile: ReconcileConfig,
    /// Nodes that publish a flood of records.
    pub spammers: usize,
    /// Records per minute each spamming node publishes.
    pub spam_per_minute: u32,
    /// The per-author rate limit whose effect is counted (records per hour): 60.
    pub rate_limit_per_hour: u32,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 1,
            nodes: 200,
            degree: 8,
            max_inbound: 32,
            latency_min: Duration::from_millis(50),
            latency_max: Duration::from_millis(200),
            loss: 0.01,
            bandwidth: 1_000_000,
            churn: 0.2,
            mean_offline: Duration::from_secs(120),
            rotate_interval: Duration::from_secs(300),
            initial_records: 1000,
            record_bytes: 1500,
            policy: PolicyConfig::default(),
            reconcile: ReconcileConfig::default(),
            spammers: 0,
            spam_per_minute: 60,
            rate_limit_per_hour: 60,
        }
    }
}

/// Bytes a wire message costs beyond its payload: Noise length prefix and tag, bencode framing.
pub const MESSAGE_OVERHEAD: u64 = 32;
/// Bytes of the handshake and hellos that open a connection (both directions together).
pub const HANDSHAKE_BYTES: u64 = 600;
