//! `kolokol-reconcile-bench`: reconciles two in-memory catalogs that differ by a few records and prints the
//! bytes exchanged and the time taken beside the size of sending the whole catalog's ids.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use kolokol_core::reconcile::{
    Initiator, InitiatorStatus, Item, ReconcileConfig, Responder, VecStorage,
};
use kolokol_core::record::RecordId;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Range-based reconciliation of two catalogs of `--records` records differing by each `--diff`.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Records in each catalog.
    #[arg(long, default_value_t = 100_000)]
    records: usize,
    /// Symmetric differences to measure (half unique to each side).
    #[arg(long, value_delimiter = ',', default_value = "10,1000,10000")]
    diff: Vec<usize>,
    /// Largest reconciliation message, bytes.
    #[arg(long, default_value_t = ReconcileConfig::default().frame_size_limit)]
    frame: usize,
    /// Runs per case (the median time is shown).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Seed of the catalogs.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// One year of seconds before this time.
const NOW: u64 = 1_750_000_000;
const YEAR: u64 = 365 * 86_400;

fn item(rng: &mut StdRng, recent: bool) -> Item {
    let mut id = [0u8; 32];
    rng.fill(&mut id);
    let age = if recent {
        rng.random_range(0..86_400)
    } else {
        rng.random_range(0..YEAR)
    };
    Item::new(NOW - age, RecordId(id))
}

struct Measured {
    bytes_up: u64,
    bytes_down: u64,
    rounds: u32,
    time: Duration,
    found: usize,
}

fn reconcile(a: &VecStorage, b: &VecStorage, config: &ReconcileConfig) -> anyhow::Result<Measured> {
    let started = Instant::now();
    let mut initiator = Initiator::new(config.clone())?;
    let mut responder = Responder::new(config.clone())?;
    let mut message = initiator.initiate(a)?;
    let mut found = 0;
    loop {
        let answer = responder.handle(b, &message)?;
        let step = initiator.handle(a, &answer)?;
        found += step.have.len() + step.need.len();
        match step.reply {
            Some(next) => message = next,
            None => break,
        }
    }
    let time = started.elapsed();
    anyhow::ensure!(
        initiator.status() == InitiatorStatus::Complete,
        "session ended {:?}",
        initiator.status()
    );
    Ok(Measured {
        bytes_up: initiator.bytes_sent(),
        bytes_down: initiator.bytes_received(),
        rounds: initiator.rounds(),
        time,
        found,
    })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = ReconcileConfig {
        frame_size_limit: args.frame,
        ..ReconcileConfig::default()
    };
    config.validate().context("reconcile parameters")?;
    let full_ids = args.records as u64 * 32;
    println!(
        "two catalogs of {} records each; frame limit {} bytes; sending one catalog's ids whole: {} bytes ({:.2} MB)",
        args.records,
        args.frame,
        full_ids,
        full_ids as f64 / 1e6
    );
    println!(
        "{:>8} {:>8} {:>12} {:>12} {:>12} {:>9} {:>7} {:>10} {:>11}",
        "diff", "where", "bytes up", "bytes down", "total", "of ids", "rounds", "time", "build"
    );
    for &diff in &args.diff {
        anyhow::ensure!(
            diff <= args.records,
            "difference {diff} above the catalog size"
        );
        for recent in [false, true] {
            let mut rng = StdRng::seed_from_u64(args.seed ^ diff as u64);
            let shared: Vec<Item> = (0..args.records - diff / 2)
                .map(|_| item(&mut rng, false))
                .collect();
            let only_a: Vec<Item> = (0..diff / 2).map(|_| item(&mut rng, recent)).collect();
            let only_b: Vec<Item> = (0..diff - diff / 2)
                .map(|_| item(&mut rng, recent))
                .collect();
            let build_started = Instant::now();
            let a = VecStorage::from_items(shared.iter().chain(&only_a).copied())?;
            let b = VecStorage::from_items(shared.iter().chain(&only_b).copied())?;
            let build = build_started.elapsed() / 2;
            let mut runs = Vec::new();
            for _ in 0..args.runs.max(1) {
                runs.push(reconcile(&a, &b, &config)?);
            }
            runs.sort_by_key(|m| m.time);
            let m = &runs[runs.len() / 2];
            anyhow::ensure!(
                m.found == diff,
                "found {} differences, expected {diff}",
                m.found
            );
            let total = m.bytes_up + m.bytes_down;
            println!(
                "{:>8} {:>8} {:>12} {:>12} {:>12} {:>8.1}% {:>7} {:>8.1}ms {:>9.1}ms",
                diff,
                if recent { "last day" } else { "anywhere" },
                m.bytes_up,
                m.bytes_down,
                total,
                100.0 * total as f64 / full_ids as f64,
                m.rounds,
                m.time.as_secs_f64() * 1e3,
                build.as_secs_f64() * 1e3,
            );
        }
    }
    println!(
        "bytes up: initiator to responder; of ids: total as a share of one catalog's ids sent whole;"
    );
    println!(
        "time: the whole session in one process (both sides, no network); build: sorting one catalog into storage."
    );
    Ok(())
}
