//! Rendezvous on a private 30-node DHT on loopback, and torrent peers through the same DHT.

// Helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::{eventually, init_tracing, private_network};
use kolokol_core::InfoHash;
use kolokol_discovery::{Rendezvous, RendezvousConfig};
use tokio::sync::mpsc;

const NODES: usize = 30;

fn fast(wire_port: u16) -> RendezvousConfig {
    RendezvousConfig {
        wire_port,
        announce: true,
        interval: Duration::from_secs(2),
        first_retry: Duration::from_millis(250),
        retry_interval: Duration::from_millis(500),
        jitter_percent: 20,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_nodes_with_one_bootstrap_address_find_each_other() {
    init_tracing();
    // Every node is given only the first node's address, and can never reach a public router.
    let (first, nodes) = private_network(NODES).await;
    let wire_port = |i: usize| 40_000 + i as u16;

    let (tx, mut rx) = mpsc::channel::<(usize, SocketAddr)>(1024);
    let mut tasks = Vec::new();
    for (i, dht) in nodes.iter().enumerate() {
        let mut rendezvous = Rendezvous::spawn(dht.clone(), fast(wire_port(i)));
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(addr) = rendezvous.next().await {
                if tx.send((i, addr)).await.is_err() {
                    break;
                }
            }
        }));
    }
    drop(tx);

    let everyone: BTreeSet<SocketAddr> = (0..NODES)
        .map(|i| SocketAddr::from((Ipv4Addr::LOCALHOST, wire_port(i))))
        .collect();
    let mut found: BTreeMap<usize, BTreeSet<SocketAddr>> = BTreeMap::new();
    let complete = |found: &BTreeMap<usize, BTreeSet<SocketAddr>>| {
        (0..NODES).all(|i| found.get(&i).is_some_and(|f| f.len() == NODES - 1))
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(150);
    while !complete(&found) && tokio::time::Instant::now() < deadline {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((i, addr))) => {
                assert!(
                    everyone.contains(&addr),
                    "node {i} found {addr}, which is not a kolokol node"
                );
                assert_ne!(
                    addr,
                    SocketAddr::from((Ipv4Addr::LOCALHOST, wire_port(i))),
                    "node {i} was handed its own announcement"
                );
                found.entry(i).or_default().insert(addr);
            }
            _ => break,
        }
    }
    let incomplete: Vec<(usize, usize)> = (0..NODES)
        .map(|i| (i, found.get(&i).map_or(0, |f| f.len())))
        .filter(|(_, n)| *n < NODES - 1)
        .collect();
    assert!(
        incomplete.is_empty(),
        "nodes that did not find all {} others (node, found): {incomplete:?}",
        NODES - 1
    );

    for task in tasks {
        task.abort();
    }
    // The routing tables filled from the single bootstrap address.
    for dht in &nodes {
        assert!(dht.status().await.routing_table_size >= 8);
    }
    assert!(first.status().await.routing_table_size >= 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torrent_peers_are_found_through_the_dht() {
    init_tracing();
    let (_first, nodes) = private_network(8).await;
    let infohash = InfoHash([0x5a; 20]);
    nodes[1].announce_peer(infohash, 6999).await.unwrap();
    nodes[2].announce_peer(infohash, 7001).await.unwrap();
    let want: BTreeSet<SocketAddr> = [6999, 7001]
        .into_iter()
        .map(|p| SocketAddr::from((Ipv4Addr::LOCALHOST, p)))
        .collect();
    let searcher = nodes[7].clone();
    let found = eventually(Duration::from_secs(30), || {
        let searcher = searcher.clone();
        let want = want.clone();
        async move {
            let peers = searcher.get_peers(infohash).await;
            // Deduplicated: each peer once, however many DHT nodes returned it.
            let unique: BTreeSet<SocketAddr> = peers.iter().copied().collect();
            assert_eq!(unique.len(), peers.len());
            unique == want
        }
    })
    .await;
    assert!(
        found,
        "get_peers did not return exactly the two announced peers"
    );
    assert!(nodes[3].get_peers(InfoHash([0x11; 20])).await.is_empty());
}

/// A node that must not be listed (a bridge's) runs the rendezvous without announcing: it finds the others, and
/// no lookup ever returns it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rendezvous_without_announce_finds_others_and_is_never_found() {
    init_tracing();
    let (_first, nodes) = private_network(6).await;
    let wire_port = |i: usize| 41_000 + i as u16;
    let hidden = 0;
    let (tx, mut rx) = mpsc::channel::<(usize, SocketAddr)>(1024);
    let mut tasks = Vec::new();
    for (i, dht) in nodes.iter().enumerate() {
        let mut config = fast(wire_port(i));
        config.announce = i != hidden;
        let mut rendezvous = Rendezvous::spawn(dht.clone(), config);
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(addr) = rendezvous.next().await {
                if tx.send((i, addr)).await.is_err() {
                    break;
                }
            }
        }));
    }
    drop(tx);
    let hidden_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, wire_port(hidden)));
    let mut found: BTreeMap<usize, BTreeSet<SocketAddr>> = BTreeMap::new();
    // Until the hidden node has found every other node, and each other node has found all the announcing ones:
    // by then the others have run several rounds in which the hidden node could have been returned.
    let done = |found: &BTreeMap<usize, BTreeSet<SocketAddr>>| {
        (0..nodes.len()).all(|i| {
            let want = if i == hidden {
                nodes.len() - 1
            } else {
                nodes.len() - 2
            };
            found.get(&i).is_some_and(|f| f.len() >= want)
        })
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while !done(&found) && tokio::time::Instant::now() < deadline {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((i, addr))) => {
                assert_ne!(
                    addr, hidden_addr,
                    "node {i} found the node that never announces"
                );
                found.entry(i).or_default().insert(addr);
            }
            _ => break,
        }
    }
    assert!(done(&found), "lookups did not complete: {found:?}");
    for task in tasks {
        task.abort();
    }
}
