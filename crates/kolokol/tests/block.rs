//! Blocking an author hides and purges them on this node and refuses their records on sync; unblocking lets sync
//! bring them back.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;

fn ids(node: &NodeProcess) -> Vec<String> {
    node.json(&["list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

fn connected(node: &NodeProcess) -> bool {
    node.json(&["peers"])
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["connected"] == true)
}

#[test]
fn block_purges_refuses_and_unblock_restores() {
    let tmp = tempfile::tempdir().unwrap();
    let a = NodeProcess::start(&tmp.path().join("a"));
    let b = NodeProcess::start(&tmp.path().join("b"));
    let a_wire = a.json(&["status"])["wire_addr"]
        .as_str()
        .unwrap()
        .to_owned();
    let author = a.json(&["id"])["author_id"].as_str().unwrap().to_owned();
    b.json(&["peer", "add", &a_wire]);

    let file = tmp.path().join("spam.bin");
    random_file(&file, 512 * 1024, 5);
    let first = a.json(&["publish", file.to_str().unwrap(), "--title", "Реклама"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        wait_for(Duration::from_secs(30), || ids(&b)
            .contains(&first)
            .then_some(()))
        .is_some()
    );
    let got = b.json(&["get", &first, "--timeout", "60"]);
    let data = PathBuf::from(got["path"].as_str().unwrap());
    assert!(data.exists());

    let blocked = b.json(&["block", &author]);
    assert_eq!(blocked["purged_records"], 1);
    assert_eq!(blocked["purged_data"], 1);
    assert!(ids(&b).is_empty(), "the author's records are gone");
    assert!(!data.exists(), "their data is gone from the data directory");
    assert_eq!(b.json(&["blocked"])[0]["author"], author.as_str());
    assert!(
        b.json(&["search", "реклама"])
            .as_array()
            .unwrap()
            .is_empty()
    );

    // New records of the author are refused, pushed or synced.
    let file2 = tmp.path().join("spam2.bin");
    random_file(&file2, 1024, 6);
    let second = a.json(&["publish", file2.to_str().unwrap(), "--title", "Ещё реклама"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    std::thread::sleep(Duration::from_secs(2));
    assert!(ids(&b).is_empty());
    let b_dir = b.data_dir.clone();
    assert!(b.stop());
    let b = NodeProcess::start(&b_dir);
    assert!(
        wait_for(Duration::from_secs(30), || connected(&b).then_some(())).is_some(),
        "B did not reconnect to A\n{}\nA:\n{}",
        b.log(),
        a.log()
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        ids(&b).is_empty(),
        "a blocked author's records came back through sync"
    );

    // Bad input.
    assert_eq!(b.cli(&["block", "nothex"]).status.code(), Some(1));
    let own = b.json(&["id"])["author_id"].as_str().unwrap().to_owned();
    assert_eq!(b.cli(&["block", &own]).status.code(), Some(1));

    // Unblocked, the next exchange brings both back.
    b.json(&["unblock", &author]);
    assert!(b.json(&["blocked"]).as_array().unwrap().is_empty());
    assert!(b.stop());
    let b = NodeProcess::start(&b_dir);
    let back = wait_for(Duration::from_secs(30), || {
        let now = ids(&b);
        (now.contains(&first) && now.contains(&second)).then_some(())
    });
    assert!(
        back.is_some(),
        "records did not come back after unblock\n{}",
        b.log()
    );
}
