//! A third person opens a kolokol magnet link in an independent BitTorrent client (Debian's libtorrent) and gets
//! the same bytes from a `kolokol up` seeder.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::*;
use kolokol_testkit::libtorrent::{self, PeerArgs};
use kolokol_testkit::peers;

#[test]
fn libtorrent_downloads_a_kolokol_magnet() {
    peers::require_libtorrent();

    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("article.bin");
    random_file(&file, 5 * 1024 * 1024 + 12345, 7);
    let seeder = NodeProcess::start(&tmp.path().join("seeder"));
    let published = seeder.json(&["publish", file.to_str().unwrap(), "--title", "Статья"]);
    let magnet = published["magnet"].as_str().unwrap();
    let bt_addr = seeder.json(&["status"])["bt_addr"]
        .as_str()
        .unwrap()
        .to_owned();

    let save = tmp.path().join("lt");
    std::fs::create_dir_all(&save).unwrap();
    let leech = PeerArgs::leech_magnet(magnet, &save)
        .peer(&bt_addr)
        .seconds(90)
        .tcp_only()
        .verify(&file);
    let out = libtorrent::leech(&leech).unwrap();
    assert!(
        out.passed(),
        "libtorrent leech failed:\n{}\nseeder log:\n{}",
        out.transcript(),
        seeder.log()
    );
    assert_eq!(sha256_file(&save.join("article.bin")), sha256_file(&file));
}
