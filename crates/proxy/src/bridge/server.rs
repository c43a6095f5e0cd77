//! The bridge: accepts tunnels from invitation holders and connects their streams to the sites they ask for.
//!
//! A connection that does not complete a valid handshake (no invitation, wrong secret, replayed handshake, random
//! bytes, a port scanner) is treated as an idle service treats a client that says nothing it understands: it is
//! read and ignored until a fixed idle time-out, then closed with an ordinary FIN. Nothing is ever written to it.
//! The idle time-out is drawn once per bridge from [`BridgeConfig::probe_silence`], so it is stable like a real
//! server's setting rather than a per-connection tell.
//!
//! Connections not yet recognised (handshakes in progress and silenced ones) are bounded twice, and neither bound
//! ever makes the bridge answer or reset:
//! - in all, [`BridgeConfig::max_pending`]: when the table is full the bridge stops accepting until a place frees,
//!   so new connections wait in the kernel's accept queue (and, once that is full, their SYNs go unanswered), as
//!   with any busy server. A connection is never accepted only to be closed at once.
//! - per address (an IPv4 address or an IPv6 /64), [`BridgeConfig::max_pending_per_addr`]: one more from an
//!   address at its limit takes the place of that address's oldest pending connection, which is then drained and
//!   closed with a FIN, never a RST. So one address cannot fill the table and keep invitation holders out, and a
//!   holder behind the same address as a flooder (carrier-grade NAT) still gets its handshake read.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kolokol_core::detour::Host;
use rand::Rng;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::bridge_key::BridgeKey;
use crate::connect::{ConnectFailure, connect_any, is_private_destination};
use crate::invitation::{Invitation, InviteSecret};
use crate::relay;
use crate::resolve::{Resolver, SystemResolver};
use crate::tunnel::frame::RefuseReason;
use crate::tunnel::handshake::{self, ServerKeys};
use crate::tunnel::mux::{Incoming, Mux, MuxConfig, Role};
use crate::tunnel::replay::ReplayCache;

/// Settings of a bridge.
#[derive(Clone)]
pub struct BridgeConfig {
    /// Where to listen (all interfaces, usually, on a port that looks ordinary such as 443).
    pub listen: SocketAddr,
    pub key: BridgeKey,
    /// Secrets of the invitations handed out; more can be added while running.
    pub invitations: Vec<InviteSecret>,
    /// Most tunnels at once; a valid handshake beyond it gets the same silence as a probe.
    pub max_tunnels: usize,
    /// Most connections not yet recognised (handshakes in progress, silenced probes) at once; when full, the bridge
    /// stops accepting until one ends (see the module notes).
    pub max_pending: usize,
    /// Most of those from one IPv4 address or IPv6 /64; one more replaces the oldest (see the module notes).
    pub max_pending_per_addr: usize,
    pub max_streams_per_tunnel: usize,
    /// Connecting to a site on a client's behalf.
    pub connect_timeout: Duration,
    pub dns_timeout: Duration,
    /// A stream with no traffic for this long is closed.
    pub idle_timeout: Duration,
    /// A tunnel with nothing arriving (not even keep-alives) for this long is closed.
    pub tunnel_read_timeout: Duration,
    /// The range from which the bridge draws, once, how long it reads an unrecognised connection before closing it.
    pub probe_silence: (Duration, Duration),
    /// How far a client's clock may be from the bridge's.
    pub clock_window: Duration,
    /// Handshakes remembered for replay protection.
    pub replay_capacity: usize,
    /// Let clients reach loopback and private addresses through the bridge (tests and private deployments only).
    pub allow_private_targets: bool,
    pub resolver: Arc<dyn Resolver>,
}

impl BridgeConfig {
    /// Defaults for a bridge on `listen` with `key` and no invitations yet.
    pub fn new(listen: SocketAddr, key: BridgeKey) -> BridgeConfig {
        BridgeConfig {
            listen,
            key,
            invitations: Vec::new(),
            max_tunnels: 256,
            max_pending: 1024,
            max_pending_per_addr: 16,
            max_streams_per_tunnel: 256,
            connect_timeout: Duration::from_secs(10),
            dns_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            tunnel_read_timeout: Duration::from_secs(120),
            probe_silence: (Duration::from_secs(30), Duration::from_secs(90)),
            clock_window: Duration::from_secs(20 * 60),
            replay_capacity: 100_000,
            allow_private_targets: false,
            resolver: Arc::new(SystemResolver),
        }
    }
}

