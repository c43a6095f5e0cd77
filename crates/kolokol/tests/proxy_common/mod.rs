//! Helpers of the proxy tests (`proxy*.rs`): a local web site, `curl` through the proxy, bridge nodes.

#![allow(dead_code, unused_imports, clippy::unwrap_used)] // each test file uses a part

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::{BIN, NodeCommand, NodeProcess, TestNode};
pub use kolokol_testkit::process::LOOPBACK_UP;

/// A tiny web site on 127.0.0.1. `/censored` answers its first request with a block page (HTTP 451), as a filter
/// in the site's place would, and the real page after that; every other path answers `hello from <path>`.
pub struct Site {
    pub port: u16,
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

impl Site {
    pub fn start() -> Site {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let counter = hits.clone();
        // The thread ends with the test process.
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let counter = counter.clone();
                std::thread::spawn(move || serve(stream, &counter));
            }
        });
        Site { port, hits }
    }

    pub fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

fn serve(mut stream: TcpStream, hits: &Mutex<HashMap<String, usize>>) {
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 16 * 1024 {
            return;
        }
    }
    let text = String::from_utf8_lossy(&head);
    let target = text.split(' ').nth(1).unwrap_or("/");
    // A proxy may pass the absolute form on; the site only cares about the path.
    let path = match target.strip_prefix("http://") {
        Some(rest) => rest.find('/').map_or("/", |i| &rest[i..]).to_owned(),
        None => target.to_owned(),
    };
    let seen = {
        let mut hits = hits.lock().unwrap();
        let count = hits.entry(path.clone()).or_default();
        *count += 1;
        *count
    };
    let (status, body) = if path == "/censored" && seen == 1 {
        (
            "451 Unavailable For Legal Reasons",
            "blocked by order".to_owned(),
        )
    } else {
        ("200 OK", format!("hello from {path}"))
    };
    let answer = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(answer.as_bytes());
}

/// `curl` with the given proxy arguments; returns the body of a successful fetch.
pub fn curl(proxy_args: &[&str], url: &str) -> String {
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "--fail", "--max-time", "60"])
        .args(proxy_args)
        .arg(url)
        // Only the proxy the test names.
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env_remove("all_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("ALL_PROXY")
        .env_remove("no_proxy")
        .env_remove("NO_PROXY")
        .output()
        .expect("run curl (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "curl {proxy_args:?} {url} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn socks(proxy: &str) -> Vec<String> {
    vec!["--socks5-hostname".into(), proxy.into()]
}

pub fn http_proxy(proxy: &str) -> Vec<String> {
    vec!["--proxy".into(), format!("http://{proxy}")]
}

/// HTTP CONNECT through the proxy even for an http:// URL (what browsers do for https).
pub fn http_connect(proxy: &str) -> Vec<String> {
    vec![
        "--proxytunnel".into(),
        "--proxy".into(),
        format!("http://{proxy}"),
    ]
}

pub fn fetch(args: &[String], url: &str) -> String {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    curl(&args, url)
}

pub fn assert_fails_with(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "expected exit 1: {stderr}");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "one line expected: {stderr:?}"
    );
    assert!(
        stderr.to_lowercase().contains(&needle.to_lowercase()),
        "{stderr:?} should mention {needle:?}"
    );
}

/// Streams the node's own bridge has carried for its clients.
pub fn bridge_streams(bridge: &NodeProcess) -> u64 {
    bridge.json(&["proxy", "status"])["bridge_server"]["streams_total"]
        .as_u64()
        .unwrap()
}

/// A bridge node on loopback with no proxy of its own. `--bridge-allow-private` because the test sites are on
/// 127.0.0.1, which a real bridge refuses to reach for its clients.
pub fn start_bridge(dir: &Path) -> NodeProcess {
    NodeProcess::start_with(
        dir,
        &[
            "--no-proxy",
            "--bridge",
            "--bridge-listen",
            "127.0.0.1:0",
            "--bridge-allow-private",
        ],
    )
}

/// A new invitation's code from a bridge node.
pub fn invite(bridge: &NodeProcess) -> String {
    bridge.json(&["bridge", "invite"])["code"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The client node's proxy address from `status`.
pub fn proxy_addr(node: &NodeProcess) -> String {
    node.json(&["status"])["proxy_addr"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// `kolokol up` with exactly these `up` arguments (no harness defaults), on loopback-only settings given by the
/// caller. Waits for the node's `web:` line; returns `Err(output)` if the process exits first.
pub fn start_raw(data_dir: &Path, up_args: &[&str]) -> Result<NodeProcess, Output> {
    NodeCommand::new(BIN, data_dir).args(up_args).spawn()
}

/// `kolokol up` inside the network namespace `ns` (which `ip netns exec` enters before running the binary, so the
/// process is the node itself). Its API is on the namespace's own loopback: its CLI runs there too.
pub fn start_in_netns(ns: &str, data_dir: &Path, up_args: &[&str]) -> NodeProcess {
    NodeCommand::new(BIN, data_dir)
        .in_netns(ns)
        .args(up_args)
        .start()
}

/// A CLI command against `node`, which runs inside namespace `ns`.
pub fn cli_in_netns(ns: &str, node: &NodeProcess, args: &[&str]) -> Output {
    assert_eq!(node.netns.as_deref(), Some(ns), "the node runs elsewhere");
    node.cli(args)
}

/// [`cli_in_netns`] with `--json`; requires success.
pub fn json_in_netns(ns: &str, node: &NodeProcess, args: &[&str]) -> serde_json::Value {
    assert_eq!(node.netns.as_deref(), Some(ns), "the node runs elsewhere");
    node.json(args)
}
