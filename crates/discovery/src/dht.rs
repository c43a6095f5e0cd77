//! One DHT node per kolokol node (kolokol's own mainline DHT implementation, `kolokol-dht`): bootstrap,
//! status, saved state, and the lookups kolokol needs (rendezvous, torrent peers).
//!
//! Author feeds (BEP 44) are in [`crate::feeds`]; the periodic rendezvous task in [`crate::rendezvous`].

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

use kolokol_core::InfoHash;
use kolokol_dht::{Id, NetError};

use crate::bootstrap::{self, BootstrapError, BootstrapPlan};
use crate::policy::{DEFAULT_REQUEST_TIMEOUT, ServerMode, answers_from_start};
use crate::state::{DhtState, StateError};

/// How long one lookup may run at most, whatever the DHT does (a safety net; lookups end by themselves).
pub const LOOKUP_DEADLINE: Duration = Duration::from_secs(60);
/// Most peers one `get_peers` lookup returns.
pub const MAX_PEERS_PER_LOOKUP: usize = 512;
/// How long the DHT node lets one lookup (with its announce or put) run before it ends with what it has.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Options of the DHT node. [`Default`] is a node on all interfaces, a port chosen by the system, the public
/// routers allowed, no state file.
#[derive(Clone, Debug)]
pub struct DhtConfig {
    /// kolokol network name: scopes the saved state and names the rendezvous and feeds.
    pub network: String,
    /// UDP address to bind (IPv4: the DHT node is IPv4-only). Port 0 lets the system choose; the node should
    /// then save [`Dht::local_addr`] and pass it next time so the port stays the same.
    pub bind: SocketAddrV4,
    /// Configured bootstrap nodes, `HOST:PORT` (at most [`bootstrap::MAX_CONFIGURED_BOOTSTRAP`]).
    pub bootstrap: Vec<String>,
    /// Never use the public BitTorrent routers, nor saved nodes learned while they were allowed: no packet goes
    /// to an address that was neither configured nor learned from the configured network.
    pub no_default_bootstrap: bool,
    /// Where routing-table nodes are saved and read at start, or `None`.
    pub state_file: Option<PathBuf>,
    /// Whether the node is a full DHT node from the start (other nodes may put it in their routing tables) or
    /// a read-only one (BEP 43): [`ServerMode::Auto`] applies [`answers_from_start`] (a full node when the
    /// network has nothing else to answer). Either way it answers the queries that reach it, so a BitTorrent
    /// client given its address can enter the DHT through it.
    pub server_mode: ServerMode,
    /// How long to wait for one DHT node's answer. A lookup that asks a node that never answers lasts at least
    /// this long (it waits for the slowest of the nodes it asked). Default [`DEFAULT_REQUEST_TIMEOUT`] (1 s).
    pub request_timeout: Duration,
}

