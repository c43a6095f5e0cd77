//! Replication scenario: does published content survive its publisher?
//!
//! Thousands of nodes run the core replication policy: publishers use
//! [`kolokol_core::replication::PublisherPush`] (ask peers to replicate, announce after the first full replica
//! or a time-out), mirrors and viewers use [`kolokol_core::replication::CachePolicy`] (mirror mode fetches on
//! its own under a quota; viewer mode keeps what was watched within the cache quota). Content moves piece by
//! piece with upload/download rates, slots and latency (`swarm.rs`). Every publisher leaves for good a minute
//! after publishing; ordinary nodes and mirrors come and go. Each publication is checked at fixed ages
//! ([`ReplicationConfig::checks`]): is every piece held by at least one online node?
//!
//! [`run_variants`] runs the same network with and without push and with and without mirrors, so the effect
//! of each half of the policy is visible.

mod config;
mod swarm;
mod world;

use std::fmt;
use std::time::Duration;

pub use config::{ReplicationConfig, Variant};
pub use world::ReplicationWorld;

use crate::metrics::{quantile, secs};
use world::Announced;

/// Figures of one run.
#[derive(Clone, Debug)]
pub struct ReplicationReport {
    /// Which policies were on.
    pub variant: Variant,
    /// Nodes, and how many of them mirrors.
    pub nodes: usize,
    /// See `nodes`.
    pub mirrors: usize,
    /// Publications published.
    pub publications: usize,
    /// Announced at once (no push), after a confirmed replica, at the time-out, never (publisher left first).
    pub announced: [usize; 4],
    /// Ages of the checks.
    pub checks: [Duration; 2],
    /// Share of publications with every piece on some online node, at each check.
    pub available: [f64; 2],
    /// Share with at least one online node holding every piece, at each check.
    pub full_copy: [f64; 2],
    /// Mean number of online nodes holding every piece, at each check.
    pub copies: [f64; 2],
    /// Share of publications of which another node held a full copy before the publisher left.
    pub replica_before_leaving: f64,
    /// Median time from publication to the first full copy on another node.
    pub first_replica_median: Option<Duration>,
    /// Replication requests sent by publishers.
    pub asks: u64,
    /// Watches started and completed.
    pub watches: (u64, u64),
    /// Fetches started by mirror policies, evictions by all policies, fetches abandoned.
    pub policy: (u64, u64, u64),
    /// Bytes moved between nodes.
    pub bytes: u64,
    /// Bytes received by mirrors, and partial data mirrors deleted when a fetch stalled.
    pub mirror_bytes: (u64, u64),
}

/// Runs one configuration to its end and measures it.
pub fn run_replication(config: ReplicationConfig) -> anyhow::Result<ReplicationReport> {
    let end = config.end();
    let mut world = ReplicationWorld::new(config)?;
    world.start();
    world.run_until(end);
    Ok(world.report())
}

/// Runs `config` under every [`Variant`], two at a time (one per core).
pub fn run_variants(config: &ReplicationConfig) -> anyhow::Result<Vec<ReplicationReport>> {
    let mut reports = Vec::new();
    for pair in Variant::ALL.chunks(2) {
        let results: Vec<anyhow::Result<ReplicationReport>> = std::thread::scope(|scope| {
            let handles: Vec<_> = pair
                .iter()
                .map(|variant| {
                    let config = ReplicationConfig {
                        variant: *variant,
                        ..config.clone()
                    };
                    scope.spawn(move || run_replication(config))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("a run panicked")))
                })
                .collect()
        });
        for result in results {
            reports.push(result?);
        }
    }
    Ok(reports)
}

