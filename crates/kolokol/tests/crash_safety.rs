//! Crash safety: a node is killed with SIGKILL in the middle of a publish, a download, a catalog sync and a bundle
//! import, then restarted. After each: SQLite's `integrity_check` is ok and every stored record validates, nothing
//! complete is lost, partial work resumes or is gone, no staging leftovers remain, and nothing is reported complete
//! with wrong bytes.
//!
//! "In the middle" is found from progress the node shows (bytes in its staging folder, a transfer's verified bytes,
//! the catalog's record count), never from a fixed sleep.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
mod hostile;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use common::*;
use hostile::*;
use kolokol_core::keys::Keypair;
use kolokol_wire::{Message, WireConfig};

/// Run a CLI command against `node` in the background.
fn spawn_cli(node: &NodeProcess, args: &[&str]) -> Child {
    node.cli_command(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Bytes under the `.staging*` entries of the node's content folder (None when there are none).
fn staging_bytes(data_dir: &Path) -> Option<u64> {
    fn size(path: &Path) -> u64 {
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => std::fs::read_dir(path)
                .map(|d| d.flatten().map(|e| size(&e.path())).sum())
                .unwrap_or(0),
            Ok(m) => m.len(),
            Err(_) => 0,
        }
    }
    let entries: Vec<PathBuf> = std::fs::read_dir(data_dir.join("content"))
        .ok()?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".staging"))
        .map(|e| e.path())
        .collect();
    (!entries.is_empty()).then(|| entries.iter().map(|p| size(p)).sum())
}

