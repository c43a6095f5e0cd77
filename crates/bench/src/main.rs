//! kolokol-bench: how fast kolokol-transfer hashes and moves data, beside reference tools.
//!
//! One run prints:
//! (a) publish hashing throughput of `create_torrent` beside `sha1sum` on the same file (warm page
//!     cache for both), and how long seeding the just-hashed content takes (fast-resume sample)
//!     compared with the full check librqbit does for content it has not seen hashed;
//! (b) loopback TCP transfer throughput, kolokol to kolokol (two engines in this process) beside
//!     libtorrent to libtorrent (kolokol-testkit's `lt_peer.py seed` and `leech`), same file, timed
//!     from the leecher's start to verified completion.
//!
//! `kolokol-bench discovery` times a private network of `kolokol up` processes forming on default flags (see
//! [`discovery`]).
//!
//! `kolokol-bench all` prints every figure of BENCHMARKS.md's summary side by side in one run (see [`all`]):
//! transfer between `kolokol up` processes and between libtorrent processes at two sizes with CPU time per GiB,
//! hashing beside `sha1sum`, and the resident memory of an idle node and of one seeding 1,000 publications.
//!
//! It is a benchmark, not a test: it asserts nothing about speed. Everything runs on 127.0.0.1 in
//! a temporary folder that is removed at the end.

mod all;
mod discovery;
mod libtorrent;
mod node;
mod procstat;

use std::fs::File;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use kolokol_transfer::{Engine, EngineConfig, FetchSource};
use rand::RngCore;

const MIB: u64 = 1024 * 1024;

#[derive(Parser, Debug)]
#[command(
    about = "Benchmark kolokol-transfer: hashing vs sha1sum, loopback transfer vs libtorrent"
)]
struct Args {
    /// Without a subcommand: parts (a) and (b) above.
    #[command(subcommand)]
    command: Option<Cmd>,
    /// Size of the file hashed in part (a), in MiB.
    #[arg(
        long,
        global = true,
        default_value_t = 1024,
        env = "KOLOKOL_BENCH_HASH_MIB"
    )]
    hash_mib: u64,
    /// Size of the file transferred in part (b), in MiB.
    #[arg(long, default_value_t = 256, env = "KOLOKOL_BENCH_TRANSFER_MIB")]
    transfer_mib: u64,
    /// Folder for the temporary files (default: the system temp folder).
    #[arg(long, global = true, env = "KOLOKOL_BENCH_DIR")]
    dir: Option<PathBuf>,
    /// Give up on one transfer after this many seconds.
    #[arg(long, global = true, default_value_t = 600)]
    timeout_secs: u64,
}

#[derive(clap::Subcommand, Debug)]
enum Cmd {
    /// Every headline figure side by side (BENCHMARKS.md's summary), and where the other benchmarks are.
    All(all::AllArgs),
    /// A private network of `kolokol up` processes forming on default flags: time from start to first peer.
    Discovery(discovery::DiscoveryArgs),
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(
        args.hash_mib > 0 && args.transfer_mib > 0,
        "sizes must be at least 1 MiB"
    );
    let tmp = match &args.dir {
        Some(dir) => tempfile::tempdir_in(dir),
        None => tempfile::tempdir(),
    }
    .context("creating the temporary folder")?;
    let limit = Duration::from_secs(args.timeout_secs);
    match &args.command {
        Some(Cmd::All(all_args)) => {
            return all::run(all_args, tmp.path(), args.hash_mib * MIB, limit).await;
        }
        Some(Cmd::Discovery(discovery_args)) => {
            return discovery::run(discovery_args, tmp.path()).await;
        }
        None => {}
    }
    println!(
        "kolokol-bench: {} cores, temp folder {}",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        tmp.path().display()
    );

    hashing(tmp.path(), args.hash_mib * MIB, limit).await?;
    transfer(tmp.path(), args.transfer_mib * MIB, limit).await?;
    Ok(())
}

/// Part (a)'s figures.
pub(crate) struct Hashing {
    pub kolokol_mbs: f64,
    pub sha1sum_mbs: f64,
    /// Seeding right after hashing (sampled check).
    pub quick_seed: Duration,
    /// Seeding with librqbit's full check.
    pub full_seed: Duration,
}

