//! The libtorrent side of the transfer benchmark: shared/interop's `make_torrent.py` and
//! `lt_node.py` (Debian's python3-libtorrent), seeder and leecher on 127.0.0.1 over TCP.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};

const PYTHON: &str = "/usr/bin/python3";

/// Timings of one libtorrent-to-libtorrent transfer.
pub struct LtTransfer {
    /// As the leecher reports it: from adding the torrent to verified completion.
    pub wall: Duration,
    /// The leecher process from start to exit (includes Python and libtorrent start-up).
    pub process: Duration,
    /// CPU time (user + system) of the seeder process while the leecher ran.
    pub seeder_cpu: Duration,
    /// CPU time of the leecher process over its whole life (includes Python and libtorrent start-up).
    pub leecher_cpu: Duration,
}

/// Kills the child when dropped, so that no seeder outlives the benchmark.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn transfer(interop: &Path, root: &Path, file: &Path, limit: Duration) -> Result<LtTransfer> {
    let script = interop.join("lt_node.py");
    ensure!(
        script.is_file(),
        "no lt_node.py in {interop:?} (set KOLOKOL_INTEROP_DIR)"
    );
    let import = Command::new(PYTHON)
        .args(["-c", "import libtorrent"])
        .status();
    ensure!(
        import.is_ok_and(|s| s.success()),
        "{PYTHON} cannot import libtorrent (apt-get install -y python3-libtorrent)"
    );
    let torrent = root.join("lt.torrent");
    let made = Command::new(PYTHON)
        .arg(interop.join("make_torrent.py"))
        .arg(file)
        .arg(&torrent)
        .args(["--mode", "v1", "--piece-kib", "256"])
        .stdout(Stdio::null())
        .status()
        .context("running make_torrent.py")?;
    ensure!(made.success(), "make_torrent.py failed");
    let save = file.parent().context("file has no folder")?;
    let secs = limit.as_secs().to_string();

    let seed_port = free_port()?;
    let mut seeder = Command::new(PYTHON)
        .arg(&script)
        .args([
            "seed",
            "--tcp-only",
            "--lifetime",
            &secs,
            "--port",
            &seed_port.to_string(),
        ])
        .arg("--torrent")
        .arg(&torrent)
        .arg("--save")
        .arg(save)
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the libtorrent seeder")?;
    let stdout = seeder.stdout.take().context("seeder stdout")?;
    let seeder = Killed(seeder);
    let mut lines = BufReader::new(stdout).lines();
    loop {
        match lines.next() {
            Some(line) => {
                if line?.contains("listening") {
                    break;
                }
            }
            None => bail!("the libtorrent seeder exited before listening"),
        }
    }
    std::thread::spawn(move || for _ in lines {});

    let out = root.join("lt-out");
    std::fs::create_dir_all(&out)?;
    let seeder_pid = seeder.0.id();
    let seeder_cpu_before = crate::procstat::cpu_time(seeder_pid)?;
    let leech = Command::new(PYTHON)
        .arg(&script)
        .args([
            "leech",
            "--tcp-only",
            "--timeout",
            &secs,
            "--port",
            &free_port()?.to_string(),
        ])
        .args(["--peer", &format!("127.0.0.1:{seed_port}")])
        .arg("--torrent")
        .arg(&torrent)
        .arg("--save")
        .arg(&out)
        .arg("--verify")
        .arg(file)
        .stdout(Stdio::piped())
        .spawn()
        .context("running the libtorrent leecher")?;
    let leech = crate::procstat::wait_with_cpu(leech, limit + Duration::from_secs(30))?;
    let seeder_cpu = crate::procstat::cpu_time(seeder_pid)?.saturating_sub(seeder_cpu_before);
    let process = leech.wall;
    let text = &leech.stdout;
    let pass = text.lines().find(|l| l.starts_with("PASS:"));
    let Some(pass) = pass.filter(|_| leech.status.success()) else {
        bail!("libtorrent leecher did not pass:\n{text}");
    };
    // "PASS: lt-leech downloaded 268.4 MB in 1.1s = 240.1 MB/s (wall 1.25s)"
    let wall = pass
        .split("(wall ")
        .nth(1)
        .and_then(|rest| rest.split('s').next())
        .and_then(|s| s.parse::<f64>().ok())
        .with_context(|| format!("cannot read the wall time in {pass:?}"))?;
    std::fs::remove_dir_all(&out)?;
    Ok(LtTransfer {
        wall: Duration::from_secs_f64(wall),
        process,
        seeder_cpu,
        leecher_cpu: leech.cpu,
    })
}

/// A port free for TCP and UDP on 127.0.0.1 (libtorrent binds both).
fn free_port() -> Result<u16> {
    for _ in 0..100 {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = tcp.local_addr()?.port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no free port on 127.0.0.1")
}
