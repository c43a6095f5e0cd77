//! Streaming gateway benchmark (not a test): how soon a viewer gets bytes of a publication nobody near them has yet.
//!
//!   cargo build --release && cargo run --release -p kolokol-bench --bin kolokol-stream-bench [-- --mib 200]
//!
//! Node A (`kolokol up` on loopback) publishes a file of N MiB. Then, each time on a fresh node B that has none of
//! it and is peered with A: time to first byte of a gateway request at offset 0; time to first byte of a request
//! in the middle of the file; time to read the whole file through the gateway (checked byte for byte); and the
//! engine's plain download time (`kolokol get`, to verified completion). A runs with `--replicas 0`, so no B
//! starts fetching before it is asked. Everything stays on 127.0.0.1.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use clap::Parser;
use rand::{RngCore, SeedableRng};

const MIB: u64 = 1024 * 1024;

#[derive(Parser)]
struct Args {
    /// Size of the published file in MiB.
    #[arg(long, default_value_t = 200)]
    mib: u64,
    /// The kolokol binary.
    #[arg(long, default_value = "target/release/kolokol")]
    kolokol: PathBuf,
    /// Folder for the temporary data directories (default: the system temp folder).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// A `kolokol up` process on loopback, killed when dropped.
struct Node {
    child: Child,
    bin: PathBuf,
    data_dir: PathBuf,
    api: String,
}

impl Node {
    fn start(bin: &Path, data_dir: &Path, extra: &[&str]) -> anyhow::Result<Node> {
        std::fs::create_dir_all(data_dir)?;
        let log = File::create(data_dir.with_extension("log"))?;
        let mut child = Command::new(bin)
            .args([
                "--data-dir",
                &data_dir.to_string_lossy(),
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
            .args(["--no-default-bootstrap", "--no-lan"])
            .args([
                "--work-bits",
                "8",
                "--no-proxy",
                "--stream-timeout-secs",
                "60",
            ])
            .args(extra)
            .env("KOLOKOL_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let api = loop {
            let line = lines.next().context("the node exited before it was up")??;
            if let Some(url) = line.trim().strip_prefix("web:") {
                break url
                    .trim()
                    .trim_start_matches("http://")
                    .trim_end_matches('/')
                    .to_owned();
            }
        };
        // Keep draining its output so that it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(Node {
            child,
            bin: bin.to_path_buf(),
            data_dir: data_dir.to_path_buf(),
            api,
        })
    }