/// Part (a).
pub(crate) async fn hashing(root: &Path, size: u64, limit: Duration) -> Result<Hashing> {
    println!(
        "\n(a) publish hashing, {:.0} MiB file",
        size as f64 / MIB as f64
    );
    let content_dir = root.join("hash");
    let file = content_dir.join("big.bin");
    write_random_file(&file, size)?;
    read_all(&file)?; // warm the page cache, so both sides read from memory

    let engine = start_engine(&root.join("hash-engine")).await?;
    let t = Instant::now();
    let created = engine.create_torrent(&file).await?;
    let ours = t.elapsed();

    let t = Instant::now();
    let out = Command::new("sha1sum")
        .arg(&file)
        .output()
        .context("running sha1sum")?;
    let sha1sum = t.elapsed();
    ensure!(out.status.success(), "sha1sum failed");

    let ours_mbs = mb_per_s(size, ours);
    let theirs_mbs = mb_per_s(size, sha1sum);
    println!(
        "  kolokol create_torrent : {:>8.1} MB/s ({:.2} s, piece {} KiB)",
        ours_mbs,
        ours.as_secs_f64(),
        created.piece_length / 1024
    );
    println!(
        "  sha1sum                : {:>8.1} MB/s ({:.2} s)",
        theirs_mbs,
        sha1sum.as_secs_f64()
    );
    println!("  ratio kolokol/sha1sum  : {:>8.2}", ours_mbs / theirs_mbs);

    // Seeding what was just hashed: librqbit gets a fast-resume bitfield and checks a sample.
    let t = Instant::now();
    let ih = engine.seed(&created.torrent, &content_dir).await?;
    tokio::time::timeout(limit, engine.wait_finished(&ih)).await??;
    let quick = t.elapsed();
    engine.shutdown().await;

    // The same torrent in an engine that did not hash it: librqbit's full check.
    let other = start_engine(&root.join("hash-engine-2")).await?;
    let t = Instant::now();
    let ih = other.seed(&created.torrent, &content_dir).await?;
    tokio::time::timeout(limit, other.wait_finished(&ih)).await??;
    let full = t.elapsed();
    other.shutdown().await;
    println!(
        "  seed right after create: {:>8.2} s (sampled check, no second full hash)",
        quick.as_secs_f64()
    );
    println!(
        "  seed with full re-check: {:>8.2} s (what adding the torrent costs otherwise)",
        full.as_secs_f64()
    );
    std::fs::remove_file(&file).context("removing the hashing file")?;
    Ok(Hashing {
        kolokol_mbs: ours_mbs,
        sha1sum_mbs: theirs_mbs,
        quick_seed: quick,
        full_seed: full,
    })
}

/// Part (b).
async fn transfer(root: &Path, size: u64, limit: Duration) -> Result<()> {
    println!(
        "\n(b) loopback TCP transfer, {:.0} MiB file",
        size as f64 / MIB as f64
    );
    let content_dir = root.join("xfer");
    let file = content_dir.join("movie.bin");
    write_random_file(&file, size)?;

    let seeder = start_engine(&root.join("seeder")).await?;
    let created = seeder.create_torrent(&file).await?;
    let ih = seeder.seed(&created.torrent, &content_dir).await?;
    tokio::time::timeout(limit, seeder.wait_finished(&ih)).await??;
    let leecher = start_engine(&root.join("leecher")).await?;
    let out = root.join("kolokol-out");
    let magnet = format!("magnet:?xt=urn:btih:{}&dn=movie.bin", hex(&ih));
    let t = Instant::now();
    let got = leecher
        .fetch(
            FetchSource::Magnet(magnet),
            &out,
            vec![seeder.listen_addr()],
        )
        .await?;
    tokio::time::timeout(limit, leecher.wait_finished(&got))
        .await
        .context("kolokol transfer timed out")??;
    let ours = t.elapsed();
    let same = same_bytes(&file, &out.join("movie.bin"))?;
    leecher.shutdown().await;
    seeder.shutdown().await;
    let ours_mbs = mb_per_s(size, ours);
    println!(
        "  kolokol -> kolokol     : {:>8.1} MB/s ({:.2} s, bytes {})",
        ours_mbs,
        ours.as_secs_f64(),
        if same { "identical" } else { "DIFFER" }
    );
    if !same {
        bail!("kolokol transfer produced different bytes");
    }
    std::fs::remove_dir_all(&out).context("removing the kolokol download")?;

    match libtorrent::transfer(root, &file, limit) {
        Ok(lt) => {
            let lt_mbs = mb_per_s(size, lt.wall);
            println!(
                "  libtorrent -> libtorrent: {:>7.1} MB/s ({:.2} s from add to verified; {:.2} s with Python start-up)",
                lt_mbs,
                lt.wall.as_secs_f64(),
                lt.process.as_secs_f64()
            );
            println!("  ratio kolokol/libtorrent: {:>7.2}", ours_mbs / lt_mbs);
        }
        Err(e) => println!("  libtorrent -> libtorrent: not measured: {e:#}"),
    }
    Ok(())
}

async fn start_engine(root: &Path) -> Result<Engine> {
    let listen: SocketAddr = "127.0.0.1:0".parse()?;
    let cfg = EngineConfig::new(listen, root.join("state"), root.join("downloads"));
    Ok(Engine::start(cfg).await?)
}

pub(crate) fn write_random_file(path: &Path, size: u64) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut f = File::create(path).with_context(|| format!("creating {path:?}"))?;
    let mut buf = vec![0u8; 8 * MIB as usize];
    let mut rng = rand::rng();
    let mut left = size;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        rng.fill_bytes(&mut buf[..n]);
        f.write_all(&buf[..n])?;
        left -= n as u64;
    }
    f.sync_all()?;
    Ok(())
}

fn read_all(path: &Path) -> Result<()> {
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; 8 * MIB as usize];
    while f.read(&mut buf)? > 0 {}
    Ok(())
}

pub(crate) fn same_bytes(a: &Path, b: &Path) -> Result<bool> {
    let (mut fa, mut fb) = (File::open(a)?, File::open(b)?);
    if fa.metadata()?.len() != fb.metadata()?.len() {
        return Ok(false);
    }
    let (mut ba, mut bb) = (vec![0u8; 4 * MIB as usize], vec![0u8; 4 * MIB as usize]);
    loop {
        let n = fa.read(&mut ba)?;
        if n == 0 {
            return Ok(true);
        }
        fb.read_exact(&mut bb[..n])?;
        if ba[..n] != bb[..n] {
            return Ok(false);
        }
    }
}

pub(crate) fn mb_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64().max(1e-9)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
