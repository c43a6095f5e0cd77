//! LAN discovery by multicast, inside a private network namespace that has only `lo` (nothing can leave the
//! host). The outer test makes the namespace with `unshare -n` (it disappears with the process, even on failure)
//! and runs the inner, ignored test there.

// Helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use kolokol_core::{Keypair, NodeId};
use kolokol_discovery::lan::{Announce, DEFAULT_GROUP, DEFAULT_PORT};
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

fn node(n: u8) -> NodeId {
    Keypair::from_secret_bytes([n; 32]).public()
}

fn config(network: &str, n: u8, wire_port: u16) -> LanConfig {
    LanConfig {
        interfaces: LanInterfaces::Only(vec![Ipv4Addr::LOCALHOST]),
        interval: Duration::from_secs(1),
        ..LanConfig::new(network, node(n), wire_port)
    }
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
        let good = Announce::new("lan-net", node(4), 7004).encode();
        let mut wrong_version = good;
        wrong_version[4] = 9;
        for junk in [
            &b"hello"[..],
            &good[..40],
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
        let a_set: BTreeSet<(SocketAddr, NodeId)> =
            a_heard.iter().map(|p| (p.addr, p.node_id)).collect();
        assert_eq!(
            a_set,
            BTreeSet::from([(loopback(7002), node(2)), (loopback(7004), node(4))]),
            "A must hear B and the hand-made announce, not itself, not the other network, not junk"
        );
        // Announces repeat every second, but a node is yielded once until its address changes or time passes.
        assert_eq!(a_heard.len(), 2, "{a_heard:?}");
        assert!(
            b_heard
                .iter()
                .any(|p| p.addr == loopback(7001) && p.node_id == node(1)),
            "{b_heard:?}"
        );
        assert!(
            b_heard
                .iter()
                .all(|p| p.node_id != node(2) && p.node_id != node(3))
        );
        assert!(
            other_heard.is_empty(),
            "another network heard {other_heard:?}"
        );

        // Stopped nodes fall silent: a new node hears only the running ones.
        b.stop().await;
        let mut c = Lan::start(config("lan-net", 5, 7005)).await.unwrap();
        let c_heard: BTreeSet<NodeId> = heard(&mut c, Duration::from_secs(3))
            .await
            .into_iter()
            .map(|p| p.node_id)
            .collect();
        assert_eq!(c_heard, BTreeSet::from([node(1)]));
        a.stop().await;
        c.stop().await;
        other.stop().await;
    });
    println!("{PASSED}");
}
