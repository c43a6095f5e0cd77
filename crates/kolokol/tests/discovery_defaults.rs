//! A private network forms on default settings: twelve `kolokol up` processes on loopback, each given only
//! `--network`, `--no-default-bootstrap`, `--no-lan` and (all but the first) the first node's DHT address as
//! `--bootstrap`. No DHT, rendezvous or time-out tuning: what a user who starts a private network gets.
//!
//! Every node, the bootstrap node included, must meet at least one kolokol peer. Before the rule "a node answers
//! DHT queries when its network has nothing else to answer" (`kolokol_discovery::policy`), nobody answered in such
//! a network and it never formed.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

const NODES: usize = 12;
/// A give-up bound, not a speed requirement (the benchmark measures the speed): a loaded shared machine must not
/// fail this test.
const GIVE_UP: Duration = Duration::from_secs(180);

fn start(dir: &Path, network: &str, bootstrap: Option<&str>) -> NodeProcess {
    let mut args = vec!["--network", network, "--no-default-bootstrap", "--no-lan"];
    if let Some(b) = bootstrap {
        args.extend(["--bootstrap", b]);
    }
    // `start_custom` adds only the loopback listen addresses (and a free proxy port) to these flags.
    NodeProcess::start_custom(dir, &args)
}

fn peers_connected(node: &NodeProcess) -> u64 {
    node.json(&["status"])["peers_connected"].as_u64().unwrap()
}

#[test]
fn twelve_nodes_on_default_flags_all_meet_a_peer() {
    let tmp = tempfile::tempdir().unwrap();
    let network = "defaults-test";
    let boot = start(&tmp.path().join("boot"), network, None);
    let boot_dht = boot.json(&["status"])["dht_addr"]
        .as_str()
        .unwrap()
        .to_owned();

    // The others start together, as after a reboot of many machines: none of them has announced yet when the
    // first lookups run, so the early rounds find nobody and the back-off must bring them together.
    let dirs: Vec<PathBuf> = (1..NODES)
        .map(|i| tmp.path().join(format!("n{i}")))
        .collect();
    let mut nodes: Vec<NodeProcess> = std::thread::scope(|scope| {
        let handles: Vec<_> = dirs
            .iter()
            .map(|dir| scope.spawn(|| start(dir, network, Some(&boot_dht))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    nodes.insert(0, boot);

    let all_met = wait_for(GIVE_UP, || {
        nodes
            .iter()
            .all(|node| peers_connected(node) > 0)
            .then_some(())
    });
    if all_met.is_none() {
        let alone: Vec<usize> = (0..NODES)
            .filter(|&i| peers_connected(&nodes[i]) == 0)
            .collect();
        panic!(
            "nodes without a kolokol peer after {GIVE_UP:?} (0 is the bootstrap node): {alone:?}\nfirst such \
             node's log:\n{}",
            nodes[alone[0]].log()
        );
    }

    // The rule that made it work, as the nodes report it: with the public routers off, every DHT node answers
    // from the start.
    for (i, node) in nodes.iter().enumerate() {
        assert!(
            node.log().contains("server_mode=true"),
            "node {i} did not start its DHT answering queries:\n{}",
            node.log()
        );
        assert!(node.json(&["status"])["dht_nodes"].as_u64().unwrap() > 0);
    }
}
