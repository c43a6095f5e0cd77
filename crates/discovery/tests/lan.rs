//! LAN discovery by multicast, inside a private network namespace that has only `lo` (nothing can leave the
//! host). The outer test makes the namespace with `unshare -n` (it disappears with the process, even on failure)
//! and runs the inner, ignored test there.

// Helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use kolokol_discovery::lan::{ANNOUNCE_LEN, Announce, DEFAULT_GROUP, DEFAULT_PORT};
use kolokol_discovery::{Lan, LanConfig, LanInterfaces, LanPeer};
use kolokol_testkit::netns;

const INSIDE: &str = "KOLOKOL_LAN_TEST_IN_NETNS";
const PASSED: &str = "LAN scenario passed";

#[test]
fn lan_discovery_in_a_private_network_namespace() {
    let exe = std::env::current_exe().unwrap();
    let output = netns::run_in_loopback_only_namespace(
        &exe,
        &[
            "lan_scenario_inside_namespace",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ],
        (INSIDE, "1"),
        Duration::from_secs(90),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains(PASSED),
        "LAN scenario in the namespace failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
}

fn instance(n: u8) -> [u8; 16] {
    [n; 16]
}

fn config(network: &str, n: u8, wire_port: u16) -> LanConfig {
    LanConfig {
        interfaces: LanInterfaces::Only(vec![Ipv4Addr::LOCALHOST]),
        interval: Duration::from_secs(1),
        ..LanConfig::new(network, instance(n), wire_port)
    }
}

/// Every datagram sent to the group during `limit`, with its source, read by a plain socket (what any device on the
/// LAN can do).
fn capture(limit: Duration) -> Vec<(SocketAddr, Vec<u8>)> {
    let socket = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )
    .unwrap();
    socket.set_reuse_address(true).unwrap();
    socket
        .bind(&SocketAddrV4::new(DEFAULT_GROUP, DEFAULT_PORT).into())
        .unwrap();
    socket
        .join_multicast_v4(&DEFAULT_GROUP, &Ipv4Addr::LOCALHOST)
        .unwrap();
    let socket: std::net::UdpSocket = socket.into();
    let deadline = std::time::Instant::now() + limit;
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        socket
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        if let Ok((len, from)) = socket.recv_from(&mut buf) {
            out.push((from, buf[..len].to_vec()));
        }
    }
    out
}

/// Collects what `lan` yields for `limit`.
async fn heard(lan: &mut Lan, limit: Duration) -> Vec<LanPeer> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    while let Ok(Some(peer)) = tokio::time::timeout_at(deadline, lan.next()).await {
        out.push(peer);
    }
    out
}

#[test]
#[ignore = "runs inside the network namespace made by lan_discovery_in_a_private_network_namespace"]
fn lan_scenario_inside_namespace() {
    assert_eq!(
        std::env::var(INSIDE).as_deref(),
        Ok("1"),
        "run through lan_discovery_in_a_private_network_namespace, never on the host network"
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut a = Lan::start(config("lan-net", 1, 7001)).await.unwrap();
        let mut b = Lan::start(config("lan-net", 2, 7002)).await.unwrap();
        let mut other = Lan::start(config("other-net", 3, 7003)).await.unwrap();

        // Junk and a hand-made announce, sent to the group from a plain socket.
        let raw = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        raw.set_multicast_ttl_v4(1).unwrap();
        let group = SocketAddrV4::new(DEFAULT_GROUP, DEFAULT_PORT);
        let good = Announce::new("lan-net", instance(4), 7004).encode();
        let mut wrong_version = good;
        wrong_version[4] = 9;
        for junk in [
            &b"hello"[..],
            &good[..30],
            &wrong_version[..],
            &[good.as_slice(), b"x"].concat(),
        ] {
            raw.send_to(junk, group).unwrap();
        }
        raw.send_to(&good, group).unwrap();

        let a_heard = heard(&mut a, Duration::from_secs(4)).await;
        let b_heard = heard(&mut b, Duration::from_secs(1)).await;
        let other_heard = heard(&mut other, Duration::from_secs(1)).await;

        let loopback = |port: u16| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let a_set: BTreeSet<SocketAddr> = a_heard.iter().map(|p| p.addr).collect();
        assert_eq!(
            a_set,
            BTreeSet::from([loopback(7002), loopback(7004)]),
            "A must hear B and the hand-made announce, not itself, not the other network, not junk"
        );
        // Announces repeat every second, but a node is yielded once until its address changes or time passes.
        assert_eq!(a_heard.len(), 2, "{a_heard:?}");
        assert!(
            b_heard.iter().any(|p| p.addr == loopback(7001)),
            "{b_heard:?}"
        );
        assert!(
            b_heard
                .iter()
                .all(|p| p.addr != loopback(7002) && p.addr != loopback(7003))
        );
        assert!(
            other_heard.is_empty(),
            "another network heard {other_heard:?}"
        );

        // Stopped nodes fall silent: a new node hears only the running ones.
        b.stop().await;
        let mut c = Lan::start(config("lan-net", 5, 7005)).await.unwrap();
        let c_heard: BTreeSet<SocketAddr> = heard(&mut c, Duration::from_secs(3))
            .await
            .into_iter()
            .map(|p| p.addr)
            .collect();
        assert_eq!(c_heard, BTreeSet::from([loopback(7001)]));

        // A renews its identity: what it announces from then on has nothing in common with what it announced
        // before but the network hint and the port, and C, which had heard A, is told of it again at once (a new
        // instance is a new node) rather than after REPEAT_AFTER.
        let before: Vec<Vec<u8>> = tokio::task::spawn_blocking(|| capture(Duration::from_secs(3)))
            .await
            .unwrap()
            .into_iter()
            .filter(|(_, bytes)| {
                bytes.len() == ANNOUNCE_LEN && bytes[6..8] == 7001u16.to_be_bytes()
            })
            .map(|(_, bytes)| bytes)
            .collect();
        assert!(!before.is_empty(), "A announced nothing in 3 s");
        assert!(before.iter().all(|b| b[24..] == instance(1)), "{before:?}");
        a.set_instance(instance(9));
        let c_again = heard(&mut c, Duration::from_secs(3)).await;
        assert!(
            c_again.iter().any(|p| p.addr == loopback(7001)),
            "C was not told of A's new instance: {c_again:?}"
        );
        let after: Vec<Vec<u8>> = tokio::task::spawn_blocking(|| capture(Duration::from_secs(3)))
            .await
            .unwrap()
            .into_iter()
            .filter(|(_, bytes)| {
                bytes.len() == ANNOUNCE_LEN && bytes[6..8] == 7001u16.to_be_bytes()
            })
            .map(|(_, bytes)| bytes)
            .collect();
        assert!(
            !after.is_empty(),
            "A announced nothing in 3 s after renewal"
        );
        for bytes in &after {
            assert_eq!(bytes[24..], instance(9));
            assert_eq!(bytes[..24], before[0][..24], "only the instance changes");
        }
        a.stop().await;
        c.stop().await;
        other.stop().await;
    });
    println!("{PASSED}");
}
