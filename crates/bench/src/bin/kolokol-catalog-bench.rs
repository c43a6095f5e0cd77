//! Catalog benchmark (not a test): search latency and node memory with a large catalog.
//!
//!   cargo build --release && cargo run --release -p kolokol-bench --bin kolokol-catalog-bench [-- --records 100000]
//!
//! Builds a real catalog database of N signed records (Russian and English titles, 1,000 authors) the way a sync
//! brings them in bulk (validated in parallel, admitted and stored in batches of 1,000: the rate is reported), measures
//! local search latency (p50, p99) over a mix of queries, then starts `kolokol up` on that data directory (loopback
//! only, no DHT routers, no LAN, no proxy) and reports its resident memory before and after serving searches.
//! `--single 10000` also times that many records stored one transaction each, as records were stored before.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use kolokol_core::keys::Keypair;
use kolokol_core::record::{
    FileEntry, InfoHash, RecordBody, ValidationContext, sign_record, validate_record,
    validate_records,
};
use kolokol_store::{Catalog, SearchQuery};
use rand::{Rng, SeedableRng};

#[derive(Parser)]
struct Args {
    /// Records in the catalog.
    #[arg(long, default_value_t = 100_000)]
    records: usize,
    /// The kolokol binary to start on the catalog.
    #[arg(long, default_value = "target/release/kolokol")]
    kolokol: PathBuf,
    /// Also time this many records stored one at a time (one transaction each), in a catalog of their own.
    #[arg(long, default_value_t = 0)]
    single: usize,
    /// Records per batch in bulk admission (a sync stores one message's records as one batch).
    #[arg(long, default_value_t = 1000)]
    batch: usize,
}

const WORDS: &[&str] = &[
    "москва",
    "митинг",
    "площадь",
    "выборы",
    "протест",
    "новости",
    "видео",
    "город",
    "суд",
    "задержание",
    "moscow",
    "protest",
    "square",
    "election",
    "news",
    "video",
    "court",
    "arrest",
    "river",
    "school",
    "hospital",
    "бюджет",
    "интервью",
    "репортаж",
    "документы",
    "report",
    "interview",
    "documents",
    "street",
    "police",
];

