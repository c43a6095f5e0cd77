//! A `kolokol up` process for the benchmark, on 127.0.0.1 only, driven through its HTTP API.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};

/// The API token header (kolokol-http's `TOKEN_HEADER`), needed by requests that change state.
const TOKEN_HEADER: &str = "x-kolokol-token";

/// A running node, killed when dropped.
pub struct Node {
    child: Child,
    api: String,
    token: String,
    http: reqwest::Client,
}

impl Node {
    /// Start `kolokol up` on `data_dir`: every listener on 127.0.0.1, no DHT bootstrap, no LAN, publications
    /// announced at once (`--replicas 0`) and a low proof-of-work difficulty (`--work-bits 8`) so that publishing
    /// measures hashing and seeding, not the stamp search.
    pub fn start(kolokol: &Path, data_dir: &Path) -> Result<Node> {
        Self::start_with(
            kolokol,
            data_dir,
            &[
                "--no-default-bootstrap",
                "--no-lan",
                "--work-bits",
                "8",
                "--replicas",
                "0",
            ],
        )
    }

    /// Start `kolokol up` on `data_dir` with every listener on 127.0.0.1 (a port the system picks) and `flags`.
    pub fn start_with(kolokol: &Path, data_dir: &Path, flags: &[&str]) -> Result<Node> {
        std::fs::create_dir_all(data_dir)?;
        let log = std::fs::File::create(data_dir.with_extension("log"))?;
        let mut child = Command::new(kolokol)
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--api", "127.0.0.1:0", "up"])
            .args(["--listen", "127.0.0.1:0", "--wire", "127.0.0.1:0"])
            .args(["--dht", "127.0.0.1:0", "--proxy", "127.0.0.1:0"])
            .args(flags)
            .env("KOLOKOL_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("starting {}", kolokol.display()))?;
        let stdout = child.stdout.take().context("stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let api = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "kolokol up did not start (log: {})",
                    data_dir.with_extension("log").display()
                );
            };
            if let Some(url) = line.trim().strip_prefix("web:") {
                let url = url.trim();
                break url
                    .trim_start_matches("http://")
                    .trim_end_matches('/')
                    .to_owned();
            }
        };
        let token = std::fs::read_to_string(data_dir.join("api.token"))
            .context("reading the node's API token")?
            .trim()
            .to_owned();
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(5))
            .build()?;
        Ok(Node {
            child,
            api,
            token,
            http,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub async fn get_json(&self, path: &str) -> Result<Value> {
        let response = self
            .http
            .get(format!("http://{}/api/v1{path}", self.api))
            .send()
            .await?;
        read_json(response, path).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Result<Value> {
        let response = self
            .http
            .post(format!("http://{}/api/v1{path}", self.api))
            .header(TOKEN_HEADER, &self.token)
            .json(body)
            .send()
            .await?;
        read_json(response, path).await
    }

    /// Publish one file (kept as it is, under its own name: the benchmark files are random bytes). Returns the
    /// `PublishedView`.
    pub async fn publish(&self, file: &Path, title: &str) -> Result<Value> {
        self.post_json(
            "/publish",
            &json!({ "paths": [file], "title": title, "keep_metadata": true, "keep_names": true }),
        )
        .await
    }

    /// This node's BitTorrent listen address.
    pub async fn bt_addr(&self) -> Result<String> {
        let status = self.get_json("/status").await?;
        status["bt_addr"]
            .as_str()
            .map(str::to_owned)
            .context("status has no bt_addr")
    }

    /// Start `get` of `magnet` into `out_dir` and poll the transfer every 10 ms until it is finished.
    pub async fn get_until_finished(
        &self,
        magnet: &str,
        out_dir: &Path,
        limit: Duration,
    ) -> Result<()> {
        let started = self
            .post_json("/get", &json!({ "target": magnet, "out_dir": out_dir }))
            .await?;
        let infohash = started["infohash"]
            .as_str()
            .context("get returned no infohash")?
            .to_owned();
        let deadline = Instant::now() + limit;
        loop {
            let view = self.get_json(&format!("/transfers/{infohash}")).await?;
            if view["finished"] == true {
                return Ok(());
            }
            ensure!(
                view["state"] != "failed",
                "download failed: {}",
                view["error"]
            );
            ensure!(
                Instant::now() < deadline,
                "download not finished after {limit:?}: {view}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn read_json(response: reqwest::Response, path: &str) -> Result<Value> {
    let status = response.status();
    let text = response.text().await?;
    ensure!(status.is_success(), "{path}: HTTP {status}: {text}");
    serde_json::from_str(&text).with_context(|| format!("{path}: not JSON: {text}"))
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
