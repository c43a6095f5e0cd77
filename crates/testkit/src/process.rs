//! `kolokol up` node processes for end-to-end tests, on loopback or inside a network namespace, driven through the
//! real CLI. The binary is the caller's (`env!("CARGO_BIN_EXE_kolokol")` in the crate that builds it).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The `up` arguments that keep a node on loopback: every listener on 127.0.0.1 (a port the system picks), no
/// public DHT routers (so every DHT node answers from the start), no LAN multicast; DHT time-outs are the defaults.
/// The proxy's listener is the caller's to set.
pub const LOOPBACK_UP: [&str; 8] = [
    "--listen",
    "127.0.0.1:0",
    "--wire",
    "127.0.0.1:0",
    "--dht",
    "127.0.0.1:0",
    "--no-default-bootstrap",
    "--no-lan",
];

/// How long a node may take to print its `web:` line.
const START_LIMIT: Duration = Duration::from_secs(60);

/// How to start one `kolokol up`: the global options the harness always gives (`--data-dir`, `--api 127.0.0.1:0`)
/// and exactly the `up` arguments the caller lists (no defaults are added here).
pub struct NodeCommand {
    bin: PathBuf,
    data_dir: PathBuf,
    netns: Option<String>,
    up_args: Vec<String>,
    log_filter: String,
    envs: Vec<(String, String)>,
}

impl NodeCommand {
    pub fn new(bin: impl AsRef<Path>, data_dir: &Path) -> NodeCommand {
        NodeCommand {
            bin: bin.as_ref().to_owned(),
            data_dir: data_dir.to_owned(),
            netns: None,
            up_args: Vec::new(),
            log_filter: "info,librqbit=warn".into(),
            envs: Vec::new(),
        }
    }

    /// Run the node inside network namespace `ns` (`ip netns exec` enters it before running the binary, so the
    /// process is the node itself). Its API is on the namespace's own loopback; [`NodeProcess::cli`] goes there.
    pub fn in_netns(mut self, ns: &str) -> NodeCommand {
        self.netns = Some(ns.to_owned());
        self
    }

    /// More `up` arguments (clap lets a later repeat of an option win).
    pub fn args(mut self, args: &[&str]) -> NodeCommand {
        self.up_args.extend(args.iter().map(|a| (*a).to_owned()));
        self
    }

    /// An environment variable for the node process (e.g. `KOLOKOL_PASSPHRASE`).
    pub fn env(mut self, key: &str, value: &str) -> NodeCommand {
        self.envs.push((key.to_owned(), value.to_owned()));
        self
    }

    /// The node's `KOLOKOL_LOG` filter (default `info,librqbit=warn`).
    pub fn log_filter(mut self, filter: &str) -> NodeCommand {
        self.log_filter = filter.to_owned();
        self
    }

