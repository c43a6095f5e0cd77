//! Interrupted downloads resume: verified data is kept, damaged data is fetched again.
//!
//! The seeder is rate-limited so that the leecher is reliably stopped half-way.
// Test set-up helpers panic on failure: that is the test failing.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::Path;

use common::{STEP, magnet};
use kolokol_transfer::{Engine, FetchSource};
use tokio::time::timeout;

const SIZE: usize = 8 * 1024 * 1024;
const LIMIT: u32 = 1024 * 1024;

/// Seeds a fresh random file from a rate-limited engine; returns (engine, torrent, file path).
async fn limited_seeder(
    root: &Path,
) -> (Engine, kolokol_transfer::CreatedTorrent, std::path::PathBuf) {
    let seeder = common::engine_with_upload_limit(&root.join("seeder"), Some(LIMIT)).await;
    let content_dir = root.join("publish");
    let path = content_dir.join("film.mkv");
    common::random_file(&path, SIZE);
    let created = seeder.create_torrent(&path).await.unwrap();
    seeder.seed(&created.torrent, &content_dir).await.unwrap();
    (seeder, created, path)
}

/// Starts a magnet download and stops the leecher engine once it has at least `min_have` bytes.
async fn interrupted_download(
    root: &Path,
    seeder: &Engine,
    infohash: &[u8; 20],
    min_have: u64,
) -> u64 {
    let leecher = common::engine(&root.join("leecher")).await;
    let ih = leecher
        .fetch(
            FetchSource::Magnet(magnet(infohash, "film.mkv")),
            &root.join("out"),
            vec![seeder.listen_addr()],
        )
        .await
        .unwrap();
    let p = common::wait_for(&leecher, &ih, STEP, "part of the data", |p| {
        p.have_bytes >= min_have
    })
    .await;
    leecher.shutdown().await;
    assert!(
        !p.finished,
        "the download was meant to be interrupted: {p:?}"
    );
    p.have_bytes
}

/// Starts downloading the seeder's torrent from its metainfo into `root/out`.
async fn fetch_torrent(
    leecher: &Engine,
    created: &kolokol_transfer::CreatedTorrent,
    root: &Path,
    seeder: &Engine,
) -> [u8; 20] {
    leecher
        .fetch(
            FetchSource::Torrent(created.torrent.clone()),
            &root.join("out"),
            vec![seeder.listen_addr()],
        )
        .await
        .unwrap()
}

/// After a restart or a re-add: the check that follows finds at least the `had` bytes verified before it (none is
/// fetched again), then the download completes with the publisher's bytes. Stops both engines.
async fn finishes_keeping_verified_data(
    leecher: Engine,
    seeder: Engine,
    infohash: &[u8; 20],
    had: u64,
    output: &Path,
    original: &Path,
) {
    let first = common::wait_for(
        &leecher,
        infohash,
        STEP,
        "the check",
        common::is_past_checking,
    )
    .await;
    assert!(
        first.have_bytes >= had,
        "verified data was lost: had {had}, now {}",
        first.have_bytes
    );
    timeout(STEP, leecher.wait_finished(infohash))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fs::read(output).unwrap(), fs::read(original).unwrap());
    seeder.shutdown().await;
    leecher.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_stopped_midway_resumes_without_losing_verified_data() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (seeder, created, original) = limited_seeder(root).await;
    let had = interrupted_download(root, &seeder, &created.infohash, 3 * 1024 * 1024).await;

    // Same state dir, same folder: the engine comes back and continues from what it had (a clean stop wrote the
    // current bitfield).
    let leecher = common::engine(&root.join("leecher")).await;
    let ih = leecher
        .fetch(
            FetchSource::Magnet(magnet(&created.infohash, "film.mkv")),
            &root.join("out"),
            vec![seeder.listen_addr()],
        )
        .await
        .unwrap();
    let output = root.join("out/film.mkv");
    finishes_keeping_verified_data(leecher, seeder, &ih, had, &output, &original).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_partial_file_is_rechecked_and_completed_correctly() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (seeder, created, original) = limited_seeder(root).await;
    interrupted_download(root, &seeder, &created.infohash, 2 * 1024 * 1024).await;

    // Cut the partial file short, then damage a byte in what is left: the fast-resume bitfield
    // must not be trusted, and the damaged piece must be downloaded again.
    let partial = root.join("out/film.mkv");
    let file = fs::OpenOptions::new().write(true).open(&partial).unwrap();
    file.set_len(1024 * 1024 + 1000).unwrap();
    drop(file);
    let mut bytes = fs::read(&partial).unwrap();
    bytes[5000] ^= 0xff;
    fs::write(&partial, &bytes).unwrap();

    let leecher = common::engine(&root.join("leecher")).await;
    let ih = fetch_torrent(&leecher, &created, root, &seeder).await;
    timeout(STEP, leecher.wait_finished(&ih))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fs::read(&partial).unwrap(), fs::read(&original).unwrap());
    seeder.shutdown().await;
    leecher.shutdown().await;
}

/// The fast-resume bitfield librqbit keeps for a torrent in an engine's state folder.
fn bitfield_path(root: &Path, infohash: &[u8; 20]) -> std::path::PathBuf {
    root.join("leecher/state/librqbit")
        .join(format!("{}.bitv", hex::encode(infohash)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_crash_a_download_is_checked_in_full_and_keeps_every_verified_piece() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (seeder, created, original) = limited_seeder(root).await;
    let had = interrupted_download(root, &seeder, &created.infohash, 3 * 1024 * 1024).await;

    // What a crash leaves: the engine's running marker, and a bitfield that lags the data (librqbit
    // writes it every 16 MiB; here it knows no piece at all).
    let bitfield = bitfield_path(root, &created.infohash);
    let stale = vec![0u8; fs::read(&bitfield).unwrap().len()];
    fs::write(&bitfield, &stale).unwrap();
    let marker = root.join("leecher/state/librqbit/running");
    fs::write(&marker, b"").unwrap();

    let leecher = common::engine(&root.join("leecher")).await;
    let ih = fetch_torrent(&leecher, &created, root, &seeder).await;
    let output = root.join("out/film.mkv");
    finishes_keeping_verified_data(leecher, seeder, &ih, had, &output, &original).await;
    assert!(!marker.exists(), "a clean stop removes the marker");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_peers_for_a_running_download_cost_no_verified_piece() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (seeder, created, original) = limited_seeder(root).await;
    let leecher = common::engine(&root.join("leecher")).await;
    let ih = fetch_torrent(&leecher, &created, root, &seeder).await;
    let had = common::wait_for(&leecher, &ih, STEP, "part of the data", |p| {
        p.have_bytes >= 3 * 1024 * 1024
    })
    .await
    .have_bytes;

    // A new peer (nobody listens there) makes the engine re-add the torrent to librqbit.
    let nobody = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    assert_eq!(leecher.add_peers(&ih, vec![nobody]).await.unwrap(), 1);
    let output = root.join("out/film.mkv");
    finishes_keeping_verified_data(leecher, seeder, &ih, had, &output, &original).await;
}
