//! The client's bridges: one tunnel per bridge, kept alive with pings that also measure latency; a stream goes
//! to the working bridge with the lowest latency, and to the next one when a bridge turns out dead.
//!
//! A bridge counts as dead for [`PoolConfig::retry_after`] after a failed connect, a handshake time-out, a lost
//! keep-alive or a stream open that got no answer. Dead bridges are still tried, last, when no other works.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kolokol_core::detour::Host;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::invitation::Invitation;
use crate::resolve::Resolver;
use crate::tunnel::frame::RefuseReason;
use crate::tunnel::handshake;
use crate::tunnel::mux::{Mux, MuxConfig, MuxStream, Role, StreamError};

/// Timings of the client side of tunnels.
#[derive(Clone, Debug)]
pub struct PoolConfig {
    /// TCP connect plus handshake.
    pub handshake_timeout: Duration,
    /// Waiting for the bridge to say whether it reached the site.
    pub open_timeout: Duration,
    pub keepalive_interval: Duration,
    pub keepalive_timeout: Duration,
    pub retry_after: Duration,
    pub max_streams_per_tunnel: usize,
}

impl Default for PoolConfig {
    fn default() -> PoolConfig {
        PoolConfig {
            handshake_timeout: Duration::from_secs(10),
            open_timeout: Duration::from_secs(20),
            keepalive_interval: Duration::from_secs(25),
            keepalive_timeout: Duration::from_secs(15),
            retry_after: Duration::from_secs(30),
            max_streams_per_tunnel: 256,
        }
    }
}

/// Why no bridge stream could be opened.
#[derive(Debug, thiserror::Error)]
pub enum BridgeOpenError {
    #[error("no bridge is configured")]
    NoBridges,
    #[error("the bridge could not reach the site: {0}")]
    Refused(RefuseReason),
    #[error("no bridge is reachable (last error: {0})")]
    AllFailed(String),
}

/// One bridge as `kolokol proxy status` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BridgeStatus {
    /// The invitation's id (see [`crate::InviteSecret::id`]).
    pub id: String,
    pub address: String,
    pub connected: bool,
    /// Smoothed round-trip time of keep-alive pings.
    pub rtt_ms: Option<u64>,
    /// Whether the bridge is considered dead right now.
    pub down: bool,
    pub failures: u64,
    pub streams_open: usize,
    pub streams_total: u64,
    pub last_error: Option<String>,
}

#[derive(Default)]
struct Health {
    rtt: Option<Duration>,
    down_until: Option<Instant>,
    failures: u64,
    streams_total: u64,
    last_error: Option<String>,
}

struct Entry {
    invitation: Invitation,
    tunnel: tokio::sync::Mutex<Option<Mux>>,
    health: Mutex<Health>,
}

impl Entry {
    fn mark_failed(&self, error: String, retry_after: Duration) {
        if let Ok(mut health) = self.health.lock() {
            health.failures += 1;
            health.down_until = Some(Instant::now() + retry_after);
            health.last_error = Some(error);
        }
    }

    fn record_rtt(&self, rtt: Duration) {
        if let Ok(mut health) = self.health.lock() {
            // Exponentially smoothed, weight 1/4 to the new sample.
            health.rtt = Some(match health.rtt {
                Some(old) => (old * 3 + rtt) / 4,
                None => rtt,
            });
            health.down_until = None;
        }
    }

    fn sort_key(&self, now: Instant) -> (bool, Duration) {
        match self.health.lock() {
            Ok(health) => (
                health.down_until.is_some_and(|until| until > now),
                health.rtt.unwrap_or(Duration::from_secs(3600)),
            ),
            Err(_) => (true, Duration::MAX),
        }
    }
}

/// The set of bridges a client may use.
pub struct BridgePool {
    entries: RwLock<Vec<Arc<Entry>>>,
    config: PoolConfig,
    resolver: Arc<dyn Resolver>,
    shutdown: CancellationToken,
}

