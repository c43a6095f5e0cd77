//! Two engines in one process, over loopback TCP: one seeds, the other downloads.
// Test set-up helpers panic on failure: that is the test failing.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;

use common::{STEP, magnet};
use kolokol_transfer::{FetchSource, TorrentState, TransferError};
use tokio::time::timeout;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn magnet_download_from_a_seeding_engine_gives_identical_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let seeder = common::engine(&tmp.path().join("seeder")).await;
    let leecher = common::engine(&tmp.path().join("leecher")).await;
    let content_dir = tmp.path().join("publish");
    let path = content_dir.join("video.webm");
    common::random_file(&path, 6 * 1024 * 1024 + 777);

    let created = seeder.create_torrent(&path).await.unwrap();
    let seeded = seeder.seed(&created.torrent, &content_dir).await.unwrap();
    assert_eq!(seeded, created.infohash);
    timeout(STEP, seeder.wait_finished(&seeded))
        .await
        .unwrap()
        .unwrap();

    let out = tmp.path().join("out");
    let ih = leecher
        .fetch(
            FetchSource::Magnet(magnet(&created.infohash, &created.name)),
            &out,
            vec![seeder.listen_addr()],
        )
        .await
        .unwrap();
    assert_eq!(ih, created.infohash);
    timeout(STEP, leecher.wait_finished(&ih))
        .await
        .unwrap()
        .unwrap();

    assert_eq!(
        fs::read(out.join("video.webm")).unwrap(),
        fs::read(&path).unwrap()
    );
    let p = leecher.progress(&ih).unwrap();
    assert!(p.finished);
    assert_eq!(p.state, TorrentState::Seeding);
    assert_eq!(p.have_bytes, p.total_bytes);
    assert_eq!(p.name.as_deref(), Some("video.webm"));
    // The metadata that arrived by BEP 9 is the torrent the seeder made.
    assert_eq!(leecher.torrent_bytes(&ih), Some(created.torrent.clone()));

    seeder.shutdown().await;
    leecher.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_torrent_lands_in_a_folder_named_after_it() {
    let tmp = tempfile::tempdir().unwrap();
    let seeder = common::engine(&tmp.path().join("seeder")).await;
    let leecher = common::engine(&tmp.path().join("leecher")).await;
    let root = tmp.path().join("publish/article");
    common::random_file(&root.join("text.html"), 40_000);
    common::random_file(&root.join("img/one.jpg"), 1_500_000);
    common::random_file(&root.join("img/two.jpg"), 700_000);

    let created = seeder.create_torrent(&root).await.unwrap();
    seeder
        .seed(&created.torrent, &tmp.path().join("publish"))
        .await
        .unwrap();

    let out = tmp.path().join("out");
    let ih = leecher
        .fetch(
            FetchSource::Torrent(created.torrent.clone()),
            &out,
            vec![seeder.listen_addr()],
        )
        .await
        .unwrap();
    timeout(STEP, leecher.wait_finished(&ih))
        .await
        .unwrap()
        .unwrap();
    for file in ["text.html", "img/one.jpg", "img/two.jpg"] {
        assert_eq!(
            fs::read(out.join("article").join(file)).unwrap(),
            fs::read(root.join(file)).unwrap(),
            "{file}"
        );
    }

    // Removing with delete_files takes the downloaded folder away, not the seeder's.
    leecher.remove(&ih, true).await.unwrap();
    assert!(!out.join("article/img/one.jpg").exists());
    assert!(leecher.progress(&ih).is_none());
    assert!(root.join("img/one.jpg").exists());
    seeder.shutdown().await;
    leecher.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_given_later_reach_a_waiting_magnet_and_a_running_download() {
    let tmp = tempfile::tempdir().unwrap();
    let seeder = common::engine(&tmp.path().join("seeder")).await;
    let leecher = common::engine(&tmp.path().join("leecher")).await;
    let content_dir = tmp.path().join("publish");
    let one = content_dir.join("one.bin");
    let two = content_dir.join("two.bin");
    common::random_file(&one, 3 * 1024 * 1024);
    common::random_file(&two, 3 * 1024 * 1024);
    let t1 = seeder.create_torrent(&one).await.unwrap();
    let t2 = seeder.create_torrent(&two).await.unwrap();
    seeder.seed(&t1.torrent, &content_dir).await.unwrap();
    seeder.seed(&t2.torrent, &content_dir).await.unwrap();

    // A magnet with no peers waits for metadata...
    let out = tmp.path().join("out");
    let ih1 = leecher
        .fetch(
            FetchSource::Magnet(magnet(&t1.infohash, "one.bin")),
            &out,
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        leecher.progress(&ih1).unwrap().state,
        TorrentState::Resolving
    );
    assert_eq!(leecher.torrent_bytes(&ih1), None);
    // ...and a .torrent whose only peer is a closed port downloads nothing.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let ih2 = leecher
        .fetch(FetchSource::Torrent(t2.torrent.clone()), &out, vec![closed])
        .await
        .unwrap();

    assert_eq!(
        leecher
            .add_peers(&ih1, vec![seeder.listen_addr()])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        leecher
            .add_peers(&ih2, vec![seeder.listen_addr(), closed])
            .await
            .unwrap(),
        1
    );
    timeout(STEP, leecher.wait_finished(&ih1))
        .await
        .unwrap()
        .unwrap();
    timeout(STEP, leecher.wait_finished(&ih2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        fs::read(out.join("one.bin")).unwrap(),
        fs::read(&one).unwrap()
    );
    assert_eq!(
        fs::read(out.join("two.bin")).unwrap(),
        fs::read(&two).unwrap()
    );

    // Asking again for the same torrent into the same folder is fine; another folder is not.
    let again = leecher
        .fetch(FetchSource::Torrent(t2.torrent.clone()), &out, vec![])
        .await
        .unwrap();
    assert_eq!(again, ih2);
    let elsewhere = leecher
        .fetch(
            FetchSource::Torrent(t2.torrent.clone()),
            &tmp.path().join("other"),
            vec![],
        )
        .await;
    assert!(matches!(
        elsewhere,
        Err(TransferError::AlreadyManaged { .. })
    ));
    seeder.shutdown().await;
    leecher.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_inputs_are_refused_without_side_effects() {
    let tmp = tempfile::tempdir().unwrap();
    let engine = common::engine(tmp.path()).await;
    let out = tmp.path().join("out");
    let bad_torrent = engine
        .fetch(
            FetchSource::Torrent(b"d4:infod4:name1:xee".to_vec()),
            &out,
            vec![],
        )
        .await;
    assert!(matches!(bad_torrent, Err(TransferError::InvalidTorrent(_))));
    let bad_magnet = engine
        .fetch(
            FetchSource::Magnet("magnet:?xt=urn:btih:nothex".to_owned()),
            &out,
            vec![],
        )
        .await;
    assert!(matches!(bad_magnet, Err(TransferError::InvalidMagnet(_))));
    assert!(matches!(
        engine.remove(&[7u8; 20], false).await,
        Err(TransferError::NotFound(_))
    ));
    assert!(engine.progress(&[7u8; 20]).is_none());
    // A port already taken is an error, not a silent switch to another port.
    let taken = engine.listen_addr();
    let cfg =
        kolokol_transfer::EngineConfig::new(taken, tmp.path().join("s2"), tmp.path().join("d2"));
    assert!(matches!(
        kolokol_transfer::Engine::start(cfg).await,
        Err(TransferError::Start { .. })
    ));
    engine.shutdown().await;
}
