//! Watching while downloading (design decision 6): open one file of a publication as a reader that the HTTP gateway
//! serves with Range requests. The size, name and MIME type come from the signed record; the bytes come from the
//! torrent, fetched from peers as the reader asks for them.

use kolokol_core::record::{FileEntry, RecordId, SignedRecord};

pub use kolokol_transfer::FileStream;
use kolokol_transfer::TransferError;

use crate::api::Api;
use crate::error::ApiError;

/// What the record says of one file of a publication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// Size in bytes, as signed by the author.
    pub size: u64,
    /// MIME type, as signed by the author (`type/subtype`).
    pub mime: String,
    /// The last component of the file's path.
    pub name: String,
}

/// One file of a publication, open for reading (see [`Api::open_file`]).
#[derive(Debug)]
pub struct OpenFile {
    pub size: u64,
    pub mime: String,
    pub name: String,
    /// Reads the file's bytes, waiting for the pieces it reaches. A read that gets nothing for the node's
    /// `stream_timeout` fails with [`std::io::ErrorKind::TimedOut`].
    pub reader: FileStream,
}

impl Api {
    /// The name, size and MIME type of file `index` of a publication, from its record: nothing is fetched.
    pub async fn file_info(&self, record_id: &str, index: usize) -> Result<FileInfo, ApiError> {
        let record = self.record_for_file(record_id).await?;
        let entry = file_entry(&record, index)?;
        Ok(info_of(entry))
    }

    /// Opens file `index` of a publication for reading while it downloads. If the node does not have the
    /// publication's torrent running yet, this starts fetching it the way `get` does (from kolokol peers and the
    /// DHT); the download goes on (and is seeded) after the reader is dropped.
    ///
    /// Errors: `NotFound` for an unknown publication or file; `Unreachable` when the torrent's metadata or the
    /// reader could not be had within the node's `stream_timeout` (no peer has it).
    pub async fn open_file(&self, record_id: &str, index: usize) -> Result<OpenFile, ApiError> {
        let record = self.record_for_file(record_id).await?;
        let entry = file_entry(&record, index)?.clone();
        let infohash = record.body().infohash;
        if self.engine.progress(&infohash.0).is_none() {
            crate::fetch::start_get(&self.fetcher, &record.id().to_string(), None).await?;
        }
        let reader = self
            .engine
            .open_stream_by_path(&infohash.0, &entry.path)
            .await
            .map_err(|error| match error {
                TransferError::TimedOut { .. } => {
                    ApiError::Unreachable(format!("{} is not available now: {error}", entry.path))
                }
                TransferError::NoSuchFile { .. } => ApiError::Internal(format!(
                    "the publication's torrent does not hold {} as its record says: {error}",
                    entry.path
                )),
                other => ApiError::internal("opening the file", other),
            })?;
        if reader.len() != entry.size {
            return Err(ApiError::Internal(format!(
                "{} has {} bytes in the torrent but {} in the signed record",
                entry.path,
                reader.len(),
                entry.size
            )));
        }
        let FileInfo { size, mime, name } = info_of(&entry);
        Ok(OpenFile {
            size,
            mime,
            name,
            reader,
        })
    }

    async fn record_for_file(&self, record_id: &str) -> Result<SignedRecord, ApiError> {
        let id: RecordId = record_id.trim().parse().map_err(|_| {
            ApiError::Invalid(format!(
                "{record_id:?} is not a publication id (64 hex characters)"
            ))
        })?;
        let record = self.catalog.run(move |c| c.get_record(&id)).await?;
        record.ok_or_else(|| {
            ApiError::NotFound(format!(
                "unknown publication {id}: it is not in this node's catalog"
            ))
        })
    }
}

fn file_entry(record: &SignedRecord, index: usize) -> Result<&FileEntry, ApiError> {
    let files = &record.body().files;
    files.get(index).ok_or_else(|| {
        ApiError::NotFound(format!(
            "publication {} has {} file(s); there is no file {index}",
            record.id(),
            files.len()
        ))
    })
}

fn info_of(entry: &FileEntry) -> FileInfo {
    FileInfo {
        size: entry.size,
        mime: entry.mime.clone(),
        name: crate::views::file_name(&entry.path).to_owned(),
    }
}
