//! `kolokol-bench all`: every headline figure in one run, printed side by side at the end.
//!
//! - Transfer over loopback TCP at each size (default 256 MiB and 1 GiB): node A (`kolokol up`) publishes the file,
//!   node B (`kolokol up`) downloads it from a magnet naming A (metadata by BEP 9, then the data), timed from the
//!   API call to the finished transfer (polled every 10 ms), bytes compared; beside libtorrent seeding to libtorrent
//!   (kolokol-testkit's `lt_peer.py`, timed as the leecher reports it: from adding the torrent to verified completion).
//! - CPU time per GiB transferred: user + system time (`/proc/PID/stat`) of the sending and the receiving process
//!   over the transfer. kolokol: the two node processes during the download. libtorrent: the seeder during the
//!   download, and the leecher over its whole life (so it includes Python and libtorrent start-up).
//! - Publish hashing beside `sha1sum` (part (a) of the default run).
//! - Resident memory (`VmRSS`) of a `kolokol up` process idle, then after publishing N small publications
//!   (4 KiB each, all seeded; `--work-bits 8 --replicas 0` so publishing is fast and announces at once).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use rand::RngCore;

use crate::node::Node;
use crate::procstat::{cpu_time, rss_kib};
use crate::{MIB, mb_per_s, same_bytes, write_random_file};

const GIB: f64 = (1024 * 1024 * 1024) as f64;

#[derive(clap::Args, Debug)]
pub struct AllArgs {
    /// Transfer sizes in MiB, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "256,1024")]
    sizes_mib: Vec<u64>,
    /// Small publications the memory measurement seeds.
    #[arg(long, default_value_t = 1000)]
    publications: usize,
    /// The kolokol binary (build it first: `cargo build --release -p kolokol`).
    #[arg(long, default_value = "target/release/kolokol")]
    kolokol: PathBuf,
}

/// One kolokol-to-kolokol and one libtorrent-to-libtorrent transfer of the same file.
struct TransferRow {
    mib: u64,
    kolokol: Measured,
    libtorrent: Option<Measured>,
}

struct Measured {
    wall: Duration,
    sender_cpu: Duration,
    receiver_cpu: Duration,
}

struct Memory {
    idle_kib: u64,
    seeding_kib: u64,
    seeded: u64,
    publish_time: Duration,
}

pub async fn run(args: &AllArgs, root: &Path, hash_bytes: u64, limit: Duration) -> Result<()> {
    ensure!(
        args.kolokol.is_file(),
        "no kolokol binary at {} (cargo build --release -p kolokol, or give --kolokol)",
        args.kolokol.display()
    );
    ensure!(!args.sizes_mib.contains(&0), "sizes must be at least 1 MiB");
    let machine = machine();
    println!(
        "kolokol-bench all: {machine}; temp folder {}",
        root.display()
    );

    let hashing = crate::hashing(root, hash_bytes, limit).await?;

    let mut rows = Vec::new();
    for &mib in &args.sizes_mib {
        println!("\ntransfer, {mib} MiB, loopback TCP");
        let content = root.join(format!("xfer-{mib}"));
        let file = content.join(format!("movie-{mib}.bin"));
        write_random_file(&file, mib * MIB)?;
        let kolokol = kolokol_transfer(&args.kolokol, root, &file, limit).await?;
        print_measured("kolokol -> kolokol", mib, &kolokol);
        let libtorrent = match crate::libtorrent::transfer(root, &file, limit) {
            Ok(lt) => {
                let m = Measured {
                    wall: lt.wall,
                    sender_cpu: lt.seeder_cpu,
                    receiver_cpu: lt.leecher_cpu,
                };
                print_measured("libtorrent -> libtorrent", mib, &m);
                Some(m)
            }
            Err(e) => {
                println!("  libtorrent -> libtorrent: not measured: {e:#}");
                None
            }
        };
        std::fs::remove_dir_all(&content).context("removing the transfer file")?;
        rows.push(TransferRow {
            mib,
            kolokol,
            libtorrent,
        });
    }

    println!("\nresident memory, {} publications", args.publications);
    let memory = memory(&args.kolokol, root, args.publications).await?;

    print_summary(
        &machine,
        hash_bytes,
        &hashing,
        &rows,
        &memory,
        args.publications,
    );
    Ok(())
}

