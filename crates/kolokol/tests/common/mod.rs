//! Test harness: real `kolokol up` processes on loopback, each with its own temporary data directory, driven through
//! the real CLI.

#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_kolokol");

/// A running node process. Killed when dropped.
pub struct NodeProcess {
    pub child: Child,
    pub data_dir: PathBuf,
    /// `host:port` of the HTTP API, read from the node's own startup lines.
    pub api: String,
    pub stderr_log: PathBuf,
}

impl NodeProcess {
    /// Start `kolokol up` on `data_dir` with every listener on 127.0.0.1 and a port the system picks.
    pub fn start(data_dir: &Path) -> NodeProcess {
        Self::start_with(data_dir, &[])
    }

    pub fn start_with(data_dir: &Path, extra: &[&str]) -> NodeProcess {
        // Tests touch loopback only: no public DHT routers, no LAN multicast. A low proof-of-work difficulty keeps
        // publishing fast (a test that needs another passes its own --work-bits, which clap lets win as the later).
        // Publications are announced at once (`--replicas 0`) unless a test asks for the publisher push.
        let mut args = vec![
            "--no-default-bootstrap",
            "--no-lan",
            "--work-bits",
            "8",
            "--replicas",
            "0",
        ];
        args.extend_from_slice(extra);
        Self::start_custom(data_dir, &args)
    }

    /// Like [`NodeProcess::start_with`] without the default `--no-default-bootstrap --no-lan`: the caller decides.
    pub fn start_custom(data_dir: &Path, extra: &[&str]) -> NodeProcess {
        Self::start_logging(data_dir, extra, "info,librqbit=warn")
    }

    /// Like [`NodeProcess::start_custom`] with a log filter of the caller's (to wait for a debug event).
    pub fn start_logging(data_dir: &Path, extra: &[&str], log_filter: &str) -> NodeProcess {
        std::fs::create_dir_all(data_dir).unwrap();
        let stderr_log = data_dir.with_extension("stderr.log");
        let stderr = std::fs::File::create(&stderr_log).unwrap();
        let mut child = Command::new(BIN)
            .args([
                "--data-dir",
                data_dir.to_str().unwrap(),
                "--api",
                "127.0.0.1:0",
                "up",
            ])
            .args([
                "--listen",
                "127.0.0.1:0",
                "--wire",
                "127.0.0.1:0",
                "--dht",
                "127.0.0.1:0",
            ])
            .args(["--dht-server", "--dht-timeout-ms", "300"])
            // The default proxy port (7412) would collide between test nodes: any free loopback port instead.
            .args(["--proxy", "127.0.0.1:0"])
            .args(extra)
            .env("KOLOKOL_LOG", log_filter)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .expect("start kolokol up");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // Keep draining after the harness stopped listening, like a terminal would.
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let api = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.trim().strip_prefix("web:") {
                        let url = rest.trim();
                        let addr = url.trim_start_matches("http://").trim_end_matches('/');
                        break addr.to_owned();
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "node did not start; stderr:\n{}",
                        std::fs::read_to_string(&stderr_log).unwrap_or_default()
                    );
                }
            }
        };
        NodeProcess {
            child,
            data_dir: data_dir.to_path_buf(),
            api,
            stderr_log,
        }
    }

    /// Run a CLI command against this node.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args([
                "--data-dir",
                self.data_dir.to_str().unwrap(),
                "--api",
                &self.api,
            ])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run kolokol")
    }

    /// Run a CLI command with `--json`, require success, parse stdout.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.cli(&all);
        assert!(
            out.status.success(),
            "kolokol {args:?} failed: {}\nnode log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "kolokol {args:?} printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// Whether this node's catalog holds the record `id`.
    pub fn has_record(&self, id: &str) -> bool {
        self.json(&["list", "--limit", "1000"])
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == id)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    /// SIGKILL: the node dies at once, as when a phone is taken or the power goes.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait (bounded) for a clean exit; returns whether it exited with status 0.
    pub fn stop(mut self) -> bool {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Poll `check` every 200 ms until it returns `Some`, for at most `limit`.
pub fn wait_for<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A file of `len` pseudo-random bytes (seeded, so failures reproduce).
pub fn random_file(path: &Path, len: usize, seed: u64) {
    use rand::{RngCore, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut data = vec![0u8; len];
    rng.fill_bytes(&mut data);
    std::fs::write(path, data).unwrap();
}

pub fn sha256_file(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    hex::encode(Sha256::digest(data))
}
