//! The scenarios: a record spreading through a churning network, and two halves of a partition converging
//! after it heals. Each returns a report of measured figures.

use std::fmt;
use std::time::Duration;

use rand::Rng;

use crate::config::SimConfig;
use crate::metrics::{quantile, secs};
use crate::node::{Traffic, TrafficCounters};
use crate::records::RecordKind;
use crate::world::World;

/// Timing of the reach scenario.
#[derive(Clone, Debug)]
pub struct ReachScenario {
    /// Time before the first probe, for the overlay to form: 120 s.
    pub warmup: Duration,
    /// Records published to measure spread: 20.
    pub probes: usize,
    /// Time between two probes: 15 s.
    pub probe_interval: Duration,
    /// Time the run goes on after the last probe: 300 s.
    pub tail: Duration,
}

impl Default for ReachScenario {
    fn default() -> Self {
        ReachScenario {
            warmup: Duration::from_secs(120),
            probes: 20,
            probe_interval: Duration::from_secs(15),
            tail: Duration::from_secs(300),
        }
    }
}

/// Figures of a reach run.
#[derive(Clone, Debug)]
pub struct ReachReport {
    /// Nodes in the network.
    pub nodes: usize,
    /// Mean number of nodes online at the probes' publication.
    pub online_at_publish: f64,
    /// Mean cohort size (online at publication and not leaving before receiving).
    pub cohort: f64,
    /// Per probe: times to 50%, 99% and 100% of its cohort.
    pub probe_times: Vec<[Option<Duration>; 3]>,
    /// Push, announce and request bytes attributed to the probes, per online node per probe.
    pub gossip_bytes_per_node_per_record: f64,
    /// All bytes sent during the probe phase, per online node per probe (includes background reconciliation,
    /// churn handshakes, catch-up of returning nodes).
    pub all_bytes_per_node_per_record: f64,
    /// Bytes per online node per minute in a quiet minute before the probes (reconciliation that finds
    /// nothing, rotations).
    pub idle_bytes_per_node_per_minute: f64,
    /// Traffic of the probe phase by kind.
    pub phase_traffic: TrafficCounters,
    /// Reconciliation sessions started, completed, failed; median and max rounds.
    pub sessions: (u64, u64, u64, u32, u32),
    /// Catch-ups of returning nodes: completed, abandoned, median, p99 and max time.
    pub catchups: (
        usize,
        u32,
        Option<Duration>,
        Option<Duration>,
        Option<Duration>,
    ),
    /// Whole records received twice.
    pub duplicate_records: u64,
    /// Spam: records published, how many a per-author limit would refuse, spam bytes per node.
    pub spam: Option<SpamReport>,
}

/// What spam cost.
#[derive(Clone, Debug)]
pub struct SpamReport {
    /// Records the spamming nodes published.
    pub published: usize,
    /// Of those, how many exceed the per-author limit (counted by publication time over a sliding hour).
    pub over_limit: usize,
    /// The limit used.
    pub limit_per_hour: u32,
    /// Push, announce and request bytes of spam records, per node.
    pub bytes_per_node: f64,
}

/// Runs the reach scenario.
pub fn run_reach(
    config: SimConfig,
    scenario: &ReachScenario,
) -> anyhow::Result<(World, ReachReport)> {
    let mut world = World::new(config)?;
    world.start();
    let quiet_start = scenario.warmup.saturating_sub(Duration::from_secs(60));
    world.run_until(quiet_start);
    let before_quiet = world.metrics.traffic;
    let online_quiet = world.online_count();
    world.run_until(scenario.warmup);
    let quiet = world.metrics.traffic.since(&before_quiet);
    let quiet_minutes = (scenario.warmup - quiet_start).as_secs_f64() / 60.0;

    let phase_start = world.metrics.traffic;
    let mut online_sum = 0usize;
    let mut t = scenario.warmup;
    let honest: Vec<u32> = (world.config.spammers as u32..world.nodes.len() as u32).collect();
    anyhow::ensure!(!honest.is_empty(), "every node is a spammer");
    for _ in 0..scenario.probes {
        world.run_until(t);
        online_sum += world.online_count();
        let author = honest[world.rng.random_range(0..honest.len())];
        world.publish_at(t, author, RecordKind::Probe);
        t += scenario.probe_interval;
    }
    let end = t + scenario.tail;
    world.run_until(end);
    let phase = world.metrics.traffic.since(&phase_start);

    let probes = world.metrics.probes.len().max(1) as f64;
    let online = online_sum as f64 / scenario.probes.max(1) as f64;
    let probe_bytes: u64 = world
        .metrics
        .probes
        .iter()
        .map(|p| world.records.gossip_bytes[p.record as usize])
        .sum();
    let mut rounds = world.metrics.session_rounds.clone();
    rounds.sort_unstable();
    let mut catchup_times: Vec<Duration> = world
        .metrics
        .catchups_done
        .iter()
        .map(|(_, d)| *d)
        .collect();
    catchup_times.sort();
    let spam = (world.config.spammers > 0).then(|| spam_report(&world));
    let report = ReachReport {
        nodes: world.nodes.len(),
        online_at_publish: online,
        cohort: world
            .metrics
            .probes
            .iter()
            .map(|p| p.cohort_size())
            .sum::<usize>() as f64
            / probes,
        probe_times: world
            .metrics
            .probes
            .iter()
            .map(|p| [p.time_to(0.5), p.time_to(0.99), p.time_to(1.0)])
            .collect(),
        gossip_bytes_per_node_per_record: probe_bytes as f64 / online / probes,
        all_bytes_per_node_per_record: phase.total() as f64 / online / probes,
        idle_bytes_per_node_per_minute: quiet.total() as f64
            / online_quiet.max(1) as f64
            / quiet_minutes,
        phase_traffic: phase,
        sessions: (
            world.metrics.sessions_started,
            world.metrics.sessions_completed,
            world.metrics.session_errors,
            rounds.get(rounds.len() / 2).copied().unwrap_or(0),
            rounds.last().copied().unwrap_or(0),
        ),
        catchups: (
            catchup_times.len(),
            world.metrics.catchups_abandoned,
            quantile(&catchup_times, 0.5),
            quantile(&catchup_times, 0.99),
            catchup_times.last().copied(),
        ),
        duplicate_records: world.metrics.duplicate_records,
        spam,
    };
    Ok((world, report))
}

