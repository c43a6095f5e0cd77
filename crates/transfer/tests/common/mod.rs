//! Helpers shared by the integration tests. Everything listens on 127.0.0.1 only.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::Path;
use std::time::Duration;

use kolokol_transfer::{Engine, EngineConfig, Progress, RateLimits, TorrentState};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Upper bound for any single test step that moves data.
pub const STEP: Duration = Duration::from_secs(90);

/// Writes `size` random bytes to `path`.
pub fn random_file(path: &Path, size: usize) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    let mut data = vec![0u8; size];
    rand::rng().fill_bytes(&mut data);
    std::fs::write(path, data).unwrap();
}

pub fn sha256_file(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

pub fn loopback_any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// An engine whose state and downloads live under `root`.
pub async fn engine(root: &Path) -> Engine {
    engine_with_upload_limit(root, None).await
}

pub async fn engine_with_upload_limit(root: &Path, upload_limit: Option<u32>) -> Engine {
    let cfg = EngineConfig::new(
        loopback_any_port(),
        root.join("state"),
        root.join("downloads"),
    );
    let limits = RateLimits {
        upload: upload_limit.map(|l| NonZeroU32::new(l).unwrap()),
        download: None,
    };
    Engine::start_with_limits(cfg, limits).await.unwrap()
}

pub fn magnet(infohash: &[u8; 20], name: &str) -> String {
    format!("magnet:?xt=urn:btih:{}&dn={}", hex::encode(infohash), name)
}

/// Polls until `pred` holds for the torrent's progress; panics after `limit`.
pub async fn wait_for(
    engine: &Engine,
    infohash: &[u8; 20],
    limit: Duration,
    what: &str,
    pred: impl Fn(&Progress) -> bool,
) -> Progress {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let p = engine
            .progress(infohash)
            .expect("torrent known to the engine");
        if pred(&p) {
            return p;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}; last progress {p:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn is_past_checking(p: &Progress) -> bool {
    !matches!(p.state, TorrentState::Resolving | TorrentState::Checking)
}
