//! The node: opens the data directory's contents, starts the engine, the wire listener and the background tasks, and
//! shuts them down in order.

use std::net::{Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kolokol_core::overlay::{Overlay, OverlayConfig};
use kolokol_discovery::Dht;
use tokio::sync::Notify;

use kolokol_core::keys::Keypair;
use kolokol_core::record::{InfoHash, RecordId};
use kolokol_store::Catalog;
use kolokol_transfer::{Engine, EngineConfig, RateLimits};
use kolokol_wire::WireConfig;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::admission::{AdmissionConfig, AdmissionCounters};
use crate::api::Api;
use crate::config::NodeConfig;
use crate::data_dir::DataDir;
use crate::error::{ApiError, StartError};
use crate::identity::{load_or_create_key, load_or_create_secret};
use crate::peering::PeerRegistry;
use crate::views::TransferView;

const BT_PORT_KEY: &str = "bt_port";
const WIRE_PORT_KEY: &str = "wire_port";

/// State shared by the API and the background tasks.
pub(crate) struct Inner {
    pub dir: DataDir,
    pub network: String,
    pub node_key: Keypair,
    pub author_key: Keypair,
    pub token: String,
    catalog: Mutex<Catalog>,
    pub engine: Engine,
    pub peers: PeerRegistry,
    pub wire_addr: SocketAddr,
    pub bt_addr: SocketAddr,
    pub api_addr: SocketAddr,
    pub wire_config: WireConfig,
    /// Cancelled at shutdown; every background task watches it.
    pub cancel: CancellationToken,
    pub dht: Dht,
    overlay: Mutex<Overlay>,
    /// Woken when the overlay may want to dial (an address was heard, a connection closed).
    pub dial_wake: Notify,
    /// Woken to poll followed authors' feeds at once (after `follow`).
    pub feeds_wake: Notify,
    /// Set once another node has connected to us.
    pub reached_from_outside: AtomicBool,
    pub admission: AdmissionConfig,
    /// The network's proof-of-work difficulty in bits.
    pub work_bits: u8,
    /// Records from outside refused, by reason.
    pub counters: AdmissionCounters,
    started: Instant,
    /// The local proxy and the bridge (see `proxy.rs`).
    pub proxy: Arc<crate::proxy::ProxyService>,
    /// Publisher push and replica bookkeeping.
    pub replication: crate::replication::Replication,
    /// Mirror mode and the viewer cache.
    pub cache: crate::cache::Cache,
}

impl Inner {
    /// The catalog, locked for one short operation. A panic while it was held must not take the node down, so a
    /// poisoned lock is taken over (SQLite transactions keep the data itself consistent).
    pub fn catalog(&self) -> MutexGuard<'_, Catalog> {
        self.catalog
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The overlay (peer-set policy), locked for one short decision.
    pub fn overlay(&self) -> MutexGuard<'_, Overlay> {
        self.overlay
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Time since the node started: the overlay's clock.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// What the engine and the catalog know of one torrent.
    pub fn transfer_view(
        &self,
        infohash: &InfoHash,
        id: Option<RecordId>,
    ) -> Result<TransferView, ApiError> {
        let row = self.catalog().get_torrent(infohash)?;
        let progress = self.engine.progress(&infohash.0);
        if row.is_none() && progress.is_none() {
            return Err(ApiError::NotFound(format!(
                "no download or seed of {infohash} on this node"
            )));
        }
        let id = match id {
            Some(id) => Some(id),
            None => self
                .catalog()
                .records_by_infohash(infohash)?
                .first()
                .map(|r| r.id()),
        };
        let name = progress
            .as_ref()
            .and_then(|p| p.name.clone())
            .or_else(|| row.as_ref().map(|r| r.name.clone()));
        let path = match (&row, &name) {
            (Some(row), Some(name)) => Some(row.output_dir.join(name)),
            _ => None,
        };
        let complete_in_store = row
            .as_ref()
            .is_some_and(|r| r.state == kolokol_store::TorrentState::Complete);
        Ok(TransferView {
            infohash: infohash.to_string(),
            id: id.map(|id| id.to_string()),
            name,
            path,
            state: progress
                .as_ref()
                .map_or_else(|| "stopped".to_owned(), |p| state_name(p.state).to_owned()),
            total_bytes: progress.as_ref().map_or(0, |p| p.total_bytes),
            have_bytes: progress.as_ref().map_or(0, |p| p.have_bytes),
            finished: progress.as_ref().map_or(complete_in_store, |p| p.finished),
            peers: progress.as_ref().map_or(0, |p| p.peers as usize),
            download_bps: progress.as_ref().map_or(0, |p| p.download_rate),
            upload_bps: progress.as_ref().map_or(0, |p| p.upload_rate),
            error: progress.and_then(|p| p.error),
        })
    }
}

/// A running node.
pub struct Node {
    inner: Arc<Inner>,
}

impl Node {
    /// Start a node on a locked data directory. Returns once every listener is bound and the API can be served.
    pub async fn start(dir: DataDir, config: NodeConfig) -> Result<Node, StartError> {
        let node_key = load_or_create_key(&dir.node_key_path())?;
        let author_key = load_or_create_key(&dir.author_key_path())?;
        let token = hex::encode(load_or_create_secret(&dir.token_path())?);
        let mut catalog = Catalog::open(&dir.catalog_path(), &config.network)?;
        crate::publish::clean_staging(&dir.content_dir());

        let wire_config = WireConfig::for_network(config.network.clone());
        wire_config
            .validate()
            .map_err(|e| StartError::Other(format!("network name: {e}")))?;

        let wire_listener = bind_wire(&mut catalog, config.wire_listen).await?;
        let wire_addr = wire_listener
            .local_addr()
            .map_err(|source| StartError::WireListen {
                addr: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
                source,
            })?;
        // Before the engine: a proxy address in use must stop the start before anything else is running.
        let proxy =
            crate::proxy::ProxyService::start(dir.root(), &mut catalog, &config.proxy).await?;
        let engine = start_engine(&dir, &mut catalog, &config).await?;
        let bt_addr = engine.listen_addr();
        let dht = crate::discovery::start_dht(
            &config.discovery,
            &config.network,
            dir.root().join("dht.state"),
            &mut catalog,
        )
        .await?;
        let overlay_config = OverlayConfig {
            target_degree: config.target_peers.max(1),
            min_outbound: config.target_peers.clamp(1, 4),
            max_outbound: config.target_peers.max(1),
            max_inbound: config.max_inbound,
            ..OverlayConfig::default()
        };
        let overlay = Overlay::new(overlay_config, node_key.public(), rand::random())
            .map_err(|e| StartError::Other(format!("peer settings: {e}")))?;

        let policy = crate::record_policy::new_policy(
            config.push_fanout,
            config.reconcile_interval,
            crate::peering::MAX_BAD_RECORDS,
        )
        .map_err(|e| StartError::Other(format!("record policy settings: {e}")))?;

        let inner = Arc::new(Inner {
            network: config.network.clone(),
            node_key,
            author_key,
            token,
            catalog: Mutex::new(catalog),
            engine,
            peers: PeerRegistry::new(bt_addr.port(), policy),
            wire_addr,
            bt_addr,
            api_addr: config.api_addr,
            wire_config,
            cancel: CancellationToken::new(),
            dir,
            dht,
            overlay: Mutex::new(overlay),
            dial_wake: Notify::new(),
            feeds_wake: Notify::new(),
            reached_from_outside: AtomicBool::new(false),
            admission: config.admission,
            work_bits: config.work_bits,
            counters: AdmissionCounters::default(),
            started: Instant::now(),
            proxy: Arc::new(proxy),
            replication: crate::replication::Replication::new(config.replication.clone()),
            cache: crate::cache::Cache::new(config.cache.clone()),
        });
        // Before any connection serves the catalog: records still waiting for a replica stay held back.
        crate::replication::resume_held_back(&inner);
        crate::peering::spawn_listener(inner.clone(), wire_listener);
        crate::peering::spawn_dialer(inner.clone());
        crate::discovery::spawn_all(&inner, &config.discovery).await;
        crate::record_policy::spawn_timer(inner.clone());
        resume_torrents(&inner).await;
        crate::cache::spawn(inner.clone());
        tracing::info!(node_id = %inner.node_key.public(), %wire_addr, %bt_addr, "node started");
        Ok(Node { inner })
    }

    /// The API of this node, for the HTTP layer and for tests.
    pub fn api(&self) -> Api {
        Api::new(self.inner.clone())
    }

    /// Stop every task, close connections, stop the engine. The data directory lock is released when the last
    /// reference to the node's state is gone.
    pub async fn shutdown(self) {
        crate::discovery::save_state(&self.inner).await;
        self.inner.cancel.cancel();
        self.inner.peers.close_all();
        self.inner.proxy.shutdown().await;
        self.inner.engine.shutdown().await;
        tracing::info!("node stopped");
    }
}

async fn bind_wire(
    catalog: &mut Catalog,
    requested: Option<SocketAddr>,
) -> Result<TcpListener, StartError> {
    let (addr, chosen) = listen_addr(catalog, WIRE_PORT_KEY, requested)?;
    let listener = match TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(error) if chosen && addr.port() != 0 => {
            // The port kept from an earlier run is taken by something else: take a new one rather than not start.
            tracing::warn!(%error, %addr, "kept wire port is busy; choosing another");
            TcpListener::bind(SocketAddr::new(addr.ip(), 0))
                .await
                .map_err(|source| StartError::WireListen { addr, source })?
        }
        Err(source) => return Err(StartError::WireListen { addr, source }),
    };
    if chosen {
        let port = listener
            .local_addr()
            .map_err(|source| StartError::WireListen { addr, source })?
            .port();
        catalog.set_setting(WIRE_PORT_KEY, &port.to_string())?;
    }
    Ok(listener)
}

