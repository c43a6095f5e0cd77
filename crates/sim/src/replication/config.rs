//! Parameters of a replication run.

use std::time::Duration;

use kolokol_core::replication::PushConfig;
use kolokol_core::replication::cache::DEFAULT_VIEWER_QUOTA_BYTES;

/// Most pieces a publication is cut into (pieces of a node are one `u64` bit set).
pub const MAX_PIECES: u64 = 64;
/// Smallest piece.
pub const MIN_PIECE_BYTES: u64 = 256 * 1024;
/// Pieces a node uploads at once; each gets an equal share of its upload rate.
pub const UPLOAD_SLOTS: usize = 4;
/// Pieces a node downloads at once over all its fetches; each gets an equal share of its download rate.
pub const DOWNLOAD_SLOTS: usize = 8;
/// Pieces one fetch requests at once.
pub const REQUESTS_PER_FETCH: u32 = 4;
/// How often a fetch that found no free source looks again.
pub const RETRY_SOURCES: Duration = Duration::from_secs(5);

/// Which of the policies are on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Variant {
    /// Publishers ask peers to replicate and announce after the first full replica (or the time-out); without
    /// it they announce at once.
    pub push: bool,
    /// `mirror_share` of the nodes are mirrors; without, they are ordinary nodes.
    pub mirrors: bool,
}

impl Variant {
    /// The four combinations, the full policy first.
    pub const ALL: [Variant; 4] = [
        Variant {
            push: true,
            mirrors: true,
        },
        Variant {
            push: false,
            mirrors: true,
        },
        Variant {
            push: true,
            mirrors: false,
        },
        Variant {
            push: false,
            mirrors: false,
        },
    ];
}

impl std::fmt::Display for Variant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let push = if self.push { "push" } else { "no push" };
        let mirrors = if self.mirrors {
            "mirrors"
        } else {
            "no mirrors"
        };
        write!(f, "{push}, {mirrors}")
    }
}

