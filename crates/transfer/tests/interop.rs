//! Interoperability with an independent BitTorrent implementation: libtorrent-rasterbar (Debian's
//! python3-libtorrent), driven by kolokol-testkit's reference-peer drivers on 127.0.0.1 only.
//!
//! These tests fail (they never skip) when libtorrent is missing: install it with
//! `apt-get install -y python3-libtorrent` (scripts/test.sh does).
// Test set-up helpers panic on failure: that is the test failing.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;

use common::{STEP, magnet};
use kolokol_testkit::libtorrent::{self, PeerArgs, Seeder};
use kolokol_testkit::peers;
use kolokol_transfer::FetchSource;
use tokio::time::timeout;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_downloads_a_magnet_seeded_by_kolokol() {
    peers::require_libtorrent();
    let tmp = tempfile::tempdir().unwrap();
    let seeder = common::engine(&tmp.path().join("seeder")).await;
    let content_dir = tmp.path().join("publish");
    let path = content_dir.join("report video.mp4");
    common::random_file(&path, 5 * 1024 * 1024 + 99);
    let created = seeder.create_torrent(&path).await.unwrap();
    seeder.seed(&created.torrent, &content_dir).await.unwrap();
    timeout(STEP, seeder.wait_finished(&created.infohash))
        .await
        .unwrap()
        .unwrap();

    let save = tmp.path().join("lt-out");
    fs::create_dir_all(&save).unwrap();
    let uri = magnet(&created.infohash, "report%20video.mp4");
    let leech = PeerArgs::leech_magnet(&uri, &save)
        .tcp_only()
        .seconds(60)
        .peer(seeder.listen_addr())
        .verify(&path);
    let out = tokio::task::spawn_blocking(move || libtorrent::leech(&leech).unwrap())
        .await
        .unwrap();
    assert!(
        out.passed(),
        "libtorrent leech failed:\n{}",
        out.transcript()
    );
    assert_eq!(
        fs::read(save.join("report video.mp4")).unwrap(),
        fs::read(&path).unwrap()
    );
    seeder.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kolokol_downloads_from_a_libtorrent_seeder_by_magnet_and_by_torrent() {
    peers::require_libtorrent();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("lt-src");
    let path = src.join("archive.tar");
    common::random_file(&path, 3 * 1024 * 1024 + 4321);
    let torrent_path = tmp.path().join("archive.torrent");
    libtorrent::make_torrent(&path, &torrent_path, 256).unwrap();
    let torrent = fs::read(&torrent_path).unwrap();
    let lt_seeder = Seeder::start(&PeerArgs::seed(&torrent_path, &src)).unwrap();
    let peer = lt_seeder.addr();

    // By magnet: the metadata comes from libtorrent over BEP 9.
    let by_magnet = common::engine(&tmp.path().join("a")).await;
    let info_hash = kolokol_transfer::metainfo::infohash_of(&torrent).unwrap();
    let out_a = tmp.path().join("out-a");
    let ih = by_magnet
        .fetch(
            FetchSource::Magnet(magnet(&info_hash, "archive.tar")),
            &out_a,
            vec![peer],
        )
        .await
        .unwrap();
    timeout(STEP, by_magnet.wait_finished(&ih))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        fs::read(out_a.join("archive.tar")).unwrap(),
        fs::read(&path).unwrap()
    );
    // What we keep is libtorrent's info dictionary, untouched.
    let kept = by_magnet.torrent_bytes(&ih).unwrap();
    assert_eq!(
        kolokol_transfer::metainfo::infohash_of(&kept).unwrap(),
        info_hash
    );

    // By .torrent bytes (with libtorrent's tracker-less torrent as is).
    let by_file = common::engine(&tmp.path().join("b")).await;
    let out_b = tmp.path().join("out-b");
    let ih = by_file
        .fetch(FetchSource::Torrent(torrent), &out_b, vec![peer])
        .await
        .unwrap();
    timeout(STEP, by_file.wait_finished(&ih))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        fs::read(out_b.join("archive.tar")).unwrap(),
        fs::read(&path).unwrap()
    );

    by_magnet.shutdown().await;
    by_file.shutdown().await;
}