fn spam_report(world: &World) -> SpamReport {
    let limit = world.config.rate_limit_per_hour as usize;
    let mut by_author: std::collections::BTreeMap<u32, Vec<Duration>> = Default::default();
    let mut bytes = 0u64;
    for (index, record) in world.records.iter().enumerate() {
        if record.kind == RecordKind::Spam {
            by_author
                .entry(record.author)
                .or_default()
                .push(record.published_at);
            bytes += world.records.gossip_bytes[index];
        }
    }
    let mut over = 0;
    for times in by_author.values() {
        // Times are in publication order. A record is over the limit when `limit` earlier ones of the same
        // author fall within the hour before it.
        let mut start = 0;
        for (i, t) in times.iter().enumerate() {
            while times[start] + Duration::from_secs(3600) <= *t {
                start += 1;
            }
            if i - start >= limit {
                over += 1;
            }
        }
    }
    SpamReport {
        published: by_author.values().map(Vec::len).sum(),
        over_limit: over,
        limit_per_hour: world.config.rate_limit_per_hour,
        bytes_per_node: bytes as f64 / world.nodes.len() as f64,
    }
}

fn median_and_worst(values: impl Iterator<Item = Option<Duration>>) -> (String, String) {
    let mut all: Vec<Option<Duration>> = values.collect();
    all.sort_by_key(|t| t.unwrap_or(Duration::MAX));
    if all.is_empty() {
        return ("-".into(), "-".into());
    }
    (secs(all[(all.len() - 1) / 2]), secs(all[all.len() - 1]))
}

impl fmt::Display for ReachReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "reach of a new record ({} nodes)", self.nodes)?;
        writeln!(
            f,
            "  online at publication: {:.0} nodes on average; measured cohort {:.0} (online at publication, not leaving before receiving)",
            self.online_at_publish, self.cohort
        )?;
        for (label, i) in [("50%", 0), ("99%", 1), ("100%", 2)] {
            let (median, worst) = median_and_worst(self.probe_times.iter().map(|t| t[i]));
            writeln!(
                f,
                "  time to {label:>4} of online nodes: median {median}, worst {worst} (over {} records)",
                self.probe_times.len()
            )?;
        }
        writeln!(
            f,
            "  bytes sent per node per new record: {:.0} (push, announce, request of that record); {:.0} counting all traffic of the phase",
            self.gossip_bytes_per_node_per_record, self.all_bytes_per_node_per_record
        )?;
        writeln!(
            f,
            "  background with nothing new: {:.0} bytes per node per minute",
            self.idle_bytes_per_node_per_minute
        )?;
        write!(f, "  phase traffic:")?;
        for kind in Traffic::ALL {
            write!(
                f,
                " {} {:.1} MB;",
                kind.label(),
                self.phase_traffic.get(kind) as f64 / 1e6
            )?;
        }
        writeln!(f)?;
        let (started, completed, errors, median, max) = self.sessions;
        writeln!(
            f,
            "  reconciliations: {started} started, {completed} completed, {errors} failed; rounds median {median}, max {max}"
        )?;
        let (done, abandoned, median, p99, max) = self.catchups;
        writeln!(
            f,
            "  returning nodes caught up: {done} (median {}, p99 {}, max {}); {abandoned} went offline again first",
            secs(median),
            secs(p99),
            secs(max)
        )?;
        writeln!(
            f,
            "  whole records received twice: {}",
            self.duplicate_records
        )?;
        if let Some(spam) = &self.spam {
            writeln!(
                f,
                "  spam: {} records published; a limit of {}/hour per author would refuse {}; spam cost {:.0} bytes per node",
                spam.published, spam.limit_per_hour, spam.over_limit, spam.bytes_per_node
            )?;
        }
        Ok(())
    }
}

