//! A bridge is never listed (issue 16, part 4): on a private mainline DHT of libtorrent nodes (kolokol-testkit's
//! `libtorrent::Dht`, on 127.0.0.1), a lookup of the network's rendezvous infohash finds an ordinary node, and
//! finds neither a full node running `--bridge` nor a `--bridge-only` node, though both run as long and the
//! `--bridge` node uses the same rendezvous to find its peers.
//!
//! Fails, not skips, when python3-libtorrent is missing (scripts/test.sh installs it).

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
mod proxy_common;

use std::time::Duration;

use common::*;
use kolokol_core::InfoHash;
use kolokol_testkit::libtorrent::Dht;
use proxy_common::{Site, bridge_streams, proxy_addr, socks};

fn port_of(node: &NodeProcess, field: &str) -> u16 {
    node.json(&["status"])[field]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn bridges_are_not_found_in_a_dht_lookup_of_the_rendezvous() {
    let tmp = tempfile::tempdir().unwrap();
    let mut dht = Dht::start(8);
    let network = "hidden-bridge-test";
    let boot = dht.bootstrap();
    let common = ["--network", network, "--bootstrap", boot.as_str()];
    let with = |extra: &[&'static str]| {
        let mut args = common.to_vec();
        args.extend_from_slice(extra);
        args
    };
    let listed = NodeProcess::start_with(&tmp.path().join("listed"), &common);
    let bridge = NodeProcess::start_with(
        &tmp.path().join("bridge"),
        &with(&["--bridge", "--bridge-listen", "127.0.0.1:0"]),
    );
    let only = NodeProcess::start_with(
        &tmp.path().join("only"),
        &with(&["--bridge-only", "--bridge-listen", "127.0.0.1:0"]),
    );

    // The --bridge node looks the rendezvous up and finds the listed node: it is on the DHT and uses it.
    let met = wait_for(Duration::from_secs(120), || {
        (bridge.json(&["status"])["peers_connected"]
            .as_u64()
            .unwrap()
            > 0)
        .then_some(())
    });
    assert!(
        met.is_some(),
        "the bridge's node found no peer\n{}",
        bridge.log()
    );

    // A lookup of the rendezvous (libtorrent's get_peers) finds the listed node...
    let rendezvous = InfoHash::rendezvous(network).to_string();
    let listed_wire = port_of(&listed, "wire_addr");
    dht.find_peers(&rendezvous, listed_wire)
        .unwrap_or_else(|seen| panic!("the listed node was never found:\n{seen}"));
    // ...and, asked again now that every node has run for a while, nothing of the two bridges.
    let _ = dht.find_peers(&rendezvous, listed_wire).unwrap();
    let bridge_ports: Vec<u16> = [&bridge, &only]
        .iter()
        .flat_map(|node| {
            let bridge_port = node.json(&["proxy", "status"])["bridge_server"]["listen_addr"]
                .as_str()
                .unwrap()
                .rsplit(':')
                .next()
                .unwrap()
                .parse::<u16>()
                .unwrap();
            [
                port_of(node, "wire_addr"),
                port_of(node, "bt_addr"),
                bridge_port,
            ]
        })
        .collect();
    let transcript = dht.transcript();
    let found: Vec<&str> = transcript
        .lines()
        .filter(|l| l.starts_with(&format!("PEERS {rendezvous}")))
        .flat_map(|l| l.split_whitespace().skip(2))
        .collect();
    assert!(
        found.contains(&format!("127.0.0.1:{listed_wire}").as_str()),
        "{found:?}"
    );
    for port in &bridge_ports {
        let addr = format!("127.0.0.1:{port}");
        assert!(
            !found.contains(&addr.as_str()),
            "a bridge's port {port} was found on the rendezvous: {found:?}"
        );
    }

    // The bridge-only node has no DHT contact and no kolokol peer at all, and its bridge runs.
    let status = only.json(&["status"]);
    assert_eq!(status["dht_nodes"].as_u64(), Some(0), "{status:#}");
    assert_eq!(status["peers_connected"].as_u64(), Some(0), "{status:#}");
    let code = only.json(&["bridge", "invite", "--host", "127.0.0.1"])["code"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(code.starts_with("kolokol-bridge:"));
    // Nobody dialled it either: the listed node knows only the bridge's node, if anyone.
    let listed_peers = listed.json(&["peers"]).to_string();
    assert!(
        !listed_peers.contains(&format!(":{}", port_of(&only, "wire_addr"))),
        "{listed_peers}"
    );
    assert!(only.log().contains("bridge-only node"), "{}", only.log());

    assert!(only.stop() && bridge.stop() && listed.stop());
}

#[test]
fn a_bridge_refuses_a_wire_listener_outside_loopback() {
    let tmp = tempfile::tempdir().unwrap();
    let failed = NodeCommand::new(BIN, tmp.path())
        .args(&[
            "--listen",
            "127.0.0.1:0",
            "--dht",
            "127.0.0.1:0",
            "--proxy",
            "127.0.0.1:0",
        ])
        .args(&[
            "--no-default-bootstrap",
            "--no-lan",
            "--bridge",
            "--bridge-listen",
            "127.0.0.1:0",
        ])
        .args(&["--wire", "0.0.0.0:0"])
        .spawn()
        .err()
        .expect("a bridge with a public wire listener must not start");
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("accepts no kolokol connection from outside"),
        "{stderr}"
    );
}

#[test]
fn a_bridge_only_node_serves_its_invited_clients() {
    let tmp = tempfile::tempdir().unwrap();
    let site = Site::start();
    // `--bridge-allow-private` because the site is on 127.0.0.1, which a real bridge refuses to reach.
    let only = NodeProcess::start_with(
        &tmp.path().join("only"),
        &[
            "--bridge-only",
            "--bridge-listen",
            "127.0.0.1:0",
            "--bridge-allow-private",
        ],
    );
    let code = only.json(&["bridge", "invite"])["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let client = NodeProcess::start_with(&tmp.path().join("client"), &["--proxy-rule", "*=bridge"]);
    client.json(&["bridge", "add", &code]);
    let proxy = proxy_addr(&client);
    let page = proxy_common::fetch(
        &socks(&proxy),
        &format!("http://127.0.0.1:{}/via-bridge-only", site.port),
    );
    assert!(page.contains("/via-bridge-only"), "{page}");
    assert_eq!(bridge_streams(&only), 1);
    assert!(client.stop() && only.stop());
}
