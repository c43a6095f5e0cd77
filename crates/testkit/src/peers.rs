//! The reference-peer drivers: where they are, what they need, and reading their output.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Output};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Debian's Python: the one that sees Debian's python3-libtorrent (a `python3` earlier on PATH may not).
pub const PYTHON: &str = "/usr/bin/python3";

/// A reference peer that could not be run or did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("cannot run {what}: {source}")]
    Spawn {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} failed:\n{output}")]
    Failed { what: String, output: String },
}

/// The folder of the driver scripts: `crates/testkit/peers` of the clone this crate was built from.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("peers")
}

/// The path of one driver script, e.g. `script("lt_peer.py")`.
pub fn script(name: &str) -> PathBuf {
    dir().join(name)
}

/// A command that runs a driver script with [`PYTHON`].
pub fn python(script_name: &str) -> Command {
    let mut command = Command::new(PYTHON);
    command.arg(script(script_name));
    command
}

/// Fails the test (never skips it) unless [`PYTHON`] can import libtorrent, saying how to fix it.
pub fn require_libtorrent() {
    require_python_module("libtorrent", "python3-libtorrent");
}

/// Fails the test unless [`PYTHON`] can import `cryptography` (the independent Ed25519 check of BEP 44 items).
pub fn require_python_cryptography() {
    require_python_module("cryptography", "python3-cryptography");
}

fn require_python_module(module: &str, package: &str) {
    let ok = Command::new(PYTHON)
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|out| out.status.success());
    assert!(
        ok,
        "{PYTHON} cannot import {module}: install it with `apt-get install -y {package}` (scripts/test.sh does)"
    );
}

/// Fails the test unless aria2c runs.
pub fn require_aria2() {
    let ok = Command::new("aria2c")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    assert!(
        ok,
        "aria2c is not installed: install it with `apt-get install -y aria2` (scripts/test.sh does)"
    );
}

/// A port on 127.0.0.1 free for TCP and UDP at the time of asking (libtorrent and aria2 bind both on theirs).
pub fn free_port() -> u16 {
    for _ in 0..100 {
        let Ok(tcp) = std::net::TcpListener::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(addr) = tcp.local_addr() else { continue };
        if std::net::UdpSocket::bind(addr).is_ok() {
            return addr.port();
        }
    }
    panic!("no port free for both TCP and UDP on 127.0.0.1");
}

/// The outcome of a driver run to its end: its exit status and what it printed.
#[derive(Debug)]
pub struct Outcome {
    pub output: Output,
}

impl Outcome {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// The driver's `PASS: ...` line, if it exited 0 and printed one.
    pub fn pass_line(&self) -> Option<String> {
        if !self.output.status.success() {
            return None;
        }
        self.stdout()
            .lines()
            .find(|line| line.starts_with("PASS: "))
            .map(str::to_owned)
    }

    pub fn passed(&self) -> bool {
        self.pass_line().is_some()
    }

    /// Both streams, for a failure message.
    pub fn transcript(&self) -> String {
        format!(
            "exit {:?}\nstdout:\n{}\nstderr:\n{}",
            self.output.status.code(),
            self.stdout(),
            self.stderr()
        )
    }
}

/// The output lines of a running driver, read on threads so that its pipes never fill, kept whole as a
/// transcript for failure messages.
pub struct Lines {
    lines: mpsc::Receiver<String>,
    transcript: Arc<Mutex<String>>,
}

impl Lines {
    /// Takes over the child's stdout (lines to wait for) and stderr (transcript only) if they are piped.
    pub fn read(child: &mut Child) -> Lines {
        let transcript = Arc::new(Mutex::new(String::new()));
        let (sender, lines) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            let transcript = transcript.clone();
            std::thread::spawn(move || forward(stdout, "", &transcript, Some(sender)));
        }
        if let Some(stderr) = child.stderr.take() {
            let transcript = transcript.clone();
            std::thread::spawn(move || forward(stderr, "stderr: ", &transcript, None));
        }
        Lines { lines, transcript }
    }

    /// The first stdout line for which `want` holds, within `limit`; on a `FAIL:` line, the end of output or
    /// the limit, everything the driver printed so far.
    pub fn wait(&self, limit: Duration, want: impl Fn(&str) -> bool) -> Result<String, String> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if want(&line) => return Ok(line),
                Ok(line) if line.starts_with("FAIL: ") => break,
                Ok(_) => continue,
                Err(_) => break,
            }
        }
        // stderr may still be arriving: give its thread a moment so that the message is whole
        std::thread::sleep(Duration::from_millis(100));
        Err(self.transcript())
    }

    pub fn transcript(&self) -> String {
        self.transcript
            .lock()
            .map(|text| text.clone())
            .unwrap_or_default()
    }
}

fn forward(
    stream: impl Read,
    prefix: &str,
    transcript: &Mutex<String>,
    sender: Option<mpsc::Sender<String>>,
) {
    for line in BufReader::new(stream).lines().map_while(Result::ok) {
        if let Ok(mut text) = transcript.lock() {
            text.push_str(prefix);
            text.push_str(&line);
            text.push('\n');
        }
        if let Some(sender) = &sender {
            // the test may have stopped listening: keep draining so that the driver never blocks on a full pipe
            let _ = sender.send(line);
        }
    }
}

/// A child process killed when dropped, so that no driver outlives its test.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
