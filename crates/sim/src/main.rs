//! `kolokol-sim`: runs the simulator scenarios and prints their figures.

use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use kolokol_core::policy::PolicyConfig;
use kolokol_sim::{PartitionScenario, ReachScenario, SimConfig, run_partition, run_reach};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Scenario {
    /// New records spreading through a churning network.
    Reach,
    /// Two halves cut off, each publishing, then healed.
    Partition,
    /// Both.
    All,
}

/// Deterministic simulation of kolokol catalog propagation (the record policy plus periodic reconciliation).
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Which scenario to run.
    #[arg(long, value_enum, default_value = "all")]
    scenario: Scenario,
    /// Number of nodes.
    #[arg(long, default_value_t = 2000)]
    nodes: usize,
    /// Target connections per node.
    #[arg(long, default_value_t = 8)]
    degree: usize,
    /// Fraction of nodes offline at any moment.
    #[arg(long, default_value_t = 0.2)]
    churn: f64,
    /// Mean offline period in seconds.
    #[arg(long, default_value_t = 120)]
    mean_offline_secs: u64,
    /// Smallest one-way link latency, ms.
    #[arg(long, default_value_t = 50)]
    latency_min_ms: u64,
    /// Largest one-way link latency, ms.
    #[arg(long, default_value_t = 200)]
    latency_max_ms: u64,
    /// Probability that a message needs a resend.
    #[arg(long, default_value_t = 0.01)]
    loss: f64,
    /// Link bandwidth in bytes per second, each direction.
    #[arg(long, default_value_t = 1_000_000)]
    bandwidth: u64,
    /// Records every node holds at the start.
    #[arg(long, default_value_t = 1000)]
    initial_records: usize,
    /// Size of a record in bytes.
    #[arg(long, default_value_t = 1500)]
    record_bytes: u32,
    /// Peers that get a received record whole (a published one goes whole to the whole fan-out).
    #[arg(long, default_value_t = PolicyConfig::default().eager_fanout)]
    eager_fanout: usize,
    /// Further peers that get its id.
    #[arg(long, default_value_t = PolicyConfig::default().announce_fanout)]
    announce_fanout: usize,
    /// Mean seconds between periodic reconciliations of a node.
    #[arg(long, default_value_t = 30)]
    reconcile_secs: u64,
    /// Mean seconds between outbound connection replacements.
    #[arg(long, default_value_t = 300)]
    rotate_secs: u64,
    /// Spamming nodes.
    #[arg(long, default_value_t = 0)]
    spammers: usize,
    /// Records per minute per spamming node.
    #[arg(long, default_value_t = 60)]
    spam_per_minute: u32,
    /// Per-author limit (records per hour) whose effect on spam is counted.
    #[arg(long, default_value_t = 60)]
    rate_limit: u32,
    /// Records each half publishes in the partition scenario.
    #[arg(long, default_value_t = 500)]
    per_half: usize,
    /// Seed of the run.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut config = SimConfig {
        seed: args.seed,
        nodes: args.nodes,
        degree: args.degree,
        churn: args.churn,
        mean_offline: Duration::from_secs(args.mean_offline_secs),
        latency_min: Duration::from_millis(args.latency_min_ms),
        latency_max: Duration::from_millis(args.latency_max_ms),
        loss: args.loss,
        bandwidth: args.bandwidth,
        initial_records: args.initial_records,
        record_bytes: args.record_bytes,
        rotate_interval: Duration::from_secs(args.rotate_secs),
        spammers: args.spammers,
        spam_per_minute: args.spam_per_minute,
        rate_limit_per_hour: args.rate_limit,
        ..SimConfig::default()
    };
    config.policy.eager_fanout = args.eager_fanout;
    config.policy.announce_fanout = args.announce_fanout;
    config.policy.reconcile_interval = Duration::from_secs(args.reconcile_secs);
    println!("{config:#?}");

    if matches!(args.scenario, Scenario::Reach | Scenario::All) {
        let started = Instant::now();
        let (world, report) = run_reach(config.clone(), &ReachScenario::default())?;
        print!("{report}");
        println!(
            "  ({} messages, {:.1} s of wall time)\n",
            world.metrics.messages,
            started.elapsed().as_secs_f64()
        );
    }
    if matches!(args.scenario, Scenario::Partition | Scenario::All) {
        let started = Instant::now();
        let scenario = PartitionScenario {
            per_half: args.per_half,
            ..PartitionScenario::default()
        };
        let (world, report) = run_partition(config, &scenario)?;
        print!("{report}");
        println!(
            "  ({} messages, {:.1} s of wall time)",
            world.metrics.messages,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
