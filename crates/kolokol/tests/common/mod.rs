//! Test harness: real `kolokol up` processes on loopback, each with its own temporary data directory, driven through
//! the real CLI.

#![allow(dead_code, unused_imports, clippy::unwrap_used)] // each test file uses a part

use std::path::Path;

pub use kolokol_testkit::process::{NodeCommand, NodeProcess, wait_for};

pub const BIN: &str = env!("CARGO_BIN_EXE_kolokol");

/// How this crate's tests start `kolokol up` (kolokol-testkit's [`NodeProcess`] with this crate's binary and the
/// harness defaults). A trait only so that the tests can keep writing `NodeProcess::start(..)`.
pub trait TestNode: Sized {
    /// `kolokol up` on `data_dir` with every listener on 127.0.0.1 and a port the system picks.
    fn start(data_dir: &Path) -> Self {
        Self::start_with(data_dir, &[])
    }

    /// [`TestNode::start`] plus `extra` `up` arguments.
    fn start_with(data_dir: &Path, extra: &[&str]) -> Self;

    /// Like [`TestNode::start_with`] without the default `--no-default-bootstrap --no-lan`: the caller decides.
    fn start_custom(data_dir: &Path, extra: &[&str]) -> Self;

    /// Like [`TestNode::start_custom`] with a log filter of the caller's (to wait for a debug event).
    fn start_logging(data_dir: &Path, extra: &[&str], log_filter: &str) -> Self;
}

impl TestNode for NodeProcess {
    fn start_with(data_dir: &Path, extra: &[&str]) -> NodeProcess {
        // Tests touch loopback only: no public DHT routers (so every DHT node answers from the start, as in any
        // private network), no LAN multicast; DHT time-outs and rendezvous are the defaults. A low proof-of-work
        // difficulty keeps publishing fast (a test that needs another passes its own --work-bits, which clap lets
        // win as the later). Publications are announced at once (`--replicas 0`) unless a test asks for the
        // publisher push.
        let mut args = vec![
            "--no-default-bootstrap",
            "--no-lan",
            "--work-bits",
            "8",
            "--replicas",
            "0",
        ];
        args.extend_from_slice(extra);
        Self::start_custom(data_dir, &args)
    }

    fn start_custom(data_dir: &Path, extra: &[&str]) -> NodeProcess {
        Self::start_logging(data_dir, extra, "info,librqbit=warn")
    }

    fn start_logging(data_dir: &Path, extra: &[&str], log_filter: &str) -> NodeProcess {
        NodeCommand::new(BIN, data_dir)
            .args(&["--listen", "127.0.0.1:0", "--wire", "127.0.0.1:0"])
            .args(&["--dht", "127.0.0.1:0"])
            // The default proxy port (7412) would collide between test nodes: any free loopback port instead.
            .args(&["--proxy", "127.0.0.1:0"])
            .args(extra)
            .log_filter(log_filter)
            .start()
    }
}

/// A file of `len` pseudo-random bytes (seeded, so failures reproduce).
pub fn random_file(path: &Path, len: usize, seed: u64) {
    use rand::{RngCore, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut data = vec![0u8; len];
    rng.fill_bytes(&mut data);
    std::fs::write(path, data).unwrap();
}

pub fn sha256_file(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    hex::encode(Sha256::digest(data))
}
