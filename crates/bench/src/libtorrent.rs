//! The libtorrent side of the transfer benchmark: kolokol-testkit's libtorrent driver
//! (`crates/testkit/peers/lt_peer.py`, Debian's python3-libtorrent), seeder and leecher on 127.0.0.1 over TCP.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use kolokol_testkit::libtorrent::{self, PeerArgs, Seeder};
use kolokol_testkit::peers::PYTHON;

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

pub fn transfer(root: &Path, file: &Path, limit: Duration) -> Result<LtTransfer> {
    let import = std::process::Command::new(PYTHON)
        .args(["-c", "import libtorrent"])
        .status();
    ensure!(
        import.is_ok_and(|s| s.success()),
        "{PYTHON} cannot import libtorrent (apt-get install -y python3-libtorrent)"
    );
    let torrent = root.join("lt.torrent");
    libtorrent::make_torrent(file, &torrent, 256).context("making the torrent with libtorrent")?;
    let save = file.parent().context("file has no folder")?;
    let secs = limit.as_secs();

    let seeder = Seeder::start(&PeerArgs::seed(&torrent, save).tcp_only().seconds(secs))
        .context("starting the libtorrent seeder")?;

    let out = root.join("lt-out");
    std::fs::create_dir_all(&out)?;
    let seeder_pid = seeder.pid();
    let seeder_cpu_before = crate::procstat::cpu_time(seeder_pid)?;
    let leech = PeerArgs::leech_torrent(&torrent, &out)
        .tcp_only()
        .seconds(secs)
        .peer(seeder.addr())
        .verify(file)
        .command()
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
    // "PASS: downloaded 268435456 bytes seconds=1.234"
    let wall = libtorrent::parse_seconds(pass)
        .with_context(|| format!("cannot read the time in {pass:?}"))?;
    std::fs::remove_dir_all(&out)?;
    Ok(LtTransfer {
        wall: Duration::from_secs_f64(wall),
        process,
        seeder_cpu,
        leecher_cpu: leech.cpu,
    })
}