    fn cli(&self, args: &[&str]) -> anyhow::Result<serde_json::Value> {
        let out = Command::new(&self.bin)
            .args([
                "--data-dir",
                &self.data_dir.to_string_lossy(),
                "--api",
                &self.api,
                "--json",
            ])
            .args(args)
            .stdin(Stdio::null())
            .output()?;
        ensure!(
            out.status.success(),
            "kolokol {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(serde_json::from_slice(&out.stdout)?)
    }

    /// Peers with `seeder` and waits until the record `id` is in this node's catalog.
    fn join(&self, seeder: &Node, id: &str) -> anyhow::Result<()> {
        let wire = seeder.cli(&["status"])?["wire_addr"]
            .as_str()
            .context("no wire address")?
            .to_owned();
        self.cli(&["peer", "add", &wire])?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if self.cli(&["show", id]).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("the record never reached the new node")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends a GET and returns the connection positioned after the response head, and the status.
fn get(api: &str, path: &str, range: Option<&str>) -> anyhow::Result<(u16, BufReader<TcpStream>)> {
    let mut stream = TcpStream::connect(api)?;
    stream.set_read_timeout(Some(Duration::from_secs(300)))?;
    let mut head = format!("GET {path} HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\n");
    if let Some(range) = range {
        head.push_str(&format!("Range: {range}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    let mut reader = BufReader::with_capacity(256 * 1024, stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line)?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status")?;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
    }
    Ok((status, reader))
}

/// Time until the first body byte of a 64 KiB range at `offset`, on a node that has none of the file yet.
fn time_to_first_byte(node: &Node, path: &str, offset: u64) -> anyhow::Result<Duration> {
    ensure!(
        node.cli(&["status"])?["transfers"] == 0,
        "the node already fetches the file: the measurement would not be cold"
    );
    let started = Instant::now();
    let range = format!("bytes={offset}-{}", offset + 65_535);
    let (status, mut reader) = get(&node.api, path, Some(&range))?;
    ensure!(status == 206, "status {status} for {range}");
    let mut byte = [0u8; 1];
    reader.read_exact(&mut byte)?;
    let elapsed = started.elapsed();
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest)?;
    ensure!(
        rest.len() == 65_535,
        "short range: {} bytes",
        rest.len() + 1
    );
    Ok(elapsed)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(args.mib > 0, "--mib must be at least 1");
    let tmp = match &args.dir {
        Some(dir) => tempfile::tempdir_in(dir),
        None => tempfile::tempdir(),
    }?;
    let root = tmp.path();
    let size = args.mib * MIB;
    let file = root.join("video.webm");
    {
        let mut rng = rand::rngs::StdRng::seed_from_u64(200);
        let mut out = std::io::BufWriter::new(File::create(&file)?);
        let mut block = vec![0u8; MIB as usize];
        for _ in 0..args.mib {
            rng.fill_bytes(&mut block);
            out.write_all(&block)?;
        }
        out.flush()?;
    }

    // No publisher push: a peer asked to replicate would start downloading before the measured request.
    let seeder = Node::start(&args.kolokol, &root.join("a"), &["--replicas", "0"])?;
    let published = seeder.cli(&["publish", &file.to_string_lossy(), "--title", "bench video"])?;
    let id = published["id"].as_str().context("no id")?.to_owned();
    let path = format!("/files/{id}/0");
    println!(
        "kolokol-stream-bench: {} MiB file, {} cores, loopback",
        args.mib,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    let fresh = |name: &str| -> anyhow::Result<Node> {
        let node = Node::start(&args.kolokol, &root.join(name), &[])?;
        node.join(&seeder, &id)?;
        Ok(node)
    };

    let b = fresh("b-start")?;
    let ttfb_start = time_to_first_byte(&b, &path, 0)?;
    drop(b);
    let b = fresh("b-middle")?;
    let ttfb_middle = time_to_first_byte(&b, &path, size / 2)?;
    drop(b);

    let b = fresh("b-whole")?;
    let started = Instant::now();
    let (status, mut body) = get(&b.api, &path, None)?;
    ensure!(status == 200, "status {status} for the whole file");
    let mut original = BufReader::new(File::open(&file)?);
    let mut got = vec![0u8; 256 * 1024];
    let mut want = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = body.read(&mut got)?;
        if n == 0 {
            break;
        }
        original.read_exact(&mut want[..n])?;
        ensure!(got[..n] == want[..n], "wrong bytes at offset {total}");
        total += n as u64;
    }
    let whole = started.elapsed();
    ensure!(total == size, "read {total} bytes of {size}");
    drop(b);

    let b = fresh("b-get")?;
    let started = Instant::now();
    b.cli(&["get", &id, "--timeout", "600"])?;
    let plain = started.elapsed();
    drop(b);

    let mib_s = |d: Duration| args.mib as f64 / d.as_secs_f64();
    println!(
        "time to first byte, offset 0 (cold):       {:>8.1} ms",
        ttfb_start.as_secs_f64() * 1e3
    );
    println!(
        "time to first byte, middle (cold):         {:>8.1} ms",
        ttfb_middle.as_secs_f64() * 1e3
    );
    println!(
        "whole file through the gateway (cold):     {:>8.2} s  ({:.0} MiB/s)",
        whole.as_secs_f64(),
        mib_s(whole)
    );
    println!(
        "plain `kolokol get` (verified):            {:>8.2} s  ({:.0} MiB/s)",
        plain.as_secs_f64(),
        mib_s(plain)
    );
    println!(
        "gateway / plain download time:             {:>8.2}",
        whole.as_secs_f64() / plain.as_secs_f64()
    );
    Ok(())
}