/// Wait (bounded, polling often) until `check` holds; panics with `what` otherwise.
fn wait_fast(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !check() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn transfer(node: &NodeProcess, infohash: &str) -> Option<serde_json::Value> {
    let (code, body) = http_get(node, &format!("/api/v1/transfers/{infohash}")).ok()?;
    (code == 200).then(|| serde_json::from_str(&body).unwrap())
}

fn records(node: &NodeProcess) -> u64 {
    let (_, body) = http_get(node, "/api/v1/status").unwrap();
    serde_json::from_str::<serde_json::Value>(&body).unwrap()["records"]
        .as_u64()
        .unwrap()
}

fn wire_addr(node: &NodeProcess) -> String {
    node.json(&["status"])["wire_addr"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn killed_during_publish_leaves_no_record_and_no_staging() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    let node = NodeProcess::start(&dir);
    let file = tmp.path().join("big.bin");
    random_file(&file, 200 * 1024 * 1024, 1);

    let mut publish = spawn_cli(
        &node,
        &["publish", file.to_str().unwrap(), "--title", "Big"],
    );
    wait_fast(Duration::from_secs(60), "the publish copy to start", || {
        staging_bytes(&dir).is_some_and(|b| b >= 10 * 1024 * 1024)
    });
    node.kill();
    let _ = publish.kill();
    let _ = publish.wait();
    assert!(
        staging_bytes(&dir).is_some(),
        "killed before staging was cleaned"
    );
    assert_eq!(check_catalog(&dir), 0, "a half-done publish left a record");
    assert!(
        torrent_states(&dir).is_empty(),
        "a half-done publish left a torrent row"
    );

    let node = NodeProcess::start(&dir);
    assert_eq!(
        staging_bytes(&dir),
        None,
        "staging leftovers survived a restart"
    );
    assert!(node.json(&["list"]).as_array().unwrap().is_empty());
    let again = node.json(&["publish", file.to_str().unwrap(), "--title", "Big"]);
    let path = PathBuf::from(again["path"].as_str().unwrap());
    assert_eq!(sha256_file(&path), sha256_file(&file));
    assert_eq!(check_catalog(&dir), 1);
}

#[test]
fn killed_during_a_download_keeps_its_metainfo_resumes_and_completes_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let seeder_dir = tmp.path().join("seeder");
    let seeder = NodeProcess::start_with(&seeder_dir, &["--upload-limit", "4M"]);
    let file = tmp.path().join("film.bin");
    random_file(&file, 32 * 1024 * 1024, 2);
    let published = seeder.json(&["publish", file.to_str().unwrap(), "--title", "Film"]);
    let id = published["id"].as_str().unwrap().to_owned();
    let infohash = published["infohash"].as_str().unwrap().to_owned();

    let dir = tmp.path().join("viewer");
    let viewer = NodeProcess::start(&dir);
    viewer.json(&["peer", "add", &wire_addr(&seeder)]);
    assert!(
        wait_for(Duration::from_secs(30), || viewer
            .has_record(&id)
            .then_some(()))
        .is_some()
    );
    let _ = viewer.cli(&["get", &id, "--timeout", "0"]);
    let total = 32 * 1024 * 1024u64;
    let mut had = 0;
    wait_fast(Duration::from_secs(60), "a tenth of the download", || {
        had = transfer(&viewer, &infohash).map_or(0, |t| t["have_bytes"].as_u64().unwrap());
        had >= total / 10
    });
    viewer.kill();
    assert_eq!(check_catalog(&dir), 1);
    assert_eq!(
        torrent_states(&dir),
        vec![(infohash.clone(), "downloading".to_owned())]
    );

    // Restarted: after the crash the partial data is checked in full, so every piece verified before the kill
    // is found again (none is fetched twice); the download is not reported complete before it is, and completes
    // intact.
    let viewer = NodeProcess::start(&dir);
    viewer.json(&["peer", "add", &wire_addr(&seeder)]);
    let mut first = None;
    wait_fast(
        Duration::from_secs(60),
        "the resumed download to report progress",
        || {
            first = transfer(&viewer, &infohash).filter(|t| t["have_bytes"].as_u64().unwrap() > 0);
            first.is_some()
        },
    );
    let first = first.unwrap();
    assert!(
        first["have_bytes"].as_u64().unwrap() >= had,
        "verified pieces were lost: {had} bytes before the kill, {first}"
    );
    assert_eq!(first["finished"], false, "{first}");
    // Complete only with the publisher's bytes.
    let done = viewer.json(&["get", &id, "--timeout", "120"]);
    assert_eq!(done["finished"], true);
    let path = PathBuf::from(done["path"].as_str().unwrap());
    assert_eq!(
        sha256_file(&path),
        sha256_file(&file),
        "resumed download differs"
    );
    assert_eq!(
        torrent_states(&dir),
        vec![(infohash, "complete".to_owned())]
    );
}

#[test]
fn killed_during_a_catalog_sync_keeps_a_valid_catalog_and_completes_the_sync() {
    const AUTHORS: usize = 40;
    const PER_AUTHOR: usize = 100;
    let total = (AUTHORS * PER_AUTHOR) as u64;
    let tmp = tempfile::tempdir().unwrap();
    let flags = ["--author-rate", "100000"];
    let source = NodeProcess::start_with(&tmp.path().join("source"), &flags);
    let source_wire: std::net::SocketAddr = wire_addr(&source).parse().unwrap();

    // Fill the source with thousands of records over the wire.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let key = Keypair::from_secret_bytes([31; 32]);
        let (mut reader, mut writer) = join(source_wire, &key, &WireConfig::for_network("kolokol"))
            .await
            .unwrap();
        for a in 0..AUTHORS {
            let author = Keypair::from_secret_bytes([a as u8 + 100; 32]);
            let batch = (0..PER_AUTHOR)
                .map(|i| record(&author, &format!("record {a}.{i}")).bytes().to_vec())
                .collect();
            writer
                .send(&Message::Records { records: batch })
                .await
                .unwrap();
        }
        round_trip(&mut reader, &mut writer, 1).await;
    });
    assert!(
        wait_for(Duration::from_secs(60), || (records(&source) == total)
            .then_some(()))
        .is_some(),
        "the source holds {} records, not {total}",
        records(&source)
    );

    let dir = tmp.path().join("receiver");
    let receiver = NodeProcess::start_with(&dir, &flags);
    let mut adding = spawn_cli(&receiver, &["peer", "add", &source_wire.to_string()]);
    wait_fast(Duration::from_secs(60), "the sync to be under way", || {
        records(&receiver) >= total / 10
    });
    receiver.kill();
    let _ = adding.wait();
    let kept = check_catalog(&dir);
    eprintln!("killed with {kept} of {total} records stored");

    let receiver = NodeProcess::start_with(&dir, &flags);
    receiver.json(&["peer", "add", &source_wire.to_string()]);
    let synced = wait_for(Duration::from_secs(120), || {
        (records(&receiver) == total).then_some(())
    });
    assert!(
        synced.is_some(),
        "sync did not complete after the restart: {} of {total}\n{}",
        records(&receiver),
        receiver.log()
    );
    assert_eq!(check_catalog(&dir) as u64, total);
}

