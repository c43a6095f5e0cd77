//! Admission: a flood from one author beyond its hourly rate is refused and counted, and honest records still flow.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::time::Duration;

use common::*;

fn count(node: &NodeProcess) -> usize {
    node.json(&["list"]).as_array().unwrap().len()
}

#[test]
fn an_authors_flood_beyond_its_rate_is_refused_and_honest_records_flow() {
    let tmp = tempfile::tempdir().unwrap();
    let b = NodeProcess::start_with(&tmp.path().join("b"), &["--author-rate", "3"]);
    let b_wire = b.json(&["status"])["wire_addr"]
        .as_str()
        .unwrap()
        .to_owned();
    let flooder = NodeProcess::start(&tmp.path().join("flooder"));
    let honest = NodeProcess::start(&tmp.path().join("honest"));
    flooder.json(&["peer", "add", &b_wire]);
    honest.json(&["peer", "add", &b_wire]);

    for i in 0..6 {
        let f = tmp.path().join(format!("flood{i}.txt"));
        std::fs::write(&f, format!("flood {i}")).unwrap();
        flooder.json(&[
            "publish",
            f.to_str().unwrap(),
            "--title",
            &format!("Flood {i}"),
        ]);
    }
    let refused = wait_for(Duration::from_secs(30), || {
        let s = b.json(&["status"]);
        (s["refused"]["rate_limited"].as_u64().unwrap() >= 3).then_some(s)
    });
    assert!(refused.is_some(), "the flood was not refused\n{}", b.log());
    assert_eq!(
        count(&b),
        3,
        "exactly the hourly allowance of the flooding author is stored"
    );

    let f = tmp.path().join("news.txt");
    std::fs::write(&f, "real news").unwrap();
    let id = honest.json(&["publish", f.to_str().unwrap(), "--title", "Real news"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let arrived = wait_for(Duration::from_secs(30), || {
        b.json(&["list"])
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == id.as_str())
            .then_some(())
    });
    assert!(
        arrived.is_some(),
        "an honest record did not flow past the flood"
    );
    assert_eq!(count(&b), 4);
}
