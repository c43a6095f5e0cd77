//! The node: opens the data directory's contents, starts the engine, the wire listener and the background tasks, and
//! shuts them down in order.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kolokol_core::overlay::{Overlay, OverlayConfig};
use kolokol_store::Catalog;
use kolokol_transfer::Engine;
use kolokol_wire::WireConfig;
use tokio::sync::Notify;

use crate::admission::Admission;
use crate::api::Api;
use crate::cache::Cache;
use crate::catalog::CatalogService;
use crate::config::NodeConfig;
use crate::data_dir::DataDir;
use crate::discovery::Discovery;
use crate::fetch::Fetcher;
use crate::identities::Identities;
use crate::identity::load_or_create_secret;
use crate::keystore::Keystore;
use crate::mirroring::Mirror;
use crate::peering::Peering;
use crate::peers::PeerRegistry;
use crate::proxy::ProxyService;
use crate::publish::Publisher;
use crate::record_policy::RecordPolicyOwner;
use crate::relaying::Relayer;
use crate::replicas::Replication;
use crate::replication::Replicator;
use crate::rotation::Rotation;
use crate::start_error::StartError;
use crate::tasks::Tasks;
use crate::wire_identity::{WireIdentity, forget_old_key_file};

/// How long shutdown waits for the node's tasks before it names the stragglers and goes on.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(20);

/// A running node.
pub struct Node {
    api: Api,
    /// What shutdown stops, in order: discovery's state, the connections, the tasks, the proxy, the engine, the
    /// catalog.
    discovery: Discovery,
    peers: Arc<PeerRegistry>,
    tasks: Tasks,
    proxy: Arc<ProxyService>,
    engine: Arc<Engine>,
    catalog: Arc<CatalogService>,
    /// The data directory's lock: dropped last, after every task has ended and the catalog is closed.
    dir: DataDir,
}

