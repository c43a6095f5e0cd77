//! Interoperability through the DHT only: independent BitTorrent clients (Debian's libtorrent and aria2) find a
//! kolokol seeder with no address given to them, fetch the metadata by BEP 9 and then the data; kolokol finds a
//! libtorrent seeder the same way.
//!
//! Every test runs its own private mainline DHT of libtorrent nodes on 127.0.0.1 (`tests/interop/dht_net.py`).
//! kolokol nodes join it (`--bootstrap`); libtorrent and aria2 start from the libtorrent nodes (the other
//! way round, a kolokol node as their only entry point, is `interop_dht_entry.rs`). Magnets carry
//! no peer (`x.pe`) and no tracker: the DHT is the only way to the seeder. Nothing leaves loopback: the DHT nodes
//! bind 127.0.0.1 and know only each other, aria2 gets a fresh routing-table file, no trackers, no LPD.
//!
//! These tests fail, not skip, when python3-libtorrent or aria2c is missing: scripts/test.sh installs both.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;

const PYTHON: &str = "/usr/bin/python3";

/// A private DHT of libtorrent nodes on 127.0.0.1, run by `tests/interop/dht_net.py`. Killed when dropped (and
/// the script exits by itself when its stdin closes).
struct LtDht {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    /// `127.0.0.1:PORT` of every node.
    nodes: Vec<String>,
}

impl LtDht {
    fn start() -> LtDht {
        require_libtorrent();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/dht_net.py");
        let mut child = Command::new(PYTHON)
            .arg(&script)
            .arg("--interop-dir")
            .arg(interop_dir())
            .args(["--nodes", "6", "--lifetime", "300"])
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
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let mut dht = LtDht {
            child,
            stdin,
            lines,
            nodes: Vec::new(),
        };
        let ready = dht.wait_line(Duration::from_secs(60), |l| l.starts_with("READY "));
        let ready = ready.unwrap_or_else(|seen| {
            panic!("the libtorrent DHT testnet did not start; it printed:\n{seen}")
        });
        dht.nodes = ready
            .split_whitespace()
            .skip(1)
            .map(str::to_owned)
            .collect();
        assert!(dht.nodes.len() >= 2, "{ready}");
        dht
    }

    /// `--bootstrap` value for a kolokol node: the first two testnet nodes.
    fn bootstrap(&self) -> String {
        self.nodes[..2].join(",")
    }

    /// Ask the libtorrent DHT until it returns 127.0.0.1:`port` for `infohash`: proof that the announcement
    /// reached the independent DHT.
    fn wait_announced(&mut self, infohash: &str, port: u16, who: &str) {
        writeln!(self.stdin, "find {infohash} {port}").unwrap();
        self.stdin.flush().unwrap();
        let found = format!("FOUND {infohash} ");
        if let Err(seen) = self.wait_line(Duration::from_secs(90), |l| l.starts_with(&found)) {
            panic!(
                "{who}'s DHT announcement of {infohash} (port {port}) never reached the libtorrent DHT within 90 s; \
                 the testnet printed:\n{seen}"
            );
        }
    }

    /// The first line matching `want` within `limit`, or every line seen.
    fn wait_line(&self, limit: Duration, want: impl Fn(&str) -> bool) -> Result<String, String> {
        let deadline = Instant::now() + limit;
        let mut seen = String::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if want(&line) => return Ok(line),
                Ok(line) => {
                    seen.push_str(&line);
                    seen.push('\n');
                }
                Err(_) => return Err(seen),
            }
        }
    }
}

