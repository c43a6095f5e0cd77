//! `kolokol-replication`: runs the replication scenario under every variant (push or not, mirrors or not) and
//! prints the share of publications still fully available after 1 hour and after 1 day.

use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use kolokol_sim::replication::{ReplicationConfig, Variant, run_replication, run_variants};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Which {
    /// All four variants.
    All,
    /// Push and mirrors (the full policy).
    Full,
    /// Mirrors, publishers announce at once.
    NoPush,
    /// Push, no mirrors.
    NoMirrors,
    /// Neither: publishers announce at once, no mirrors.
    Neither,
}

/// Deterministic simulation of kolokol's replication policy (publisher push, mirrors, viewer caches).
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Number of nodes.
    #[arg(long, default_value_t = 2000)]
    nodes: usize,
    /// Share of nodes that are mirrors.
    #[arg(long, default_value_t = 0.05)]
    mirror_share: f64,
    /// Share of ordinary nodes offline at any time.
    #[arg(long, default_value_t = 0.2)]
    churn: f64,
    /// Share of mirrors offline at any time.
    #[arg(long, default_value_t = 0.05)]
    mirror_churn: f64,
    /// Mean offline period in minutes.
    #[arg(long, default_value_t = 60)]
    mean_offline_mins: u64,
    /// Publications, published at random times within the window.
    #[arg(long, default_value_t = 200)]
    publications: usize,
    /// Publication window in minutes.
    #[arg(long, default_value_t = 120)]
    publish_window_mins: u64,
    /// Seconds a publisher stays online after publishing.
    #[arg(long, default_value_t = 60)]
    publisher_online_secs: u64,
    /// Largest publication in MB (sizes are log-uniform from 1 MB).
    #[arg(long, default_value_t = 150)]
    size_max_mb: u64,
    /// Upload rate of an ordinary node in kB/s.
    #[arg(long, default_value_t = 2000)]
    ordinary_up_kbs: u64,
    /// Mirror quota in MB.
    #[arg(long, default_value_t = 4000)]
    mirror_quota_mb: u64,
    /// Replicas a publisher asks for.
    #[arg(long, default_value_t = 3)]
    replicas: usize,
    /// Seconds after which a publisher announces without a confirmed replica.
    #[arg(long, default_value_t = 45)]
    announce_timeout_secs: u64,
    /// Which variants to run.
    #[arg(long, value_enum, default_value = "all")]
    variant: Which,
    /// Seed of the run.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Mirrors know every online full copy, as before replica claims had to be proven (the node now counts only
    /// holders it could check against its own copy).
    #[arg(long)]
    unproven_holders: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut config = ReplicationConfig {
        seed: args.seed,
        nodes: args.nodes,
        mirror_share: args.mirror_share,
        churn: args.churn,
        mirror_churn: args.mirror_churn,
        mean_offline: Duration::from_secs(args.mean_offline_mins * 60),
        publications: args.publications,
        publish_window: Duration::from_secs(args.publish_window_mins * 60),
        publisher_online: Duration::from_secs(args.publisher_online_secs),
        size_max: args.size_max_mb * 1_000_000,
        ordinary_up: args.ordinary_up_kbs * 1000,
        mirror_quota: args.mirror_quota_mb * 1_000_000,
        proven_holders: !args.unproven_holders,
        ..ReplicationConfig::default()
    };
    config.push.replicas_wanted = args.replicas;
    config.push.announce_timeout_secs = args.announce_timeout_secs;
    config.validate()?;
    println!("{config:#?}\n");
    let started = Instant::now();
    let single = match args.variant {
        Which::All => None,
        Which::Full => Some(0),
        Which::NoPush => Some(1),
        Which::NoMirrors => Some(2),
        Which::Neither => Some(3),
    };
    let reports = match single {
        Some(i) => vec![run_replication(ReplicationConfig {
            variant: Variant::ALL[i],
            ..config
        })?],
        None => run_variants(&config)?,
    };
    for report in &reports {
        println!("{report}");
    }
    println!(
        "({} runs, {:.1} s of wall time)",
        reports.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