#[test]
fn killed_during_a_bundle_import_leaves_nothing_half_imported() {
    let tmp = tempfile::tempdir().unwrap();
    let exporter = NodeProcess::start(&tmp.path().join("exporter"));
    let mut originals = std::collections::BTreeMap::new();
    for i in 0..3 {
        let f = tmp.path().join(format!("part{i}.bin"));
        random_file(&f, 48 * 1024 * 1024, 10 + i);
        let title = format!("Part {i}");
        exporter.json(&["publish", f.to_str().unwrap(), "--title", &title]);
        originals.insert(title, sha256_file(&f));
    }
    let bundle = tmp.path().join("stick.kolokol");
    exporter.json(&["bundle", "export", "-o", bundle.to_str().unwrap()]);
    drop(exporter);

    let dir = tmp.path().join("importer");
    let importer = NodeProcess::start(&dir);
    let mut import = spawn_cli(&importer, &["bundle", "import", bundle.to_str().unwrap()]);
    wait_fast(
        Duration::from_secs(120),
        "the import to be staging data",
        || staging_bytes(&dir).is_some_and(|b| b >= 10 * 1024 * 1024),
    );
    importer.kill();
    let _ = import.kill();
    let _ = import.wait();
    let kept = check_catalog(&dir);
    eprintln!("killed with {kept} records stored");

    let importer = NodeProcess::start(&dir);
    assert_eq!(
        staging_bytes(&dir),
        None,
        "staging leftovers survived a restart"
    );
    // Whatever the import committed before the kill is complete and correct; nothing else is there.
    assert_complete_and_intact(&importer, &originals);

    // Importing again brings everything, intact.
    importer.json(&["bundle", "import", bundle.to_str().unwrap()]);
    assert_eq!(importer.json(&["list"]).as_array().unwrap().len(), 3);
    assert_complete_and_intact(&importer, &originals);
    assert_eq!(check_catalog(&dir), 3);
}

/// Every publication `node` lists has its data complete, with the bytes of the original of that title, and every
/// torrent row marked complete belongs to a listed publication.
fn assert_complete_and_intact(
    node: &NodeProcess,
    originals: &std::collections::BTreeMap<String, String>,
) {
    let listed = node.json(&["list"]);
    let mut infohashes = Vec::new();
    for r in listed.as_array().unwrap() {
        let title = r["title"].as_str().unwrap();
        let id = r["id"].as_str().unwrap();
        infohashes.push(r["infohash"].as_str().unwrap().to_owned());
        let t = transfer(node, r["infohash"].as_str().unwrap());
        let complete = t.as_ref().is_some_and(|t| t["finished"] == true);
        if complete {
            let got = node.json(&["get", id, "--timeout", "30"]);
            let path = PathBuf::from(got["path"].as_str().unwrap());
            assert_eq!(
                &sha256_file(&path),
                &originals[title],
                "{title} is complete with wrong bytes"
            );
        }
    }
    for (infohash, state) in torrent_states(&node.data_dir) {
        if state == "complete" {
            assert!(
                infohashes.contains(&infohash),
                "complete data without a record: {infohash}"
            );
        }
    }
}
