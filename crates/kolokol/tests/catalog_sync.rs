//! Catalog sync across 10 processes: records published on several nodes end up in every catalog, including a node
//! that was offline while they were published. Push relay is off (`--push-fanout 0`) and each node keeps only two
//! outbound connections, so records beyond a publisher's direct peers travel by periodic range reconciliation.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use common::*;

const FLAGS: &[&str] = &[
    "--rendezvous-secs",
    "2",
    "--reconcile-secs",
    "1",
    "--push-fanout",
    "0",
    "--peers",
    "2",
];

fn start(dir: &Path, bootstrap: Option<&str>) -> NodeProcess {
    let mut args = FLAGS.to_vec();
    if let Some(b) = bootstrap {
        args.extend(["--bootstrap", b]);
    }
    NodeProcess::start_with(dir, &args)
}

fn catalog(node: &NodeProcess) -> BTreeSet<String> {
    node.json(&["list", "--limit", "1000"])
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn ten_nodes_converge_including_one_that_was_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let first = start(&tmp.path().join("n0"), None);
    let boot = first.json(&["status"])["dht_addr"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut nodes = vec![first];
    for i in 1..10 {
        nodes.push(start(&tmp.path().join(format!("n{i}")), Some(&boot)));
    }
    let all_connected = wait_for(Duration::from_secs(60), || {
        nodes
            .iter()
            .all(|n| n.json(&["status"])["peers_connected"].as_u64().unwrap() > 0)
            .then_some(())
    });
    assert!(all_connected.is_some(), "not every node found a peer");

    // The last node goes offline before anything is published.
    let offline = nodes.pop().unwrap();
    let offline_dir = offline.data_dir.clone();
    assert!(offline.stop());

    let mut published = BTreeSet::new();
    for (k, publisher) in [1usize, 4, 7].into_iter().enumerate() {
        for j in 0..2 {
            let f = tmp.path().join(format!("p{k}-{j}.txt"));
            std::fs::write(&f, format!("record {k} {j}")).unwrap();
            let id = nodes[publisher].json(&[
                "publish",
                f.to_str().unwrap(),
                "--title",
                &format!("Запись {k}.{j}"),
            ])["id"]
                .as_str()
                .unwrap()
                .to_owned();
            published.insert(id);
        }
    }
    let back = start(&offline_dir, None);
    nodes.push(back);

    let converged = wait_for(Duration::from_secs(90), || {
        nodes.iter().all(|n| catalog(n) == published).then_some(())
    });
    if converged.is_none() {
        let sizes: Vec<usize> = nodes.iter().map(|n| catalog(n).len()).collect();
        panic!(
            "catalogs did not converge: sizes {sizes:?} of {}\nlast node:\n{}",
            published.len(),
            nodes[9].log()
        );
    }
}