fn title(rng: &mut impl Rng) -> String {
    let n = rng.random_range(2..6);
    (0..n)
        .map(|_| WORDS[rng.random_range(0..WORDS.len())])
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("node");
    std::fs::create_dir_all(&data)?;
    let mut catalog = Catalog::open(&data.join("catalog.sqlite"), "kolokol")?;
    let authors: Vec<Keypair> = (0..1000u32)
        .map(|i| {
            let mut secret = [0u8; 32];
            secret[..4].copy_from_slice(&i.to_be_bytes());
            secret[31] = 1;
            Keypair::from_secret_bytes(secret)
        })
        .collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let bodies: Vec<(usize, RecordBody)> = (0..args.records)
        .map(|i| (i, body(i, &mut rng, &authors[i % authors.len()])))
        .collect();
    let started = Instant::now();
    let signed = sign_all(bodies, &authors)?;
    println!(
        "signed {} records in {:.1} s (not part of any figure)",
        signed.len(),
        started.elapsed().as_secs_f64()
    );

    if args.single > 0 {
        let mut one_by_one = Catalog::open(&tmp.path().join("single.sqlite"), "kolokol")?;
        let ctx = ValidationContext {
            network: "kolokol".into(),
            now_unix: 1_800_000_000,
        };
        let started = Instant::now();
        for bytes in signed.iter().take(args.single) {
            let record = validate_record(bytes, &ctx)?;
            one_by_one.admission_facts(&record, 1_800_000_000 - 3600)?;
            one_by_one.insert_record(&record, 1_800_000_000)?;
        }
        let n = args.single.min(signed.len());
        let secs = started.elapsed().as_secs_f64();
        println!(
            "one at a time: {n} records validated, admitted and stored (one transaction each) in {secs:.1} s: {:.0} records/s",
            n as f64 / secs
        );
    }

    // Bulk admission, as a sync does it: each batch validated on every core, then admitted (the catalog's facts on
    // each record's author, the node's default cap) and stored in one transaction.
    let ctx = ValidationContext {
        network: "kolokol".into(),
        now_unix: 1_800_000_000,
    };
    let started = Instant::now();
    let mut stored = 0usize;
    let mut storing_cpu = Duration::ZERO;
    let process_cpu = process_cpu_time()?;
    for batch in signed.chunks(args.batch.max(1)) {
        let valid: Vec<_> = validate_records(batch, &ctx)
            .into_iter()
            .collect::<Result<_, _>>()?;
        let t = thread_cpu_time()?;
        let outcomes = catalog.insert_batch(valid, 1_800_000_000, |catalog, record| {
            let facts = catalog.admission_facts(record, 1_800_000_000 - 3600)?;
            if facts.blocked || (!facts.held && facts.author_records >= 10_000) {
                bail!("refused");
            }
            Ok(())
        })?;
        stored += outcomes
            .iter()
            .filter(|(_, o)| matches!(o, Ok(true)))
            .count();
        storing_cpu += thread_cpu_time()? - t;
    }
    let secs = started.elapsed().as_secs_f64();
    let validating_cpu = (process_cpu_time()? - process_cpu).saturating_sub(storing_cpu);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let unloaded = validating_cpu.as_secs_f64() / cores as f64 + storing_cpu.as_secs_f64();
    println!(
        "bulk admission, batches of {}: {stored} records validated, admitted and stored in {secs:.1} s wall: {:.0} records/s",
        args.batch,
        stored as f64 / secs,
    );
    println!(
        "  CPU: validation {:.1} s (on {cores} cores), admission and storage {:.1} s (one thread): {:.0} records/s on idle cores",
        validating_cpu.as_secs_f64(),
        storing_cpu.as_secs_f64(),
        stored as f64 / unloaded
    );
    if stored != args.records {
        bail!("only {stored} of {} records stored", args.records);
    }
    println!(
        "catalog file: {:.1} MB (after a checkpoint)",
        file_mb(&catalog, &data.join("catalog.sqlite"))?
    );

    let queries = [
        "москв",
        "protest",
        "видео площади",
        "court arrest",
        "новости суд",
        "repo",
        "ЗАДЕРЖАНИЕ",
        "river",
    ];
    let mut times = Vec::new();
    let mut cpu_times = Vec::new();
    for round in 0..25 {
        for (k, q) in queries.iter().enumerate() {
            let query = SearchQuery {
                text: (*q).into(),
                lang: (round % 2 == 0 && k % 2 == 0).then(|| "ru".to_owned()),
                limit: 50,
                ..SearchQuery::default()
            };
            let t = Instant::now();
            let cpu = thread_cpu_time()?;
            let found = catalog.search(&query)?;
            cpu_times.push(thread_cpu_time()? - cpu);
            times.push(t.elapsed());
            if found.is_empty() && !q.is_empty() && round == 0 {
                println!("  (no results for {q:?})");
            }
        }
    }
    let pct = |times: &mut Vec<Duration>, p: f64| {
        times.sort();
        times[((times.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1000.0
    };
    println!(
        "search, first page of 50, {} queries: p50 {:.2} ms, p99 {:.2} ms",
        times.len(),
        pct(&mut times, 0.5),
        pct(&mut times, 0.99)
    );
    println!(
        "  (CPU time of the searching thread: p50 {:.2} ms, p99 {:.2} ms; load average {})",
        pct(&mut cpu_times, 0.5),
        pct(&mut cpu_times, 0.99),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    drop(catalog);
    node_memory(&args.kolokol, &data)
}

/// The record body number `i` of the benchmark's catalog.
fn body(i: usize, rng: &mut impl Rng, author: &Keypair) -> RecordBody {
    let mime = ["video/mp4", "image/jpeg", "text/plain", "audio/ogg"][i % 4];
    let mut infohash = [0u8; 20];
    rng.fill(&mut infohash[..]);
    RecordBody {
        network: "kolokol".into(),
        author: author.public(),
        created: 1_700_000_000 + i as u64,
        title: title(rng),
        description: title(rng),
        tags: vec![WORDS[i % WORDS.len()].to_owned()],
        lang: Some(if i.is_multiple_of(3) { "en" } else { "ru" }.to_owned()),
        files: vec![FileEntry {
            path: format!("file{i}"),
            size: 1000 + i as u64,
            mime: mime.into(),
        }],
        infohash: InfoHash(infohash),
        thumbnail: None,
    }
}

/// Sign every body with its author's key, on every core (a million signatures take a while).
fn sign_all(bodies: Vec<(usize, RecordBody)>, authors: &[Keypair]) -> anyhow::Result<Vec<Vec<u8>>> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = bodies.len().div_ceil(cores).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = bodies
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|(i, body)| {
                            sign_record(body.clone(), &authors[i % authors.len()])
                                .map(|r| r.bytes().to_vec())
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        let mut out = Vec::with_capacity(bodies.len());
        for worker in workers {
            out.extend(
                worker
                    .join()
                    .map_err(|_| anyhow::anyhow!("a signing thread panicked"))??,
            );
        }
        Ok(out)
    })
}

/// CPU time this thread has run so far (from the scheduler, in nanoseconds): unlike wall time, not inflated by
/// waiting for a CPU that other processes on a shared machine hold.
fn thread_cpu_time() -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat")?;
    let ns: u64 = stat
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .context("schedstat")?;
    Ok(Duration::from_nanos(ns))
}

/// CPU time (user and system) of the whole process so far, threads that ended included, in clock ticks of 10 ms.
fn process_cpu_time() -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the command name (which is in parentheses and may hold spaces): utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')').context("stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<u64> { Ok(fields.get(i).context("stat")?.parse()?) };
    Ok(Duration::from_millis((ticks(11)? + ticks(12)?) * 10))
}

