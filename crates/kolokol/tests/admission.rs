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
    let arrived = wait_for(Duration::from_secs(30), || b.has_record(&id).then_some(()));
    assert!(
        arrived.is_some(),
        "an honest record did not flow past the flood"
    );
    assert_eq!(count(&b), 4);
}

#[test]
fn records_with_less_work_than_the_network_demands_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let strict = NodeProcess::start_with(&tmp.path().join("strict"), &["--work-bits", "16"]);
    let strict_wire = strict.json(&["status"])["wire_addr"]
        .as_str()
        .unwrap()
        .to_owned();
    let lazy = NodeProcess::start_with(&tmp.path().join("lazy"), &["--work-bits", "1"]);
    let diligent = NodeProcess::start_with(&tmp.path().join("diligent"), &["--work-bits", "16"]);
    lazy.json(&["peer", "add", &strict_wire]);
    diligent.json(&["peer", "add", &strict_wire]);

    let f = tmp.path().join("cheap.txt");
    std::fs::write(&f, "cheap").unwrap();
    lazy.json(&["publish", f.to_str().unwrap(), "--title", "Cheap"]);
    let refused = wait_for(Duration::from_secs(30), || {
        (strict.json(&["status"])["refused"]["not_enough_work"]
            .as_u64()
            .unwrap()
            >= 1)
            .then_some(())
    });
    assert!(
        refused.is_some(),
        "a record with too little work was not refused\n{}",
        strict.log()
    );

    let f = tmp.path().join("earned.txt");
    std::fs::write(&f, "earned").unwrap();
    let id = diligent.json(&["publish", f.to_str().unwrap(), "--title", "Earned"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let stored = wait_for(Duration::from_secs(30), || {
        strict.has_record(&id).then_some(())
    });
    assert!(stored.is_some(), "a record with enough work was not stored");
    assert_eq!(
        count(&strict),
        1,
        "only the record with enough work is stored"
    );
}
