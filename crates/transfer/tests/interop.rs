//! Interoperability with an independent BitTorrent implementation: libtorrent-rasterbar, driven by
//! the reference scripts in shared/interop (Debian's python3-libtorrent, loopback only).
//!
//! These tests fail (they never skip) when libtorrent is missing: install it with
//! `apt-get install -y python3-libtorrent`.
// Test set-up helpers panic on failure: that is the test failing.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::{STEP, magnet};
use kolokol_transfer::FetchSource;
use tokio::time::timeout;

const PYTHON: &str = "/usr/bin/python3";

/// The interop scripts folder, after checking that libtorrent can be imported.
fn interop() -> PathBuf {
    let dir = common::interop_dir();
    assert!(
        dir.join("lt_node.py").is_file(),
        "interop scripts not found in {dir:?}: set KOLOKOL_INTEROP_DIR to the shared/interop folder"
    );
    let ok = Command::new(PYTHON)
        .args(["-c", "import libtorrent"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{PYTHON} cannot import libtorrent: install python3-libtorrent (apt-get install -y python3-libtorrent)"
    );
    dir
}

fn free_port() -> u16 {
    // libtorrent binds TCP and UDP on its port: find one free for both.
    for _ in 0..100 {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port on 127.0.0.1");
}

/// A child process that is killed when the test ends, whatever happens.
struct Script(Child);

impl Drop for Script {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a libtorrent seeder and waits until it listens.
fn lt_seed(dir: &Path, torrent: &Path, save: &Path, port: u16) -> Script {
    let mut child = Command::new(PYTHON)
        .arg(dir.join("lt_node.py"))
        .args(["seed", "--lifetime", "120", "--port", &port.to_string()])
        .arg("--torrent")
        .arg(torrent)
        .arg("--save")
        .arg(save)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let script = Script(child);
    loop {
        let line = lines
            .next()
            .expect("libtorrent seeder exited early")
            .unwrap();
        if line.contains("listening") {
            break;
        }
    }
    // Keep draining its output so that it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    script
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_downloads_a_magnet_seeded_by_kolokol() {
    let dir = interop();
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
    let mut leech = Command::new(PYTHON);
    leech
        .arg(dir.join("lt_node.py"))
        .args(["leech", "--tcp-only", "--timeout", "60", "--magnet", &uri])
        .args(["--port", &free_port().to_string()])
        .args(["--peer", &seeder.listen_addr().to_string()])
        .arg("--save")
        .arg(&save)
        .arg("--verify")
        .arg(&path);
    let out = tokio::task::spawn_blocking(move || leech.output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("PASS"),
        "libtorrent leech failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        fs::read(save.join("report video.mp4")).unwrap(),
        fs::read(&path).unwrap()
    );
    seeder.shutdown().await;
}

/// Makes a v1 torrent with libtorrent's own creator.
fn lt_make_torrent(dir: &Path, file: &Path, out: &Path) {
    let status = Command::new(PYTHON)
        .arg(dir.join("make_torrent.py"))
        .arg(file)
        .arg(out)
        .args(["--mode", "v1"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "make_torrent.py failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kolokol_downloads_from_a_libtorrent_seeder_by_magnet_and_by_torrent() {
    let dir = interop();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("lt-src");
    let path = src.join("archive.tar");
    common::random_file(&path, 3 * 1024 * 1024 + 4321);
    let torrent_path = tmp.path().join("archive.torrent");
    lt_make_torrent(&dir, &path, &torrent_path);
    let torrent = fs::read(&torrent_path).unwrap();
    let port = free_port();
    let _seed = lt_seed(&dir, &torrent_path, &src, port);
    let peer = format!("127.0.0.1:{port}").parse().unwrap();

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
