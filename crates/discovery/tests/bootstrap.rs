//! Saved state and bootstrap policy: a restarted node finds its way back from its saved routing table alone,
//! and a node with `no_default_bootstrap` sends nothing to addresses it was not given.

// Helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use common::{NETWORK, eventually, init_tracing, private_config, private_network};
use kolokol_discovery::{Dht, DhtState};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_reconnects_from_its_saved_state_alone() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let state_file = dir.path().join("dht-state");
    let (first, nodes) = private_network(6).await;
    for (i, node) in nodes.iter().enumerate() {
        node.announce_rendezvous(41_000 + i as u16).await.unwrap();
    }

    let node = Dht::start(private_config(
        &[first.local_addr()],
        Some(state_file.clone()),
    ))
    .await
    .unwrap();
    let filled = eventually(Duration::from_secs(30), || {
        let node = node.clone();
        async move {
            // A lookup populates the table beyond the bootstrap node.
            let _ = node.find_rendezvous(1).await;
            node.status().await.routing_table_size >= 4
        }
    })
    .await;
    assert!(filled, "routing table did not fill");
    let saved = node.save_state().await.unwrap();
    assert!(saved >= 4);
    let port = node.local_addr();
    drop(node);

    // The bootstrap node goes away for good.
    let first_addr = first.local_addr();
    drop(first);

    // Restart on the same port, with no bootstrap address at all and no public routers.
    let mut config = private_config(&[], Some(state_file));
    config.bind = port;
    let restarted = Dht::start(config).await.unwrap();
    assert_eq!(restarted.local_addr(), port);
    let status = restarted.status().await;
    assert!(status.bootstrap_saved >= 4);
    assert_eq!(
        (status.bootstrap_configured, status.bootstrap_public),
        (0, 0)
    );

    // The network announces again, as its nodes do periodically: an announcement made while a node's table held
    // little more than the bootstrap node may have been stored only there, and went away with it. (Under load that
    // made this test fail about one run in three; the claim here is about the restarted node, not that race.)
    for (i, node) in nodes.iter().enumerate() {
        node.announce_rendezvous(41_000 + i as u16).await.unwrap();
    }
    let want: BTreeSet<SocketAddr> = (0..nodes.len())
        .map(|i| SocketAddr::from((Ipv4Addr::LOCALHOST, 41_000 + i as u16)))
        .collect();
    let back = eventually(Duration::from_secs(30), || {
        let restarted = restarted.clone();
        let want = want.clone();
        async move {
            let found: BTreeSet<SocketAddr> =
                restarted.find_rendezvous(1).await.into_iter().collect();
            found == want
        }
    })
    .await;
    assert!(back, "the restarted node did not find the network again");
    let routing = restarted.routing_nodes().await;
    assert!(!routing.is_empty());
    assert!(
        !routing.contains(&first_addr),
        "the stopped bootstrap node cannot be in a fresh routing table"
    );
}

/// A UDP socket that records whether anything arrived.
async fn sentinel() -> (SocketAddrV4, tokio::net::UdpSocket) {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    match socket.local_addr().unwrap() {
        SocketAddr::V4(a) => (a, socket),
        other => panic!("not IPv4: {other}"),
    }
}

async fn receives_within(socket: &tokio::net::UdpSocket, limit: Duration) -> bool {
    let mut buf = [0u8; 1500];
    tokio::time::timeout(limit, socket.recv_from(&mut buf))
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_nodes_learned_with_public_routers_are_never_contacted_by_a_private_node() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();

    // Control: saved nodes of a private run are contacted at start.
    let (addr, socket) = sentinel().await;
    let private_state = dir.path().join("private");
    DhtState::new(NETWORK, false, &[addr])
        .save(&private_state)
        .unwrap();
    let node = Dht::start(private_config(&[], Some(private_state)))
        .await
        .unwrap();
    assert!(
        receives_within(&socket, Duration::from_secs(10)).await,
        "saved node not contacted"
    );
    assert_eq!(node.status().await.bootstrap_saved, 1);
    drop(node);

    // The same file, but written by a run that used the public routers: never contacted.
    let (addr, socket) = sentinel().await;
    let public_state = dir.path().join("public");
    DhtState::new(NETWORK, true, &[addr])
        .save(&public_state)
        .unwrap();
    let node = Dht::start(private_config(&[], Some(public_state.clone())))
        .await
        .unwrap();
    let status = node.status().await;
    assert_eq!(
        (
            status.bootstrap_saved,
            status.bootstrap_configured,
            status.bootstrap_public
        ),
        (0, 0, 0)
    );
    // Lookups with an empty table must not fall back to any built-in list either.
    let _ = node.find_rendezvous(1).await;
    let _ = node
        .get_feed(kolokol_core::Keypair::from_secret_bytes([1; 32]).public())
        .await;
    assert!(
        !receives_within(&socket, Duration::from_secs(3)).await,
        "a public-learned node was contacted"
    );
    assert_eq!(node.status().await.routing_table_size, 0);

    // Saving now must not turn the file into one a private node would use.
    assert_eq!(node.save_state().await.unwrap(), 0);
    let rewritten = DhtState::load(&public_state).unwrap().unwrap();
    assert!(!rewritten.learned_with_public_routers);
    assert!(rewritten.nodes.is_empty());
}

#[tokio::test]
async fn bad_bootstrap_entries_are_refused_at_start() {
    let mut config = private_config(&[], None);
    config.bootstrap = vec!["no-port-here".to_owned()];
    assert!(matches!(
        Dht::start(config).await,
        Err(kolokol_discovery::DhtError::Bootstrap(_))
    ));
    let mut config = private_config(&[], None);
    config.network = String::new();
    assert!(matches!(
        Dht::start(config).await,
        Err(kolokol_discovery::DhtError::Network)
    ));
}
