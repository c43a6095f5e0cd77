//! The node's wire identity is ephemeral (issue 12 part 3): `kolokol up` restarted on the same data directory is
//! another node to its peers, an old saved `node.key` is destroyed and never used, and neither the node's own data
//! directory nor a peer's peer cache keeps a node id. Default flags except the harness's loopback ones; the LAN part
//! runs in a network namespace the test makes (`unshare -n`), with LAN discovery on 127.0.0.1 there.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::time::Duration;

use common::*;
use kolokol_core::{Keypair, NodeId};
use kolokol_discovery::lan::{ANNOUNCE_LEN, DEFAULT_GROUP, DEFAULT_PORT};
use kolokol_testkit::netns;

fn node_id(node: &NodeProcess) -> String {
    let status = node.json(&["status"]);
    status["node_id"].as_str().unwrap().to_owned()
}

fn id_bytes(id: &str) -> [u8; 32] {
    *id.parse::<NodeId>().unwrap().as_bytes()
}

/// Every file under `dir` whose bytes contain `id` (raw or as hex, either case).
fn files_holding(dir: &Path, id: &str) -> Vec<String> {
    let raw = id_bytes(id);
    let hex_lower = hex::encode(raw);
    let hex_upper = hex_lower.to_uppercase();
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                stack.push(entry.unwrap().path());
            }
            continue;
        }
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        if has(&raw) || has(hex_lower.as_bytes()) || has(hex_upper.as_bytes()) || has(id.as_bytes())
        {
            found.push(path.display().to_string());
        }
    }
    found
}

#[test]
fn a_restarted_node_is_another_node_and_nothing_on_disk_names_either() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    // A data directory from an older version, which kept its wire key in node.key.
    std::fs::create_dir_all(&dir).unwrap();
    let old_key = Keypair::from_secret_bytes([7; 32]);
    std::fs::write(dir.join("node.key"), hex::encode([7u8; 32])).unwrap();

    // The same wire address at both starts (a node keeps its port; the harness asks for a new one each time unless
    // told), so that B finds A again through its peer cache.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let a_wire = format!("127.0.0.1:{port}");
    let a = NodeProcess::start_with(&dir, &["--wire", &a_wire]);
    let first = node_id(&a);
    assert_ne!(
        first,
        old_key.public().to_string(),
        "the old node.key must not be used"
    );
    assert!(
        !dir.join("node.key").exists(),
        "the old node.key must be deleted"
    );
    // Its `id` command agrees with `status` (the local user may see it).
    assert_eq!(a.json(&["id"])["node_id"], first.as_str());

    // A peer that knows A by address, and so keeps A in its peer cache.
    let b = NodeProcess::start(&tmp.path().join("b"));
    let peer = b.json(&["peer", "add", &a_wire]);
    assert_eq!(peer["node_id"], first.as_str(), "{peer}");

    assert!(a.stop(), "A did not stop cleanly");
    let a = NodeProcess::start_with(&dir, &["--wire", &a_wire]);
    let second = node_id(&a);
    assert_ne!(first, second, "a restarted node must have a new node id");

    // B finds A again at the cached address, and sees a stranger: the new id, never the old one.
    let seen = wait_for(Duration::from_secs(60), || {
        let peers = b.json(&["peers"]);
        let peers = peers.as_array().unwrap();
        assert!(
            peers.iter().all(|p| p["node_id"] != first.as_str()),
            "B still shows A's old id: {peers:?}"
        );
        peers
            .iter()
            .any(|p| p["connected"] == true && p["node_id"] == second.as_str())
            .then_some(())
    });
    assert!(seen.is_some(), "B never reconnected to A\n{}", b.log());

    // Nothing on either device names an identity A used: not A's data directory, not B's peer cache.
    let (a_dir, b_dir) = (a.data_dir.clone(), b.data_dir.clone());
    assert!(a.stop() && b.stop(), "a node did not stop cleanly");
    for id in [&first, &second] {
        let holding: Vec<String> = files_holding(&a_dir, id)
            .into_iter()
            .chain(files_holding(&b_dir, id))
            .collect();
        assert!(holding.is_empty(), "{id} is kept in {holding:?}");
    }
    let old = old_key.public().to_string();
    assert!(files_holding(&a_dir, &old).is_empty());
}

#[test]
fn a_lan_announce_changes_with_every_start_and_carries_no_node_id() {
    let exe = std::env::current_exe().unwrap();
    let out = netns::run_in_loopback_only_namespace(
        &exe,
        &[
            "--exact",
            "lan_announces_inside_namespace",
            "--ignored",
            "--nocapture",
        ],
        ("KOLOKOL_IDENTITY_LAN_NAMESPACE", "1"),
        Duration::from_secs(120),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the test inside the namespace failed:\n{stdout}\n{stderr}"
    );
}

/// The announce-sized datagrams a LAN observer reads during `limit` (a plain socket joined to the group, as any
/// device on the link can do).
fn observe_announces(limit: Duration) -> Vec<Vec<u8>> {
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
        if let Ok((len, _)) = socket.recv_from(&mut buf)
            && len == ANNOUNCE_LEN
        {
            out.push(buf[..len].to_vec());
        }
    }
    out
}

/// Runs inside the namespace made by the test above; ignored when run directly.
#[test]
#[ignore = "runs inside a network namespace, started by a_lan_announce_changes_with_every_start_and_carries_no_node_id"]
fn lan_announces_inside_namespace() {
    assert_eq!(
        std::env::var("KOLOKOL_IDENTITY_LAN_NAMESPACE").as_deref(),
        Ok("1"),
        "refusing to run outside the namespace the outer test creates"
    );
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("n");
    let lan = ["--no-default-bootstrap", "--lan-interface", "127.0.0.1"];
    let mut seen = Vec::new();
    for _ in 0..2 {
        // The observer listens before the node starts: a node announces as soon as its LAN discovery starts,
        // before it reports that it is up, and then every 30 s.
        let observer = std::thread::spawn(|| observe_announces(Duration::from_secs(20)));
        let node = NodeProcess::start_custom(&dir, &lan);
        let id = id_bytes(&node_id(&node));
        let port: u16 = node.json(&["status"])["wire_addr"]
            .as_str()
            .unwrap()
            .rsplit_once(':')
            .unwrap()
            .1
            .parse()
            .unwrap();
        let announces: Vec<Vec<u8>> = observer
            .join()
            .unwrap()
            .into_iter()
            .filter(|a| a[6..8] == port.to_be_bytes())
            .collect();
        assert!(!announces.is_empty(), "no announce heard\n{}", node.log());
        for announce in &announces {
            assert!(
                !announce.windows(8).any(|w| id.windows(8).any(|i| i == w)),
                "an announce carries part of the node id: {announce:?}"
            );
        }
        assert!(
            announces.iter().all(|a| a == &announces[0]),
            "one identity, one announce"
        );
        seen.push(announces[0].clone());
        assert!(node.stop(), "the node did not stop cleanly");
    }
    // Same data directory, same network: the instance differs (the harness also gives each start a new wire port;
    // a node left to itself keeps its port, see SECURITY.md).
    assert_eq!(seen[0][..6], seen[1][..6]);
    assert_eq!(seen[0][8..24], seen[1][8..24]);
    assert_ne!(
        seen[0][24..],
        seen[1][24..],
        "the announce did not change across a restart"
    );
}
