//! What the user can ask about held data: how many known peers hold a full copy of a publication (`status ID`), and
//! pins that keep a publication's data whatever the quota.

use kolokol_core::record::{RecordId, SignedRecord};
use kolokol_store::TorrentState;
use serde::{Deserialize, Serialize};

use crate::api::Api;
use crate::error::ApiError;

/// Replication state of one publication, as `kolokol status ID` prints it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplicaView {
    pub id: String,
    pub infohash: String,
    /// Known peers that told this node they hold every piece.
    pub full_copies: usize,
    /// Their node ids.
    pub holders: Vec<String>,
    /// False while a publication of this node waits for a confirmed replica before it is announced.
    pub announced: bool,
    /// This node's own copy: "complete", "downloading 42%", or none.
    pub local: Option<String>,
    pub pinned: bool,
}

/// Whether this node advertises what the reader watched (`GET`/`POST /api/v1/sharing`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SharingView {
    /// On: what the reader downloads, streams or imports is announced in the DHT and listed to peers, like what
    /// this node publishes, replicates or mirrors. Off: it is only served to peers that ask for it.
    pub share_watched: bool,
}

/// Answer to `pin` / `unpin`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PinView {
    pub id: String,
    pub infohash: String,
    pub pinned: bool,
}

impl Api {
    async fn record(&self, id: &str) -> Result<SignedRecord, ApiError> {
        let id: RecordId = id.trim().parse().map_err(|_| {
            ApiError::Invalid(format!(
                "{id:?} is not a publication id (64 hex characters)"
            ))
        })?;
        self.catalog
            .run(move |c| c.get_record(&id))
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("unknown publication {id}")))
    }

    /// How many known peers hold a full copy of a publication, and this node's own state of it.
    pub async fn replicas(&self, id: &str) -> Result<ReplicaView, ApiError> {
        let record = self.record(id).await?;
        let infohash = record.body().infohash;
        let holders = self.replication.holders(&infohash);
        let (row, entry) = self
            .catalog
            .run(move |c| Ok((c.get_torrent(&infohash)?, c.cache_entry(&infohash)?)))
            .await?;
        let local = match row {
            Some(row) if row.state == TorrentState::Complete => Some("complete".to_owned()),
            Some(_) => Some(match self.engine.progress(&infohash.0) {
                Some(p) if p.total_bytes > 0 => {
                    format!("downloading {}%", p.have_bytes * 100 / p.total_bytes)
                }
                _ => "downloading".to_owned(),
            }),
            None => None,
        };
        let pinned = entry.is_some_and(|e| e.pinned);
        Ok(ReplicaView {
            id: record.id().to_string(),
            infohash: infohash.to_string(),
            full_copies: holders.len(),
            holders: holders.iter().map(ToString::to_string).collect(),
            announced: !self.replication.is_held_back(&record.id()),
            local,
            pinned,
        })
    }

    /// Whether this node advertises what the reader watched.
    pub fn sharing(&self) -> SharingView {
        SharingView {
            share_watched: self.cache.shares_watched(),
        }
    }

    /// The reader's choice (the web UI's setting): applied now and kept for later starts unless `up` is given
    /// `--share-watched`.
    pub async fn set_sharing(&self, share_watched: bool) -> Result<SharingView, ApiError> {
        self.cache
            .choose_sharing(&self.catalog, share_watched)
            .await?;
        Ok(self.sharing())
    }

    /// Keep a publication's data whatever the quota; fetch it if this node does not hold it yet.
    pub async fn pin(&self, id: &str) -> Result<PinView, ApiError> {
        let record = self.record(id).await?;
        let infohash = record.body().infohash;
        let held = self
            .catalog
            .run(move |c| {
                c.set_pinned(&infohash, true)?;
                Ok(c.get_torrent(&infohash)?.is_some())
            })
            .await?;
        self.cache.pinned(&infohash, true);
        if !held {
            // Pinned for the reader: theirs, like what they watch.
            crate::fetch::start_download(&self.fetcher, &record, Vec::new(), true).await?;
        }
        Ok(PinView {
            id: record.id().to_string(),
            infohash: infohash.to_string(),
            pinned: true,
        })
    }

    /// Let the quota evict a publication's data again.
    pub async fn unpin(&self, id: &str) -> Result<PinView, ApiError> {
        let record = self.record(id).await?;
        let infohash = record.body().infohash;
        self.catalog
            .run(move |c| c.set_pinned(&infohash, false))
            .await?;
        self.cache.pinned(&infohash, false);
        Ok(PinView {
            id: record.id().to_string(),
            infohash: infohash.to_string(),
            pinned: false,
        })
    }
}
