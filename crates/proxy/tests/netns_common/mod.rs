//! Helpers of the censor tests (`censor_netns.rs`, `censor_rules_netns.rs`): harness processes inside namespaces, curl from the client namespace, and the
//! world they share (sites, a TLS site, a bridge outside, the censor's filter).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kolokol_testkit::censor::{Censor, CensorRules};
use kolokol_testkit::censor_net::{BRIDGE, CensorNet, SITES};
use kolokol_testkit::netns;

pub const HARNESS: &str = env!("CARGO_BIN_EXE_kolokol-proxy-harness");
/// The large download of the measurements: 1 MiB.
pub const LARGE: usize = 1 << 20;
/// Where the large download is served (site 0's address, port 8080).
pub const LARGE_URL: &str = "http://site0.test:8080/";

pub fn ensure_tools() {
    assert!(
        netns::is_root(),
        "this test builds network namespaces and must run as root (CI does)"
    );
    for tool in ["iptables", "curl", "openssl"] {
        assert!(
            Command::new(tool).arg("--version").output().is_ok()
                || Command::new(tool).arg("version").output().is_ok(),
            "{tool} is needed (scripts/test.sh installs it)"
        );
    }
}

/// A process inside a namespace; its output lines are collected, and it is killed when dropped.
pub struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    pub fn start(ns: &str, program: &str, args: &[&str]) -> Proc {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, program])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start a process in a namespace");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Proc {
            child,
            stdin,
            lines,
        }
    }

    pub fn harness(ns: &str, args: &[&str]) -> Proc {
        Proc::start(ns, HARNESS, args)
    }

    pub fn wait_for(&self, prefix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(line) = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.starts_with(prefix))
            {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no {prefix:?} line; got {:?}",
                self.lines.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Proc {
    /// Every line the process printed so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// One line to the process's standard input (the harness reads commands such as `status` there).
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What curl got: the body, and its own measurements.
#[derive(Debug)]
pub struct Fetch {
    pub ok: bool,
    pub body: Vec<u8>,
    /// Seconds from the start to the first byte of the answer (curl's `time_starttransfer`).
    pub first_byte_s: f64,
    /// Bytes per second of the body (curl's `speed_download`).
    pub bytes_per_s: f64,
    pub error: String,
}

impl Fetch {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// One line for the measurement table: reached or not, time to first byte, throughput.
    pub fn report(&self, what: &str) -> String {
        let line = if self.ok {
            format!(
                "MEASURE {what}: reached, first byte {:.0} ms, {:.1} MB/s, {} bytes",
                self.first_byte_s * 1000.0,
                self.bytes_per_s / 1e6,
                self.body.len()
            )
        } else {
            format!(
                "MEASURE {what}: not reached ({} bytes before it stopped: {})",
                self.body.len(),
                self.error.trim()
            )
        };
        eprintln!("{line}");
        line
    }
}

/// curl in namespace `ns`, at most `max_secs`, with `args` before the URL.
pub fn curl(ns: &str, args: &[&str], url: &str, max_secs: u64) -> Fetch {
    let tmp = tempfile::NamedTempFile::new().unwrap();
    let output = Command::new("ip")
        .args(["netns", "exec", ns, "curl", "-sS", "--max-time"])
        .arg(max_secs.to_string())
        .args(["-o", tmp.path().to_str().unwrap()])
        .args(["-w", "%{time_starttransfer} %{speed_download}"])
        .args(args)
        .arg(url)
        .output()
        .expect("run curl");
    let measured = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut numbers = measured
        .split_whitespace()
        .map(|n| n.parse::<f64>().unwrap_or(0.0));
    Fetch {
        ok: output.status.success(),
        body: std::fs::read(tmp.path()).unwrap_or_default(),
        first_byte_s: numbers.next().unwrap_or(0.0),
        bytes_per_s: numbers.next().unwrap_or(0.0),
        error: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A self-signed certificate and key for `name` in `dir`.
pub fn certificate(dir: &Path, name: &str) -> (String, String) {
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj"])
        .arg(format!("/CN={name}"))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "openssl req");
    (
        cert.to_str().unwrap().to_owned(),
        key.to_str().unwrap().to_owned(),
    )
}

/// `openssl s_server -www` on `ip:443` in `ns` (answers a GET with a page naming itself), for `name`.
pub fn tls_site(ns: &str, ip: &str, name: &str, dir: &Path) -> Proc {
    let (cert, key) = certificate(dir, name);
    let accept = format!("{ip}:443");
    let proc = Proc::start(
        ns,
        "openssl",
        &[
            "s_server", "-accept", &accept, "-cert", &cert, "-key", &key, "-www", "-naccept", "100",
        ],
    );
    proc.wait_for("ACCEPT");
    proc
}

/// The world of a censor-rule test: the censored network, the outside sites (site 0 on port 80 with a small page
/// and on port 8080 with [`LARGE`] bytes; a TLS site for `site0.test` on site 0 and one on site 1), a bridge on
/// [`BRIDGE`]:443 with the product's defaults, and the censor's filter with no rule on.
pub struct World {
    pub censor: Censor,
    pub code: String,
    pub dir: tempfile::TempDir,
    next_port: u16,
    // Dropped before the namespaces: processes first.
    _procs: Vec<Proc>,
    pub net: CensorNet,
}

impl World {
    pub fn create(prefixes: [&str; 3]) -> World {
        ensure_tools();
        let net = CensorNet::create(prefixes).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let small = Proc::harness(
            &net.outside,
            &["site", "--listen", &format!("{}:80", SITES[0])],
        );
        small.wait_for("ready");
        let large_size = LARGE.to_string();
        let large = Proc::harness(
            &net.outside,
            &[
                "site",
                "--listen",
                &format!("{}:8080", SITES[0]),
                "--body-size",
                &large_size,
            ],
        );
        large.wait_for("ready");
        let tls0 = tls_site(&net.outside, SITES[0], "site0.test", dir.path());
        let tls1 = tls_site(&net.outside, SITES[1], "site0.test", dir.path());
        // The bridge with the library's defaults except what the harness must be told (its address).
        let bridge = Proc::harness(
            &net.outside,
            &[
                "bridge",
                "--listen",
                &format!("{BRIDGE}:443"),
                "--invite-host",
                BRIDGE,
            ],
        );
        let code = bridge
            .wait_for("invitation ")
            .trim_start_matches("invitation ")
            .to_owned();
        let censor = Censor::start(&net, CensorRules::default()).unwrap();
        World {
            censor,
            code,
            dir,
            next_port: 7500,
            _procs: vec![small, large, tls0, tls1, bridge],
            net,
        }
    }

    /// A fresh local proxy in the client namespace that sends every site through the bridge (today's transport,
    /// straight to the bridge), with a fresh tunnel. Returns it and its address for curl.
    pub fn bridged_proxy(&mut self) -> (Proc, String) {
        self.next_port += 1;
        let listen = format!("127.0.0.1:{}", self.next_port);
        let proxy = Proc::harness(
            &self.net.client,
            &[
                "proxy",
                &format!("--listen={listen}"),
                &format!("--bridge={}", self.code),
                "--rule=*=bridge",
            ],
        );
        proxy.wait_for("ready");
        (proxy, listen)
    }

    /// curl through `proxy` (SOCKS5, names resolved by the bridge).
    pub fn via(&self, proxy: &str, url: &str, max_secs: u64) -> Fetch {
        curl(
            &self.net.client,
            &["--socks5-hostname", proxy],
            url,
            max_secs,
        )
    }

    /// curl straight from the client namespace.
    pub fn direct(&self, args: &[&str], url: &str, max_secs: u64) -> Fetch {
        curl(&self.net.client, args, url, max_secs)
    }
}
