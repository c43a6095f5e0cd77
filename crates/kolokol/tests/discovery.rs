//! Discovery with no server, end to end, with real `kolokol up` processes in a private DHT on loopback:
//! 30 nodes find each other from one bootstrap address, a publication reaches the last node and is downloaded
//! with no `peer add`; a node restarted without bootstrap finds its way back from saved state; following an
//! author works through the feed head in the DHT.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use common::*;

/// Tuned on purpose: feed polls every second (the follow test waits for one), and rendezvous every 2 s even while
/// connected (the default slows to 10 min once a node has a peer), so that the 30 nodes become one overlay quickly and
/// the restarted node 7 looks again soon. DHT answering and time-outs are the defaults; forming the network on
/// defaults alone is `discovery_defaults.rs`.
const FAST: &[&str] = &["--rendezvous-secs", "2", "--feed-poll-secs", "1"];

fn start(dir: &Path, bootstrap: Option<&str>, extra: &[&str]) -> NodeProcess {
    let mut args: Vec<&str> = FAST.to_vec();
    if let Some(b) = bootstrap {
        args.extend(["--bootstrap", b]);
    }
    args.extend_from_slice(extra);
    NodeProcess::start_with(dir, &args)
}

fn connected_ids(node: &NodeProcess) -> BTreeSet<String> {
    node.json(&["peers"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["connected"] == true)
        .filter_map(|p| p["node_id"].as_str().map(str::to_owned))
        .collect()
}

/// Whether the overlay graph (edges from both ends' views) connects every node.
fn one_overlay(ids: &[String], edges: &BTreeMap<String, BTreeSet<String>>) -> bool {
    let mut seen = BTreeSet::from([ids[0].clone()]);
    let mut todo = vec![ids[0].clone()];
    while let Some(id) = todo.pop() {
        for (a, bs) in edges {
            for b in bs {
                let next = if *a == id {
                    b
                } else if *b == id {
                    a
                } else {
                    continue;
                };
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
    }
    ids.iter().all(|id| seen.contains(id))
}

#[test]
fn thirty_nodes_one_bootstrap_publish_reaches_the_last_and_downloads_without_peer_add() {
    let tmp = tempfile::tempdir().unwrap();
    let boot = start(&tmp.path().join("boot"), None, &[]);
    let boot_dht = boot.json(&["status"])["dht_addr"]
        .as_str()
        .unwrap()
        .to_owned();

    let nodes: Vec<NodeProcess> = (1..=30)
        .map(|i| start(&tmp.path().join(format!("n{i}")), Some(&boot_dht), &[]))
        .collect();
    let ids: Vec<String> = nodes
        .iter()
        .map(|n| n.json(&["id"])["node_id"].as_str().unwrap().to_owned())
        .collect();

    let joined = wait_for(Duration::from_secs(120), || {
        let edges: BTreeMap<String, BTreeSet<String>> = nodes
            .iter()
            .zip(&ids)
            .map(|(n, id)| (id.clone(), connected_ids(n)))
            .collect();
        (edges.values().all(|e| !e.is_empty()) && one_overlay(&ids, &edges)).then_some(())
    });
    assert!(
        joined.is_some(),
        "30 nodes did not form one overlay\nnode 30 log:\n{}",
        nodes[29].log()
    );
    let status = nodes[29].json(&["status"]);
    assert!(status["dht_nodes"].as_u64().unwrap() > 0, "{status}");
    assert!(status["peers_connected"].as_u64().unwrap() > 0, "{status}");

    // Node 1 publishes; the record reaches node 30 by push and relay, and node 30 downloads it through peers it
    // finds itself (the DHT and its kolokol peers), with no `peer add` anywhere.
    let file = tmp.path().join("report.bin");
    random_file(&file, 3 * 1024 * 1024, 30);
    let published = nodes[0].json(&["publish", file.to_str().unwrap(), "--title", "Через DHT"]);
    let id = published["id"].as_str().unwrap().to_owned();
    let reached = wait_for(Duration::from_secs(90), || {
        nodes[29].has_record(&id).then_some(())
    });
    assert!(
        reached.is_some(),
        "record never reached node 30\n{}",
        nodes[29].log()
    );
    let got = nodes[29].json(&["get", &id, "--timeout", "120"]);
    assert_eq!(
        sha256_file(Path::new(got["path"].as_str().unwrap())),
        sha256_file(&file)
    );
    for (i, node) in nodes.iter().enumerate() {
        let has = node.has_record(&id);
        assert!(has, "node {} lacks the record", i + 1);
    }

    // The bootstrap node goes away; node 7 restarts with no --bootstrap and finds the network from what it saved.
    assert!(boot.stop());
    let mut nodes = nodes;
    let seventh = nodes.remove(6);
    let dir = seventh.data_dir.clone();
    assert!(seventh.stop(), "node 7 did not stop cleanly");
    let seventh = start(&dir, None, &[]);
    let back = wait_for(Duration::from_secs(90), || {
        (!connected_ids(&seventh).is_empty()).then_some(())
    });
    assert!(
        back.is_some(),
        "restarted node found nobody\n{}",
        seventh.log()
    );
    assert!(seventh.json(&["status"])["dht_nodes"].as_u64().unwrap() > 0);
}

#[test]
fn following_an_author_works_through_the_feed_head() {
    let tmp = tempfile::tempdir().unwrap();
    // P relays nothing by push; F keeps one connection (to P) and accepts none, so the only way F can learn of A's
    // new publication is A's feed head in the DHT, then a fetch by id from P.
    let p = start(&tmp.path().join("p"), None, &["--push-fanout", "0"]);
    let p_dht = p.json(&["status"])["dht_addr"].as_str().unwrap().to_owned();
    let p_wire = p.json(&["status"])["wire_addr"]
        .as_str()
        .unwrap()
        .to_owned();
    // F's periodic reconciliation is an hour away, so after the one on connect it learns nothing by sync.
    let mut f_args: Vec<&str> = FAST.to_vec();
    f_args.extend(["--bootstrap", &p_dht]);
    f_args.extend([
        "--peers",
        "1",
        "--max-inbound",
        "0",
        "--reconcile-secs",
        "3600",
    ]);
    f_args.extend(["--no-default-bootstrap", "--no-lan", "--work-bits", "8"]);
    let f = NodeProcess::start_logging(
        &tmp.path().join("f"),
        &f_args,
        "info,librqbit=warn,kolokol_node::reconciling=debug",
    );
    let a = start(&tmp.path().join("a"), Some(&p_dht), &[]);
    f.json(&["peer", "add", &p_wire]);
    a.json(&["peer", "add", &p_wire]);
    // The reconciliation F starts on connect must be over before A publishes, or it could carry the record.
    let synced = wait_for(Duration::from_secs(30), || {
        f.log().contains("reconciliation finished").then_some(())
    });
    assert!(synced.is_some(), "F never reconciled with P\n{}", f.log());
    let a_connected = wait_for(Duration::from_secs(30), || {
        (connected_ids(&a).len() == 1).then_some(())
    });
    assert!(a_connected.is_some(), "A never connected to P\n{}", a.log());
    let author = a.json(&["id"])["author_id"].as_str().unwrap().to_owned();
    let followed = f.json(&["follow", &author]);
    assert_eq!(followed["author"], author.as_str());

    let file = tmp.path().join("news.txt");
    std::fs::write(&file, "новости").unwrap();
    let id = a.json(&["publish", file.to_str().unwrap(), "--title", "Новости"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // P got it (A pushed to its peer); F did not, by push.
    let at_p = wait_for(Duration::from_secs(30), || p.has_record(&id).then_some(()));
    assert!(at_p.is_some(), "P never got the record\n{}", p.log());

    let at_f = wait_for(Duration::from_secs(60), || f.has_record(&id).then_some(()));
    assert!(
        at_f.is_some(),
        "F never got the record through the feed\nF log:\n{}\nA log:\n{}",
        f.log(),
        a.log()
    );
    assert!(
        f.log().contains("feed head names records we lack"),
        "F should have learned of it from the feed head:\n{}",
        f.log()
    );
    assert!(
        connected_ids(&f).len() == 1,
        "F should only be connected to P"
    );
    let following = f.json(&["following"]);
    assert_eq!(following[0]["records"], 1);

    // Bad input: following garbage, or oneself.
    let bad = f.cli(&["follow", "nothex"]);
    assert_eq!(bad.status.code(), Some(1));
    let own = f.json(&["id"])["author_id"].as_str().unwrap().to_owned();
    assert_eq!(f.cli(&["follow", &own]).status.code(), Some(1));
    assert!(f.json(&["unfollow", &author]).is_object());
    assert!(f.json(&["following"]).as_array().unwrap().is_empty());
}
