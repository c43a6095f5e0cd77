//! The node's API: what the HTTP layer (and through it the CLI and the web UI) can ask of a node.
//!
//! API boundary: upper layers see only this type, the request types and the views; never the catalog, the engine or
//! the wire connections.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use kolokol_core::record::{InfoHash, RecordId};
use kolokol_discovery::Dht;
use kolokol_store::{Media, SearchError, SearchQuery};
use kolokol_transfer::Engine;
use tokio::sync::Notify;

use crate::admission::Admission;
use crate::cache::Cache;
use crate::catalog::CatalogService;
use crate::data_dir::DataPaths;
use crate::discovery::Discovery;
use crate::error::ApiError;
use crate::fetch::Fetcher;
use crate::identities::Identities;
use crate::keyfile::Passphrase;
use crate::keystore::IdentityView;
use crate::peering::Peering;
use crate::peers::PeerRegistry;
use crate::proxy::ProxyService;
use crate::publish::PublishRequest;
use crate::publish::Publisher;
use crate::replicas::Replication;
use crate::tasks::Tasks;
use crate::views::{
    BlockedView, FollowView, IdView, PeerView, PublishedView, RecordView, StatusView, TransferView,
};
use crate::wire_identity::WireIdentity;

/// Most records one `list` call returns.
pub const MAX_LIST: u32 = 1000;

/// A search of the catalog: words and filters (all optional).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct SearchRequest {
    /// Words to look for in titles, descriptions and tags (prefix match, case-insensitive).
    pub q: Option<String>,
    /// Author id (hex).
    pub author: Option<String>,
    pub tag: Option<String>,
    pub lang: Option<String>,
    /// Only publications created at or after this Unix time.
    pub since: Option<u64>,
    /// video, audio, image, text or other.
    pub media: Option<String>,
    pub limit: Option<u32>,
    pub offset: Option<u64>,
}

/// A handle on a running node. Cheap to clone.
///
/// It holds the owners' handles and the drivers its calls reach, built once by `Node::start`.
#[derive(Clone)]
pub struct Api {
    pub(crate) token: Arc<str>,
    pub(crate) api_addr: SocketAddr,
    pub(crate) wire_addr: SocketAddr,
    pub(crate) bt_addr: SocketAddr,
    pub(crate) network: String,
    /// The node's wire identity (its owner; `id` and `status` show the current one to the local user only).
    pub(crate) identity: Arc<WireIdentity>,
    pub(crate) identities: Arc<Identities>,
    pub(crate) dir: DataPaths,
    pub(crate) tasks: Tasks,
    pub(crate) catalog: Arc<CatalogService>,
    pub(crate) peers: Arc<PeerRegistry>,
    pub(crate) engine: Arc<Engine>,
    pub(crate) dht: Dht,
    pub(crate) feeds_wake: Arc<Notify>,
    pub(crate) admission: Arc<Admission>,
    pub(crate) replication: Arc<Replication>,
    pub(crate) cache: Arc<Cache>,
    pub(crate) proxy: Arc<ProxyService>,
    pub(crate) fetcher: Fetcher,
    pub(crate) publisher: Publisher,
    pub(crate) peering: Peering,
    pub(crate) discovery: Discovery,
}

impl Api {
    /// The secret every state-changing API request must carry (also in the data directory's `api.token`).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The address the API was bound to.
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    pub fn id(&self) -> IdView {
        IdView {
            node_id: self.identity.id().to_string(),
            author_id: self.identities.default_key().public().to_string(),
        }
    }

