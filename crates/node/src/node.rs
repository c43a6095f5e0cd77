//! The node: opens the data directory's contents, starts the engine, the wire listener and the background tasks, and
//! shuts them down in order.

use std::net::{Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kolokol_core::overlay::{Overlay, OverlayConfig};
use kolokol_store::Catalog;
use kolokol_transfer::{Engine, EngineConfig, RateLimits};
use kolokol_wire::WireConfig;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::admission::Admission;
use crate::api::Api;
use crate::catalog::CatalogService;
use crate::config::NodeConfig;
use crate::context::Inner;
use crate::data_dir::DataDir;
use crate::identity::{load_or_create_key, load_or_create_secret};
use crate::peers::PeerRegistry;
use crate::record_policy::RecordPolicyOwner;
use crate::start_error::StartError;
use crate::tasks::Tasks;

const BT_PORT_KEY: &str = "bt_port";
const WIRE_PORT_KEY: &str = "wire_port";

/// How long shutdown waits for the node's tasks before it names the stragglers and goes on.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(20);

/// A running node.
pub struct Node {
    inner: Arc<Inner>,
    /// The data directory's lock: dropped last, after every task has ended and the catalog is closed.
    dir: DataDir,
}

impl Node {
    /// Start a node on a locked data directory. Returns once every listener is bound and the API can be served.
    pub async fn start(dir: DataDir, config: NodeConfig) -> Result<Node, StartError> {
        let node_key = load_or_create_key(&dir.node_key_path())?;
        let author_key = load_or_create_key(&dir.author_key_path())?;
        let token = hex::encode(load_or_create_secret(&dir.token_path())?);
        // Opening may migrate the schema: off the async threads. Until the catalog thread takes it over below, start-up
        // alone uses it (a few settings rows), before any task runs.
        let mut catalog = {
            let (path, network) = (dir.catalog_path(), config.network.clone());
            tokio::task::spawn_blocking(move || Catalog::open(&path, &network))
                .await
                .map_err(|e| StartError::Other(format!("opening the catalog: {e}")))??
        };
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

        let policy = RecordPolicyOwner::new(
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
            catalog: CatalogService::start(catalog).map_err(StartError::CatalogThread)?,
            engine,
            peers: PeerRegistry::new(bt_addr.port(), overlay),
            wire_addr,
            bt_addr,
            api_addr: config.api_addr,
            wire_config,
            tasks: Tasks::new(),
            dir: dir.paths().clone(),
            dht,
            feeds_wake: Notify::new(),
            admission: Admission::new(config.admission, config.work_bits),
            policy,
            started: Instant::now(),
            proxy: Arc::new(proxy),
            replication: crate::replicas::Replication::new(config.replication.clone()),
            cache: crate::cache::Cache::new(config.cache.clone()),
        });
        // Before any connection serves the catalog: records still waiting for a replica stay held back.
        crate::replication::resume_held_back(&inner).await;
        inner.cache.load_saved_sharing(&inner.catalog).await;
        crate::peering::spawn_listener(inner.clone(), wire_listener);
        crate::peering::spawn_dialer(inner.clone()).await;
        crate::discovery::spawn_all(&inner, &config.discovery).await;
        crate::relaying::spawn_timer(inner.clone());
        resume_torrents(&inner).await;
        crate::mirroring::spawn(inner.clone());
        tracing::info!(node_id = %inner.node_key.public(), %wire_addr, %bt_addr, "node started");
        Ok(Node { inner, dir })
    }

    /// The API of this node, for the HTTP layer and for tests.
    pub fn api(&self) -> Api {
        Api::new(self.inner.clone())
    }

    /// Stop the node: cancel every task and wait until each has ended (bounded by [`SHUTDOWN_WAIT`]; stragglers
    /// are named in the log), stop the proxy and the engine, and only then release the data directory's lock.
    pub async fn shutdown(self) {
        crate::discovery::save_state(&self.inner).await;
        self.inner.peers.close_all();
        let stragglers = self.inner.tasks.shutdown(SHUTDOWN_WAIT).await;
        self.inner.proxy.shutdown().await;
        self.inner.engine.shutdown().await;
        self.inner.catalog.close().await;
        drop(self.inner);
        drop(self.dir);
        tracing::info!(stragglers = stragglers.len(), "node stopped");
    }

    /// Tasks of this node still running (zero once [`Node::shutdown`] has waited for them all).
    #[cfg(test)]
    pub(crate) fn tasks(&self) -> Tasks {
        self.inner.tasks.clone()
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
    let rows = match inner.catalog.run(|c| c.list_torrents()).await {
        Ok(rows) => rows,
        Err(error) => {
            tracing::warn!(%error, "cannot list torrents to resume");
            return;
        }
    };
    for row in rows {
        if let Err(error) = crate::fetch::resume(inner, &row, &[]).await {
            tracing::warn!(%error, "cannot resume torrent");
            tracing::debug!(%error, infohash = %row.infohash, "cannot resume torrent");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is the failure report

    use super::*;
    use crate::config::DiscoveryConfig;

    fn config() -> NodeConfig {
        NodeConfig {
            bt_listen: Some("127.0.0.1:0".parse().unwrap()),
            wire_listen: Some("127.0.0.1:0".parse().unwrap()),
            discovery: DiscoveryConfig::private_loopback(),
            ..NodeConfig::default()
        }
    }

    #[tokio::test]
    async fn shutdown_leaves_no_task_running_and_frees_the_lock_and_the_ports() {
        let tmp = tempfile::tempdir().unwrap();
        let (root_a, root_b) = (tmp.path().join("a"), tmp.path().join("b"));
        let a = Node::start(DataDir::lock(&root_a).unwrap(), config())
            .await
            .unwrap();
        let b = Node::start(DataDir::lock(&root_b).unwrap(), config())
            .await
            .unwrap();
        let (wire_a, bt_a) = (a.inner.wire_addr, a.inner.bt_addr);
        // A connection gives `a` its per-connection tasks too (the connection and its reader).
        b.api().peer_add(&wire_a.to_string()).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while a.inner.peers.connected_count() == 0 {
            assert!(tokio::time::Instant::now() < deadline, "never connected");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let tasks = a.tasks();
        assert!(tasks.running() >= 5, "only {} tasks", tasks.running());

        a.shutdown().await;

        assert_eq!(tasks.running(), 0, "tasks outlived shutdown");
        DataDir::lock(&root_a).expect("the data directory lock is free after shutdown");
        std::net::TcpListener::bind(wire_a).expect("the wire port is closed after shutdown");
        std::net::TcpListener::bind(bt_a).expect("the BitTorrent port is closed after shutdown");
        b.shutdown().await;
        DataDir::lock(&root_b).unwrap();
    }
}