async fn start_engine(
    dir: &DataDir,
    catalog: &mut Catalog,
    node_config: &NodeConfig,
) -> Result<Engine, StartError> {
    let (addr, chosen) = listen_addr(catalog, BT_PORT_KEY, node_config.bt_listen)?;
    let limits = RateLimits {
        upload: rate_limit(node_config.upload_limit)?,
        download: rate_limit(node_config.download_limit)?,
    };
    let config = |listen| EngineConfig {
        listen,
        state_dir: dir.engine_dir(),
        download_dir: dir.downloads_dir(),
        limits,
        stream_timeout: node_config.stream_timeout,
    };
    let engine = match Engine::start(config(addr)).await {
        Ok(engine) => engine,
        Err(error) if chosen && addr.port() != 0 => {
            tracing::warn!(%error, %addr, "kept BitTorrent port is busy; choosing another");
            Engine::start(config(SocketAddr::new(addr.ip(), free_port(addr)?))).await?
        }
        Err(error) => return Err(error.into()),
    };
    if chosen {
        catalog.set_setting(BT_PORT_KEY, &engine.listen_addr().port().to_string())?;
    }
    Ok(engine)
}

/// A limit in bytes per second as the engine takes it (it refuses limits below its minimum).
fn rate_limit(limit: Option<u64>) -> Result<Option<NonZeroU32>, StartError> {
    limit
        .map(|bytes| {
            NonZeroU32::new(u32::try_from(bytes).unwrap_or(u32::MAX)).ok_or_else(|| {
                StartError::Other(
                    "a rate limit of 0 bytes per second would stop all transfers".into(),
                )
            })
        })
        .transpose()
}

