//! Two nodes on one network segment with no DHT bootstrap and no Internet find each other by LAN multicast.
//!
//! The nodes run in a network namespace this test creates (`unshare -n`: it has only its own loopback, with
//! multicast switched on, and disappears with the process), so no datagram can leave the machine.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::time::Duration;

use common::*;
use kolokol_testkit::netns;

#[test]
fn two_nodes_find_each_other_on_the_lan_with_no_dht() {
    let exe = std::env::current_exe().unwrap();
    let out = netns::run_in_loopback_only_namespace(
        &exe,
        &[
            "--exact",
            "lan_inside_namespace",
            "--ignored",
            "--nocapture",
        ],
        ("KOLOKOL_LAN_NAMESPACE", "1"),
        Duration::from_secs(120),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the test inside the namespace failed:\n{stdout}\n{stderr}"
    );
}

/// Runs inside the namespace made by the test above; ignored when run directly.
#[test]
#[ignore = "runs inside a network namespace, started by two_nodes_find_each_other_on_the_lan_with_no_dht"]
fn lan_inside_namespace() {
    assert_eq!(
        std::env::var("KOLOKOL_LAN_NAMESPACE").as_deref(),
        Ok("1"),
        "refusing to run outside the namespace the outer test creates"
    );
    let tmp = tempfile::tempdir().unwrap();
    // No bootstrap at all and no public routers: the DHT knows nobody. Only the LAN can connect them.
    let lan = [
        "--no-default-bootstrap",
        "--lan-interface",
        "127.0.0.1",
        "--work-bits",
        "8",
    ];
    let a = NodeProcess::start_custom(&tmp.path().join("a"), &lan);
    let b = NodeProcess::start_custom(&tmp.path().join("b"), &lan);
    let b_id = b.json(&["id"])["node_id"].as_str().unwrap().to_owned();
    let met = wait_for(Duration::from_secs(60), || {
        a.json(&["peers"])
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["connected"] == true && p["node_id"] == b_id.as_str())
            .then_some(())
    });
    assert!(
        met.is_some(),
        "A never connected to B over the LAN\nA log:\n{}",
        a.log()
    );

    // And a record published on one arrives on the other.
    let file = tmp.path().join("leaflet.txt");
    std::fs::write(&file, "без интернета").unwrap();
    let id = a.json(&["publish", file.to_str().unwrap(), "--title", "Листовка"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let arrived = wait_for(Duration::from_secs(30), || b.has_record(&id).then_some(()));
    assert!(arrived.is_some(), "record never reached B\n{}", b.log());
}