/// The database file's size once the WAL is checkpointed into it.
fn file_mb(catalog: &Catalog, path: &Path) -> anyhow::Result<f64> {
    catalog.checkpoint()?;
    Ok(std::fs::metadata(path)?.len() as f64 / 1e6)
}

fn node_memory(kolokol: &Path, data: &Path) -> anyhow::Result<()> {
    if !kolokol.exists() {
        bail!(
            "{} not found: run `cargo build --release` first",
            kolokol.display()
        );
    }
    let mut child = Command::new(kolokol)
        .arg("--data-dir")
        .arg(data)
        .args([
            "--api",
            "127.0.0.1:0",
            "up",
            "--listen",
            "127.0.0.1:0",
            "--wire",
            "127.0.0.1:0",
        ])
        .args([
            "--dht",
            "127.0.0.1:0",
            "--no-default-bootstrap",
            "--no-lan",
            "--no-proxy",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("start kolokol up")?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut api = None;
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        if let Some(rest) = line.trim().strip_prefix("web:") {
            api = Some(
                rest.trim()
                    .trim_start_matches("http://")
                    .trim_end_matches('/')
                    .to_owned(),
            );
            break;
        }
    }
    let api = api.context("the node did not start")?;
    let token = std::fs::read_to_string(data.join("api.token")).context("the node's API token")?;
    let token = token.trim();
    std::thread::sleep(Duration::from_secs(2));
    let idle = rss_kib(child.id())?;
    for q in ["москв", "protest", "видео", "court"] {
        http_get(
            &api,
            token,
            &format!("/api/v1/search?q={}&limit=50", percent(q)),
        )?;
    }
    http_get(&api, token, "/api/v1/records?limit=1000")?;
    let after = rss_kib(child.id())?;
    println!(
        "node resident memory with the catalog: {:.1} MiB idle, {:.1} MiB after serving searches and a 1,000-record list",
        idle as f64 / 1024.0,
        after as f64 / 1024.0
    );
    let _ = child.kill();
    let _ = child.wait();
    Ok(())
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS")
}

/// A read of the API: it needs the token from the data directory, as every `/api/v1` request does.
fn http_get(api: &str, token: &str, path: &str) -> anyhow::Result<()> {
    let mut stream = TcpStream::connect(api)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {api}\r\nX-Kolokol-Token: {token}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    if !response.starts_with(b"HTTP/1.1 200") {
        bail!(
            "{path}: {}",
            String::from_utf8_lossy(&response[..response.len().min(200)])
        );
    }
    Ok(())
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
