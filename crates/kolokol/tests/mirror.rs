//! Mirror mode: a volunteer's node fetches new publications on its own under a disk quota, evicts by the policy
//! (least recently requested, never something ranking above what it makes room for) and keeps pinned data.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::path::Path;
use std::time::Duration;

use common::{NodeProcess, TestNode, random_file, wait_for};

const MIB: usize = 1024 * 1024;

fn publish(node: &NodeProcess, dir: &Path, name: &str, seed: u64) -> String {
    let file = dir.join(name);
    random_file(&file, 2 * MIB, seed);
    node.json(&["publish", file.to_str().unwrap(), "--title", name])["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// "complete", "downloading ..." or null.
fn local(node: &NodeProcess, id: &str) -> serde_json::Value {
    node.json(&["status", id])["local"].clone()
}

fn wait_local(node: &NodeProcess, id: &str, want: Option<&str>, what: &str) {
    let reached = wait_for(Duration::from_secs(60), || {
        let state = local(node, id);
        let ok = match want {
            Some(w) => state == w,
            None => state.is_null(),
        };
        ok.then_some(())
    });
    assert!(reached.is_some(), "{what}\nmirror log:\n{}", node.log());
}

#[test]
fn a_mirror_fills_its_quota_evicts_by_the_policy_and_keeps_pinned_data() {
    let tmp = tempfile::tempdir().unwrap();
    let a = NodeProcess::start(&tmp.path().join("a"));
    let m = NodeProcess::start_with(&tmp.path().join("m"), &["--mirror", "--quota", "5M"]);
    m.json(&[
        "peer",
        "add",
        a.json(&["status"])["wire_addr"].as_str().unwrap(),
    ]);

    let first = publish(&a, tmp.path(), "first.bin", 1);
    let second = publish(&a, tmp.path(), "second.bin", 2);
    // Nobody asked the mirror for them: it fetches both on its own (4 MiB of its 5 MiB).
    wait_local(
        &m,
        &first,
        Some("complete"),
        "the mirror did not fetch the first publication",
    );
    wait_local(
        &m,
        &second,
        Some("complete"),
        "the mirror did not fetch the second publication",
    );

    let pinned = m.json(&["pin", &first]);
    assert_eq!(pinned["pinned"], true);

    // A third, newer publication does not fit: the unpinned older one is evicted for it, the pinned one stays.
    let third = publish(&a, tmp.path(), "third.bin", 3);
    wait_local(
        &m,
        &third,
        Some("complete"),
        "the mirror did not fetch the third publication",
    );
    wait_local(&m, &second, None, "the second publication was not evicted");
    assert_eq!(local(&m, &first), "complete", "pinned data was evicted");
    assert!(
        m.has_record(&second),
        "eviction removes data, never the record"
    );
    assert!(
        !m.data_dir
            .join("downloads")
            .join(infohash(&m, &second))
            .exists(),
        "the evicted data is still on disk"
    );
    assert!(m.log().contains("evicted (over the cache quota)"));

    // Unpinned, the first publication is the next to go when a fourth arrives.
    assert_eq!(m.json(&["unpin", &first])["pinned"], false);
    let fourth = publish(&a, tmp.path(), "fourth.bin", 4);
    wait_local(
        &m,
        &fourth,
        Some("complete"),
        "the mirror did not fetch the fourth publication",
    );
    wait_local(&m, &first, None, "the unpinned publication was not evicted");
    assert_eq!(local(&m, &third), "complete");

    // Bad input: pinning an unknown or malformed id fails cleanly.
    assert_eq!(m.cli(&["pin", &"cd".repeat(32)]).status.code(), Some(1));
    assert_eq!(m.cli(&["unpin", "nonsense"]).status.code(), Some(1));
}

fn infohash(node: &NodeProcess, id: &str) -> String {
    node.json(&["show", id])["infohash"]
        .as_str()
        .unwrap()
        .to_owned()
}
