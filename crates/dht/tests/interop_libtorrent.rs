//! Interoperability with libtorrent's DHT (Debian's python3-libtorrent) on 127.0.0.1, both ways:
//!
//! - a libtorrent node given only a kolokol-dht node as its bootstrap joins the DHT through it (which needs
//!   its 2-byte transaction ids answered) and finds a peer that a kolokol-dht node announced;
//! - a kolokol-dht node joins a DHT of libtorrent nodes, finds a peer libtorrent announced, reads a BEP 44
//!   item libtorrent put, and puts one that libtorrent reads.
//!
//! The Python side is `crates/testkit/peers/dht_libtorrent.py`. The tests fail (never skip) without
//! libtorrent, saying how to install it.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use kolokol_dht::{Config, Dht, Id, MutableItem};

const PYTHON: &str = "/usr/bin/python3";

/// A running `dht_libtorrent.py`, killed when dropped.
struct Libtorrent {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    ports: Vec<u16>,
}

impl Libtorrent {
    fn start(nodes: usize, bootstrap: Option<SocketAddrV4>) -> Libtorrent {
        let ok = Command::new(PYTHON)
            .args(["-c", "import libtorrent"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "{PYTHON} cannot import libtorrent: apt-get install -y python3-libtorrent"
        );
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testkit/peers/dht_libtorrent.py");
        let mut command = Command::new(PYTHON);
        command
            .arg(script)
            .args(["--nodes", &nodes.to_string(), "--lifetime", "150"]);
        if let Some(b) = bootstrap {
            command.args(["--bootstrap", &b.to_string()]);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                eprintln!("libtorrent: {line}");
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut lt = Libtorrent {
            child,
            stdin,
            lines,
            ports: Vec::new(),
        };
        let ready = lt.line();
        let ports = ready
            .strip_prefix("READY ")
            .unwrap_or_else(|| panic!("libtorrent did not start: {ready}"));
        lt.ports = ports
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .collect();
        lt
    }

    fn line(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(90))
            .expect("no answer from dht_libtorrent.py")
    }

    fn ask(&mut self, command: &str) -> String {
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
        self.line()
    }

    fn addrs(&self) -> Vec<SocketAddrV4> {
        self.ports
            .iter()
            .map(|p| SocketAddrV4::new(Ipv4Addr::LOCALHOST, *p))
            .collect()
    }
}

impl Drop for Libtorrent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config() -> Config {
    common::loopback_config(Duration::from_millis(800))
}

async fn kolokol_net(count: usize) -> Vec<Dht> {
    common::loopback_net(count, &config()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_enters_the_dht_through_a_kolokol_node_and_finds_a_peer() {
    let nodes = kolokol_net(6).await;
    let info_hash = Id([0x17; 20]);
    assert!(nodes[4].announce_peer(info_hash, Some(4711)).await.unwrap() >= 3);
    let entry = nodes[0].local_addr();
    let answer = tokio::task::spawn_blocking(move || {
        let mut lt = Libtorrent::start(1, Some(entry));
        lt.ask(&format!("get_peers {} 4711 60", hex::encode(info_hash.0)))
    })
    .await
    .unwrap();
    assert_eq!(answer, "FOUND");
    let info = nodes[0].info().await.unwrap();
    assert!(
        info.reached,
        "the kolokol node answered libtorrent's queries"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kolokol_finds_peers_and_items_among_libtorrent_nodes() {
    let info_hash = Id([0x71; 20]);
    let seed = [0x21u8; 32];
    let key = SigningKey::from_bytes(&seed);
    let pk = key.verifying_key().to_bytes();
    let mut lt = tokio::task::spawn_blocking(|| Libtorrent::start(5, None))
        .await
        .unwrap();
    let (lt, put) = tokio::task::spawn_blocking(move || {
        let ok = lt.ask(&format!("announce {}", hex::encode(info_hash.0)));
        assert_eq!(ok, format!("OK {}", lt.ports[0]));
        let put = lt.ask(&format!(
            "put {} {} {} {}",
            hex::encode(seed),
            hex::encode(pk),
            hex::encode(b"lt"),
            hex::encode(b"from libtorrent")
        ));
        (lt, put)
    })
    .await
    .unwrap();
    assert!(put.starts_with("PUT ") && put != "PUT 0", "{put}");

    let ours = Dht::bind(
        SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0),
        config(),
        &lt.addrs(),
    )
    .await
    .unwrap();
    // libtorrent re-announces every 5 s; a few rounds are allowed for it to reach the closest nodes.
    let want = lt.addrs()[0];
    let mut found = Vec::new();
    for _ in 0..20 {
        found = ours.get_peers(info_hash).await.unwrap();
        if found.contains(&want) {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(found.contains(&want), "{found:?}");

    let items = ours.get_mutable(pk, b"lt").await.unwrap();
    let item = items.first().expect("libtorrent's item");
    assert_eq!(item.value, b"15:from libtorrent");

    let mine = MutableItem::sign(
        &key,
        b"12:from kolokol".to_vec(),
        item.seq + 1,
        b"kk".to_vec(),
    )
    .unwrap();
    assert!(ours.put_mutable(mine, None).await.unwrap() >= 2);
    let answer = tokio::task::spawn_blocking(move || {
        let mut lt = lt;
        lt.ask(&format!(
            "get {} {} {} 60",
            hex::encode(pk),
            hex::encode(b"kk"),
            hex::encode(b"from kolokol")
        ))
    })
    .await
    .unwrap();
    assert!(answer.starts_with("ITEM "), "{answer}");
}
