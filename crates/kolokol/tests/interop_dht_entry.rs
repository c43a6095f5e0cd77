//! A kolokol node as other BitTorrent clients' way into the DHT: libtorrent and aria2 are given only a kolokol
//! node's DHT address, find a kolokol seeder of a publication through the DHT, fetch the metadata by BEP 9 and
//! download the magnet, and the bytes are checked.
//!
//! The DHT here is made of kolokol nodes only (an entry node and the seeder, on 127.0.0.1, no public routers): it
//! works only because kolokol's DHT node answers the 2-byte transaction ids libtorrent and aria2 send. Magnets
//! carry no peer and no tracker. These tests fail, not skip, when python3-libtorrent or aria2c is missing.

// Helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use common::{NodeProcess, TestNode, random_file, sha256_file, wait_for};
use kolokol_testkit::libtorrent::{self, PeerArgs};
use kolokol_testkit::{aria2, peers};

/// A private kolokol DHT of an entry node and a seeder that has published `file`: (entry, seeder, entry's DHT
/// address, magnet).
fn kolokol_network(root: &Path, file: &Path) -> (NodeProcess, NodeProcess, String, String) {
    let entry = NodeProcess::start(&root.join("entry"));
    let dht_addr = entry.json(&["status"])["dht_addr"]
        .as_str()
        .unwrap()
        .to_owned();
    let seeder = NodeProcess::start_with(&root.join("seeder"), &["--bootstrap", &dht_addr]);
    let joined = wait_for(Duration::from_secs(60), || {
        (seeder.json(&["status"])["dht_nodes"].as_u64().unwrap_or(0) > 0).then_some(())
    });
    assert!(
        joined.is_some(),
        "the seeder never joined the entry node\n{}",
        seeder.log()
    );
    let published = seeder.json(&["publish", file.to_str().unwrap(), "--title", "Через DHT"]);
    let magnet = published["magnet"].as_str().unwrap().to_owned();
    assert!(
        !magnet.contains("x.pe") && !magnet.contains("tr="),
        "the magnet must name no peer and no tracker: {magnet}"
    );
    (entry, seeder, dht_addr, magnet)
}

#[test]
fn libtorrent_enters_the_dht_through_a_kolokol_node_and_downloads_a_kolokol_magnet() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("article.bin");
    random_file(&file, 3 * 1024 * 1024 + 4321, 81);
    let (_entry, seeder, dht_addr, magnet) = kolokol_network(tmp.path(), &file);

    let save = tmp.path().join("lt");
    std::fs::create_dir_all(&save).unwrap();
    // No peer: libtorrent's only way in is the kolokol node's DHT address. TCP, as kolokol's engine speaks.
    let leech = PeerArgs::leech_magnet(&magnet, &save)
        .tcp_only()
        .dht(&dht_addr)
        .seconds(120)
        .verify(&file);
    let out = libtorrent::leech(&leech).unwrap();
    assert!(
        out.passed(),
        "libtorrent did not download the kolokol magnet through the kolokol DHT node:\n{}\nseeder log:\n{}",
        out.transcript(),
        seeder.log()
    );
    assert!(
        out.got_metadata(),
        "no BEP 9 metadata from kolokol:\n{}",
        out.transcript()
    );
    assert_eq!(sha256_file(&save.join("article.bin")), sha256_file(&file));
}

#[test]
fn aria2_enters_the_dht_through_a_kolokol_node_and_downloads_a_kolokol_magnet() {
    peers::require_aria2();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("report.bin");
    random_file(&file, 3 * 1024 * 1024 + 777, 82);
    let (_entry, seeder, dht_addr, magnet) = kolokol_network(tmp.path(), &file);

    let save = tmp.path().join("aria2");
    let entry: SocketAddr = dht_addr.parse().unwrap();
    let out = aria2::fetch(&magnet, &save, tmp.path(), Some(entry), 120).unwrap();
    assert!(
        out.passed() && save.join("report.bin").is_file(),
        "aria2 did not download the kolokol magnet through the kolokol DHT node:\n{}\naria2 log (tail):\n{}\nseeder \
         log:\n{}",
        out.outcome.transcript(),
        out.log_tail(60),
        seeder.log()
    );
    assert!(
        out.log.contains("DHTPeerLookupTask") && out.log.contains("Got ut_metadata"),
        "aria2 did not find the seeder through the DHT or got no metadata from it:\n{}",
        out.log_tail(60)
    );
    assert_eq!(sha256_file(&save.join("report.bin")), sha256_file(&file));
}