/// Everything a run depends on; the same value gives the same run.
#[derive(Clone, Debug)]
pub struct ReplicationConfig {
    /// Seed of every random choice.
    pub seed: u64,
    /// Nodes: 2,000.
    pub nodes: usize,
    /// Share of nodes that are mirrors: 5%.
    pub mirror_share: f64,
    /// Policies on.
    pub variant: Variant,
    /// Publications: 200.
    pub publications: usize,
    /// Publications are published at uniform random times within this window from the start: 2 h.
    pub publish_window: Duration,
    /// A publisher goes offline this long after publishing, for good: 60 s.
    pub publisher_online: Duration,
    /// Share of ordinary nodes offline at any time: 20%.
    pub churn: f64,
    /// Share of mirrors offline at any time: 5%.
    pub mirror_churn: f64,
    /// Mean length of an offline period (exponential), for every node: 1 h. Mean online periods follow from
    /// the churn share (4 h for ordinary nodes, 19 h for mirrors).
    pub mean_offline: Duration,
    /// Smallest publication: 1 MB. Sizes are log-uniform between the bounds.
    pub size_min: u64,
    /// Largest publication: 150 MB.
    pub size_max: u64,
    /// Upload rate of an ordinary node, bytes per second: 2 MB/s (16 Mbit/s).
    pub ordinary_up: u64,
    /// Download rate of an ordinary node: 10 MB/s.
    pub ordinary_down: u64,
    /// Upload and download rate of a mirror: 12.5 MB/s (100 Mbit/s).
    pub mirror_rate: u64,
    /// One-way latency of a piece request, drawn per request: 50-200 ms.
    pub latency_min: Duration,
    /// See `latency_min`.
    pub latency_max: Duration,
    /// Viewers per publication are log-uniform between 1 and this: 100 (mean about 21).
    pub max_viewers: u32,
    /// Mean delay from the announcement to a viewer starting to watch (exponential): 2 h.
    pub mean_watch_delay: Duration,
    /// Cache quota of an ordinary node: the core default, 4 GiB.
    pub viewer_quota: u64,
    /// Quota of a mirror: 4 GB, below what is published, so that mirrors have to choose.
    pub mirror_quota: u64,
    /// Fetches a mirror runs at once: 4.
    pub mirror_parallel: usize,
    /// Chance that a mirror follows a publication's author: 10%.
    pub follow_share: f64,
    /// Connected peers a publisher can ask to replicate: 8.
    pub publisher_peers: usize,
    /// The publisher push.
    pub push: PushConfig,
    /// A fetch that receives nothing for this long (online) is abandoned and its partial data deleted: 10 min.
    pub stall_timeout: Duration,
    /// How often a mirror refreshes holder counts and asks its policy what to do: 60 s.
    pub mirror_tick: Duration,
    /// Ages at which each publication's availability is measured: 1 h and 1 day.
    pub checks: [Duration; 2],
    /// A mirror counts the holders only of publications it holds complete itself, as the node does since a claim
    /// counts only once proven against its own copy (`kolokol_core::replication::proof`); of the others it knows no
    /// holder (ranked as rarest). Off: every mirror knows every online full copy (the node before proofs). On.
    pub proven_holders: bool,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        ReplicationConfig {
            seed: 1,
            nodes: 2000,
            mirror_share: 0.05,
            variant: Variant::ALL[0],
            publications: 200,
            publish_window: Duration::from_secs(2 * 3600),
            publisher_online: Duration::from_secs(60),
            churn: 0.2,
            mirror_churn: 0.05,
            mean_offline: Duration::from_secs(3600),
            size_min: 1_000_000,
            size_max: 150_000_000,
            ordinary_up: 2_000_000,
            ordinary_down: 10_000_000,
            mirror_rate: 12_500_000,
            latency_min: Duration::from_millis(50),
            latency_max: Duration::from_millis(200),
            max_viewers: 100,
            mean_watch_delay: Duration::from_secs(2 * 3600),
            viewer_quota: DEFAULT_VIEWER_QUOTA_BYTES,
            mirror_quota: 4_000_000_000,
            mirror_parallel: 4,
            follow_share: 0.1,
            publisher_peers: 8,
            // Announce before the publisher leaves after a minute.
            push: PushConfig {
                replicas_wanted: 3,
                announce_timeout_secs: 45,
                ask_timeout_secs: 20,
            },
            stall_timeout: Duration::from_secs(600),
            mirror_tick: Duration::from_secs(60),
            checks: [Duration::from_secs(3600), Duration::from_secs(86_400)],
            proven_holders: true,
        }
    }
}

impl ReplicationConfig {
    /// Checks the values a run cannot work with.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.nodes >= 10, "need at least ten nodes");
        anyhow::ensure!((0.0..1.0).contains(&self.churn), "churn must be in [0, 1)");
        anyhow::ensure!(
            (0.0..1.0).contains(&self.mirror_churn),
            "mirror churn must be in [0, 1)"
        );
        anyhow::ensure!(
            (0.0..=1.0).contains(&self.mirror_share),
            "mirror share must be in [0, 1]"
        );
        anyhow::ensure!(
            (0.0..=1.0).contains(&self.follow_share),
            "follow share must be in [0, 1]"
        );
        anyhow::ensure!(
            0 < self.size_min && self.size_min <= self.size_max,
            "publication sizes must be positive and ordered"
        );
        anyhow::ensure!(
            self.ordinary_up > 0 && self.ordinary_down > 0 && self.mirror_rate > 0,
            "rates must be positive"
        );
        anyhow::ensure!(
            self.latency_min <= self.latency_max,
            "latency range is empty"
        );
        anyhow::ensure!(self.max_viewers >= 1, "at least one viewer per publication");
        anyhow::ensure!(
            !self.mirror_tick.is_zero(),
            "the mirror tick must be positive"
        );
        Ok(())
    }

    /// Virtual time at which the run ends: the last possible publication plus the last check.
    pub fn end(&self) -> Duration {
        let last_check = self.checks.iter().max().copied().unwrap_or_default();
        self.publish_window + last_check + Duration::from_secs(1)
    }
}