    /// Starts the node and waits for its `web:` line. `Err` with the process's output if it exits first (a test
    /// of refused settings wants that); panics if it neither starts nor exits in time.
    pub fn spawn(self) -> Result<NodeProcess, Output> {
        std::fs::create_dir_all(&self.data_dir).expect("create the node's data directory");
        let stderr_log = self.data_dir.with_extension("stderr.log");
        let stderr = std::fs::File::create(&stderr_log).expect("create the node's log file");
        let data_dir = self.data_dir.to_str().expect("a UTF-8 data directory");
        let mut child = self
            .base_command()
            .args(["--data-dir", data_dir, "--api", "127.0.0.1:0", "up"])
            .args(&self.up_args)
            .env("KOLOKOL_LOG", &self.log_filter)
            // Only the proxy settings the test gives: none inherited from the machine running the tests.
            .env_remove("KOLOKOL_PROXY")
            // No passphrase but the one the test gives (and no terminal: stdin is null).
            .env_remove("KOLOKOL_PASSPHRASE")
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .expect("start kolokol up");
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            // Keep draining after the harness stopped listening, like a terminal would.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        let mut printed = String::new();
        let deadline = Instant::now() + START_LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left.min(Duration::from_millis(200))) {
                Ok(line) => {
                    if let Some(url) = line.trim().strip_prefix("web:") {
                        let api = url
                            .trim()
                            .trim_start_matches("http://")
                            .trim_end_matches('/')
                            .to_owned();
                        return Ok(NodeProcess {
                            child,
                            bin: self.bin,
                            data_dir: self.data_dir,
                            netns: self.netns,
                            api,
                            stderr_log,
                        });
                    }
                    printed.push_str(&line);
                    printed.push('\n');
                }
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {
                    if let Ok(Some(status)) = child.try_wait() {
                        return Err(exited(status, printed, &stderr_log));
                    }
                }
                // Its standard output closed: the process is ending (a running node keeps it open).
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = child.wait().expect("wait for kolokol up");
                    return Err(exited(status, printed, &stderr_log));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "node neither started nor exited within {START_LIMIT:?}; its log:\n{}",
                        std::fs::read_to_string(&stderr_log).unwrap_or_default()
                    );
                }
            }
        }
    }

    /// [`NodeCommand::spawn`], failing the test with the node's log if it does not start.
    pub fn start(self) -> NodeProcess {
        let place = self
            .netns
            .as_deref()
            .map(|ns| format!(" in {ns}"))
            .unwrap_or_default();
        self.spawn().unwrap_or_else(|out| {
            panic!(
                "node{place} did not start ({}); stderr:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }

    fn base_command(&self) -> Command {
        command_in(self.netns.as_deref(), &self.bin)
    }
}

fn command_in(netns: Option<&str>, bin: &Path) -> Command {
    match netns {
        Some(ns) => {
            let mut command = Command::new("ip");
            command.args(["netns", "exec", ns]).arg(bin);
            command
        }
        None => Command::new(bin),
    }
}

fn exited(status: std::process::ExitStatus, stdout: String, stderr_log: &Path) -> Output {
    Output {
        status,
        stdout: stdout.into_bytes(),
        stderr: std::fs::read(stderr_log).unwrap_or_default(),
    }
}

/// A running `kolokol up`. Killed when dropped.
pub struct NodeProcess {
    pub child: Child,
    pub bin: PathBuf,
    pub data_dir: PathBuf,
    /// The network namespace it runs in, if any.
    pub netns: Option<String>,
    /// `host:port` of the HTTP API, read from the node's own startup lines.
    pub api: String,
    /// Where its stderr (the log) goes.
    pub stderr_log: PathBuf,
}

impl NodeProcess {
    /// The CLI pointed at this node (in its namespace, if it has one), without running it: for a caller that
    /// needs stdin or a background process.
    ///
    /// A `publish` gets `--allow-metadata --keep-names`: the tests' data is random bytes (an unknown format, which
    /// the node refuses to publish without the confirmation) and they look files up by their names. Tests of the
    /// publishing defaults themselves use [`NodeProcess::cli_defaults`].
    pub fn cli_command(&self, args: &[&str]) -> Command {
        let publishing = args.iter().find(|a| **a != "--json") == Some(&"publish");
        let mut command = self.cli_defaults(args);
        if publishing {
            command.args(["--allow-metadata", "--keep-names"]);
        }
        command
    }

    /// The CLI exactly as a user runs it: no flag added (see [`NodeProcess::cli_command`]).
    pub fn cli_defaults(&self, args: &[&str]) -> Command {
        let mut command = command_in(self.netns.as_deref(), &self.bin);
        command
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--api", &self.api])
            .args(args)
            // A passphrase reaches the CLI only when a test sets one on the returned command.
            .env_remove("KOLOKOL_PASSPHRASE")
            .stdin(Stdio::null());
        command
    }

    /// Runs a CLI command against this node.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_command(args).output().expect("run kolokol")
    }

    /// Runs a CLI command with `--json`, requires success, parses stdout.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.cli(&all);
        let place = self
            .netns
            .as_deref()
            .map(|ns| format!(" in {ns}"))
            .unwrap_or_default();
        assert!(
            out.status.success(),
            "kolokol {args:?}{place} failed: {}\nnode log:\n{}",
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
            .expect("list prints an array")
            .iter()
            .any(|r| r["id"] == id)
    }

    /// The node's API token (read from its data directory), for a test that calls `/api/v1` directly: every
    /// request there, reads too, must carry it in `X-Kolokol-Token`.
    pub fn token(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("api.token"))
            .expect("read the node's api.token")
            .trim()
            .to_owned()
    }

    /// A plain HTTP/1.1 `GET` of `path` on the node's API address, as the node's own page would send it (its `Host`)
    /// with the token: the status line and the body. For the gateway, pages and `/api/v1` alike; waits at most
    /// `limit` for the answer (a gateway request may wait on a download).
    pub fn http_get(&self, path: &str, limit: Duration) -> (String, Vec<u8>) {
        use std::io::{Read, Write};
        let mut stream =
            std::net::TcpStream::connect(&self.api).expect("connect to the node's API");
        stream
            .set_read_timeout(Some(limit))
            .expect("set a read time-out");
        let head = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nX-Kolokol-Token: {}\r\nConnection: close\r\n\r\n",
            self.api,
            self.token()
        );
        stream.write_all(head.as_bytes()).expect("send the request");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).expect("read the answer");
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("an HTTP answer");
        let status = String::from_utf8_lossy(&raw[..split])
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        (status, raw[split + 4..].to_vec())
    }

    /// Its log so far.
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

/// Polls `check` every 200 ms until it returns `Some`, for at most `limit`.
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