impl Default for DhtConfig {
    fn default() -> Self {
        DhtConfig {
            network: "kolokol".to_owned(),
            bind: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
            bootstrap: Vec::new(),
            no_default_bootstrap: false,
            state_file: None,
            server_mode: ServerMode::Auto,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

/// Why the DHT node could not start or an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DhtError {
    #[error(transparent)]
    Bootstrap(#[from] BootstrapError),
    #[error("cannot bind the DHT to {addr}: {source}")]
    Bind {
        addr: SocketAddrV4,
        source: std::io::Error,
    },
    #[error("network name must be 1 to 255 bytes")]
    Network,
    #[error("request timeout must be between 50 ms and 30 s, got {0:?}")]
    RequestTimeout(Duration),
    #[error("DHT announce failed: {0}")]
    Announce(#[source] NetError),
    #[error("no DHT node accepted the announcement")]
    NotStored,
    #[error(transparent)]
    State(#[from] StateError),
    #[error("no state file is configured")]
    NoStateFile,
    #[error("the DHT task stopped")]
    Stopped,
}

/// What the node reports about its DHT (for `status --json`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DhtStatus {
    /// The UDP address the DHT listens on (`dht_addr`).
    pub local_addr: SocketAddrV4,
    /// Nodes in the routing table that are not bad.
    pub routing_table_size: usize,
    /// Our address as other DHT nodes see it, once two agree on one.
    pub public_addr: Option<SocketAddrV4>,
    /// True until a DHT node we had not written to has queried us (which shows nodes outside can reach us).
    pub firewalled: bool,
    /// Whether we are a full DHT node (not read-only).
    pub server_mode: bool,
    /// How many bootstrap addresses the node started with, by source.
    pub bootstrap_saved: usize,
    /// See [`DhtStatus::bootstrap_saved`].
    pub bootstrap_configured: usize,
    /// See [`DhtStatus::bootstrap_saved`].
    pub bootstrap_public: usize,
}

/// A running DHT node. Cheap to clone; the node stops when the last clone is dropped.
#[derive(Clone, Debug)]
pub struct Dht {
    inner: kolokol_dht::Dht,
    network: String,
    local_addr: SocketAddrV4,
    public_routers_allowed: bool,
    server_mode: bool,
    state_file: Option<PathBuf>,
    plan_counts: (usize, usize, usize),
}

impl Dht {
    /// Starts the DHT node: reads the saved state, resolves the bootstrap entries, binds the socket.
    pub async fn start(config: DhtConfig) -> Result<Dht, DhtError> {
        if config.network.is_empty() || config.network.len() > 255 {
            return Err(DhtError::Network);
        }
        if !(Duration::from_millis(50)..=Duration::from_secs(30)).contains(&config.request_timeout)
        {
            return Err(DhtError::RequestTimeout(config.request_timeout));
        }
        let entries = bootstrap::parse_bootstrap(&config.bootstrap)?;
        let public_routers_allowed = !config.no_default_bootstrap;
        let saved = match &config.state_file {
            Some(path) => load_saved(path, &config.network, public_routers_allowed),
            None => Vec::new(),
        };
        let mut configured = Vec::new();
        for entry in &entries {
            configured.extend(bootstrap::resolve(&entry.text).await);
        }
        let mut public = Vec::new();
        if public_routers_allowed {
            for router in bootstrap::PUBLIC_ROUTERS {
                public.extend(bootstrap::resolve(router).await);
            }
        }
        let plan = BootstrapPlan {
            saved,
            configured,
            public,
        };
        let list = plan.list();
        let server_mode = answers_from_start(config.server_mode, public_routers_allowed);
        tracing::info!(
            server_mode,
            saved = plan.saved.len(),
            configured = plan.configured.len(),
            public = plan.public.len(),
            "starting the DHT node"
        );
        let dht_config = node_config(&config, &plan, server_mode);
        let inner = bind_with_retry(dht_config, config.bind, &list).await?;
        let local_addr = inner.local_addr();
        Ok(Dht {
            inner,
            network: config.network,
            local_addr,
            public_routers_allowed,
            server_mode,
            state_file: config.state_file,
            plan_counts: (plan.saved.len(), plan.configured.len(), plan.public.len()),
        })
    }

    /// The network this node belongs to.
    pub fn network(&self) -> &str {
        &self.network
    }

    /// The UDP address the DHT listens on.
    pub fn local_addr(&self) -> SocketAddrV4 {
        self.local_addr
    }

    /// The underlying `kolokol-dht` handle, for operations this crate does not wrap.
    pub fn inner(&self) -> &kolokol_dht::Dht {
        &self.inner
    }

    /// Current status: routing table size, public address, reachability.
    pub async fn status(&self) -> DhtStatus {
        let info = self.inner.info().await.ok();
        DhtStatus {
            local_addr: self.local_addr,
            routing_table_size: info.as_ref().map_or(0, |i| i.routing_table_size),
            public_addr: info.as_ref().and_then(|i| i.public_addr),
            firewalled: !info.as_ref().is_some_and(|i| i.reached),
            server_mode: self.server_mode,
            bootstrap_saved: self.plan_counts.0,
            bootstrap_configured: self.plan_counts.1,
            bootstrap_public: self.plan_counts.2,
        }
    }

    /// The routing-table nodes as they would be saved.
    pub async fn routing_nodes(&self) -> Vec<SocketAddrV4> {
        self.inner.routing_nodes().await.unwrap_or_default()
    }

    /// Writes the routing table to the configured state file (atomically). Returns how many nodes were saved.
    pub async fn save_state(&self) -> Result<usize, DhtError> {
        let path = self.state_file.clone().ok_or(DhtError::NoStateFile)?;
        let nodes = self.routing_nodes().await;
        let state = DhtState::new(&self.network, self.public_routers_allowed, &nodes);
        let count = state.nodes.len();
        tokio::task::spawn_blocking(move || state.save(&path))
            .await
            .map_err(|_| DhtError::Stopped)??;
        Ok(count)
    }

    /// Announces that a peer listens on `port` of our IP for `infohash` (BEP 5 `announce_peer`).
    pub async fn announce_peer(&self, infohash: InfoHash, port: u16) -> Result<(), DhtError> {
        let announce = self.inner.announce_peer(Id(infohash.0), Some(port));
        match tokio::time::timeout(LOOKUP_DEADLINE, announce).await {
            Ok(Ok(0)) | Err(_) => Err(DhtError::NotStored),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(DhtError::Announce(e)),
        }
    }

    /// Peers announced for `infohash` (BEP 5 `get_peers`), deduplicated, without addresses that cannot be
    /// dialed, and without loopback addresses unless this DHT itself runs on loopback (a remote DHT node
    /// could otherwise steer us to services on our own machine). At most [`MAX_PEERS_PER_LOOKUP`].
    pub async fn get_peers(&self, infohash: InfoHash) -> Vec<SocketAddr> {
        let lookup = self.inner.get_peers(Id(infohash.0));
        let raw = match tokio::time::timeout(LOOKUP_DEADLINE, lookup).await {
            Ok(Ok(peers)) => peers,
            _ => Vec::new(),
        };
        let loopback_ok = self.local_addr.ip().is_loopback();
        raw.into_iter()
            .filter(|p| crate::state::is_routable_node(p) && (loopback_ok || !p.ip().is_loopback()))
            .take(MAX_PEERS_PER_LOOKUP)
            .map(SocketAddr::V4)
            .collect()
    }

    /// Announces our kolokol wire port on the rendezvous infohash of our network.
    pub async fn announce_rendezvous(&self, wire_port: u16) -> Result<(), DhtError> {
        self.announce_peer(InfoHash::rendezvous(&self.network), wire_port)
            .await
    }

    /// Looks up the rendezvous infohash: kolokol nodes of our network (candidates: they are only addresses
    /// until a handshake proves them). Our own announcement (`wire_port` on one of our addresses) is left out.
    pub async fn find_rendezvous(&self, wire_port: u16) -> Vec<SocketAddr> {
        let own_ips = self.own_ips().await;
        self.get_peers(InfoHash::rendezvous(&self.network))
            .await
            .into_iter()
            .filter(|p| !(p.port() == wire_port && own_ips.contains(&p.ip())))
            .collect()
    }

    async fn own_ips(&self) -> BTreeSet<IpAddr> {
        let mut ips = BTreeSet::new();
        ips.insert(IpAddr::V4(Ipv4Addr::LOCALHOST));
        if !self.local_addr.ip().is_unspecified() {
            ips.insert(IpAddr::V4(*self.local_addr.ip()));
        }
        if let Some(public) = self.inner.info().await.ok().and_then(|i| i.public_addr) {
            ips.insert(IpAddr::V4(*public.ip()));
        }
        ips
    }
}

/// The DHT node's options. Loopback addresses are DHT nodes only for a node that runs on loopback or was
/// told to bootstrap from one (tests, a node and its tools on one machine); otherwise an address a remote node
/// names could point our queries at services on our own machine.
pub(crate) fn node_config(
    config: &DhtConfig,
    plan: &BootstrapPlan,
    server_mode: bool,
) -> kolokol_dht::Config {
    let loopback =
        config.bind.ip().is_loopback() || plan.configured.iter().any(|a| a.ip().is_loopback());
    kolokol_dht::Config {
        request_timeout: config.request_timeout,
        lookup_timeout: LOOKUP_TIMEOUT,
        read_only: !server_mode,
        allow_loopback: loopback,
    }
}

/// Binds, retrying for a moment if the port is still held: a node restarted in the same process may start
/// before the previous node's task has noticed that its last handle is gone.
async fn bind_with_retry(
    config: kolokol_dht::Config,
    bind: SocketAddrV4,
    bootstrap: &[SocketAddrV4],
) -> Result<kolokol_dht::Dht, DhtError> {
    let mut attempts = 0;
    loop {
        match kolokol_dht::Dht::bind(bind, config.clone(), bootstrap).await {
            Ok(dht) => return Ok(dht),
            Err(NetError::Bind { source, .. })
                if source.kind() == std::io::ErrorKind::AddrInUse
                    && bind.port() != 0
                    && attempts < 20 =>
            {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(NetError::Bind { addr, source }) => return Err(DhtError::Bind { addr, source }),
            Err(_) => return Err(DhtError::Stopped),
        }
    }
}

fn load_saved(
    path: &std::path::Path,
    network: &str,
    public_routers_allowed: bool,
) -> Vec<SocketAddrV4> {
    match DhtState::load(path) {
        Ok(Some(state)) if state.usable_for(network, public_routers_allowed) => state.nodes,
        Ok(Some(_)) => {
            tracing::warn!(
                path = %path.display(),
                "ignoring saved DHT nodes: learned in another network or with the public routers, which this \
                 configuration does not allow"
            );
            Vec::new()
        }
        Ok(None) => Vec::new(),
        Err(error) => {
            tracing::warn!(%error, "ignoring unreadable DHT state file");
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_nodes_only_for_a_node_on_loopback_or_told_to_use_one() {
        let plan = BootstrapPlan::default();
        let on_loopback = DhtConfig {
            no_default_bootstrap: true,
            bind: SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0),
            ..DhtConfig::default()
        };
        let c = node_config(&on_loopback, &plan, true);
        assert!(c.allow_loopback);
        assert!(!c.read_only);
        assert_eq!(c.request_timeout, on_loopback.request_timeout);
        let everywhere = DhtConfig::default();
        assert!(!node_config(&everywhere, &plan, false).allow_loopback);
        assert!(node_config(&everywhere, &plan, false).read_only);
        let told = BootstrapPlan {
            configured: vec![SocketAddrV4::new(Ipv4Addr::LOCALHOST, 6881)],
            ..BootstrapPlan::default()
        };
        assert!(node_config(&everywhere, &told, false).allow_loopback);
    }

    #[test]
    fn default_config_is_all_interfaces_on_a_chosen_port() {
        let config = DhtConfig::default();
        assert_eq!(config.bind, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));
        assert!(!config.no_default_bootstrap);
        assert_eq!(config.network, "kolokol");
        assert_eq!(config.server_mode, ServerMode::Auto);
        assert_eq!(config.request_timeout, Duration::from_secs(1));
    }
}