impl std::fmt::Debug for BridgeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BridgeConfig")
            .field("listen", &self.listen)
            .field("key", &self.key)
            .field("invitations", &self.invitations.len())
            .finish_non_exhaustive()
    }
}

/// Why a bridge could not start.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Counters for `kolokol status` and the tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BridgeStats {
    pub tunnels_open: usize,
    pub tunnels_total: u64,
    pub streams_total: u64,
    /// Connections that got silence (probes, wrong secrets, replays, junk).
    pub silenced_total: u64,
    /// Pending connections closed early because their address opened too many (see the module notes).
    pub evicted_total: u64,
}

struct Shared {
    config: BridgeConfig,
    secrets: RwLock<Vec<InviteSecret>>,
    replay: Mutex<ReplayCache>,
    silence: Duration,
    tunnels: Mutex<HashMap<u64, Mux>>,
    tunnels_total: AtomicU64,
    streams_total: AtomicU64,
    silenced_total: AtomicU64,
    evicted_total: AtomicU64,
    /// Pending connections per address key, oldest first: (connection id, its eviction signal). Bounded by
    /// `max_pending` in all, since every entry holds a pending place.
    pending_by_addr: Mutex<HashMap<IpAddr, VecDeque<(u64, CancellationToken)>>>,
    shutdown: CancellationToken,
}

/// Starts bridges.
pub struct BridgeServer;

impl BridgeServer {
    /// Binds and starts serving. The bridge runs until [`BridgeHandle::shutdown`] (or the handle is dropped).
    pub async fn start(config: BridgeConfig) -> Result<BridgeHandle, BridgeError> {
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| BridgeError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| BridgeError::Bind {
            addr: config.listen,
            source,
        })?;
        let (low, high) = config.probe_silence;
        let silence = if high > low {
            rand::rng().random_range(low..=high)
        } else {
            low
        };
        let shared = Arc::new(Shared {
            secrets: RwLock::new(config.invitations.clone()),
            replay: Mutex::new(ReplayCache::new(
                config.clock_window.as_secs(),
                config.replay_capacity,
            )),
            silence,
            tunnels: Mutex::new(HashMap::new()),
            tunnels_total: AtomicU64::new(0),
            streams_total: AtomicU64::new(0),
            silenced_total: AtomicU64::new(0),
            evicted_total: AtomicU64::new(0),
            pending_by_addr: Mutex::new(HashMap::new()),
            shutdown: CancellationToken::new(),
            config,
        });
        let task = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(BridgeHandle {
            local_addr,
            shared,
            task: Some(task),
        })
    }
}

/// A running bridge.
pub struct BridgeHandle {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl BridgeHandle {
    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The bridge's public key, as invitations carry it.
    pub fn public_key(&self) -> [u8; 32] {
        self.shared.config.key.public()
    }

    /// Makes a new invitation for clients that will dial `host:port`, and starts accepting it.
    pub fn invite(&self, host: Host, port: u16) -> Invitation {
        let invitation = Invitation::generate(host, port, self.public_key());
        self.add_invitation(invitation.secret.clone());
        invitation
    }

    /// Starts accepting an invitation secret (for example one saved from an earlier run).
    pub fn add_invitation(&self, secret: InviteSecret) {
        if let Ok(mut secrets) = self.shared.secrets.write()
            && !secrets.contains(&secret)
        {
            secrets.push(secret);
        }
    }

    /// Stops accepting the invitation with this id (see [`InviteSecret::id`]); open tunnels stay up.
    pub fn revoke_invitation(&self, id: &str) -> bool {
        match self.shared.secrets.write() {
            Ok(mut secrets) => {
                let before = secrets.len();
                secrets.retain(|s| s.id() != id);
                secrets.len() != before
            }
            Err(_) => false,
        }
    }

