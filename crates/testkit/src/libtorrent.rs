//! Debian's libtorrent as an independent BitTorrent implementation, driven by `peers/lt_peer.py` (seeder,
//! leecher, torrent maker) and `peers/lt_dht.py` (a private DHT testnet), all on 127.0.0.1.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::time::Duration;

use crate::peers::{self, Killed, Lines, Outcome, PeerError};

/// Makes a v1 torrent of `file` (no tracker) with libtorrent's own creator; returns its info-hash in hex.
pub fn make_torrent(file: &Path, out: &Path, piece_kib: u32) -> Result<String, PeerError> {
    let what = "lt_peer.py make-torrent";
    let output = peers::python("lt_peer.py")
        .arg("make-torrent")
        .arg(file)
        .arg(out)
        .args(["--piece-kib", &piece_kib.to_string()])
        .output()
        .map_err(|source| PeerError::Spawn {
            what: what.into(),
            source,
        })?;
    let outcome = Outcome { output };
    let infohash = outcome
        .stdout()
        .lines()
        .find_map(|line| line.strip_prefix("INFOHASH "))
        .map(|hash| hash.trim().to_owned());
    match infohash {
        Some(hash) if outcome.output.status.success() && hash.len() == 40 => Ok(hash),
        _ => Err(PeerError::Failed {
            what: what.into(),
            output: outcome.transcript(),
        }),
    }
}

/// A .torrent file as libtorrent's parser reads it (`lt_peer.py torrent-info`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TorrentInfo {
    /// v1 info-hash, 40 hex characters.
    pub infohash: String,
    pub name: String,
    pub creator: String,
    pub comment: String,
    /// Unix time, 0 when the file has none.
    pub creation_date: i64,
    pub trackers: usize,
    /// (size, path inside the torrent) per file.
    pub files: Vec<(u64, String)>,
}

/// Reads `torrent` with libtorrent; an error if libtorrent refuses it.
pub fn torrent_info(torrent: &Path) -> Result<TorrentInfo, PeerError> {
    let what = "lt_peer.py torrent-info";
    let output = peers::python("lt_peer.py")
        .arg("torrent-info")
        .arg(torrent)
        .output()
        .map_err(|source| PeerError::Spawn {
            what: what.into(),
            source,
        })?;
    let outcome = Outcome { output };
    let failed = || PeerError::Failed {
        what: what.into(),
        output: outcome.transcript(),
    };
    if !outcome.output.status.success() {
        return Err(failed());
    }
    let mut info = TorrentInfo::default();
    for line in outcome.stdout().lines() {
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        match key {
            "INFOHASH" => info.infohash = value.to_owned(),
            "NAME" => info.name = value.to_owned(),
            "CREATOR" => info.creator = value.to_owned(),
            "COMMENT" => info.comment = value.to_owned(),
            "CREATION_DATE" => info.creation_date = value.parse().map_err(|_| failed())?,
            "TRACKERS" => info.trackers = value.parse().map_err(|_| failed())?,
            "FILE" => {
                let (size, path) = value.split_once(' ').ok_or_else(failed)?;
                info.files
                    .push((size.parse().map_err(|_| failed())?, path.to_owned()));
            }
            _ => {}
        }
    }
    if info.infohash.len() != 40 {
        return Err(failed());
    }
    Ok(info)
}

/// What one `lt_peer.py seed` or `leech` run does. Build with [`PeerArgs::seed`] or a `leech_*` constructor.
#[derive(Clone, Debug)]
pub struct PeerArgs {
    role: &'static str,
    source: Source,
    save: PathBuf,
    port: Option<u16>,
    peers: Vec<String>,
    dht_bootstrap: Option<String>,
    tcp_only: bool,
    seconds: u64,
    verify: Option<PathBuf>,
}

#[derive(Clone, Debug)]
enum Source {
    Torrent(PathBuf),
    Magnet(String),
}

impl PeerArgs {
    /// Seed `torrent`, whose content is in `save`, for 120 s unless [`PeerArgs::seconds`] says otherwise.
    pub fn seed(torrent: &Path, save: &Path) -> PeerArgs {
        PeerArgs::new("seed", Source::Torrent(torrent.to_owned()), save)
    }

    /// Download `torrent` into `save`, giving up after 120 s unless [`PeerArgs::seconds`] says otherwise.
    pub fn leech_torrent(torrent: &Path, save: &Path) -> PeerArgs {
        PeerArgs::new("leech", Source::Torrent(torrent.to_owned()), save)
    }

    /// Download a magnet into `save` (the info dictionary first, by BEP 9).
    pub fn leech_magnet(magnet: &str, save: &Path) -> PeerArgs {
        PeerArgs::new("leech", Source::Magnet(magnet.to_owned()), save)
    }

