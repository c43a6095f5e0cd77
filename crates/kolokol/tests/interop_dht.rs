//! Interoperability through the DHT only: independent BitTorrent clients (Debian's libtorrent and aria2) find a
//! kolokol seeder with no address given to them, fetch the metadata by BEP 9 and then the data; kolokol finds a
//! libtorrent seeder the same way.
//!
//! Every test runs its own private mainline DHT of libtorrent nodes on 127.0.0.1 (kolokol-testkit's
//! `libtorrent::Dht`). kolokol nodes join it (`--bootstrap`); libtorrent and aria2 start from the libtorrent nodes
//! (the other way round, a kolokol node as their only entry point, is `interop_dht_entry.rs`). Magnets carry no peer
//! (`x.pe`) and no tracker: the DHT is the only way to the seeder. Nothing leaves loopback: the DHT nodes bind
//! 127.0.0.1 and know only each other, aria2 gets a fresh routing-table file, no trackers, no LPD.
//!
//! These tests fail, not skip, when python3-libtorrent or aria2c is missing: scripts/test.sh installs both.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use kolokol_testkit::libtorrent::{self, Dht, PeerArgs, Seeder};
use kolokol_testkit::{aria2, peers};

/// Waits until the libtorrent DHT returns 127.0.0.1:`port` for `infohash`: proof that the announcement reached
/// the independent DHT.
fn wait_announced(dht: &mut Dht, infohash: &str, port: u16, who: &str) {
    if let Err(seen) = dht.find_peers(infohash, port) {
        panic!(
            "{who}'s DHT announcement of {infohash} (port {port}) never reached the libtorrent DHT; \
             the testnet printed:\n{seen}"
        );
    }
}

/// A kolokol node in the libtorrent testnet, its DHT bootstrapped.
fn kolokol_in(dht: &Dht, dir: &Path) -> NodeProcess {
    let node = NodeProcess::start_with(dir, &["--bootstrap", &dht.bootstrap()]);
    let joined = wait_for(Duration::from_secs(60), || {
        (node.json(&["status"])["dht_nodes"].as_u64().unwrap_or(0) > 0).then_some(())
    });
    assert!(
        joined.is_some(),
        "kolokol never joined the libtorrent DHT\n{}",
        node.log()
    );
    node
}

