//! The bridge's bounds on connections it has not recognised, on loopback: a full table and an address at its limit
//! both stay silent (no byte, no reset, no connection accepted only to be closed), and an invitation holder still
//! gets in. Sources differ by loopback address (127.0.0.2, 127.0.0.3: all of 127/8 is loopback on Linux).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::STEP;
use kolokol_proxy::tunnel::handshake;
use kolokol_proxy::{BridgeConfig, BridgeHandle, BridgeKey, BridgeServer, Host, Invitation};
use rand::RngCore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// How long a test listens to a connection to say that nothing came back yet.
const QUIET: Duration = Duration::from_millis(500);

async fn bridge(
    max_pending: usize,
    per_addr: usize,
    silence: Duration,
) -> (BridgeHandle, Invitation) {
    let mut config = BridgeConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        BridgeKey::generate().unwrap(),
    );
    config.max_pending = max_pending;
    config.max_pending_per_addr = per_addr;
    config.probe_silence = (silence, silence);
    let bridge = BridgeServer::start(config).await.unwrap();
    let invitation = bridge.invite(
        Host::parse("127.0.0.1").unwrap(),
        bridge.local_addr().port(),
    );
    (bridge, invitation)
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Connects from `source` (a loopback address) to the bridge.
async fn connect_from(source: &str, bridge: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    tokio::time::timeout(STEP, socket.connect(bridge))
        .await
        .expect("the kernel completes the connection")
        .unwrap()
}

/// A prober's connection: connects from `source` and sends random bytes.
async fn junk(source: &str, bridge: SocketAddr) -> TcpStream {
    let mut tcp = connect_from(source, bridge).await;
    let mut bytes = vec![0u8; 300];
    rand::rng().fill_bytes(&mut bytes);
    tcp.write_all(&bytes).await.unwrap();
    tcp
}

/// Nothing at all comes back within [`QUIET`]: no byte, no FIN, no reset.
async fn is_quiet(tcp: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    tokio::time::timeout(QUIET, tcp.read(&mut byte))
        .await
        .is_err()
}

/// Reads until the bridge closes; panics on a reset. Returns what came back.
async fn read_to_fin(tcp: &mut TcpStream) -> Vec<u8> {
    let mut answer = Vec::new();
    let read = tokio::time::timeout(STEP, tcp.read_to_end(&mut answer))
        .await
        .expect("the bridge closes by itself");
    assert!(read.is_ok(), "closed with a FIN, not a reset: {read:?}");
    answer
}

#[tokio::test]
async fn a_full_pending_table_stays_silent_and_lets_a_holder_in_later() {
    let (bridge, invitation) = bridge(4, 16, Duration::from_secs(1)).await;
    let addr = bridge.local_addr();
    let mut first: Vec<TcpStream> = Vec::new();
    for _ in 0..4 {
        first.push(junk("127.0.0.2", addr).await);
    }
    // The table is full: a fifth connection is not accepted by the bridge yet, but it is not refused, reset or
    // closed either; the kernel queues it, as it would for any busy server.
    let mut fifth = junk("127.0.0.3", addr).await;
    assert!(is_quiet(&mut fifth).await, "a full table must not answer");
    // Once the first four have had their silence, the fifth gets its own, and then a plain FIN.
    for tcp in &mut first {
        assert!(read_to_fin(tcp).await.is_empty());
    }
    assert!(read_to_fin(&mut fifth).await.is_empty(), "not a byte");
    assert_eq!(bridge.stats().silenced_total, 5);
    assert_eq!(bridge.stats().evicted_total, 0);
    // The control: a holder of the invitation gets a tunnel once there is room.
    let mut tcp = connect_from("127.0.0.3", addr).await;
    tokio::time::timeout(STEP, handshake::client(&mut tcp, &invitation, now_secs()))
        .await
        .unwrap()
        .unwrap();
    bridge.shutdown().await;
}

#[tokio::test]
async fn an_address_at_its_limit_replaces_its_oldest_pending_connection_silently() {
    // A silence far longer than the test: only the per-address limit can close these connections early.
    let (bridge, invitation) = bridge(64, 3, Duration::from_secs(120)).await;
    let addr = bridge.local_addr();
    let mut flood: Vec<TcpStream> = Vec::new();
    for _ in 0..3 {
        flood.push(junk("127.0.0.2", addr).await);
    }
    for tcp in &mut flood {
        assert!(is_quiet(tcp).await);
    }
    // Another address does not count against 127.0.0.2's limit.
    let mut other = junk("127.0.0.3", addr).await;
    assert!(is_quiet(&mut other).await);
    assert!(is_quiet(&mut flood[0]).await, "127.0.0.3 evicted nothing");

    // A fourth from 127.0.0.2: its oldest is drained and closed with a FIN (no byte, no reset); the rest stay.
    flood.push(junk("127.0.0.2", addr).await);
    assert!(read_to_fin(&mut flood[0]).await.is_empty());
    for tcp in &mut flood[1..] {
        assert!(is_quiet(tcp).await);
    }
    assert!(is_quiet(&mut other).await);
    assert_eq!(bridge.stats().evicted_total, 1);

    // An invitation holder behind the flooding address (a carrier-grade NAT) still gets its handshake read.
    let mut holder = connect_from("127.0.0.2", addr).await;
    tokio::time::timeout(
        STEP,
        handshake::client(&mut holder, &invitation, now_secs()),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(
        read_to_fin(&mut flood[1]).await.is_empty(),
        "the next oldest made room"
    );
    assert_eq!(bridge.stats().evicted_total, 2);
    assert_eq!(bridge.stats().tunnels_total, 1);
    bridge.shutdown().await;
}
