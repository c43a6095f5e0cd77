//! Torrent creation: piece hashes, file lists and determinism, checked against an independent
//! SHA-1 of the data.
// Test set-up helpers panic on failure: that is the test failing.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;

use kolokol_transfer::metainfo::MAX_TORRENT_BYTES;
use sha1::{Digest, Sha1};

/// SHA-1 of each `piece_length` chunk of `data`.
fn expected_pieces(data: &[u8], piece_length: usize) -> Vec<u8> {
    data.chunks(piece_length)
        .flat_map(|c| Sha1::digest(c).to_vec())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_random_file_hashes_like_plain_sha1() {
    let tmp = tempfile::tempdir().unwrap();
    let engine = common::engine(tmp.path()).await;
    let path = tmp.path().join("clip.bin");
    common::random_file(&path, 5 * 1024 * 1024 + 12_345);

    let created = engine.create_torrent(&path).await.unwrap();
    assert_eq!(created.name, "clip.bin");
    assert_eq!(
        created.files,
        vec![("clip.bin".to_owned(), 5 * 1024 * 1024 + 12_345)]
    );
    assert_eq!(created.piece_length, 256 * 1024);
    assert!(created.torrent.len() < MAX_TORRENT_BYTES);

    let data = fs::read(&path).unwrap();
    let pieces = expected_pieces(&data, created.piece_length as usize);
    assert_eq!(pieces.len(), 21 * 20);
    let mut needle = format!("6:pieces{}:", pieces.len()).into_bytes();
    needle.extend_from_slice(&pieces);
    assert!(created.torrent.windows(needle.len()).any(|w| w == needle));

    // The info-hash is the SHA-1 of the info dictionary exactly as written in the torrent.
    let info = &created.torrent[b"d4:info".len()..created.torrent.len() - 1];
    assert_eq!(<[u8; 20]>::from(Sha1::digest(info)), created.infohash);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_directory_is_listed_sorted_and_hashed_across_file_boundaries() {
    let tmp = tempfile::tempdir().unwrap();
    let engine = common::engine(tmp.path()).await;
    let root = tmp.path().join("album");
    common::random_file(&root.join("b/deeper/z.jpg"), 300_001);
    common::random_file(&root.join("a.txt"), 1_000_000);
    common::random_file(&root.join("b/c.mp4"), 2 * 1024 * 1024);
    fs::write(root.join("b/empty"), b"").unwrap();

    let created = engine.create_torrent(&root).await.unwrap();
    assert_eq!(created.name, "album");
    assert_eq!(
        created.files,
        vec![
            ("a.txt".to_owned(), 1_000_000),
            ("b/c.mp4".to_owned(), 2 * 1024 * 1024),
            ("b/deeper/z.jpg".to_owned(), 300_001),
            ("b/empty".to_owned(), 0),
        ]
    );

    let mut all = fs::read(root.join("a.txt")).unwrap();
    all.extend(fs::read(root.join("b/c.mp4")).unwrap());
    all.extend(fs::read(root.join("b/deeper/z.jpg")).unwrap());
    let pieces = expected_pieces(&all, created.piece_length as usize);
    assert!(created.torrent.windows(pieces.len()).any(|w| w == pieces));

    // Same content, same torrent: nothing depends on directory listing order or time.
    let again = engine.create_torrent(&root).await.unwrap();
    assert_eq!(again, created);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpublishable_content_is_refused_with_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let engine = common::engine(tmp.path()).await;
    assert!(
        engine
            .create_torrent(&tmp.path().join("missing"))
            .await
            .is_err()
    );
    let empty = tmp.path().join("empty.bin");
    fs::write(&empty, b"").unwrap();
    assert!(engine.create_torrent(&empty).await.is_err());
    engine.shutdown().await;
}