/// kolokol publishes `file` in the testnet; returns the node, the magnet and the info-hash, once the libtorrent
/// DHT returns the node's BitTorrent address for it.
fn publish_in(dht: &mut Dht, root: &Path, file: &Path) -> (NodeProcess, String, String) {
    let seeder = kolokol_in(dht, &root.join("seeder"));
    let published = seeder.json(&["publish", file.to_str().unwrap(), "--title", "Через DHT"]);
    let magnet = published["magnet"].as_str().unwrap().to_owned();
    let infohash = published["infohash"].as_str().unwrap().to_owned();
    assert!(
        !magnet.contains("x.pe") && !magnet.contains("tr="),
        "the magnet must name no peer and no tracker, or the DHT would not be the only way: {magnet}"
    );
    let bt_port: u16 = seeder.json(&["status"])["bt_addr"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    wait_announced(dht, &infohash, bt_port, "kolokol");
    (seeder, magnet, infohash)
}

#[test]
fn libtorrent_downloads_a_kolokol_magnet_found_through_the_dht_only() {
    let mut dht = Dht::start(6);
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("article.bin");
    random_file(&file, 5 * 1024 * 1024 + 4321, 71);
    let (seeder, magnet, _) = publish_in(&mut dht, tmp.path(), &file);

    let save = tmp.path().join("lt");
    std::fs::create_dir_all(&save).unwrap();
    // No peer: libtorrent joins the testnet and looks the info-hash up itself (again every 5 s, in case the
    // first lookup was early). TCP, as kolokol's engine speaks.
    let leech = PeerArgs::leech_magnet(&magnet, &save)
        .tcp_only()
        .dht(&dht.bootstrap())
        .seconds(120)
        .verify(&file);
    let out = libtorrent::leech(&leech).unwrap();
    assert!(
        out.passed(),
        "libtorrent did not download the kolokol magnet through the DHT:\n{}\nseeder log:\n{}",
        out.transcript(),
        seeder.log()
    );
    assert!(
        out.got_metadata(),
        "libtorrent should have fetched the metadata from kolokol (BEP 9):\n{}",
        out.transcript()
    );
    assert_eq!(sha256_file(&save.join("article.bin")), sha256_file(&file));
}

#[test]
fn aria2_downloads_a_kolokol_magnet_found_through_the_dht_only() {
    peers::require_aria2();
    let mut dht = Dht::start(6);
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("report.bin");
    random_file(&file, 5 * 1024 * 1024 + 777, 72);
    let (seeder, magnet, _) = publish_in(&mut dht, tmp.path(), &file);
    let bt_addr = seeder.json(&["status"])["bt_addr"]
        .as_str()
        .unwrap()
        .to_owned();

    // The magnet names no tracker, so the DHT entry point is the only address aria2 starts from.
    let save = tmp.path().join("aria2");
    let out = aria2::fetch(&magnet, &save, tmp.path(), Some(dht.nodes()[0]), 120).unwrap();
    let got = save.join("report.bin");
    assert!(
        out.passed() && got.exists(),
        "aria2 did not download the kolokol magnet through the DHT:\n{}\naria2 log (tail):\n{}\nseeder log:\n{}",
        out.outcome.transcript(),
        out.log_tail(60),
        seeder.log()
    );
    assert_eq!(sha256_file(&got), sha256_file(&file));
    // aria2 learned the seeder from the DHT (its only source) and fetched the metadata from it by BEP 9.
    assert!(
        out.log.contains("DHTPeerLookupTask") && out.log.contains("Got ut_metadata"),
        "aria2's log shows no DHT peer lookup or no ut_metadata:\n{}",
        out.log_tail(60)
    );
    assert!(
        out.log.contains(&format!("Connecting to {bt_addr}")),
        "aria2 never connected to the kolokol seeder {bt_addr}"
    );
    let outside = out.addresses_off_loopback();
    assert!(
        outside.is_empty(),
        "aria2 talked to addresses off loopback: {outside:?}"
    );
}

#[test]
fn kolokol_downloads_a_libtorrent_torrent_found_through_the_dht_only() {
    let mut dht = Dht::start(6);
    let tmp = tempfile::tempdir().unwrap();
    let content = tmp.path().join("lt-content");
    std::fs::create_dir_all(&content).unwrap();
    let file = content.join("lecture.bin");
    random_file(&file, 6 * 1024 * 1024 + 99, 73);
    let torrent = tmp.path().join("lecture.torrent");
    let infohash = libtorrent::make_torrent(&file, &torrent, 256).unwrap();

    // The seeder announces every 5 s (libtorrent's default is 15 minutes), so the first announcement follows
    // the DHT's start.
    let lt_seeder = Seeder::start(
        &PeerArgs::seed(&torrent, &content)
            .tcp_only()
            .dht(&dht.bootstrap())
            .seconds(180),
    )
    .unwrap();
    wait_announced(
        &mut dht,
        &infohash,
        lt_seeder.port(),
        "the libtorrent seeder",
    );

    let node = kolokol_in(&dht, &tmp.path().join("kolokol"));
    // The plain magnet: no peer, no tracker. kolokol asks the DHT for peers.
    let magnet = format!("magnet:?xt=urn:btih:{infohash}&dn=lecture.bin");
    let out_dir = tmp.path().join("got");
    let got = node.cli(&[
        "--json",
        "get",
        &magnet,
        "-o",
        out_dir.to_str().unwrap(),
        "--timeout",
        "120",
    ]);
    assert!(
        got.status.success(),
        "kolokol get of the libtorrent torrent failed: {}\n{}\nnode log:\n{}\nseeder:\n{}",
        String::from_utf8_lossy(&got.stdout),
        String::from_utf8_lossy(&got.stderr),
        node.log(),
        lt_seeder.transcript()
    );
    let view: serde_json::Value = serde_json::from_slice(&got.stdout).unwrap();
    assert_eq!(view["finished"], true, "{view}");
    assert_eq!(
        sha256_file(&out_dir.join("lecture.bin")),
        sha256_file(&file)
    );
    assert!(
        node.log().contains("peers found through the DHT"),
        "kolokol should have found the seeder through the DHT:\n{}",
        node.log()
    );
}
