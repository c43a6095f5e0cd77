//! The JSON shapes the API returns (and the CLI prints with `--json`). Documented in docs/cli.md; keep in step.

use std::net::SocketAddr;
use std::path::PathBuf;

use kolokol_core::magnet::Magnet;
use kolokol_core::record::{InfoHash, RecordId, SignedRecord};
use kolokol_transfer::Engine;
use serde::{Deserialize, Serialize};

use crate::catalog::CatalogService;
use crate::error::ApiError;

/// `status`: who and where this node is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusView {
    pub node_id: String,
    pub author_id: String,
    pub network: String,
    pub api_addr: String,
    pub wire_addr: String,
    pub bt_addr: String,
    /// DHT UDP address.
    pub dht_addr: String,
    /// Nodes in the DHT routing table.
    pub dht_nodes: usize,
    /// Whether the node has been reached from outside: another kolokol node connected to it, or the DHT found it
    /// reachable.
    pub reachable: bool,
    pub data_dir: PathBuf,
    pub records: u64,
    pub peers_connected: usize,
    pub peers_known: usize,
    pub transfers: usize,
    /// Records from other nodes refused since start, by reason.
    pub refused: crate::admission::RefusedView,
    pub version: String,
    /// The local SOCKS5/HTTP proxy's address, or `null` when the node runs without one.
    pub proxy_addr: Option<String>,
}

/// `id`: the node's identities.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdView {
    pub node_id: String,
    pub author_id: String,
}

/// One file of a publication.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileView {
    /// Path relative to the download folder; its first component is the torrent's name.
    pub path: String,
    /// The path's last component.
    pub name: String,
    pub size: u64,
    pub mime: String,
    /// The streaming gateway's address of this file (`http://<api>/files/<id>/<index>`; just the path when the API
    /// address is not known).
    pub url: String,
}

/// A publication record, as `list` and `show` print it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordView {
    pub id: String,
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    pub lang: Option<String>,
    pub author: String,
    /// Unix seconds, as signed by the author.
    pub created: u64,
    pub infohash: String,
    pub magnet: String,
    pub size: u64,
    pub files: Vec<FileView>,
}

impl RecordView {
    /// The view with gateway URLs relative to the API (`/files/<id>/<index>`).
    pub fn from_record(record: &SignedRecord) -> RecordView {
        Self::with_origin(record, "")
    }

    /// The view with absolute gateway URLs on the API served at `api_addr`.
    pub fn from_record_at(record: &SignedRecord, api_addr: SocketAddr) -> RecordView {
        Self::with_origin(record, &format!("http://{api_addr}"))
    }

    fn with_origin(record: &SignedRecord, origin: &str) -> RecordView {
        let body = record.body();
        let id = record.id().to_string();
        RecordView {
            id: id.clone(),
            title: body.title.clone(),
            description: body.description.clone(),
            tags: body.tags.clone(),
            lang: body.lang.clone(),
            author: body.author.to_string(),
            created: body.created,
            infohash: body.infohash.to_string(),
            magnet: magnet_of(record).to_uri(),
            size: body
                .files
                .iter()
                .map(|f| f.size)
                .fold(0, u64::saturating_add),
            files: body
                .files
                .iter()
                .enumerate()
                .map(|(index, f)| FileView {
                    path: f.path.clone(),
                    name: file_name(&f.path).to_owned(),
                    size: f.size,
                    mime: f.mime.clone(),
                    url: format!("{origin}/files/{id}/{index}"),
                })
                .collect(),
        }
    }
}

/// The magnet link of a record: its infohash and its torrent's name.
pub fn magnet_of(record: &SignedRecord) -> Magnet {
    let body = record.body();
    Magnet {
        infohash: body.infohash,
        name: body.files.first().map(|f| torrent_name(&f.path).to_owned()),
        peers: Vec::new(),
        trackers: Vec::new(),
    }
}

/// The torrent name is the first component of every file path in a record.
pub fn torrent_name(path: &str) -> &str {
    path.split('/').next().unwrap_or(path)
}

/// `publish`: the new publication.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PublishedView {
    pub id: String,
    pub magnet: String,
    pub infohash: String,
    /// Where the published copy of the data lives in the data directory.
    pub path: PathBuf,
    /// Things the user should know, e.g. files whose type the metadata scrubber does not know (published as
    /// they are).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// False while the publication waits for a peer to confirm a full replica before it is announced.
    #[serde(default)]
    pub announced: bool,
}

/// A download or seed, as `get` follows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TransferView {
    pub infohash: String,
    /// The publication, when the download was started by id (or the infohash matches a known record).
    pub id: Option<String>,
    pub name: Option<String>,
    /// Where the data is (or will be) once complete.
    pub path: Option<PathBuf>,
    /// resolving (waiting for the torrent's metadata from peers), checking, downloading, seeding, paused, failed;
    /// or stopped (known to this node but not running).
    pub state: String,
    pub total_bytes: u64,
    pub have_bytes: u64,
    /// Complete and every piece verified.
    pub finished: bool,
    pub peers: usize,
    pub download_bps: u64,
    pub upload_bps: u64,
    /// The engine's last error: final when `state` is failed, otherwise the last failed attempt (the engine retries).
    pub error: Option<String>,
    /// This node tells the DHT and its peers that it holds this (published, replicated, mirrored, or watched while
    /// sharing what it watches). False: served to peers that ask, announced to nobody.
    #[serde(default)]
    pub shared: bool,
}

/// A blocked author (and, right after `block`, what was purged).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BlockedView {
    pub author: String,
    pub blocked_at: u64,
    /// Records deleted by this block (0 when listing).
    pub purged_records: u64,
    /// Downloads or seeds whose data was deleted from the data directory (0 when listing).
    pub purged_data: u64,
}

/// A followed author.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FollowView {
    pub author: String,
    /// Unix time the follow began.
    pub since: u64,
    /// Records of this author in the catalog.
    pub records: u64,
    /// BEP 44 sequence number of the newest feed head whose records are here.
    pub feed_seq: Option<i64>,
    /// Unix time the feed head was last read.
    pub checked_at: Option<u64>,
}

/// A kolokol peer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerView {
    /// Wire address `host:port`.
    pub addr: String,
    pub node_id: Option<String>,
    pub connected: bool,
    /// `outbound` (we dialled) or `inbound`, while connected.
    pub direction: Option<String>,
    /// The peer's BitTorrent address, learned in its hello.
    pub bt_addr: Option<String>,
    pub added_by_user: bool,
    pub last_seen: Option<u64>,
    pub last_error: Option<String>,
}

/// The last component of a record's '/'-separated path.
pub(crate) fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// What the engine and the catalog know of one torrent.
pub(crate) async fn transfer_view(
    catalog: &CatalogService,
    engine: &Engine,
    cache: &crate::cache::Cache,
    infohash: &InfoHash,
    id: Option<RecordId>,
) -> Result<TransferView, ApiError> {
    let infohash = *infohash;
    let (row, first_id) = catalog
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
    let progress = engine.progress(&infohash.0);
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
        shared: row.as_ref().is_some_and(|r| cache.advertises(r)),
    })
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