/// A publishes `file`, B gets it from a magnet naming A's BitTorrent address.
async fn kolokol_transfer(
    kolokol: &Path,
    root: &Path,
    file: &Path,
    limit: Duration,
) -> Result<Measured> {
    let a = Node::start(kolokol, &root.join("node-a"))?;
    let published = a.publish(file, "benchmark").await?;
    let infohash = published["infohash"]
        .as_str()
        .context("publish returned no infohash")?
        .to_owned();
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .context("file name")?;
    let magnet = format!(
        "magnet:?xt=urn:btih:{infohash}&dn={name}&x.pe={}",
        a.bt_addr().await?
    );
    let b = Node::start(kolokol, &root.join("node-b"))?;
    let out = root.join("node-b-out");
    let (a_before, b_before) = (cpu_time(a.pid())?, cpu_time(b.pid())?);
    let t = Instant::now();
    b.get_until_finished(&magnet, &out, limit).await?;
    let wall = t.elapsed();
    let sender_cpu = cpu_time(a.pid())?.saturating_sub(a_before);
    let receiver_cpu = cpu_time(b.pid())?.saturating_sub(b_before);
    let same = same_bytes(file, &out.join(name))?;
    ensure!(same, "kolokol transfer produced different bytes");
    drop((a, b));
    for dir in ["node-a", "node-b", "node-b-out"] {
        std::fs::remove_dir_all(root.join(dir))?;
    }
    Ok(Measured {
        wall,
        sender_cpu,
        receiver_cpu,
    })
}

async fn memory(kolokol: &Path, root: &Path, count: usize) -> Result<Memory> {
    let node = Node::start(kolokol, &root.join("node-mem"))?;
    // Let start-up work (DHT, engine, first tasks) settle before reading the idle figure.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let idle_kib = rss_kib(node.pid())?;
    println!("  idle: {:.1} MiB", idle_kib as f64 / 1024.0);

    let files = root.join("small");
    std::fs::create_dir_all(&files)?;
    let mut rng = rand::rng();
    let mut buf = [0u8; 4096];
    let t = Instant::now();
    for i in 0..count {
        let file = files.join(format!("note-{i:05}.bin"));
        rng.fill_bytes(&mut buf);
        std::fs::write(&file, buf)?;
        node.publish(&file, &format!("note {i}")).await?;
    }
    let publish_time = t.elapsed();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let seeding_kib = rss_kib(node.pid())?;
    let seeded = node.get_json("/status").await?["transfers"]
        .as_u64()
        .unwrap_or(0);
    println!(
        "  seeding {seeded} publications: {:.1} MiB (publishing took {:.1} s)",
        seeding_kib as f64 / 1024.0,
        publish_time.as_secs_f64()
    );
    drop(node);
    std::fs::remove_dir_all(root.join("node-mem"))?;
    std::fs::remove_dir_all(&files)?;
    Ok(Memory {
        idle_kib,
        seeding_kib,
        seeded,
        publish_time,
    })
}

fn cpu_per_gib(cpu: Duration, mib: u64) -> f64 {
    cpu.as_secs_f64() / (mib as f64 * MIB as f64 / GIB)
}

fn print_measured(what: &str, mib: u64, m: &Measured) {
    println!(
        "  {what:<25}: {:>7.1} MB/s ({:.2} s); CPU per GiB: sender {:.2} s, receiver {:.2} s",
        mb_per_s(mib * MIB, m.wall),
        m.wall.as_secs_f64(),
        cpu_per_gib(m.sender_cpu, mib),
        cpu_per_gib(m.receiver_cpu, mib)
    );
}

