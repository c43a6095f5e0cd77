//! Publications as .torrent files: write one out (`kolokol torrent ID`, the API, the publication page), and download
//! from one (`kolokol get FILE.torrent`).
//!
//! A .torrent written here is `d4:info<info>e`: the info dictionary whose SHA-1 is the record's info-hash, byte for
//! byte, and nothing else (no tracker, comment, `created by` or `creation date`, so nothing names kolokol or the
//! machine). It does name the publication's files and sizes, as the record does.

use std::path::PathBuf;

use kolokol_core::record::{InfoHash, RecordId};
use kolokol_transfer::metainfo::{MAX_TORRENT_BYTES, minimal_torrent};

use crate::api::Api;
use crate::error::ApiError;
use crate::fetch::Target;
use crate::views::TransferView;

/// Largest .torrent file `get` takes (and the HTTP API reads).
pub const MAX_TORRENT_FILE_BYTES: usize = MAX_TORRENT_BYTES;

/// A publication's .torrent file.
#[derive(Debug, Clone)]
pub struct TorrentFile {
    /// The torrent's name (the single file, or the folder of the files), for a file name to save it under.
    pub name: String,
    pub infohash: String,
    /// The .torrent file's bytes.
    pub bytes: Vec<u8>,
}

impl Api {
    /// The .torrent file of a publication in the catalog. The node must know the metadata: it does for what it
    /// published or downloaded (or is downloading, once peers sent the metadata).
    pub async fn torrent_file(&self, id: &str) -> Result<TorrentFile, ApiError> {
        let id: RecordId = id.trim().parse().map_err(|_| {
            ApiError::Invalid(format!(
                "{id:?} is not a publication id (64 hex characters)"
            ))
        })?;
        let (record, row) = self
            .catalog
            .run(move |c| {
                let record = c.get_record(&id)?;
                let row = match &record {
                    Some(record) => c.get_torrent(&record.body().infohash)?,
                    None => None,
                };
                Ok((record, row))
            })
            .await?;
        let record = record.ok_or_else(|| {
            ApiError::NotFound(format!(
                "unknown publication {id}: it is not in this node's catalog"
            ))
        })?;
        let infohash = record.body().infohash;
        let stored = row
            .and_then(|row| row.torrent)
            .or_else(|| self.engine.torrent_bytes(&infohash.0))
            .ok_or_else(|| {
                ApiError::NotFound(format!(
                    "this node does not have the metadata of publication {id} (it has not published or downloaded \
                     it); `kolokol get {id}` fetches it from peers, then the .torrent file can be written"
                ))
            })?;
        let torrent = minimal_torrent(&stored)
            .map_err(|e| ApiError::internal("reading the stored metainfo", e))?;
        // The record's signature covers the info-hash: never hand out a file that does not hash to it.
        if torrent.infohash != infohash.0 {
            return Err(ApiError::Internal(format!(
                "the stored metainfo of {id} has info-hash {} but the record says {infohash}",
                InfoHash(torrent.infohash)
            )));
        }
        Ok(TorrentFile {
            name: torrent.name,
            infohash: infohash.to_string(),
            bytes: torrent.bytes,
        })
    }

    /// Start (or join) the download of a .torrent file's content, like [`Api::get`]. The file is checked first
    /// (size, bencode, piece layout, safe file names); a bad one changes nothing. When a publication in the catalog
    /// has the file's info-hash, the transfer's `id` names it; otherwise the content is downloaded without any record
    /// vouching for it, as from a magnet link.
    pub async fn get_torrent(
        &self,
        torrent: &[u8],
        out_dir: Option<PathBuf>,
    ) -> Result<TransferView, ApiError> {
        if torrent.len() > MAX_TORRENT_FILE_BYTES {
            return Err(ApiError::Invalid(format!(
                "the .torrent file has {} bytes, more than the {MAX_TORRENT_FILE_BYTES} allowed",
                torrent.len()
            )));
        }
        let minimal = minimal_torrent(torrent)
            .map_err(|e| ApiError::Invalid(format!("not a usable .torrent file: {e}")))?;
        crate::fetch::start_get_target(&self.fetcher, Target::Torrent(minimal), out_dir).await
    }
}
