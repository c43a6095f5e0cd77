//! What the API and the background tasks reach the node through (see [`Inner`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kolokol_core::keys::Keypair;
use kolokol_core::record::{InfoHash, RecordId};
use kolokol_discovery::Dht;
use kolokol_transfer::Engine;
use kolokol_wire::WireConfig;
use tokio::sync::Notify;

use crate::admission::Admission;
use crate::cache::Cache;
use crate::catalog::CatalogService;
use crate::data_dir::DataPaths;
use crate::error::ApiError;
use crate::peers::PeerRegistry;
use crate::proxy::ProxyService;
use crate::record_policy::RecordPolicyOwner;
use crate::replicas::Replication;
use crate::tasks::Tasks;
use crate::views::TransferView;

/// What the API and the background tasks reach the node through: fixed settings, and one handle per subsystem
/// owner. No field here is mutable state of its own; every piece of state lives inside exactly one owner (see
/// ARCHITECTURE.md, "Inside the node"), which others reach through its methods.
pub(crate) struct Inner {
    // Fixed for the node's life.
    /// Where things are in the data directory. The lock itself is the [`Node`]'s, released last at shutdown.
    pub dir: DataPaths,
    pub network: String,
    pub node_key: Keypair,
    pub author_key: Keypair,
    pub token: String,
    pub wire_addr: SocketAddr,
    pub bt_addr: SocketAddr,
    pub api_addr: SocketAddr,
    pub wire_config: WireConfig,
    pub(crate) started: Instant,

    // The owners.
    /// Every task of the node; shutdown cancels and awaits them all.
    pub tasks: Tasks,
    /// Catalog access: the thread that owns the SQLite connection.
    pub catalog: CatalogService,
    /// Peers and connections: the connected peers, the overlay, handshake slots, bans.
    pub peers: PeerRegistry,
    /// Transfers: the BitTorrent engine (it owns its torrents; `fetch.rs` drives it).
    pub engine: Engine,
    /// Discovery: the DHT handle.
    pub dht: Dht,
    /// Woken to poll followed authors' feeds at once (after `follow`).
    pub feeds_wake: Notify,
    /// What records from outside must pass; its counters.
    pub admission: Admission,
    /// The record policy: what to relay, serve, fetch, when to reconcile (`kolokol_core::policy`).
    pub policy: RecordPolicyOwner,
    /// Publisher push and replica bookkeeping.
    pub replication: Replication,
    /// Mirror mode and the viewer cache.
    pub cache: Cache,
    /// The local proxy and the bridge (see `proxy.rs`).
    pub proxy: Arc<ProxyService>,
}

impl Inner {
    /// Time since the node started: the overlay's clock.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// What the engine and the catalog know of one torrent.
    pub async fn transfer_view(
        &self,
        infohash: &InfoHash,
        id: Option<RecordId>,
    ) -> Result<TransferView, ApiError> {
        let infohash = *infohash;
        let (row, first_id) = self
            .catalog
            .run(move |catalog| {
                let row = catalog.get_torrent(&infohash)?;
                let first = match id {
                    Some(_) => None,
                    None => catalog
                        .records_by_infohash(&infohash)?
                        .first()
                        .map(|r| r.id()),
                };
                Ok((row, first))
            })
            .await?;
        let progress = self.engine.progress(&infohash.0);
        if row.is_none() && progress.is_none() {
            return Err(ApiError::NotFound(format!(
                "no download or seed of {infohash} on this node"
            )));
        }
        let id = id.or(first_id);
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
            shared: row.as_ref().is_some_and(|r| self.cache.advertises(r)),
        })
    }
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