impl Node {
    /// Start a node on a locked data directory. Returns once every listener is bound and the API can be served.
    pub async fn start(dir: DataDir, config: NodeConfig) -> Result<Node, StartError> {
        // A bridge's node lists itself nowhere; a bridge-only node starts only the bridge (`presence.rs`).
        let config = crate::presence::apply(config)?;
        let presence = crate::presence::Presence::of(&config);
        // The wire identity is new at every start and never saved; an older version's saved one is destroyed.
        forget_old_key_file(&dir.old_node_key_path());
        let identity = Arc::new(WireIdentity::fresh());
        // Every author identity, unlocked (a sealed one with a passphrase given to `up`): a wrong passphrase stops
        // the start here, before anything else is opened.
        let identities = {
            let (store, passphrases) = (Keystore::new(dir.root()), config.passphrases.clone());
            tokio::task::spawn_blocking(move || Identities::load(store, &passphrases))
                .await
                .map_err(StartError::IdentityTask)??
        };
        let token = hex::encode(load_or_create_secret(&dir.token_path())?);
        // Opening may migrate the schema: off the async threads. Until the catalog thread takes it over below, start-up
        // alone uses it (a few settings rows), before any task runs.
        let mut catalog = {
            let (path, network) = (dir.catalog_path(), config.network.clone());
            tokio::task::spawn_blocking(move || Catalog::open(&path, &network))
                .await
                .map_err(StartError::CatalogOpen)??
        };
        crate::publish::clean_staging(&dir.content_dir());

        let wire_config = WireConfig::for_network(config.network.clone());
        wire_config.validate().map_err(StartError::NetworkName)?;

        let wire_listener = crate::ports::bind_wire(&mut catalog, config.wire_listen).await?;
        let wire_addr = wire_listener
            .local_addr()
            .map_err(|source| StartError::WireListen {
                addr: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
                source,
            })?;
        // Before the engine: a proxy address in use must stop the start before anything else is running.
        let proxy =
            crate::proxy::ProxyService::start(dir.root(), &mut catalog, &config.proxy).await?;
        let engine = crate::ports::start_engine(&dir, &mut catalog, &config).await?;
        let bt_addr = engine.listen_addr();
        let dht = crate::discovery::start_dht(
            &config.discovery,
            !presence.announces(),
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
        let overlay = Overlay::new(overlay_config, identity.id(), rand::random())
            .map_err(StartError::PeerSettings)?;

        let policy = RecordPolicyOwner::new(
            config.push_fanout,
            config.reconcile_interval,
            crate::peering::MAX_BAD_RECORDS,
        )
        .map_err(StartError::RecordPolicySettings)?;
        let identities = Arc::new(identities);
        let tasks = Tasks::new();
        let started = Instant::now();
        let catalog = Arc::new(CatalogService::start(catalog).map_err(StartError::CatalogThread)?);
        let engine = Arc::new(engine);
        let peers = Arc::new(PeerRegistry::new(bt_addr.port(), overlay));
        let admission = Arc::new(Admission::new(config.admission, config.work_bits));
        let policy = Arc::new(policy);
        let replication = Arc::new(Replication::new(config.replication.clone()));
        let cache = Arc::new(Cache::new(config.cache.clone()));
        let proxy = Arc::new(proxy);
        let feeds_wake = Arc::new(Notify::new());
        let discovery = Discovery {
            tasks: tasks.clone(),
            catalog: catalog.clone(),
            peers: peers.clone(),
            engine: engine.clone(),
            cache: cache.clone(),
            dht: dht.clone(),
            feeds_wake: feeds_wake.clone(),
            network: config.network.clone(),
            identity: identity.clone(),
            identities: identities.clone(),
            wire_addr,
            bt_addr,
            started,
            hidden: !presence.announces(),
        };
        let fetcher = Fetcher {
            tasks: tasks.clone(),
            replication: replication.clone(),
            catalog: catalog.clone(),
            engine: engine.clone(),
            peers: peers.clone(),
            cache: cache.clone(),
            dir: dir.paths().clone(),
            discovery: discovery.clone(),
        };
        let relayer = Relayer {
            tasks: tasks.clone(),
            catalog: catalog.clone(),
            peers: peers.clone(),
            policy: policy.clone(),
            wire_config: wire_config.clone(),
            started,
        };
        let replicator = Replicator {
            tasks: tasks.clone(),
            replication: replication.clone(),
            catalog: catalog.clone(),
            peers: peers.clone(),
            policy: policy.clone(),
            admission: admission.clone(),
            engine: engine.clone(),
            cache: cache.clone(),
            network: config.network.clone(),
            started,
            discovery: discovery.clone(),
            fetcher: fetcher.clone(),
            relayer: relayer.clone(),
        };
        let publisher = Publisher {
            tasks: tasks.clone(),
            catalog: catalog.clone(),
            identities: identities.clone(),
            dir: dir.paths().clone(),
            engine: engine.clone(),
            admission: admission.clone(),
            network: config.network.clone(),
            replicator: replicator.clone(),
        };
        let mirror = Mirror {
            tasks: tasks.clone(),
            cache: cache.clone(),
            catalog: catalog.clone(),
            engine: engine.clone(),
            replication: replication.clone(),
            identities: identities.clone(),
            dir: dir.paths().clone(),
            fetcher: fetcher.clone(),
        };
        let peering = Peering {
            tasks: tasks.clone(),
            peers: peers.clone(),
            catalog: catalog.clone(),
            admission: admission.clone(),
            policy,
            identity: identity.clone(),
            network: config.network.clone(),
            wire_config,
            started,
            relayer: relayer.clone(),
            replicator: replicator.clone(),
            fetcher: fetcher.clone(),
        };
        // Before any connection serves the catalog: records still waiting for a replica stay held back.
        crate::proving::spawn(replicator.clone());
        crate::replication::resume_held_back(&replicator).await;
        cache.load_saved_sharing(&catalog).await;
        if presence == crate::presence::Presence::BridgeOnly {
            // Nothing of the kolokol network: no listener (its loopback port closes here), no dialling, no
            // discovery, nothing resumed or mirrored, and no wire identity in use to renew.
            drop((wire_listener, relayer, mirror));
            tracing::info!(
                "bridge-only node: no catalog exchange, no wire listener, no DHT, no LAN"
            );
        } else {
            crate::peering::spawn_listener(peering.clone(), wire_listener);
            crate::peering::spawn_dialer(peering.clone()).await;
            crate::discovery::spawn_all(&discovery, &config.discovery).await;
            crate::relaying::spawn_timer(relayer);
            resume_torrents(&fetcher).await;
            crate::mirroring::spawn(mirror);
            crate::rotation::spawn(Rotation {
                tasks: tasks.clone(),
                identity: identity.clone(),
                peers: peers.clone(),
            });
        }
        tracing::info!(%wire_addr, %bt_addr, "node started");
        tracing::debug!(node_id = %identity.id(), "wire identity");
        let api = Api {
            token: token.into(),
            api_addr: config.api_addr,
            wire_addr,
            bt_addr,
            network: config.network.clone(),
            identity,
            identities,
            dir: dir.paths().clone(),
            tasks: tasks.clone(),
            catalog: catalog.clone(),
            peers: peers.clone(),
            engine: engine.clone(),
            dht,
            feeds_wake,
            admission,
            replication,
            cache,
            proxy: proxy.clone(),
            fetcher,
            publisher,
            peering,
            discovery: discovery.clone(),
        };
        Ok(Node {
            api,
            discovery,
            peers,
            tasks,
            proxy,
            engine,
            catalog,
            dir,
        })
    }

    /// The API of this node, for the HTTP layer and for tests.
    pub fn api(&self) -> Api {
        self.api.clone()
    }

    /// Stop the node: cancel every task and wait until each has ended (bounded by [`SHUTDOWN_WAIT`]; stragglers
    /// are named in the log), stop the proxy and the engine, and only then release the data directory's lock.
    pub async fn shutdown(self) {
        crate::discovery::save_state(&self.discovery).await;
        self.peers.close_all();
        let stragglers = self.tasks.shutdown(SHUTDOWN_WAIT).await;
        self.proxy.shutdown().await;
        self.engine.shutdown().await;
        self.catalog.close().await;
        // Every handle on the owners goes before the lock does.
        drop((
            self.api,
            self.discovery,
            self.peers,
            self.proxy,
            self.engine,
            self.catalog,
        ));
        drop(self.dir);
        tracing::info!(stragglers = stragglers.len(), "node stopped");
    }

    /// Tasks of this node still running (zero once [`Node::shutdown`] has waited for them all).
    #[cfg(test)]
    pub(crate) fn tasks(&self) -> Tasks {
        self.tasks.clone()
    }
}

/// Seed what was complete and resume what was downloading when the node last stopped.
async fn resume_torrents(fetcher: &Fetcher) {
    let rows = match fetcher.catalog.run(|c| c.list_torrents()).await {
        Ok(rows) => rows,
        Err(error) => {
            tracing::warn!(%error, "cannot list torrents to resume");
            return;
        }
    };
    for row in rows {
        if let Err(error) = crate::fetch::resume(fetcher, &row, &[]).await {
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
        let (wire_a, bt_a) = (a.api.wire_addr, a.api.bt_addr);
        // A connection gives `a` its per-connection tasks too (the connection and its reader).
        b.api().peer_add(&wire_a.to_string()).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while a.peers.connected_count() == 0 {
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

    /// A renewal of the wire identity (as the rotation driver makes daily and on a change of network): the old
    /// identity's connections are closed and the node keeps working under the new one (its peer connects to it
    /// again and sees only the new id).
    #[tokio::test]
    async fn after_a_renewal_peers_see_only_the_new_identity() {
        let tmp = tempfile::tempdir().unwrap();
        let a = Node::start(DataDir::lock(&tmp.path().join("a")).unwrap(), config())
            .await
            .unwrap();
        let b = Node::start(DataDir::lock(&tmp.path().join("b")).unwrap(), config())
            .await
            .unwrap();
        let old = a.api().id().node_id;
        // B dials A, so B's overlay dials A again after the renewal closes the connection.
        let peer = b
            .api()
            .peer_add(&a.api.wire_addr.to_string())
            .await
            .unwrap();
        assert_eq!(peer.node_id.as_deref(), Some(old.as_str()));
        let stale = a.api.identity.current();

        let rotation = Rotation {
            tasks: a.tasks(),
            identity: a.api.identity.clone(),
            peers: a.peers.clone(),
        };
        crate::rotation::renew(
            &rotation,
            kolokol_core::rotation::RotationReason::AddressesChanged,
        );
        let new = a.api().id().node_id;
        assert_ne!(new, old);
        assert_eq!(a.api().status().await.unwrap().node_id, new);
        assert!(!a.api.identity.is_current(&stale));

        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let ids: Vec<String> = b
                .peers
                .connections()
                .iter()
                .map(|c| c.id.to_string())
                .collect();
            assert!(
                tokio::time::Instant::now() < deadline,
                "B never reconnected to A under its new identity: {ids:?}"
            );
            if ids == [new.clone()] {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // A sees B once, on a connection made under the new identity.
        assert_eq!(a.peers.connected_count(), 1);

        a.shutdown().await;
        b.shutdown().await;
    }
}