impl BridgePool {
    pub fn new(config: PoolConfig, resolver: Arc<dyn Resolver>) -> Arc<BridgePool> {
        Arc::new(BridgePool {
            entries: RwLock::new(Vec::new()),
            config,
            resolver,
            shutdown: CancellationToken::new(),
        })
    }

    /// Adds a bridge (replacing one with the same invitation id) and connects to it in the background, so that
    /// its latency is known before it is needed.
    pub fn add(self: &Arc<BridgePool>, invitation: Invitation) {
        let id = invitation.secret.id();
        let entry = Arc::new(Entry {
            invitation,
            tunnel: tokio::sync::Mutex::new(None),
            health: Mutex::default(),
        });
        if let Ok(mut entries) = self.entries.write() {
            entries.retain(|e| e.invitation.secret.id() != id);
            entries.push(entry.clone());
        }
        let pool = self.clone();
        tokio::spawn(async move {
            let _ = pool.tunnel(&entry).await;
        });
    }

    /// Removes the bridge with this invitation id, closing its tunnel.
    pub fn remove(&self, id: &str) -> bool {
        let removed: Vec<Arc<Entry>> = match self.entries.write() {
            Ok(mut entries) => {
                let (gone, kept) = entries
                    .drain(..)
                    .partition(|e| e.invitation.secret.id() == id);
                *entries = kept;
                gone
            }
            Err(_) => Vec::new(),
        };
        for entry in &removed {
            if let Ok(tunnel) = entry.tunnel.try_lock()
                && let Some(mux) = tunnel.as_ref()
            {
                mux.close();
            }
        }
        !removed.is_empty()
    }

    /// Whether any bridge is configured.
    pub fn has_bridges(&self) -> bool {
        self.entries.read().is_ok_and(|e| !e.is_empty())
    }

    /// Every bridge's state.
    pub fn status(&self) -> Vec<BridgeStatus> {
        let entries = self.entries.read().map(|e| e.clone()).unwrap_or_default();
        let now = Instant::now();
        entries
            .iter()
            .map(|entry| {
                let (connected, streams_open) = match entry.tunnel.try_lock() {
                    Ok(tunnel) => match tunnel.as_ref() {
                        Some(mux) if !mux.is_closed() => (true, mux.stream_count()),
                        _ => (false, 0),
                    },
                    // Someone is connecting right now.
                    Err(_) => (false, 0),
                };
                let health = entry.health.lock();
                let (rtt_ms, down, failures, streams_total, last_error) = match health {
                    Ok(h) => (
                        h.rtt.map(|r| r.as_millis() as u64),
                        h.down_until.is_some_and(|u| u > now),
                        h.failures,
                        h.streams_total,
                        h.last_error.clone(),
                    ),
                    Err(_) => (None, true, 0, 0, None),
                };
                BridgeStatus {
                    id: entry.invitation.secret.id(),
                    address: entry.invitation.address(),
                    connected,
                    rtt_ms,
                    down,
                    failures,
                    streams_open,
                    streams_total,
                    last_error,
                }
            })
            .collect()
    }

    /// Opens a stream to `host:port` through the best working bridge, sending `replay` first. A site the bridge
    /// cannot reach is reported at once (another bridge would not do better); a failing bridge makes the next one
    /// be tried.
    pub async fn open(
        &self,
        host: &Host,
        port: u16,
        replay: &[u8],
    ) -> Result<MuxStream, BridgeOpenError> {
        let mut entries = self.entries.read().map(|e| e.clone()).unwrap_or_default();
        if entries.is_empty() {
            return Err(BridgeOpenError::NoBridges);
        }
        let now = Instant::now();
        entries.sort_by_key(|entry| entry.sort_key(now));
        let mut last_error = String::from("none tried");
        for entry in entries {
            let mux = match self.tunnel(&entry).await {
                Ok(mux) => mux,
                Err(error) => {
                    last_error = error;
                    continue;
                }
            };
            match self.open_on(&mux, host, port, replay).await {
                Ok(stream) => {
                    if let Ok(mut health) = entry.health.lock() {
                        health.streams_total += 1;
                    }
                    return Ok(stream);
                }
                Err(StreamError::Refused(reason)) => return Err(BridgeOpenError::Refused(reason)),
                Err(error) => {
                    last_error = error.to_string();
                    mux.close();
                    entry.mark_failed(last_error.clone(), self.config.retry_after);
                }
            }
        }
        Err(BridgeOpenError::AllFailed(last_error))
    }

