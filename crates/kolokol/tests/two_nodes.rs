//! The spine, end to end: two `kolokol up` processes on loopback; A publishes, B connects, sees the record,
//! downloads it with identical bytes, and keeps its catalog across a restart.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::time::Duration;

use common::*;

#[test]
fn publish_peer_add_get_and_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("protest.bin");
    random_file(&file, 20 * 1024 * 1024, 1);

    let a = NodeProcess::start(&tmp.path().join("a"));
    let b = NodeProcess::start(&tmp.path().join("b"));

    let published = a.json(&[
        "publish",
        file.to_str().unwrap(),
        "--title",
        "Площадь, 20 MiB",
        "--description",
        "filmed today",
        "--tag",
        "protest",
        "--lang",
        "ru",
    ]);
    let id = published["id"].as_str().unwrap().to_owned();
    let magnet = published["magnet"].as_str().unwrap().to_owned();
    assert!(magnet.starts_with("magnet:?xt=urn:btih:"), "{magnet}");
    assert_eq!(a.json(&["list"]).as_array().unwrap().len(), 1);

    let a_status = a.json(&["status"]);
    for field in ["node_id", "api_addr", "wire_addr", "bt_addr"] {
        assert!(
            a_status[field].is_string(),
            "status lacks {field}: {a_status}"
        );
    }
    let a_wire = a_status["wire_addr"].as_str().unwrap();
    let peer = b.json(&["peer", "add", a_wire]);
    assert_eq!(peer["node_id"], a_status["node_id"]);

    let seen = wait_for(Duration::from_secs(30), || {
        let list = b.json(&["list"]);
        list.as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id.as_str())
            .cloned()
    })
    .unwrap_or_else(|| panic!("record never reached B\nB log:\n{}", b.log()));
    assert_eq!(seen["title"], "Площадь, 20 MiB");
    assert_eq!(seen["author"], a_status["author_id"]);
    assert_eq!(b.json(&["show", &id])["description"], "filmed today");

    let got = b.json(&["get", &id, "--timeout", "120"]);
    let path = std::path::PathBuf::from(got["path"].as_str().unwrap());
    assert!(
        path.starts_with(&b.data_dir),
        "{path:?} should be inside B's data dir"
    );
    assert_eq!(sha256_file(&path), sha256_file(&file));

    // -o DIR puts a verified copy where the user asked.
    let out = tmp.path().join("out");
    let got = b.json(&["get", &id, "-o", out.to_str().unwrap(), "--timeout", "60"]);
    assert_eq!(
        got["path"].as_str().unwrap(),
        out.join("protest.bin").to_str().unwrap()
    );
    assert_eq!(sha256_file(&out.join("protest.bin")), sha256_file(&file));

    let b_dir = b.data_dir.clone();
    assert!(b.stop(), "B did not shut down cleanly on SIGTERM");
    let b = NodeProcess::start(&b_dir);
    let list = b.json(&["list"]);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == id.as_str()),
        "B forgot its catalog after a restart: {list}"
    );

    // A third person with only the magnet link (plus where a seeder is) gets the same bytes, no catalog needed.
    let c = NodeProcess::start(&tmp.path().join("c"));
    let with_peer = format!("{magnet}&x.pe={}", a_status["bt_addr"].as_str().unwrap());
    let got = c.json(&["get", &with_peer, "--timeout", "120"]);
    let path = std::path::PathBuf::from(got["path"].as_str().unwrap());
    assert_eq!(sha256_file(&path), sha256_file(&file));
    assert!(got["id"].is_null(), "C has no record for it: {got}");

    assert!(a.stop(), "A did not shut down cleanly on SIGTERM");
}