    fn new(role: &'static str, source: Source, save: &Path) -> PeerArgs {
        PeerArgs {
            role,
            source,
            save: save.to_owned(),
            port: None,
            peers: Vec::new(),
            dht_bootstrap: None,
            tcp_only: false,
            seconds: 120,
            verify: None,
        }
    }

    /// Listen on 127.0.0.1:`port` (default: a free one).
    pub fn port(mut self, port: u16) -> PeerArgs {
        self.port = Some(port);
        self
    }

    /// Connect to this peer (`127.0.0.1:PORT`), again while unconnected.
    pub fn peer(mut self, addr: impl ToString) -> PeerArgs {
        self.peers.push(addr.to_string());
        self
    }

    /// Join a private DHT testnet (`H:P,H:P`, e.g. [`Dht::bootstrap`]); without this the DHT is off.
    pub fn dht(mut self, bootstrap: &str) -> PeerArgs {
        self.dht_bootstrap = Some(bootstrap.to_owned());
        self
    }

    /// TCP only, no uTP (libtorrent's uTP is slow on loopback; kolokol's engine speaks TCP).
    pub fn tcp_only(mut self) -> PeerArgs {
        self.tcp_only = true;
        self
    }

    /// A seeder's lifetime or a leecher's timeout.
    pub fn seconds(mut self, seconds: u64) -> PeerArgs {
        self.seconds = seconds;
        self
    }

    /// After downloading, compare the file's bytes with `original`.
    pub fn verify(mut self, original: &Path) -> PeerArgs {
        self.verify = Some(original.to_owned());
        self
    }

    /// The driver command (for a caller that runs and times it itself, like the benchmark).
    pub fn command(&self) -> Command {
        let mut command = peers::python("lt_peer.py");
        command.arg(self.role);
        match &self.source {
            Source::Torrent(path) => command.arg("--torrent").arg(path),
            Source::Magnet(uri) => command.args(["--magnet", uri]),
        };
        command.arg("--save").arg(&self.save);
        let port = self.port.unwrap_or_else(peers::free_port);
        command.args(["--port", &port.to_string()]);
        for peer in &self.peers {
            command.args(["--peer", peer]);
        }
        if let Some(bootstrap) = &self.dht_bootstrap {
            command.args(["--dht-bootstrap", bootstrap]);
        }
        if self.tcp_only {
            command.arg("--tcp-only");
        }
        let limit = if self.role == "seed" {
            "--lifetime"
        } else {
            "--timeout"
        };
        command.args([limit, &self.seconds.to_string()]);
        if let Some(original) = &self.verify {
            command.arg("--verify").arg(original);
        }
        command
    }
}

/// Runs a leecher to its end (its own timeout bounds it).
pub fn leech(args: &PeerArgs) -> Result<LeechOutcome, PeerError> {
    let output = args.command().output().map_err(|source| PeerError::Spawn {
        what: "lt_peer.py leech".into(),
        source,
    })?;
    Ok(LeechOutcome(Outcome { output }))
}

/// A finished leecher run.
#[derive(Debug)]
pub struct LeechOutcome(pub Outcome);

impl LeechOutcome {
    /// Whether it downloaded everything (and the bytes matched, with [`PeerArgs::verify`]).
    pub fn passed(&self) -> bool {
        self.0.passed()
    }

    /// Whether the info dictionary came by BEP 9 (a magnet download).
    pub fn got_metadata(&self) -> bool {
        self.0
            .stdout()
            .lines()
            .any(|line| line.starts_with("METADATA "))
    }

    /// From adding the torrent to the last piece verified, as the leecher measured it.
    pub fn seconds(&self) -> Option<f64> {
        parse_seconds(&self.0.pass_line()?)
    }

    pub fn transcript(&self) -> String {
        self.0.transcript()
    }
}

/// `seconds=S` from a PASS line.
pub fn parse_seconds(pass_line: &str) -> Option<f64> {
    pass_line
        .split_whitespace()
        .find_map(|word| word.strip_prefix("seconds="))?
        .parse()
        .ok()
}

/// A running libtorrent seeder. Killed when dropped.
pub struct Seeder {
    child: Killed,
    lines: Lines,
    port: u16,
}

