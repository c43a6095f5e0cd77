//! Interoperability with an independent DHT implementation: kolokol nodes join a private loopback DHT of
//! Debian's libtorrent nodes (python3-libtorrent). libtorrent finds a kolokol rendezvous announce with
//! get_peers and reads a kolokol feed head with BEP 44 `dht_get_mutable_item`; kolokol reads an item that
//! libtorrent put.
//!
//! Here libtorrent nodes form the network and kolokol nodes join it; the other direction (libtorrent entering
//! the DHT through a kolokol node) is `crates/dht/tests/interop_libtorrent.rs`.
//!
//! The Python side is `tests/interop/lt_discovery.py`; it imports the shared helpers from
//! `$KOLOKOL_INTEROP_DIR`, else `<workspace>/../shared/interop`.

// Helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{NETWORK, init_tracing, private_node};
use kolokol_core::{InfoHash, Keypair, RecordId};
use kolokol_discovery::feed::{encode_feed_value, feed_salt};
use kolokol_discovery::{FeedEntry, FeedHead};

const PYTHON: &str = "/usr/bin/python3";

fn interop_dir() -> PathBuf {
    match std::env::var_os("KOLOKOL_INTEROP_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/interop"),
    }
}

/// Fails (never skips) when libtorrent or the shared helpers are missing, saying how to fix it.
fn require_libtorrent() {
    let dir = interop_dir();
    assert!(
        dir.join("ltutil.py").is_file(),
        "interop helpers not found in {}: set KOLOKOL_INTEROP_DIR",
        dir.display()
    );
    let ok = Command::new(PYTHON)
        .args(["-c", "import libtorrent"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{PYTHON} cannot import libtorrent: install it with `apt-get install -y python3-libtorrent`"
    );
}

/// A running `lt_discovery.py`: a libtorrent DHT on loopback, killed when dropped.
struct LibtorrentDht {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    transcript: Arc<Mutex<String>>,
    bootstrap: SocketAddrV4,
}

impl LibtorrentDht {
    fn start(args: &[String]) -> LibtorrentDht {
        require_libtorrent();
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/lt_discovery.py");
        let mut child = Command::new(PYTHON)
            .arg(script)
            .args(args)
            .env("KOLOKOL_INTEROP_DIR", interop_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let transcript = Arc::new(Mutex::new(String::new()));
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let log = transcript.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                log.lock().unwrap().push_str(&format!("{line}\n"));
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = child.stderr.take().unwrap();
        let log = transcript.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                log.lock().unwrap().push_str(&format!("stderr: {line}\n"));
            }
        });
        let mut dht = LibtorrentDht {
            child,
            stdin,
            lines,
            transcript,
            bootstrap: SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 1),
        };
        let ready = dht.wait_for("READY ", Duration::from_secs(60));
        dht.bootstrap = ready.trim().parse().unwrap();
        assert!(dht.bootstrap.ip().is_loopback());
        dht
    }

    /// Waits for a line starting with `prefix` and returns the rest; fails the test on `FAIL:` or timeout.
    fn wait_for(&mut self, prefix: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        tokio::task::block_in_place(|| {
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match self.lines.recv_timeout(left) {
                    Ok(line) if line.starts_with(prefix) => return line[prefix.len()..].to_owned(),
                    Ok(line) if line.starts_with("FAIL:") => break,
                    Ok(_) => continue,
                    Err(_) => break,
                }
            }
            let _ = self.child.kill();
            std::thread::sleep(Duration::from_millis(200));
            panic!(
                "libtorrent side did not print {prefix:?}:\n{}",
                self.transcript.lock().unwrap()
            );
        })
    }

    fn say(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }
}

impl Drop for LibtorrentDht {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "STOP");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_finds_a_kolokol_rendezvous_announce() {
    init_tracing();
    let infohash = InfoHash::rendezvous(NETWORK);
    let mut lt = LibtorrentDht::start(&[
        "get-peers".into(),
        "--infohash".into(),
        infohash.to_string(),
        "--want-port".into(),
        "45555".into(),
    ]);
    let node = private_node(&[lt.bootstrap]).await;
    node.announce_rendezvous(45_555).await.unwrap();
    lt.say("GO");
    let pass = lt.wait_for("PASS:", Duration::from_secs(90));
    assert!(pass.contains("45555"), "{pass}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_reads_a_kolokol_feed_head() {
    init_tracing();
    let author = Keypair::from_secret_bytes([51; 32]);
    let head = FeedHead {
        latest: RecordId([0xab; 32]),
        count: 12,
    };
    let mut lt = LibtorrentDht::start(&[
        "get-item".into(),
        "--pk".into(),
        author.public().to_string(),
        "--salt-hex".into(),
        hex::encode(feed_salt(NETWORK)),
        "--want-value-hex".into(),
        hex::encode(encode_feed_value(NETWORK, &head).unwrap()),
        "--want-seq".into(),
        "1000".into(),
    ]);
    let node = private_node(&[lt.bootstrap]).await;
    let put = node.put_feed(&author, head, 1_000).await.unwrap();
    assert!(put.stored_at > 0);
    lt.say("GO");
    lt.wait_for("PASS:", Duration::from_secs(90));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kolokol_reads_an_item_that_libtorrent_put() {
    init_tracing();
    let seed = [52u8; 32];
    let author = Keypair::from_secret_bytes(seed);
    let head = FeedHead {
        latest: RecordId([0xcd; 32]),
        count: 3,
    };
    let mut lt = LibtorrentDht::start(&[
        "put-item".into(),
        "--seed".into(),
        hex::encode(seed),
        "--salt-hex".into(),
        hex::encode(feed_salt(NETWORK)),
        "--value-hex".into(),
        hex::encode(encode_feed_value(NETWORK, &head).unwrap()),
    ]);
    lt.say("GO");
    let seq: i64 = lt
        .wait_for("SEQ ", Duration::from_secs(90))
        .trim()
        .parse()
        .unwrap();
    let pass = lt.wait_for("PASS:", Duration::from_secs(5));
    assert!(
        pass.contains(&author.public().to_string()),
        "libtorrent derived another public key: {pass}"
    );
    // A kolokol node that joins afterwards reads it from the libtorrent nodes.
    let node = private_node(&[lt.bootstrap]).await;
    assert_eq!(
        node.get_feed(author.public()).await,
        Some(FeedEntry { head, seq })
    );
}