    pub async fn status(&self) -> Result<StatusView, ApiError> {
        let dht = self.dht.status().await;
        let (records, peers_known, transfers) = self
            .catalog
            .run(|catalog| {
                Ok((
                    catalog.count_records()?,
                    catalog.list_peers()?.len(),
                    catalog.list_torrents()?.len(),
                ))
            })
            .await?;
        Ok(StatusView {
            node_id: self.identity.id().to_string(),
            author_id: self.identities.default_key().public().to_string(),
            network: self.network.clone(),
            api_addr: self.api_addr.to_string(),
            wire_addr: self.wire_addr.to_string(),
            bt_addr: self.bt_addr.to_string(),
            dht_addr: dht.local_addr.to_string(),
            dht_nodes: dht.routing_table_size,
            reachable: self.peers.was_reached() || !dht.firewalled,
            data_dir: self.dir.root().to_path_buf(),
            records,
            peers_connected: self.peers.connected_count(),
            peers_known,
            transfers,
            refused: self.admission.view(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            proxy_addr: self.proxy.proxy_addr().map(|a| a.to_string()),
        })
    }

    /// The author identities this node has loaded (and can sign with), default first. `kolokol identity list`
    /// reads the data directory instead, so it also shows identities the node has not loaded.
    pub fn identities(&self) -> Vec<IdentityView> {
        self.identities.views()
    }

    /// Whether `author` (hex) is one of the identities this node has loaded.
    pub fn is_own_author(&self, author: &str) -> bool {
        parse_author(author).is_ok_and(|author| self.identities.is_own(&author))
    }

    /// Take in identity `name` from the data directory (the CLI made or imported it while this node ran), opening
    /// it with `passphrase` if it is sealed. A wrong passphrase or an unknown name is an error and changes nothing.
    pub async fn identity_unlock(
        &self,
        name: &str,
        passphrase: Option<String>,
    ) -> Result<IdentityView, ApiError> {
        let passphrase = passphrase
            .map(Passphrase::new)
            .transpose()
            .map_err(|e| ApiError::Invalid(e.to_string()))?;
        let (identities, name) = (self.identities.clone(), name.to_owned());
        self.tasks
            .spawn_blocking("unlock an identity", move || {
                identities.unlock(&name, passphrase.as_ref())
            })
            .await
            .map_err(|e| ApiError::internal("unlock task", e))?
            .map_err(ApiError::from)
    }

    /// Publish files or directories: copy, hash, sign, store, seed, and tell connected peers.
    pub async fn publish(&self, request: PublishRequest) -> Result<PublishedView, ApiError> {
        crate::publish::publish(&self.publisher, request).await
    }

    /// Records in the catalog, newest first.
    pub async fn list(&self, limit: u32, offset: u64) -> Result<Vec<RecordView>, ApiError> {
        let page = self
            .catalog
            .run(move |c| c.list_records(limit.min(MAX_LIST), offset))
            .await?;
        Ok(page
            .records
            .iter()
            .map(|r| RecordView::from_record_at(r, self.api_addr))
            .collect())
    }

    /// Search the local catalog (works with no network at all).
    pub async fn search(&self, request: &SearchRequest) -> Result<Vec<RecordView>, ApiError> {
        let author = match request
            .author
            .as_deref()
            .map(str::trim)
            .filter(|a| !a.is_empty())
        {
            Some(a) => Some(a.parse().map_err(|_| {
                ApiError::Invalid(format!("{a:?} is not an author id (64 hex characters)"))
            })?),
            None => None,
        };
        let media = match request.media.as_deref().filter(|m| !m.is_empty()) {
            Some(m) => Some(Media::parse(m).ok_or_else(|| {
                ApiError::Invalid(format!(
                    "unknown media type {m:?}: use video, audio, image, text or other"
                ))
            })?),
            None => None,
        };
        let query = SearchQuery {
            text: request.q.clone().unwrap_or_default(),
            author,
            tag: request.tag.clone().filter(|t| !t.is_empty()),
            lang: request.lang.clone().filter(|l| !l.is_empty()),
            since: request.since,
            media,
            limit: request.limit.unwrap_or(50).min(MAX_LIST),
            offset: request.offset.unwrap_or(0),
        };
        let found = self
            .catalog
            .run(move |c| Ok(c.search(&query)))
            .await?
            .map_err(|e| match e {
                SearchError::Query(e) => ApiError::Invalid(e.to_string()),
                SearchError::Store(e) => e.into(),
            })?;
        Ok(found
            .iter()
            .map(|r| RecordView::from_record_at(r, self.api_addr))
            .collect())
    }

    /// One record, by id.
    pub async fn show(&self, id: &str) -> Result<RecordView, ApiError> {
        let id: RecordId = id.trim().parse().map_err(|_| {
            ApiError::Invalid(format!(
                "{id:?} is not a publication id (64 hex characters)"
            ))
        })?;
        let record = self.catalog.run(move |c| c.get_record(&id)).await?;
        let record = record.ok_or_else(|| {
            ApiError::NotFound(format!(
                "unknown publication {id}: it is not in this node's catalog"
            ))
        })?;
        Ok(RecordView::from_record_at(&record, self.api_addr))
    }

    /// Start downloading a publication (record id) or a magnet link into `out_dir` (default: the data directory).
    /// Returns at once; follow it with [`Api::transfer`].
    pub async fn get(
        &self,
        target: &str,
        out_dir: Option<PathBuf>,
    ) -> Result<TransferView, ApiError> {
        crate::fetch::start_get(&self.fetcher, target, out_dir).await
    }

    /// Progress of a download or seed, by infohash.
    pub async fn transfer(&self, infohash: &str) -> Result<TransferView, ApiError> {
        let infohash: InfoHash = infohash.trim().parse().map_err(|_| {
            ApiError::Invalid(format!(
                "{infohash:?} is not an infohash (40 hex characters)"
            ))
        })?;
        crate::views::transfer_view(&self.catalog, &self.engine, &self.cache, &infohash, None).await
    }

    /// Connect to a kolokol node at its wire address and remember it. Returns once the handshake succeeded; the
    /// catalog exchange goes on in the background.
    pub async fn peer_add(&self, addr: &str) -> Result<PeerView, ApiError> {
        crate::peering::add_peer(&self.peering, addr).await
    }

    /// Follow an author: their feed head is polled in the DHT and the records it names are fetched from peers.
    pub async fn follow(&self, author: &str) -> Result<FollowView, ApiError> {
        let author = parse_author(author)?;
        if self.identities.is_own(&author) {
            return Err(ApiError::Invalid(
                "that is one of this node's own author ids".into(),
            ));
        }
        self.catalog
            .run(move |c| Ok(c.follow(&author, crate::clock::unix_now())))
            .await?
            .map_err(|e| ApiError::Invalid(e.to_string()))?;
        self.feeds_wake.notify_one();
        self.following()
            .await?
            .into_iter()
            .find(|f| f.author == author.to_string())
            .ok_or_else(|| ApiError::Internal("follow was not stored".into()))
    }

    /// Stop following an author (their records stay in the catalog).
    pub async fn unfollow(&self, author: &str) -> Result<(), ApiError> {
        let author = parse_author(author)?;
        if self.catalog.run(move |c| c.unfollow(&author)).await? {
            Ok(())
        } else {
            Err(ApiError::NotFound(format!("not following {author}")))
        }
    }

    /// Followed authors.
    pub async fn following(&self) -> Result<Vec<FollowView>, ApiError> {
        let views = self
            .catalog
            .run(|catalog| {
                catalog
                    .following()?
                    .into_iter()
                    .map(|f| {
                        Ok(FollowView {
                            author: f.author.to_string(),
                            since: f.added_at,
                            records: catalog.count_author_records(&f.author)?,
                            feed_seq: f.last_seq,
                            checked_at: f.checked_at,
                        })
                    })
                    .collect()
            })
            .await?;
        Ok(views)
    }

    /// Block an author: hide them everywhere, purge their records and the data only they referred to from this node
    /// (data the user saved elsewhere with `get -o` is left in place, only no longer seeded), and refuse their
    /// records from peers from now on.
    pub async fn block(&self, author: &str) -> Result<BlockedView, ApiError> {
        let author = parse_author(author)?;
        if self.identities.is_own(&author) {
            return Err(ApiError::Invalid(
                "that is one of this node's own author ids".into(),
            ));
        }
        let purge = self
            .catalog
            .run(move |c| c.block_author(&author, crate::clock::unix_now()))
            .await?;
        let data_root = self.dir.root().to_path_buf();
        let mut removed_data = 0;
        for row in &purge.orphaned_torrents {
            // Data inside the data directory goes; a copy the user saved elsewhere with `get -o` stays.
            let inside = row.output_dir.starts_with(&data_root);
            self.cache.forget(&row.infohash);
            self.replication.forget(&row.infohash);
            if let Err(error) = self.engine.remove(&row.infohash.0, inside).await {
                tracing::debug!(%error, infohash = %row.infohash, "engine had nothing to remove");
            }
            if inside {
                let dir = row.output_dir.clone();
                let _ = self
                    .tasks
                    .spawn_blocking("remove a blocked author's data", move || {
                        std::fs::remove_dir_all(&dir)
                    })
                    .await;
                removed_data += 1;
            }
        }
        tracing::info!(
            records = purge.records,
            data = removed_data,
            "author blocked"
        );
        tracing::debug!(%author, records = purge.records, data = removed_data, "author blocked");
        Ok(BlockedView {
            author: author.to_string(),
            blocked_at: crate::clock::unix_now(),
            purged_records: purge.records,
            purged_data: removed_data,
        })
    }

    /// Lift a block (the author's records come back through sync).
    pub async fn unblock(&self, author: &str) -> Result<(), ApiError> {
        let author = parse_author(author)?;
        if self.catalog.run(move |c| c.unblock_author(&author)).await? {
            Ok(())
        } else {
            Err(ApiError::NotFound(format!("{author} is not blocked")))
        }
    }

    /// Blocked authors.
    pub async fn blocked(&self) -> Result<Vec<BlockedView>, ApiError> {
        Ok(self
            .catalog
            .run(|c| c.blocked_authors())
            .await?
            .into_iter()
            .map(|b| BlockedView {
                author: b.author.to_string(),
                blocked_at: b.blocked_at,
                purged_records: 0,
                purged_data: 0,
            })
            .collect())
    }

    /// Known and connected kolokol peers.
    pub async fn peers(&self) -> Result<Vec<PeerView>, ApiError> {
        crate::peering::peer_views(&self.peering).await
    }

    /// The local proxy, the bridges this node uses, and its own bridge.
    pub fn proxy(&self) -> crate::proxy::ProxyApi {
        crate::proxy::ProxyApi::new(self.proxy.clone())
    }
}

fn parse_author(text: &str) -> Result<kolokol_core::keys::AuthorId, ApiError> {
    text.trim()
        .parse()
        .map_err(|_| ApiError::Invalid(format!("{text:?} is not an author id (64 hex characters)")))
}