impl Seeder {
    /// Starts `lt_peer.py seed` and waits (up to 30 s) until it accepts peers.
    pub fn start(args: &PeerArgs) -> Result<Seeder, PeerError> {
        let mut child = args
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| PeerError::Spawn {
                what: "lt_peer.py seed".into(),
                source,
            })?;
        let lines = Lines::read(&mut child);
        let child = Killed(child);
        let listening = lines.wait(Duration::from_secs(30), |line| {
            line.starts_with("LISTENING ")
        });
        let port = listening.ok().and_then(|line| {
            line.rsplit(':')
                .next()
                .and_then(|port| port.trim().parse().ok())
        });
        match port {
            Some(port) => Ok(Seeder { child, lines, port }),
            None => Err(PeerError::Failed {
                what: "lt_peer.py seed (waiting for LISTENING)".into(),
                output: lines.transcript(),
            }),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The seeder's process id (the benchmark reads its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// Everything it printed so far.
    pub fn transcript(&self) -> String {
        self.lines.transcript()
    }
}

/// How long one testnet command may take, and the driver's own bound on it (shorter, so that its FAIL line,
/// which says what it saw, arrives first).
const COMMAND_LIMIT: Duration = Duration::from_secs(90);
const DRIVER_COMMAND_SECONDS: u64 = 80;

/// A private mainline DHT of libtorrent nodes on 127.0.0.1 (`peers/lt_dht.py`). Killed when dropped; the
/// driver also exits by itself when its stdin closes or after 300 s.
pub struct Dht {
    lines: Lines,
    stdin: ChildStdin,
    nodes: Vec<SocketAddr>,
    // last, so that stdin closes before the kill
    _child: Killed,
}

impl Dht {
    /// Starts `count` nodes (at least 2) and waits until they know each other.
    pub fn start(count: usize) -> Dht {
        peers::require_libtorrent();
        peers::require_python_cryptography();
        let mut child = peers::python("lt_dht.py")
            .args(["--nodes", &count.to_string(), "--lifetime", "300"])
            .args(["--command-timeout", &DRIVER_COMMAND_SECONDS.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start lt_dht.py");
        let stdin = child.stdin.take().expect("lt_dht.py stdin");
        let lines = Lines::read(&mut child);
        let child = Killed(child);
        let ready = lines
            .wait(Duration::from_secs(60), |line| line.starts_with("READY "))
            .unwrap_or_else(|seen| panic!("the libtorrent DHT testnet did not start:\n{seen}"));
        let nodes: Vec<SocketAddr> = ready
            .split_whitespace()
            .skip(1)
            .map(|addr| addr.parse().expect("READY lists addresses"))
            .collect();
        assert!(
            nodes.len() >= 2 && nodes.iter().all(|addr| addr.ip().is_loopback()),
            "{ready}"
        );
        Dht {
            lines,
            stdin,
            nodes,
            _child: child,
        }
    }

    /// Every node's address.
    pub fn nodes(&self) -> &[SocketAddr] {
        &self.nodes
    }

    /// The first two nodes as `H:P,H:P`: what a joining node bootstraps from (they know every node).
    pub fn bootstrap(&self) -> String {
        let first_two: Vec<String> = self.nodes[..2].iter().map(|a| a.to_string()).collect();
        first_two.join(",")
    }

    /// Asks the testnet (get_peers, again every 2 s) until it returns 127.0.0.1:`port` for `infohash` (hex): proof
    /// that an announcement reached the independent DHT. `Ok(PASS line)` or `Err(transcript)`.
    pub fn find_peers(&mut self, infohash: &str, port: u16) -> Result<String, String> {
        self.command(&format!("find-peers {infohash} {port}"))
    }

    /// Reads the BEP 44 mutable item of `public_key` and `salt` until it holds `value` at `seq`, its signature
    /// verified by libtorrent and again by an independent Ed25519 implementation.
    pub fn get_item(
        &mut self,
        public_key: &[u8; 32],
        salt: &[u8],
        value: &[u8],
        seq: i64,
    ) -> Result<String, String> {
        self.command(&format!(
            "get-item {} {} {} {seq}",
            hex::encode(public_key),
            salt_word(salt),
            hex::encode(value)
        ))
    }

    /// Stores `value` as the BEP 44 mutable item of the Ed25519 key with this 32-byte seed, signed by libtorrent.
    /// Returns the sequence number and the PASS line (which names the public key libtorrent signed for).
    pub fn put_item(
        &mut self,
        seed: &[u8; 32],
        salt: &[u8],
        value: &[u8],
    ) -> Result<(i64, String), String> {
        let pass = self.command(&format!(
            "put-item {} {} {}",
            hex::encode(seed),
            salt_word(salt),
            hex::encode(value)
        ))?;
        let seq = pass
            .split_whitespace()
            .find_map(|word| word.strip_prefix("seq="))
            .and_then(|seq| seq.parse().ok())
            .ok_or_else(|| format!("no seq= in {pass:?}"))?;
        Ok((seq, pass))
    }

    fn command(&mut self, line: &str) -> Result<String, String> {
        writeln!(self.stdin, "{line}")
            .and_then(|()| self.stdin.flush())
            .map_err(|err| {
                format!(
                    "lt_dht.py stopped reading ({err}):\n{}",
                    self.lines.transcript()
                )
            })?;
        self.lines
            .wait(COMMAND_LIMIT, |reply| reply.starts_with("PASS: "))
    }

    /// Everything the testnet printed so far.
    pub fn transcript(&self) -> String {
        self.lines.transcript()
    }
}

fn salt_word(salt: &[u8]) -> String {
    if salt.is_empty() {
        "-".into()
    } else {
        hex::encode(salt)
    }
}
