//! `kolokol-anonymity`: how well can spies find who published? Today's publisher push beside the Dandelion++
//! stem (core's `stem` machine on every node), at several spy shares, with the Dandelion++ paper's estimators
//! and bounds. Prints a Markdown table.

use std::time::{Duration, Instant};

use clap::Parser;
use kolokol_sim::anonymity::{AnonConfig, Design, run_cell, table};

/// Deterministic simulation of publisher anonymity (issue 12, part 2).
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Number of nodes.
    #[arg(long, default_value_t = 2000)]
    nodes: usize,
    /// Shares of nodes that are spies, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0.05,0.1,0.2")]
    spies: Vec<f64>,
    /// Trials per cell (each: every online honest node publishes once).
    #[arg(long, default_value_t = 4)]
    trials: usize,
    /// Chance in thousandths that a node is a diffuser for an epoch (q).
    #[arg(long, default_value_t = AnonConfig::default().stem.diffuse_per_mille)]
    diffuse_per_mille: u16,
    /// Fraction of nodes offline at any moment.
    #[arg(long, default_value_t = 0.2)]
    churn: f64,
    /// Mean offline period in seconds.
    #[arg(long, default_value_t = 120)]
    mean_offline_secs: u64,
    /// Largest publication in MB (sizes are log-uniform from 1 MB).
    #[arg(long, default_value_t = 150)]
    size_max_mb: u64,
    /// Upload rate of a node in kB/s.
    #[arg(long, default_value_t = 2000)]
    upload_kbs: u64,
    /// Spies swallow the stems they receive instead of passing them on.
    #[arg(long)]
    spies_swallow_stems: bool,
    /// Seed of the first trial.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut config = AnonConfig {
        seed: args.seed,
        nodes: args.nodes,
        churn: args.churn,
        mean_offline: Duration::from_secs(args.mean_offline_secs),
        size_max: args.size_max_mb * 1_000_000,
        upload: args.upload_kbs * 1000,
        spies_swallow_stems: args.spies_swallow_stems,
        ..AnonConfig::default()
    };
    config.stem.diffuse_per_mille = args.diffuse_per_mille;
    config.stem.validate()?;
    println!("{config:#?}");
    let started = Instant::now();
    let mut cells = Vec::new();
    for &share in &args.spies {
        for design in [Design::Push, Design::Stem] {
            let cell = run_cell(&config, design, share, args.trials)?;
            eprintln!(
                "{:.0}% spies, {design}: {} publications, {:.1} s so far",
                share * 100.0,
                cell.publications,
                started.elapsed().as_secs_f64()
            );
            cells.push(cell);
        }
    }
    print!("{}", table(&cells));
    println!("({:.1} s of wall time)", started.elapsed().as_secs_f64());
    Ok(())
}
