//! What the kernel says about a process (Linux `/proc`): CPU time used and resident memory.

use std::io::Read;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// User + system CPU time a process has used so far, from `/proc/PID/stat` (fields 14 and 15, in clock ticks).
/// Works on a zombie too: its times stay readable until its parent waits for it.
pub fn cpu_time(pid: u32) -> Result<Duration> {
    let (_, ticks) = stat(pid)?;
    Ok(Duration::from_secs_f64(
        ticks as f64 / clock_ticks_per_sec(),
    ))
}

/// Resident memory (`VmRSS` of `/proc/PID/status`) in KiB.
pub fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmRSS in /proc/{pid}/status"))
}

/// The process state letter and utime + stime in ticks.
fn stat(pid: u32) -> Result<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // "PID (COMM) S ..."; COMM may hold spaces and parentheses, so split after the last ')'.
    let rest = text
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("malformed /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is the state (field 3); utime and stime are fields 14 and 15.
    let state = fields
        .first()
        .and_then(|s| s.chars().next())
        .context("no state")?;
    let number = |i: usize| -> Result<u64> {
        fields
            .get(i)
            .and_then(|s| s.parse().ok())
            .context("malformed /proc stat times")
    };
    Ok((state, number(11)? + number(12)?))
}

/// `getconf CLK_TCK`, 100 if it cannot be asked (the value on every common Linux).
fn clock_ticks_per_sec() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0)
    })
}

/// What [`wait_with_cpu`] returns.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    /// CPU time of the whole process life.
    pub cpu: Duration,
    /// From the call to the exit.
    pub wall: Duration,
}

/// Wait for `child` (stdout piped) and read its CPU time at the moment it exits: the child is seen as a zombie
/// before it is reaped, while `/proc` still has its times. Kills it after `limit`.
pub fn wait_with_cpu(mut child: Child, limit: Duration) -> Result<Finished> {
    let started = Instant::now();
    let pid = child.id();
    let mut stdout = child.stdout.take().context("stdout not piped")?;
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let mut cpu = Duration::ZERO;
    loop {
        match stat(pid) {
            Ok((state, ticks)) => {
                cpu = Duration::from_secs_f64(ticks as f64 / clock_ticks_per_sec());
                if state == 'Z' || state == 'X' {
                    break;
                }
            }
            Err(_) => break,
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            bail!("process {pid} still running after {limit:?}; killed");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let wall = started.elapsed();
    let status = child.wait().context("waiting for the process")?;
    let stdout = reader.join().unwrap_or_default();
    Ok(Finished {
        status,
        stdout,
        cpu,
        wall,
    })
}