impl ReplicationWorld {
    /// The figures measured so far.
    pub fn report(&self) -> ReplicationReport {
        let total = self.publications.len();
        let share = |count: usize| {
            if total == 0 {
                0.0
            } else {
                count as f64 / total as f64
            }
        };
        let mut announced = [0usize; 4];
        let mut available = [0usize; 2];
        let mut full_copy = [0usize; 2];
        let mut copies = [0u64; 2];
        let mut before_leaving = 0;
        let mut first_replica = Vec::new();
        for p in &self.publications {
            let slot = match p.announced.map(|(_, how)| how) {
                Some(Announced::AtOnce) => 0,
                Some(Announced::Confirmed) => 1,
                Some(Announced::Timeout) => 2,
                None => 3,
            };
            announced[slot] += 1;
            for which in 0..2 {
                let check = p.checks[which].unwrap_or_default();
                available[which] += usize::from(check.available);
                full_copy[which] += usize::from(check.full_copies > 0);
                copies[which] += u64::from(check.full_copies);
            }
            if let Some(at) = p.first_replica_at {
                let after = at.saturating_sub(p.published_at);
                first_replica.push(after);
                before_leaving += usize::from(after <= self.config.publisher_online);
            }
        }
        first_replica.sort();
        ReplicationReport {
            variant: self.config.variant,
            nodes: self.nodes.len(),
            mirrors: self.nodes.iter().filter(|n| n.mirror).count(),
            publications: total,
            announced,
            checks: self.config.checks,
            available: available.map(share),
            full_copy: full_copy.map(share),
            copies: copies.map(|c| c as f64 / total.max(1) as f64),
            replica_before_leaving: share(before_leaving),
            first_replica_median: quantile(&first_replica, 0.5),
            asks: self.stats.asks,
            watches: (self.stats.watches, self.stats.watches_done),
            policy: (
                self.stats.mirror_fetches,
                self.stats.evictions,
                self.stats.failed_fetches,
            ),
            bytes: self.stats.bytes,
            mirror_bytes: (self.stats.mirror_bytes, self.stats.wasted_bytes),
        }
    }
}

impl fmt::Display for ReplicationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = |x: f64| format!("{:.1}%", x * 100.0);
        let age = |d: Duration| match d.as_secs() {
            s if s % 86_400 == 0 => format!("{} d", s / 86_400),
            s if s % 3600 == 0 => format!("{} h", s / 3600),
            s => format!("{s} s"),
        };
        writeln!(
            f,
            "{}: {} nodes ({} mirrors), {} publications",
            self.variant, self.nodes, self.mirrors, self.publications
        )?;
        writeln!(
            f,
            "  fully available (every piece on an online node): {} after {}, {} after {}",
            pct(self.available[0]),
            age(self.checks[0]),
            pct(self.available[1]),
            age(self.checks[1])
        )?;
        writeln!(
            f,
            "  a full copy on one online node:                  {} after {}, {} after {}",
            pct(self.full_copy[0]),
            age(self.checks[0]),
            pct(self.full_copy[1]),
            age(self.checks[1])
        )?;
        writeln!(
            f,
            "  online full copies per publication (mean):      {:.1} after {}, {:.1} after {}",
            self.copies[0],
            age(self.checks[0]),
            self.copies[1],
            age(self.checks[1])
        )?;
        writeln!(
            f,
            "  full replica elsewhere before the publisher left: {}; first replica after {} (median)",
            pct(self.replica_before_leaving),
            secs(self.first_replica_median)
        )?;
        let [at_once, confirmed, timeout, never] = self.announced;
        writeln!(
            f,
            "  announced: {at_once} at once, {confirmed} after a confirmed replica, {timeout} at the time-out, \
             {never} never; {} replication requests",
            self.asks
        )?;
        let (mirror_fetches, evictions, failed) = self.policy;
        writeln!(
            f,
            "  watches {} started, {} completed; mirror fetches {mirror_fetches}, evictions {evictions}, \
             abandoned fetches {failed}",
            self.watches.0, self.watches.1,
        )?;
        let per_mirror = |bytes: u64| bytes as f64 / 1e9 / self.mirrors.max(1) as f64;
        writeln!(
            f,
            "  {:.1} GB moved; per mirror {:.2} GB received, {:.2} GB of it dropped as partial",
            self.bytes as f64 / 1e9,
            per_mirror(self.mirror_bytes.0),
            per_mirror(self.mirror_bytes.1)
        )
    }
}
