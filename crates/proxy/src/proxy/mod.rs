//! The local proxy: SOCKS5 and HTTP on one port, told apart by the first byte, with detour through bridges.

mod connection;
pub mod detect;
pub mod http;
pub mod socks;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kolokol_core::detour::{Detour, DetourConfig, Host, Rules, SiteRoute};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::bridge::pool::{BridgePool, BridgeStatus, PoolConfig};
use crate::invitation::Invitation;
use crate::resolve::{Resolver, SystemResolver};
use detect::BlockPageRules;

/// Where a client wants to go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub host: Host,
    pub port: u16,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.as_str().contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Why a client's request was not served.
#[derive(Debug, thiserror::Error)]
pub enum ClientRequestError {
    #[error("client connection failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    #[error("request refused: {0}")]
    Refused(&'static str),
}

/// Settings of the local proxy.
#[derive(Clone)]
pub struct ProxyConfig {
    /// Where to listen; keep it on loopback (the proxy has no authentication).
    pub listen: SocketAddr,
    /// Most client connections at once; more wait in the listen queue.
    pub max_connections: usize,
    /// Time for a client to send its SOCKS or HTTP request.
    pub request_timeout: Duration,
    pub dns_timeout: Duration,
    /// Direct TCP connect; a filter that drops packets shows up as this time-out.
    pub connect_timeout: Duration,
    /// After the client spoke, the direct route must answer within this time or the bridge is tried.
    pub first_byte_timeout: Duration,
    /// A connection with no traffic either way for this long is closed.
    pub idle_timeout: Duration,
    /// Most client bytes kept for replay while the direct route is on probation.
    pub replay_limit: usize,
    /// Addresses censoring resolvers hand out; an answer containing one counts as DNS tampering.
    pub bogus_dns: Vec<IpAddr>,
    pub block_pages: BlockPageRules,
    pub detour: DetourConfig,
    pub rules: Rules,
    pub pool: PoolConfig,
    /// Resolves names for the direct route (the bridge resolves for the bridge route).
    pub resolver: Arc<dyn Resolver>,
}

/// The default listen address of `kolokol up`.
pub const DEFAULT_PROXY_ADDR: &str = "127.0.0.1:7412";

impl ProxyConfig {
    /// Defaults for a proxy on `listen`.
    pub fn new(listen: SocketAddr) -> ProxyConfig {
        ProxyConfig {
            listen,
            max_connections: 512,
            request_timeout: Duration::from_secs(15),
            dns_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            first_byte_timeout: Duration::from_secs(6),
            idle_timeout: Duration::from_secs(300),
            replay_limit: 64 * 1024,
            bogus_dns: Vec::new(),
            block_pages: BlockPageRules::default(),
            detour: DetourConfig::default(),
            rules: Rules::default(),
            pool: PoolConfig::default(),
            resolver: Arc::new(SystemResolver),
        }
    }
}

impl std::fmt::Debug for ProxyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyConfig")
            .field("listen", &self.listen)
            .field("max_connections", &self.max_connections)
            .field("bogus_dns", &self.bogus_dns)
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Everything `kolokol proxy status` shows.
#[derive(Clone, Debug)]
pub struct ProxyStatus {
    pub addr: SocketAddr,
    /// The proxy's clock (milliseconds since start), the time base of the sites' `Until` marks.
    pub now_ms: u64,
    pub sites: Vec<SiteRoute>,
    pub bridges: Vec<BridgeStatus>,
    pub connections_open: usize,
}

pub(crate) struct Ctx {
    config: ProxyConfig,
    detour: Mutex<Detour>,
    pool: Arc<BridgePool>,
    clock: Instant,
    open_connections: AtomicUsize,
}

impl Ctx {
    fn now_ms(&self) -> u64 {
        self.clock.elapsed().as_millis() as u64
    }
}

/// Starts proxies.
pub struct ProxyServer;

impl ProxyServer {
    /// Binds `config.listen` and serves until [`ProxyHandle::shutdown`]; `bridges` are the invitations the user
    /// added (more can be added later).
    pub async fn start(
        config: ProxyConfig,
        bridges: Vec<Invitation>,
    ) -> Result<ProxyHandle, ProxyError> {
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ProxyError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| ProxyError::Bind {
            addr: config.listen,
            source,
        })?;
        let pool = BridgePool::new(config.pool.clone(), config.resolver.clone());
        for invitation in bridges {
            pool.add(invitation);
        }
        let ctx = Arc::new(Ctx {
            detour: Mutex::new(Detour::new(config.detour.clone(), config.rules.clone())),
            pool,
            clock: Instant::now(),
            open_connections: AtomicUsize::new(0),
            config,
        });
        let limit = Arc::new(Semaphore::new(ctx.config.max_connections.max(1)));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(accept_loop(listener, ctx.clone(), limit, shutdown.clone()));
        Ok(ProxyHandle {
            addr,
            ctx,
            shutdown,
            task: Some(task),
        })
    }
}

/// A running proxy.
pub struct ProxyHandle {
    addr: SocketAddr,
    ctx: Arc<Ctx>,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl ProxyHandle {
    /// The address actually bound (`status` field `proxy_addr`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Which sites went where, and how the bridges are doing.
    pub fn status(&self) -> ProxyStatus {
        let now_ms = self.ctx.now_ms();
        let has_bridges = self.ctx.pool.has_bridges();
        let sites = self
            .ctx
            .detour
            .lock()
            .map(|d| d.sites(has_bridges, now_ms))
            .unwrap_or_default();
        ProxyStatus {
            addr: self.addr,
            now_ms,
            sites,
            bridges: self.ctx.pool.status(),
            connections_open: self.ctx.open_connections.load(Ordering::Relaxed),
        }
    }

    /// Adds a bridge (`kolokol bridge add CODE`). Call from within the tokio runtime (it connects in the background).
    pub fn add_bridge(&self, invitation: Invitation) {
        self.ctx.pool.add(invitation);
    }

    /// Removes the bridge with this invitation id.
    pub fn remove_bridge(&self, id: &str) -> bool {
        self.ctx.pool.remove(id)
    }

    /// Replaces the user's rules.
    pub fn set_rules(&self, rules: Rules) {
        if let Ok(mut detour) = self.ctx.detour.lock() {
            detour.set_rules(rules);
        }
    }

    /// Forgets what was learnt about a site.
    pub fn forget(&self, host: &Host) -> bool {
        self.ctx.detour.lock().is_ok_and(|mut d| d.forget(host))
    }

    /// Stops accepting, closes every connection and tunnel.
    pub async fn shutdown(mut self) {
        self.stop();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    fn stop(&self) {
        self.shutdown.cancel();
        self.ctx.pool.shutdown();
    }
}

impl Drop for ProxyHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn accept_loop(
    listener: TcpListener,
    ctx: Arc<Ctx>,
    limit: Arc<Semaphore>,
    shutdown: CancellationToken,
) {
    let mut tasks = JoinSet::new();
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            permit = limit.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let client = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => client,
                Err(error) => {
                    tracing::warn!(%error, "proxy accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        while tasks.try_join_next().is_some() {}
        let ctx = ctx.clone();
        tasks.spawn(async move {
            ctx.open_connections.fetch_add(1, Ordering::Relaxed);
            connection::serve(client, ctx.clone()).await;
            ctx.open_connections.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        });
    }
    tasks.shutdown().await;
}
