//! Discovery benchmark on a private loopback DHT: how long a new node takes to find its first kolokol peer
//! through the rendezvous, and how long one DHT lookup takes.
//!
//! ```text
//! kolokol-discovery-bench [--nodes 30] [--request-timeout-ms 300] [--lookups 50]
//! ```
//!
//! One node with no bootstrap list starts the network; `--nodes` nodes then start at the same moment, each given
//! only that node's address (and never the public routers), each announcing and looking up the rendezvous.
//! Everything binds to 127.0.0.1. Prints the median and 95th percentile of start-to-first-peer and the median
//! and 95th percentile of `get_peers` lookups on the settled network.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use kolokol_discovery::{Dht, DhtConfig, Rendezvous, RendezvousConfig, ServerMode};

const NETWORK: &str = "kolokol-bench";

struct Options {
    nodes: usize,
    request_timeout: Duration,
    lookups: usize,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        nodes: 30,
        request_timeout: Duration::from_millis(300),
        lookups: 50,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = |name: &str| -> Result<u64, String> {
            args.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} needs a number"))
        };
        match flag.as_str() {
            "--nodes" => options.nodes = value("--nodes")?.clamp(2, 200) as usize,
            "--request-timeout-ms" => {
                options.request_timeout =
                    Duration::from_millis(value("--request-timeout-ms")?.clamp(50, 5000));
            }
            "--lookups" => options.lookups = value("--lookups")?.clamp(1, 1000) as usize,
            "-h" | "--help" => {
                return Err("usage: kolokol-discovery-bench [--nodes 30] [--request-timeout-ms 300] [--lookups 50]"
                    .to_owned());
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(options)
}

fn config(bootstrap: Option<SocketAddrV4>, request_timeout: Duration) -> DhtConfig {
    DhtConfig {
        network: NETWORK.to_owned(),
        bind: SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0),
        bootstrap: bootstrap.iter().map(|a| a.to_string()).collect(),
        no_default_bootstrap: true,
        state_file: None,
        server_mode: ServerMode::Auto, // a private network: every node answers from the start
        request_timeout,
    }
}

/// The value at `fraction` (0..=1) of sorted `values` (nearest rank).
fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = parse_options()?;
    let first = Dht::start(config(None, options.request_timeout)).await?;
    let boot = first.local_addr();
    println!(
        "{} nodes on 127.0.0.1, one bootstrap address ({boot}), request timeout {}",
        options.nodes,
        ms(options.request_timeout)
    );

    // All nodes start at once; each measures from its own start to its first rendezvous peer.
    let mut starts = Vec::new();
    for i in 0..options.nodes {
        let cfg = config(Some(boot), options.request_timeout);
        starts.push(tokio::spawn(async move {
            let started = Instant::now();
            let dht = Dht::start(cfg).await?;
            let rendezvous_config = RendezvousConfig {
                interval: Duration::from_secs(5),
                retry_interval: Duration::from_millis(500),
                ..RendezvousConfig::new(40_000 + i as u16)
            };
            let mut rendezvous = Rendezvous::spawn(dht.clone(), rendezvous_config);
            let first_peer = tokio::time::timeout(Duration::from_secs(120), rendezvous.next())
                .await
                .ok()
                .flatten()
                .map(|_| started.elapsed());
            Ok::<_, kolokol_discovery::DhtError>((dht, rendezvous, first_peer))
        }));
    }
    let mut nodes = Vec::new();
    let mut first_peer_times = Vec::new();
    let mut missing = 0;
    for start in starts {
        let (dht, rendezvous, first_peer) = start.await??;
        match first_peer {
            Some(t) => first_peer_times.push(t),
            None => missing += 1,
        }
        nodes.push((dht, rendezvous));
    }
    first_peer_times.sort();
    println!(
        "start to first kolokol peer (rendezvous): median {}, p95 {}, max {}{}",
        ms(percentile(&first_peer_times, 0.5)),
        ms(percentile(&first_peer_times, 0.95)),
        ms(percentile(&first_peer_times, 1.0)),
        if missing > 0 {
            format!(", {missing} nodes found none within 120 s")
        } else {
            String::new()
        }
    );

    // Lookups on the settled network, from nodes in turn.
    let infohash = kolokol_core::InfoHash::rendezvous(NETWORK);
    let mut lookup_times = Vec::with_capacity(options.lookups);
    let mut found_counts = Vec::with_capacity(options.lookups);
    for i in 0..options.lookups {
        let (dht, _) = &nodes[i % nodes.len()];
        let started = Instant::now();
        let peers = dht.get_peers(infohash).await;
        lookup_times.push(started.elapsed());
        found_counts.push(peers.len());
    }
    lookup_times.sort();
    found_counts.sort();
    println!(
        "DHT lookup (get_peers on the rendezvous): median {}, p95 {} over {} lookups; median peers per lookup {} of {}",
        ms(percentile(&lookup_times, 0.5)),
        ms(percentile(&lookup_times, 0.95)),
        options.lookups,
        found_counts
            .get(found_counts.len() / 2)
            .copied()
            .unwrap_or(0),
        options.nodes
    );
    let sizes: Vec<usize> = {
        let mut v = Vec::new();
        for (dht, _) in &nodes {
            v.push(dht.status().await.routing_table_size);
        }
        v.sort();
        v
    };
    println!(
        "routing table size: min {}, median {}, max {}",
        sizes.first().copied().unwrap_or(0),
        sizes.get(sizes.len() / 2).copied().unwrap_or(0),
        sizes.last().copied().unwrap_or(0)
    );
    for (_, rendezvous) in nodes {
        rendezvous.stop().await;
    }
    Ok(())
}
