//! A publication whose DHT announcement failed is announced again once the DHT answers, so that a downloader that is
//! not a kolokol peer of the publisher still finds it (issue 11, the national cut-off flake: the publisher announced
//! once right after the cut, the announcement failed, and a node not connected to the publisher waited for the next
//! round of announcements, 15 minutes later).
//!
//! On loopback: the publisher's only DHT bootstrap node is not running yet when it publishes, so the announcement
//! fails. Then the bootstrap node starts, and a downloader in another kolokol network (so that the two never become
//! kolokol peers and only the DHT can bring them together) gets the publication by its bare magnet link.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::time::Duration;

use common::{NodeProcess, TestNode, random_file, sha256_file, wait_for};

#[test]
fn a_failed_announcement_is_repeated_and_a_downloader_finds_the_publisher_through_the_dht() {
    let tmp = tempfile::tempdir().unwrap();
    // A free UDP port for the bootstrap node, which starts only after the publish.
    let boot_dht = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    // Its debug log says when the announcement failed.
    let publisher = NodeProcess::start_logging(
        &tmp.path().join("publisher"),
        &[
            "--no-default-bootstrap",
            "--no-lan",
            "--work-bits",
            "8",
            "--replicas",
            "0",
            "--network",
            "publishers",
            "--bootstrap",
            &boot_dht,
        ],
        "info,librqbit=warn,kolokol_node::discovery=debug",
    );
    let file = tmp.path().join("news.bin");
    random_file(&file, 1024 * 1024, 7);
    let published = publisher.json(&["publish", file.to_str().unwrap(), "--title", "news"]);
    let infohash = published["infohash"].as_str().unwrap().to_owned();
    let failed = wait_for(Duration::from_secs(60), || {
        publisher
            .log()
            .contains("DHT announce failed")
            .then_some(())
    });
    assert!(
        failed.is_some(),
        "the announcement with no DHT node reachable did not fail\n{}",
        publisher.log()
    );

    let _boot = NodeProcess::start_with(&tmp.path().join("boot"), &["--dht", &boot_dht]);
    let downloader = NodeProcess::start_with(
        &tmp.path().join("downloader"),
        &["--network", "readers", "--bootstrap", &boot_dht],
    );
    let out = tmp.path().join("got");
    let magnet = format!("magnet:?xt=urn:btih:{infohash}");
    let got = downloader.cli(&[
        "--json",
        "get",
        &magnet,
        "-o",
        out.to_str().unwrap(),
        "--timeout",
        "120",
    ]);
    assert!(
        got.status.success(),
        "the downloader never found the publisher: {}\npublisher log:\n{}\ndownloader log:\n{}",
        String::from_utf8_lossy(&got.stderr),
        publisher.log(),
        downloader.log()
    );
    assert_eq!(sha256_file(&out.join("news.bin")), sha256_file(&file));
    // The premise: the data came through the DHT, not through a kolokol connection between the two.
    let publisher_id = publisher.json(&["id"])["node_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let peers = downloader.json(&["peers"]);
    assert!(
        !peers
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["node_id"] == publisher_id.as_str()),
        "{peers}"
    );
}