/// Timing of the partition scenario.
#[derive(Clone, Debug)]
pub struct PartitionScenario {
    /// Time before the partition: 120 s.
    pub warmup: Duration,
    /// Records each half publishes while cut off: 500.
    pub per_half: usize,
    /// Time over which they are published, from 10 s after the cut: 60 s.
    pub publish_over: Duration,
    /// Time from the cut to the heal: 180 s.
    pub cut_for: Duration,
    /// Time observed after the heal: 900 s.
    pub observe: Duration,
}

impl Default for PartitionScenario {
    fn default() -> Self {
        PartitionScenario {
            warmup: Duration::from_secs(120),
            per_half: 500,
            publish_over: Duration::from_secs(60),
            cut_for: Duration::from_secs(180),
            observe: Duration::from_secs(900),
        }
    }
}

/// Figures of a partition run.
#[derive(Clone, Debug)]
pub struct PartitionReport {
    /// Nodes in the network.
    pub nodes: usize,
    /// Records published in the two halves.
    pub published: u32,
    /// Nodes online at the heal that did not go offline before holding every record.
    pub cohort: usize,
    /// Nodes online at the heal.
    pub online_at_heal: usize,
    /// Times from the heal until 50%, 99% and 100% of them held every record of both halves.
    pub times: [Option<Duration>; 3],
    /// Bytes sent from the heal to the end, per node online at the heal, by kind.
    pub traffic: TrafficCounters,
}

/// Runs the partition scenario.
pub fn run_partition(
    config: SimConfig,
    scenario: &PartitionScenario,
) -> anyhow::Result<(World, PartitionReport)> {
    let mut world = World::new(config)?;
    world.start();
    world.run_until(scenario.warmup);
    world.track_partition();
    world.partition();
    let first = scenario.warmup + Duration::from_secs(10);
    let nodes = world.nodes.len() as u32;
    for half in 0..2u8 {
        for _ in 0..scenario.per_half {
            let at = first + scenario.publish_over.mul_f64(world.rng.random::<f64>());
            // Node `n` is in half `n % 2`.
            let node = (world.rng.random_range(0..nodes / 2) * 2 + u32::from(half)).min(nodes - 1);
            world.publish_at(at, node, RecordKind::Partition(half));
        }
    }
    let heal_at = scenario.warmup + scenario.cut_for;
    world.run_until(heal_at);
    world.heal_and_track();
    let online_at_heal = world.online_count();
    let before = world.metrics.traffic;
    world.run_until(heal_at + scenario.observe);
    let traffic = world.metrics.traffic.since(&before);
    let track = world.metrics.partition.clone().unwrap_or_default();
    let cohort = track.cohort.iter().filter(|s| **s).count();
    let per_node = |bytes: u64| bytes / online_at_heal.max(1) as u64;
    let report = PartitionReport {
        nodes: world.nodes.len(),
        published: track.total,
        cohort,
        online_at_heal,
        times: [track.time_to(0.5), track.time_to(0.99), track.time_to(1.0)],
        traffic: TrafficCounters(traffic.0.map(per_node)),
    };
    Ok((world, report))
}

impl fmt::Display for PartitionReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "partition: two halves of {} nodes published {} records while cut off, then healed",
            self.nodes, self.published
        )?;
        writeln!(
            f,
            "  timed: {} of the {} nodes online at the heal (those that went offline before holding everything are left out)",
            self.cohort, self.online_at_heal
        )?;
        for (label, t) in ["50%", "99%", "100%"].iter().zip(self.times) {
            writeln!(
                f,
                "  time from heal until {label:>4} of them hold all records: {}",
                secs(t)
            )?;
        }
        write!(
            f,
            "  bytes sent per node online at the heal, from the heal to the end of the run (churn catch-up included): {:.2} MB (",
            self.traffic.total() as f64 / 1e6
        )?;
        for kind in Traffic::ALL {
            write!(
                f,
                "{} {:.2} MB; ",
                kind.label(),
                self.traffic.get(kind) as f64 / 1e6
            )?;
        }
        writeln!(f, ")")
    }
}