fn print_summary(
    machine: &str,
    hash_bytes: u64,
    hashing: &crate::Hashing,
    rows: &[TransferRow],
    memory: &Memory,
    publications: usize,
) {
    println!("\n===== summary ({machine}) =====");
    println!(
        "{:<34} {:>14} {:>14} {:>7}",
        "transfer, loopback TCP", "kolokol", "libtorrent", "ratio"
    );
    for row in rows {
        let ours = mb_per_s(row.mib * MIB, row.kolokol.wall);
        let theirs = row
            .libtorrent
            .as_ref()
            .map(|m| mb_per_s(row.mib * MIB, m.wall));
        println!(
            "{:<34} {:>9.1} MB/s {:>14} {:>7}",
            format!("  {} MiB", row.mib),
            ours,
            theirs.map_or("-".to_owned(), |t| format!("{t:.1} MB/s")),
            theirs.map_or("-".to_owned(), |t| format!("{:.2}", ours / t))
        );
    }
    println!(
        "{:<34} {:>14} {:>14}",
        "CPU s per GiB, sender + receiver", "kolokol", "libtorrent"
    );
    for row in rows {
        let fmt = |m: &Measured| {
            format!(
                "{:.2} + {:.2}",
                cpu_per_gib(m.sender_cpu, row.mib),
                cpu_per_gib(m.receiver_cpu, row.mib)
            )
        };
        println!(
            "{:<34} {:>14} {:>14}",
            format!("  {} MiB", row.mib),
            fmt(&row.kolokol),
            row.libtorrent.as_ref().map_or("-".to_owned(), fmt)
        );
    }
    println!(
        "{:<34} {:>14} {:>14} {:>7}",
        format!("publish hashing, {} MiB", hash_bytes / MIB),
        "kolokol",
        "sha1sum",
        "ratio"
    );
    println!(
        "{:<34} {:>9.1} MB/s {:>9.1} MB/s {:>7.2}",
        "",
        hashing.kolokol_mbs,
        hashing.sha1sum_mbs,
        hashing.kolokol_mbs / hashing.sha1sum_mbs
    );
    println!(
        "{:<34} {:>12.2} s {:>12.2} s",
        "  seed after create / full re-check",
        hashing.quick_seed.as_secs_f64(),
        hashing.full_seed.as_secs_f64()
    );
    println!("resident memory (VmRSS) of `kolokol up`");
    println!(
        "{:<34} {:>9.1} MiB",
        "  idle",
        memory.idle_kib as f64 / 1024.0
    );
    println!(
        "{:<34} {:>9.1} MiB   ({} transfers; publishing took {:.1} s)",
        format!("  seeding {publications} publications"),
        memory.seeding_kib as f64 / 1024.0,
        memory.seeded,
        memory.publish_time.as_secs_f64()
    );
    println!("\nother benchmarks (BENCHMARKS.md):");
    for line in OTHER_BENCHMARKS {
        println!("  {line}");
    }
}

/// Every other benchmark command, so that this one is the place to find them.
const OTHER_BENCHMARKS: &[&str] = &[
    "cargo run --release -p kolokol-bench                      # hashing + in-process engine transfer",
    "target/release/kolokol-bench discovery                    # a private network forming on default flags",
    "cargo build --release && scripts/bench-discovery.py        # discovery one after another on default flags, publication spread",
    "cargo run --release -p kolokol-discovery --bin kolokol-discovery-bench",
    "cargo run --release -p kolokol-sim --bin kolokol-reconcile-bench",
    "cargo run --release -p kolokol-bench --bin kolokol-catalog-bench -- --records 100000",
    "cargo run --release -p kolokol-sim -- --nodes 2000 --degree 8 --churn 0.2 --scenario all",
    "cargo run --release -p kolokol-bench --bin kolokol-stream-bench",
];

/// CPU model, cores and RAM, from /proc.
pub(crate) fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim())
        .to_owned();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let ram_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    format!("{model}, {cores} cores, {ram_gib:.0} GiB RAM")
}