impl Drop for LtDht {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child process killed when dropped (a seeder must not outlive its test).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn require_libtorrent() {
    let script = interop_dir().join("lt_node.py");
    assert!(
        script.exists(),
        "reference scripts not found at {} (set KOLOKOL_INTEROP_DIR)",
        interop_dir().display()
    );
    let probe = Command::new(PYTHON)
        .args(["-c", "import libtorrent"])
        .output();
    assert!(
        probe.is_ok_and(|o| o.status.success()),
        "{PYTHON} cannot import libtorrent: install python3-libtorrent (scripts/test.sh does)"
    );
}

fn require_aria2() {
    let probe = Command::new("aria2c").arg("--version").output();
    assert!(
        probe.is_ok_and(|o| o.status.success()),
        "aria2c is not installed: install aria2 (scripts/test.sh does)"
    );
}

/// A port free for TCP and UDP on 127.0.0.1 (libtorrent and aria2 bind both).
fn free_port() -> u16 {
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A kolokol node in the libtorrent testnet, its DHT bootstrapped.
fn kolokol_in(dht: &LtDht, dir: &Path) -> NodeProcess {
    let node = NodeProcess::start_with(dir, &["--bootstrap", &dht.bootstrap()]);
    let joined = wait_for(Duration::from_secs(60), || {
        (node.json(&["status"])["dht_nodes"].as_u64().unwrap_or(0) > 0).then_some(())
    });
    assert!(
        joined.is_some(),
        "kolokol never joined the libtorrent DHT\n{}",
        node.log()
    );
    node
}

/// kolokol publishes `file` in the testnet; returns the node, the magnet and the info-hash, once the libtorrent
/// DHT returns the node's BitTorrent address for it.
fn publish_in(dht: &mut LtDht, root: &Path, file: &Path) -> (NodeProcess, String, String) {
    let seeder = kolokol_in(dht, &root.join("seeder"));
    let published = seeder.json(&["publish", file.to_str().unwrap(), "--title", "Через DHT"]);
    let magnet = published["magnet"].as_str().unwrap().to_owned();
    let infohash = published["infohash"].as_str().unwrap().to_owned();
    assert!(
        !magnet.contains("x.pe") && !magnet.contains("tr="),
        "the magnet must name no peer and no tracker, or the DHT would not be the only way: {magnet}"
    );
    let bt_port: u16 = seeder.json(&["status"])["bt_addr"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    dht.wait_announced(&infohash, bt_port, "kolokol");
    (seeder, magnet, infohash)
}

#[test]
fn libtorrent_downloads_a_kolokol_magnet_found_through_the_dht_only() {
    let mut dht = LtDht::start();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("article.bin");
    random_file(&file, 5 * 1024 * 1024 + 4321, 71);
    let (seeder, magnet, _) = publish_in(&mut dht, tmp.path(), &file);

    let save = tmp.path().join("lt");
    std::fs::create_dir_all(&save).unwrap();
    // No --peer: libtorrent joins the testnet and looks the info-hash up itself. TCP, as kolokol's engine speaks.
    let out = Command::new("timeout")
        .args(["150", PYTHON])
        .arg(interop_dir().join("lt_node.py"))
        .args(["leech", "--magnet", &magnet, "--save"])
        .arg(&save)
        .args(["--port", &free_port().to_string(), "--tcp-only"])
        .args(["--dht-bootstrap", &dht.bootstrap(), "--timeout", "120"])
        // Look the info-hash up again every 5 s, not every 15 minutes, in case the first lookup was early.
        .args(["--set", "dht_announce_interval=5"])
        .arg("--verify")
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("PASS"),
        "libtorrent did not download the kolokol magnet through the DHT:\n{stdout}\n{}\nseeder log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        seeder.log()
    );
    assert!(
        stdout.contains("metadata received"),
        "libtorrent should have fetched the metadata from kolokol (BEP 9):\n{stdout}"
    );
    assert_eq!(sha256_file(&save.join("article.bin")), sha256_file(&file));
}

#[test]
fn aria2_downloads_a_kolokol_magnet_found_through_the_dht_only() {
    require_aria2();
    let mut dht = LtDht::start();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("report.bin");
    random_file(&file, 5 * 1024 * 1024 + 777, 72);
    let (seeder, magnet, _) = publish_in(&mut dht, tmp.path(), &file);
    let bt_addr = seeder.json(&["status"])["bt_addr"]
        .as_str()
        .unwrap()
        .to_owned();

    let save = tmp.path().join("aria2");
    let log = tmp.path().join("aria2.log");
    let out = Command::new("timeout")
        .arg("150")
        .args(aria2_args(&save, &log, &dht.nodes[0], tmp.path()))
        .arg(&magnet)
        .output()
        .unwrap();
    let aria2_log = std::fs::read_to_string(&log).unwrap_or_default();
    let got = save.join("report.bin");
    assert!(
        out.status.success() && got.exists(),
        "aria2 did not download the kolokol magnet through the DHT (exit {:?}):\n{}\n{}\naria2 log (tail):\n{}\n\
         seeder log:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        tail(&aria2_log, 60),
        seeder.log()
    );
    assert_eq!(sha256_file(&got), sha256_file(&file));
    // aria2 learned the seeder from the DHT (its only source) and fetched the metadata from it by BEP 9.
    assert!(
        aria2_log.contains("DHTPeerLookupTask") && aria2_log.contains("Got ut_metadata"),
        "aria2's log shows no DHT peer lookup or no ut_metadata:\n{}",
        tail(&aria2_log, 60)
    );
    assert!(
        aria2_log.contains(&format!("Connecting to {bt_addr}")),
        "aria2 never connected to the kolokol seeder {bt_addr}"
    );
    let outside = addresses_off_loopback(&aria2_log);
    assert!(
        outside.is_empty(),
        "aria2 talked to addresses off loopback: {outside:?}"
    );
}

/// Peer and DHT addresses in aria2's log (`Connecting to [the peer ]A[:P]`, `Remote:A(P)`) that are not 127.0.0.1.
fn addresses_off_loopback(log: &str) -> Vec<String> {
    let mut outside = Vec::new();
    for marker in ["Connecting to ", "Remote:"] {
        for (at, _) in log.match_indices(marker) {
            let rest = &log[at + marker.len()..];
            let rest = rest.strip_prefix("the peer ").unwrap_or(rest);
            let host: String = rest
                .chars()
                .take_while(|c| c.is_ascii_hexdigit() || *c == '.' || *c == ':')
                .collect();
            let host = host.split(':').next().unwrap_or("").to_owned();
            if host != "127.0.0.1" {
                outside.push(rest.chars().take(40).collect());
            }
        }
    }
    outside
}

/// aria2c restricted to a private DHT on loopback: no config file, a fresh DHT routing table (the default one in
/// ~/.cache may hold public nodes), no IPv6 DHT, no LPD, no peer exchange, sockets bound to 127.0.0.1, and a hard
/// stop. The magnet names no tracker, so the DHT entry point is the only address aria2 starts from.
fn aria2_args(save: &Path, log: &Path, entry_point: &str, tmp: &Path) -> Vec<String> {
    let path = |p: PathBuf| p.to_str().unwrap().to_owned();
    vec![
        "aria2c".into(),
        "--no-conf=true".into(),
        format!("--dir={}", path(save.to_path_buf())),
        "--enable-dht=true".into(),
        "--enable-dht6=false".into(),
        "--disable-ipv6=true".into(),
        format!("--dht-entry-point={entry_point}"),
        format!("--dht-listen-port={}", free_port()),
        format!("--dht-file-path={}", path(tmp.join("aria2-dht.dat"))),
        format!("--listen-port={}", free_port()),
        "--interface=127.0.0.1".into(),
        "--bt-enable-lpd=false".into(),
        "--enable-peer-exchange=false".into(),
        "--bt-save-metadata=false".into(),
        "--seed-time=0".into(),
        "--file-allocation=none".into(),
        "--summary-interval=0".into(),
        "--stop=120".into(),
        format!("--log={}", path(log.to_path_buf())),
        "--log-level=info".into(),
    ]
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[test]
fn kolokol_downloads_a_libtorrent_torrent_found_through_the_dht_only() {
    let mut dht = LtDht::start();
    let tmp = tempfile::tempdir().unwrap();
    let content = tmp.path().join("lt-content");
    std::fs::create_dir_all(&content).unwrap();
    let file = content.join("lecture.bin");
    random_file(&file, 6 * 1024 * 1024 + 99, 73);
    let torrent = tmp.path().join("lecture.torrent");
    let made = Command::new(PYTHON)
        .arg(interop_dir().join("make_torrent.py"))
        .arg(&file)
        .arg(&torrent)
        .args(["--mode", "v1", "--piece-kib", "256"])
        .output()
        .unwrap();
    let made_text = String::from_utf8_lossy(&made.stdout).into_owned();
    assert!(
        made.status.success(),
        "make_torrent.py failed:\n{made_text}"
    );
    let infohash = made_text
        .lines()
        .find_map(|l| l.strip_prefix("v1 "))
        .unwrap()
        .trim()
        .to_owned();

    let seed_port = free_port();
    let seed_log = tmp.path().join("lt-seed.log");
    let _seeder = Killed(
        Command::new("timeout")
            .args(["200", PYTHON])
            .arg(interop_dir().join("lt_node.py"))
            .args(["seed", "--torrent"])
            .arg(&torrent)
            .arg("--save")
            .arg(&content)
            .args(["--port", &seed_port.to_string(), "--tcp-only"])
            .args(["--dht-bootstrap", &dht.bootstrap(), "--lifetime", "180"])
            // Announce every 5 s (the default is 15 minutes) so the first announcement follows the DHT's start.
            .args(["--set", "dht_announce_interval=5"])
            .stdout(Stdio::from(std::fs::File::create(&seed_log).unwrap()))
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    dht.wait_announced(&infohash, seed_port, "the libtorrent seeder");

    let node = kolokol_in(&dht, &tmp.path().join("kolokol"));
    // The plain magnet: no peer, no tracker. kolokol asks the DHT for peers.
    let magnet = format!("magnet:?xt=urn:btih:{infohash}&dn=lecture.bin");
    let out_dir = tmp.path().join("got");
    let got = node.cli(&[
        "--json",
        "get",
        &magnet,
        "-o",
        out_dir.to_str().unwrap(),
        "--timeout",
        "120",
    ]);
    assert!(
        got.status.success(),
        "kolokol get of the libtorrent torrent failed: {}\n{}\nnode log:\n{}\nseeder:\n{}",
        String::from_utf8_lossy(&got.stdout),
        String::from_utf8_lossy(&got.stderr),
        node.log(),
        std::fs::read_to_string(&seed_log).unwrap_or_default()
    );
    let view: serde_json::Value = serde_json::from_slice(&got.stdout).unwrap();
    assert_eq!(view["finished"], true, "{view}");
    assert_eq!(
        sha256_file(&out_dir.join("lecture.bin")),
        sha256_file(&file)
    );
    assert!(
        node.log().contains("peers found through the DHT"),
        "kolokol should have found the seeder through the DHT:\n{}",
        node.log()
    );
}
