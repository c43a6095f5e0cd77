//! aria2 as an independent BitTorrent client, driven by `peers/aria2_peer.py` on 127.0.0.1 only.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::peers::{self, Outcome, PeerError};

/// What aria2 fetched and how: its exit, what it printed and its info-level log.
#[derive(Debug)]
pub struct Aria2Outcome {
    pub outcome: Outcome,
    /// aria2's own log (peers it connected to, DHT lookups, BEP 9 metadata).
    pub log: String,
}

impl Aria2Outcome {
    pub fn passed(&self) -> bool {
        self.outcome.passed()
    }

    /// The last `lines` lines of aria2's log, for a failure message.
    pub fn log_tail(&self, lines: usize) -> String {
        let all: Vec<&str> = self.log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Peer and DHT addresses in aria2's log (`Connecting to [the peer ]A[:P]`, `Remote:A(P)`) that are not
    /// 127.0.0.1: empty when aria2 stayed on loopback.
    pub fn addresses_off_loopback(&self) -> Vec<String> {
        let mut outside = Vec::new();
        for marker in ["Connecting to ", "Remote:"] {
            for (at, _) in self.log.match_indices(marker) {
                let rest = &self.log[at + marker.len()..];
                let rest = rest.strip_prefix("the peer ").unwrap_or(rest);
                let host: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_hexdigit() || *c == '.' || *c == ':')
                    .collect();
                if host.split(':').next() != Some("127.0.0.1") {
                    outside.push(rest.chars().take(40).collect());
                }
            }
        }
        outside
    }
}

/// Downloads `uri` (a magnet) into `dir` with aria2c, its DHT joined to `dht_entry` if given (else off); the log
/// and aria2's DHT routing file go into `work`. Returns when aria2 is done or after `seconds`.
pub fn fetch(
    uri: &str,
    dir: &Path,
    work: &Path,
    dht_entry: Option<SocketAddr>,
    seconds: u64,
) -> Result<Aria2Outcome, PeerError> {
    let log: PathBuf = work.join("aria2.log");
    let mut command = peers::python("aria2_peer.py");
    command
        .args(["fetch", uri, "--timeout", &seconds.to_string()])
        .arg("--dir")
        .arg(dir)
        .arg("--log")
        .arg(&log);
    if let Some(entry) = dht_entry {
        command.args(["--dht-entry", &entry.to_string()]);
    }
    let output = command.output().map_err(|source| PeerError::Spawn {
        what: "aria2_peer.py fetch".into(),
        source,
    })?;
    Ok(Aria2Outcome {
        outcome: Outcome { output },
        log: std::fs::read_to_string(&log).unwrap_or_default(),
    })
}
