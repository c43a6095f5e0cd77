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

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{NodeProcess, interop_dir, random_file, sha256_file, wait_for};

const PYTHON: &str = "/usr/bin/python3";

/// A port free for TCP and UDP on 127.0.0.1.
fn free_port() -> u16 {
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

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
    let out = Command::new("timeout")
        .args(["150", PYTHON])
        .arg(interop_dir().join("lt_node.py"))
        .args(["leech", "--magnet", &magnet, "--save"])
        .arg(&save)
        .args(["--port", &free_port().to_string(), "--tcp-only"])
        .args(["--dht-bootstrap", &dht_addr, "--timeout", "120"])
        .args(["--set", "dht_announce_interval=5"])
        .arg("--verify")
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("PASS"),
        "libtorrent did not download the kolokol magnet through the kolokol DHT node:\n{stdout}\n{}\nseeder log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        seeder.log()
    );
    assert!(
        stdout.contains("metadata received"),
        "no BEP 9 metadata from kolokol:\n{stdout}"
    );
    assert_eq!(sha256_file(&save.join("article.bin")), sha256_file(&file));
}

#[test]
fn aria2_enters_the_dht_through_a_kolokol_node_and_downloads_a_kolokol_magnet() {
    let probe = Command::new("aria2c").arg("--version").output();
    assert!(
        probe.is_ok_and(|o| o.status.success()),
        "aria2c is not installed: install aria2"
    );
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("report.bin");
    random_file(&file, 3 * 1024 * 1024 + 777, 82);
    let (_entry, seeder, dht_addr, magnet) = kolokol_network(tmp.path(), &file);

    let save = tmp.path().join("aria2");
    let log = tmp.path().join("aria2.log");
    let path = |p: PathBuf| p.to_str().unwrap().to_owned();
    let out = Command::new("timeout")
        .arg("150")
        .arg("aria2c")
        .args([
            "--no-conf=true".to_owned(),
            format!("--dir={}", path(save.clone())),
            "--enable-dht=true".into(),
            "--enable-dht6=false".into(),
            "--disable-ipv6=true".into(),
            format!("--dht-entry-point={dht_addr}"),
            format!("--dht-listen-port={}", free_port()),
            format!("--dht-file-path={}", path(tmp.path().join("aria2-dht.dat"))),
            format!("--listen-port={}", free_port()),
            "--interface=127.0.0.1".into(),
            "--bt-enable-lpd=false".into(),
            "--enable-peer-exchange=false".into(),
            "--bt-save-metadata=false".into(),
            "--seed-time=0".into(),
            "--file-allocation=none".into(),
            "--summary-interval=0".into(),
            "--stop=120".into(),
            format!("--log={}", path(log.clone())),
            "--log-level=info".into(),
        ])
        .arg(&magnet)
        .output()
        .unwrap();
    let aria2_log = std::fs::read_to_string(&log).unwrap_or_default();
    let tail: Vec<&str> = aria2_log.lines().rev().take(60).collect();
    assert!(
        out.status.success() && save.join("report.bin").is_file(),
        "aria2 did not download the kolokol magnet through the kolokol DHT node (exit {:?}):\n{}\naria2 log \
         (tail, newest first):\n{}\nseeder log:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        tail.join("\n"),
        seeder.log()
    );
    assert!(
        aria2_log.contains("DHTPeerLookupTask") && aria2_log.contains("Got ut_metadata"),
        "aria2 did not find the seeder through the DHT or got no metadata from it"
    );
    assert_eq!(sha256_file(&save.join("report.bin")), sha256_file(&file));
}