    /// Ids of the accepted invitations.
    pub fn invitation_ids(&self) -> Vec<String> {
        self.shared
            .secrets
            .read()
            .map(|s| s.iter().map(InviteSecret::id).collect())
            .unwrap_or_default()
    }

    /// How long this bridge reads an unrecognised connection before closing it.
    pub fn probe_silence(&self) -> Duration {
        self.shared.silence
    }

    pub fn stats(&self) -> BridgeStats {
        BridgeStats {
            tunnels_open: self.shared.tunnels.lock().map_or(0, |t| t.len()),
            tunnels_total: self.shared.tunnels_total.load(Ordering::Relaxed),
            streams_total: self.shared.streams_total.load(Ordering::Relaxed),
            silenced_total: self.shared.silenced_total.load(Ordering::Relaxed),
            evicted_total: self.shared.evicted_total.load(Ordering::Relaxed),
        }
    }

    /// Stops listening and closes every tunnel.
    pub async fn shutdown(mut self) {
        self.stop();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    fn stop(&self) {
        self.shared.shutdown.cancel();
        if let Ok(mut tunnels) = self.shared.tunnels.lock() {
            for (_, mux) in tunnels.drain() {
                mux.close();
            }
        }
    }
}

impl Drop for BridgeHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let pending = Arc::new(Semaphore::new(shared.config.max_pending.max(1)));
    let mut tasks = JoinSet::new();
    let mut next_id = 0u64;
    loop {
        // A place first, then the connection: with the table full, connections wait in the kernel's queue rather
        // than being accepted and closed, which a prober could tell from an idle server.
        let permit = tokio::select! {
            _ = shared.shutdown.cancelled() => break,
            permit = pending.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (tcp, peer) = tokio::select! {
            _ = shared.shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "bridge accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        while tasks.try_join_next().is_some() {}
        next_id += 1;
        let id = next_id;
        let evicted = admit(&shared, id, peer.ip());
        let shared = shared.clone();
        tasks.spawn(async move {
            let cancel = shared.shutdown.clone();
            let key = address_key(peer.ip());
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = serve_connection(tcp, peer, id, shared.clone(), permit, evicted) => {}
            }
            leave_pending(&shared, key, id);
        });
    }
    tasks.shutdown().await;
}

/// The key per-address limits count under: an IPv4 address, or an IPv6 /64 (one subscriber's usual share).
fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

/// Enters connection `id` in its address's pending list, evicting that address's oldest pending connection if the
/// address is at its limit. Returns the signal that evicts this one.
fn admit(shared: &Shared, id: u64, ip: IpAddr) -> CancellationToken {
    let token = CancellationToken::new();
    let mut table = shared
        .pending_by_addr
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let list = table.entry(address_key(ip)).or_default();
    while list.len() >= shared.config.max_pending_per_addr.max(1) {
        if let Some((_, oldest)) = list.pop_front() {
            oldest.cancel();
            shared.evicted_total.fetch_add(1, Ordering::Relaxed);
        }
    }
    list.push_back((id, token.clone()));
    token
}

/// Takes connection `id` out of its address's pending list (it became a tunnel, or it ended).
fn leave_pending(shared: &Shared, key: IpAddr, id: u64) {
    let mut table = shared
        .pending_by_addr
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(list) = table.get_mut(&key) {
        list.retain(|(entry, _)| *entry != id);
        if list.is_empty() {
            table.remove(&key);
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn serve_connection(
    mut tcp: TcpStream,
    peer: SocketAddr,
    id: u64,
    shared: Arc<Shared>,
    permit: tokio::sync::OwnedSemaphorePermit,
    evicted: CancellationToken,
) {
    let deadline = Instant::now() + shared.silence;
    let secrets = shared.secrets.read().map(|s| s.clone()).unwrap_or_default();
    let private_key = *shared.config.key.private();
    let keys = ServerKeys {
        private_key: &private_key,
        secrets: &secrets,
        replay: &shared.replay,
        now_secs: unix_now(),
    };
    let tunnels_full = shared
        .tunnels
        .lock()
        .map_or(true, |t| t.len() >= shared.config.max_tunnels);
    let outcome = if tunnels_full {
        None
    } else {
        tokio::select! {
            _ = evicted.cancelled() => None,
            outcome = tokio::time::timeout_at(deadline, handshake::server(&mut tcp, keys)) => outcome.ok(),
        }
    };
    let established = match outcome {
        Some(Ok((established, _))) => established,
        Some(Err(error)) => {
            tracing::debug!(%peer, %error, "unrecognised connection, staying silent");
            silence(tcp, deadline, &evicted, &shared).await;
            return;
        }
        None => {
            silence(tcp, deadline, &evicted, &shared).await;
            return;
        }
    };
    let _ = tcp.set_nodelay(true);
    let (read, write) = tcp.into_split();
    let config = MuxConfig {
        max_streams: shared.config.max_streams_per_tunnel,
        read_timeout: shared.config.tunnel_read_timeout,
    };
    let (mux, mut incoming) = Mux::start(read, write, established, Role::Bridge, config);
    shared.tunnels_total.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut tunnels) = shared.tunnels.lock() {
        tunnels.insert(id, mux.clone());
    }
    drop(permit);
    leave_pending(&shared, address_key(peer.ip()), id);
    tracing::debug!(%peer, "tunnel up");
    let mut streams = JoinSet::new();
    loop {
        tokio::select! {
            _ = mux.closed() => break,
            next = incoming.recv() => match next {
                Some(incoming) => {
                    shared.streams_total.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(target: "kolokol_proxy::bridge", host = %incoming.host, port = incoming.port, "bridge stream");
                    streams.spawn(exit(incoming, shared.clone()));
                }
                None => break,
            },
        }
        while streams.try_join_next().is_some() {}
    }
    streams.shutdown().await;
    if let Ok(mut tunnels) = shared.tunnels.lock() {
        tunnels.remove(&id);
    }
    tracing::debug!(%peer, "tunnel down");
}

/// Reads and discards until `deadline`, until the other side closes, or until `evicted`, then closes normally.
/// Draining first means the close is a FIN, not the RST that unread data would cause.
async fn silence(
    mut tcp: TcpStream,
    deadline: Instant,
    evicted: &CancellationToken,
    shared: &Shared,
) {
    shared.silenced_total.fetch_add(1, Ordering::Relaxed);
    let mut sink = vec![0; 4096];
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => break,
            _ = evicted.cancelled() => break,
            read = tcp.read(&mut sink) => match read {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
        }
    }
    while let Ok(n) = tcp.try_read(&mut sink) {
        if n == 0 {
            break;
        }
    }
}

/// Connects one client stream to its site and relays.
async fn exit(incoming: Incoming, shared: Arc<Shared>) {
    let Incoming { stream, host, port } = incoming;
    let config = &shared.config;
    let Ok(host) = Host::parse(&host) else {
        stream.refuse(RefuseReason::Dns);
        return;
    };
    let addrs: Vec<IpAddr> = match host.as_str().parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => {
            match tokio::time::timeout(config.dns_timeout, config.resolver.resolve(host.as_str()))
                .await
            {
                Ok(Ok(addrs)) if !addrs.is_empty() => addrs,
                _ => {
                    stream.refuse(RefuseReason::Dns);
                    return;
                }
            }
        }
    };
    let allowed: Vec<IpAddr> = addrs
        .into_iter()
        .filter(|ip| config.allow_private_targets || !is_private_destination(*ip))
        .collect();
    if allowed.is_empty() || port == 0 {
        stream.refuse(RefuseReason::Forbidden);
        return;
    }
    let tcp = match connect_any(&allowed, port, config.connect_timeout).await {
        Ok(tcp) => tcp,
        Err(ConnectFailure::Refused) => {
            stream.refuse(RefuseReason::Refused);
            return;
        }
        Err(ConnectFailure::Timeout) => {
            stream.refuse(RefuseReason::Unreachable);
            return;
        }
    };
    stream.accept();
    relay::tcp_to_stream(tcp, &stream, config.idle_timeout).await;
}