    async fn open_on(
        &self,
        mux: &Mux,
        host: &Host,
        port: u16,
        replay: &[u8],
    ) -> Result<MuxStream, StreamError> {
        let stream = mux.open(host.as_str(), port).await?;
        if !replay.is_empty() {
            stream.write(replay).await?;
        }
        match tokio::time::timeout(self.config.open_timeout, stream.wait_opened()).await {
            Ok(Ok(())) => Ok(stream),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(StreamError::TunnelClosed),
        }
    }

    /// The entry's live tunnel, connecting if there is none.
    async fn tunnel(&self, entry: &Arc<Entry>) -> Result<Mux, String> {
        let mut slot = entry.tunnel.lock().await;
        if let Some(mux) = slot.as_ref()
            && !mux.is_closed()
        {
            return Ok(mux.clone());
        }
        *slot = None;
        let started = Instant::now();
        let connected = tokio::time::timeout(
            self.config.handshake_timeout,
            self.connect(&entry.invitation),
        )
        .await;
        let mux = match connected {
            Ok(Ok(mux)) => mux,
            Ok(Err(error)) => {
                entry.mark_failed(error.clone(), self.config.retry_after);
                return Err(error);
            }
            Err(_) => {
                let error = String::from("handshake timed out");
                entry.mark_failed(error.clone(), self.config.retry_after);
                return Err(error);
            }
        };
        // The handshake takes two round trips (TCP, then Noise): half of it is a first latency estimate.
        entry.record_rtt(started.elapsed() / 2);
        *slot = Some(mux.clone());
        tokio::spawn(keepalive(
            mux.clone(),
            entry.clone(),
            self.config.clone(),
            self.shutdown.clone(),
        ));
        Ok(mux)
    }

    async fn connect(&self, invitation: &Invitation) -> Result<Mux, String> {
        let ips: Vec<IpAddr> = match invitation.host.as_str().parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => self
                .resolver
                .resolve(invitation.host.as_str())
                .await
                .map_err(|e| format!("bridge name does not resolve: {e}"))?,
        };
        let mut last = String::from("no address");
        for ip in ips {
            match TcpStream::connect(SocketAddr::new(ip, invitation.port)).await {
                Ok(mut tcp) => {
                    let _ = tcp.set_nodelay(true);
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs());
                    let established = handshake::client(&mut tcp, invitation, now)
                        .await
                        .map_err(|e| format!("handshake failed: {e}"))?;
                    let (read, write) = tcp.into_split();
                    let config = MuxConfig {
                        max_streams: self.config.max_streams_per_tunnel,
                        read_timeout: self.config.keepalive_interval
                            + self.config.keepalive_timeout * 2,
                    };
                    let (mux, _) = Mux::start(read, write, established, Role::Client, config);
                    return Ok(mux);
                }
                Err(error) => last = format!("cannot connect: {error}"),
            }
        }
        Err(last)
    }

    /// Closes every tunnel.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
        let entries = self.entries.read().map(|e| e.clone()).unwrap_or_default();
        for entry in entries {
            if let Ok(tunnel) = entry.tunnel.try_lock()
                && let Some(mux) = tunnel.as_ref()
            {
                mux.close();
            }
        }
    }
}

async fn keepalive(mux: Mux, entry: Arc<Entry>, config: PoolConfig, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                mux.close();
                return;
            }
            _ = mux.closed() => break,
            _ = tokio::time::sleep(config.keepalive_interval) => {}
        }
        match mux.ping(config.keepalive_timeout).await {
            Ok(rtt) => entry.record_rtt(rtt),
            Err(_) => {
                mux.close();
                break;
            }
        }
    }
    if !shutdown.is_cancelled() {
        entry.mark_failed(String::from("tunnel lost"), config.retry_after);
    }
}
