//! `kolokol-bench discovery`: how long a private network takes to form on default settings.
//!
//! One bootstrap node starts first; then N nodes start all at once (the hard case: when their first lookups run,
//! nobody has announced yet), each given only the bootstrap node's DHT address. Every node runs `kolokol up` with
//! the defaults and only `--network`, `--no-default-bootstrap`, `--no-lan` and `--bootstrap` (plus 127.0.0.1
//! listen addresses): no DHT, time-out or rendezvous tuning. Each node is timed from the moment its process is
//! spawned to the first `/status` poll (every 100 ms) that shows a connected kolokol peer. Prints the median and
//! the maximum over the N nodes, and the bootstrap node's own time (it started first, so its time includes the
//! others' start-up).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};

use crate::node::Node;

#[derive(clap::Args, Debug)]
pub struct DiscoveryArgs {
    /// Nodes started together after the bootstrap node.
    #[arg(long, default_value_t = 30)]
    nodes: usize,
    /// The kolokol binary (build it first: `cargo build --release -p kolokol`).
    #[arg(long, default_value = "target/release/kolokol")]
    kolokol: PathBuf,
    /// Give up on a node that has met no peer after this many seconds.
    #[arg(long, default_value_t = 120)]
    give_up_secs: u64,
}

const NETWORK: &str = "bench-discovery";
const POLL: Duration = Duration::from_millis(100);

pub async fn run(args: &DiscoveryArgs, root: &Path) -> Result<()> {
    ensure!(
        args.kolokol.is_file(),
        "no kolokol binary at {} (cargo build --release -p kolokol, or give --kolokol)",
        args.kolokol.display()
    );
    ensure!(args.nodes > 0, "--nodes must be at least 1");
    println!(
        "kolokol-bench discovery: 1 bootstrap node + {} nodes started together, default flags; temp folder {}",
        args.nodes,
        root.display()
    );
    let give_up = Duration::from_secs(args.give_up_secs);
    let private = ["--network", NETWORK, "--no-default-bootstrap", "--no-lan"];

    let boot_started = Instant::now();
    let boot = Arc::new(Node::start_with(
        &args.kolokol,
        &root.join("boot"),
        &private,
    )?);
    let boot_dht = boot.get_json("/status").await?["dht_addr"]
        .as_str()
        .context("status has no dht_addr")?
        .to_owned();
    let boot_timer = tokio::spawn(first_peer(boot.clone(), boot_started, give_up));

    let mut starts = Vec::new();
    for i in 1..=args.nodes {
        let kolokol = args.kolokol.clone();
        let dir = root.join(format!("n{i}"));
        let mut flags: Vec<String> = private.iter().map(|f| (*f).to_owned()).collect();
        flags.extend(["--bootstrap".to_owned(), boot_dht.clone()]);
        starts.push(tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
            Node::start_with(&kolokol, &dir, &flags).map(|node| (Arc::new(node), started))
        }));
    }
    let mut timers = Vec::new();
    for start in starts {
        let (node, started) = start.await.context("start task")??;
        timers.push(tokio::spawn(first_peer(node, started, give_up)));
    }
    let mut times = Vec::new();
    let mut missing = 0;
    for timer in timers {
        match timer.await.context("timer task")?? {
            Some(t) => times.push(t),
            None => missing += 1,
        }
    }
    let boot_time = boot_timer.await.context("timer task")??;
    times.sort();

    println!("\n===== discovery ({}) =====", crate::all::machine());
    println!(
        "start to first kolokol peer, {} nodes: median {}, max {}{}",
        args.nodes,
        secs(median(&times)),
        secs(times.last().copied()),
        if missing > 0 {
            format!(
                "; {missing} of {} met nobody within {give_up:?}",
                args.nodes
            )
        } else {
            format!("; {} of {} met a peer", times.len(), args.nodes)
        }
    );
    match boot_time {
        Some(t) => println!("bootstrap node (started first): {}", secs(Some(t))),
        None => println!("bootstrap node (started first): met nobody within {give_up:?}"),
    }
    Ok(())
}

/// Time from `started` to the first poll of `/status` that shows a connected kolokol peer; `None` after `give_up`.
async fn first_peer(
    node: Arc<Node>,
    started: Instant,
    give_up: Duration,
) -> Result<Option<Duration>> {
    loop {
        let status = node.get_json("/status").await?;
        if status["peers_connected"].as_u64().unwrap_or(0) > 0 {
            return Ok(Some(started.elapsed()));
        }
        if started.elapsed() > give_up {
            return Ok(None);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The middle of sorted `times` (the mean of the two middle ones for an even count).
fn median(times: &[Duration]) -> Option<Duration> {
    let n = times.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(times[n / 2]),
        _ => Some((times[n / 2 - 1] + times[n / 2]) / 2),
    }
}

fn secs(t: Option<Duration>) -> String {
    t.map_or("-".to_owned(), |t| format!("{:.2} s", t.as_secs_f64()))
}
