//! A seeder that serves a damaged piece never makes the leecher finish with wrong data.
// Test set-up helpers panic on failure: that is the test failing.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::time::Duration;

use common::STEP;
use kolokol_transfer::{FetchSource, TorrentState};
use tokio::time::timeout;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_piece_is_never_accepted_and_a_good_peer_completes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let size = 4 * 1024 * 1024;

    // A good copy and a copy that will be damaged, both seeded.
    let good_dir = root.join("good");
    let bad_dir = root.join("bad");
    common::random_file(&good_dir.join("doc.pdf"), size);
    fs::create_dir_all(&bad_dir).unwrap();
    fs::copy(good_dir.join("doc.pdf"), bad_dir.join("doc.pdf")).unwrap();

    let bad_seeder = common::engine(&root.join("bad-seeder")).await;
    let created = bad_seeder
        .create_torrent(&bad_dir.join("doc.pdf"))
        .await
        .unwrap();
    bad_seeder.seed(&created.torrent, &bad_dir).await.unwrap();
    timeout(STEP, bad_seeder.wait_finished(&created.infohash))
        .await
        .unwrap()
        .unwrap();
    // Damage one byte under the running seeder: it was told the data is complete, so it serves it.
    let piece = u64::from(created.piece_length);
    let damaged_piece = 7u64;
    let offset = damaged_piece * piece + 1234;
    let good = fs::read(good_dir.join("doc.pdf")).unwrap();
    let mut f = fs::OpenOptions::new()
        .write(true)
        .open(bad_dir.join("doc.pdf"))
        .unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(&[good[offset as usize] ^ 0x5a]).unwrap();
    f.sync_all().unwrap();
    drop(f);

    // The leecher already has every piece but the damaged one, so the only piece it asks the bad
    // seeder for is that one. (librqbit drops a peer that sent a bad piece and waits 10 s, then
    // a minute, before trying it again, so a whole download from it would crawl.)
    let out = root.join("out");
    let mut partial = good.clone();
    partial[(damaged_piece * piece) as usize..((damaged_piece + 1) * piece) as usize].fill(0);
    fs::create_dir_all(&out).unwrap();
    fs::write(out.join("doc.pdf"), &partial).unwrap();

    let leecher = common::engine(&root.join("leecher")).await;
    let ih = leecher
        .fetch(
            FetchSource::Torrent(created.torrent.clone()),
            &out,
            vec![bad_seeder.listen_addr()],
        )
        .await
        .unwrap();
    common::wait_for(
        &leecher,
        &ih,
        STEP,
        "the resume check",
        common::is_past_checking,
    )
    .await;
    // Wait until the seeder has sent the piece and the leecher has hung up on it.
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let sent = bad_seeder.progress(&ih).unwrap().uploaded_bytes;
        let p = leecher.progress(&ih).unwrap();
        if sent >= piece && p.peers == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "bad piece never sent: {p:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let p = leecher.progress(&ih).unwrap();
    assert!(
        !p.finished,
        "finished with a piece that only a damaged seeder had: {p:?}"
    );
    assert_eq!(p.have_bytes, size as u64 - piece);
    assert_eq!(p.state, TorrentState::Downloading);

    // A peer with the right data completes it, and the result is the original file.
    let good_seeder = common::engine(&root.join("good-seeder")).await;
    good_seeder.seed(&created.torrent, &good_dir).await.unwrap();
    timeout(STEP, good_seeder.wait_finished(&ih))
        .await
        .unwrap()
        .unwrap();
    leecher
        .add_peers(&ih, vec![good_seeder.listen_addr()])
        .await
        .unwrap();
    timeout(STEP, leecher.wait_finished(&ih))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        fs::read(out.join("doc.pdf")).unwrap(),
        fs::read(good_dir.join("doc.pdf")).unwrap()
    );
    for engine in [bad_seeder, good_seeder, leecher] {
        engine.shutdown().await;
    }
}