/// The address to listen on, and whether the node chose it (so that it must be remembered for the next start).
fn listen_addr(
    catalog: &Catalog,
    key: &str,
    requested: Option<SocketAddr>,
) -> Result<(SocketAddr, bool), StartError> {
    if let Some(addr) = requested {
        return Ok((addr, false));
    }
    let kept = catalog
        .get_setting(key)?
        .and_then(|port| port.parse::<u16>().ok())
        .filter(|port| *port != 0);
    let addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, kept.unwrap_or(0)));
    match kept {
        Some(_) => Ok((addr, true)),
        None => Ok((SocketAddr::new(addr.ip(), free_port(addr)?), true)),
    }
}

/// A port that is free for TCP right now (the engine binds it itself a moment later).
fn free_port(addr: SocketAddr) -> Result<u16, StartError> {
    std::net::TcpListener::bind(SocketAddr::new(addr.ip(), 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|source| StartError::Other(format!("cannot find a free port: {source}")))
}

/// Seed what was complete and resume what was downloading when the node last stopped.
async fn resume_torrents(inner: &Arc<Inner>) {
    let rows = match inner.catalog().list_torrents() {
        Ok(rows) => rows,
        Err(error) => {
            tracing::warn!(%error, "cannot list torrents to resume");
            return;
        }
    };
    for row in rows {
        if let Err(error) = crate::fetch::resume(inner, &row, &[]).await {
            tracing::warn!(%error, infohash = %row.infohash, "cannot resume torrent");
        }
    }
}

/// Seconds since the Unix epoch (0 if the clock is before 1970).
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn state_name(state: kolokol_transfer::TorrentState) -> &'static str {
    use kolokol_transfer::TorrentState::*;
    match state {
        Resolving => "resolving",
        Checking => "checking",
        Downloading => "downloading",
        Seeding => "seeding",
        Paused => "paused",
        Failed => "failed",
    }
}
