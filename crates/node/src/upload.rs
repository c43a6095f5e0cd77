//! What the web UI needs beyond the CLI's calls: uploads from a browser (streamed into the data directory by the
//! HTTP layer, published through the ordinary publish path, then deleted), the list of every transfer, a record's
//! thumbnail bytes, and the disk space the node uses.
//!
//! Uploads live in `<data dir>/uploads/<32 hex>/<file name>`. Each upload is capped at [`MAX_UPLOAD_BYTES`] by the
//! HTTP layer; at most [`MAX_PENDING_UPLOADS`] wait at once, and uploads older than [`STALE_UPLOAD_SECS`] (a browser
//! that went away between upload and publish) are removed when the next one starts.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use kolokol_core::record::{RecordId, Thumbnail};
use rand::RngCore;

use crate::api::Api;
use crate::error::ApiError;
use crate::publish::PublishRequest;
use crate::views::{PublishedView, TransferView};

/// Largest file one upload may carry (8 GiB): a publication is meant to be a video or an article, and the upload
/// is copied once more by publishing, so the disk must hold it twice for a moment.
pub const MAX_UPLOAD_BYTES: u64 = 8 << 30;
/// Uploads that may wait for their publish at once.
pub const MAX_PENDING_UPLOADS: usize = 64;
/// An upload not published within a day is abandoned.
pub const STALE_UPLOAD_SECS: u64 = 24 * 3600;
/// Longest upload file name, in bytes.
const MAX_NAME_BYTES: usize = 200;
/// The storage walk stops counting after this many entries (a bound on the work one page view can cause).
const MAX_STORAGE_ENTRIES: usize = 200_000;

/// A file being uploaded: the HTTP layer writes the request body into `file`.
pub struct Upload {
    /// 32 hex characters; names the upload in [`UploadPublishRequest`].
    pub id: String,
    pub path: PathBuf,
    pub file: tokio::fs::File,
}

/// Publish uploaded files: like [`PublishRequest`] with upload ids instead of paths.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct UploadPublishRequest {
    /// Ids of finished uploads; they become the publication's files.
    pub uploads: Vec<String>,
    /// Id of an uploaded image to use as the record's thumbnail (its own upload, not one of the files).
    #[serde(default)]
    pub thumbnail: Option<String>,
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub lang: Option<String>,
    /// As [`PublishRequest::allow_metadata`]: the user ticked "publish these files with their metadata".
    #[serde(default)]
    pub allow_metadata: bool,
    /// As [`PublishRequest::keep_names`].
    #[serde(default)]
    pub keep_names: bool,
    /// As [`PublishRequest::identity`].
    #[serde(default)]
    pub identity: Option<String>,
}

/// Disk space of the data directory.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StorageView {
    /// Bytes in the data directory's files (a lower bound when the walk hit its entry cap).
    pub used_bytes: u64,
    /// Bytes free on its file system, when the system says.
    pub free_bytes: Option<u64>,
}

impl Api {
    /// Start an upload of a file called `name` (a plain file name, no folders).
    pub async fn upload_create(&self, name: &str) -> Result<Upload, ApiError> {
        let name = check_upload_name(name)?;
        let root = self.uploads_dir();
        tokio::fs::create_dir_all(&root)
            .await
            .map_err(|e| ApiError::internal("creating the uploads folder", e))?;
        let pending = {
            let root = root.clone();
            self.tasks
                .spawn_blocking("uploads cleanup", move || remove_stale_uploads(&root))
                .await
                .map_err(|e| ApiError::internal("uploads cleanup", e))?
        };
        if pending >= MAX_PENDING_UPLOADS {
            return Err(ApiError::Invalid(format!(
                "too many unpublished uploads (at most {MAX_PENDING_UPLOADS}); publish or wait for them to expire"
            )));
        }
        let id = random_id();
        let dir = root.join(&id);
        tokio::fs::create_dir(&dir)
            .await
            .map_err(|e| ApiError::internal("creating the upload folder", e))?;
        let path = dir.join(name);
        let file = tokio::fs::File::create(&path)
            .await
            .map_err(|e| ApiError::internal("creating the upload file", e))?;
        Ok(Upload { id, path, file })
    }

    /// Delete an upload (a failed or abandoned one). Unknown ids are ignored.
    pub async fn upload_discard(&self, id: &str) {
        if check_upload_id(id).is_ok() {
            let _ = tokio::fs::remove_dir_all(self.uploads_dir().join(id)).await;
        }
    }

    /// Publish finished uploads through the ordinary publish path, then delete them (whether or not it succeeded:
    /// publishing keeps its own copy, and a failed publish must not leave gigabytes behind).
    pub async fn publish_uploads(
        &self,
        request: UploadPublishRequest,
    ) -> Result<PublishedView, ApiError> {
        let result = self.publish_uploads_inner(&request).await;
        for id in request.uploads.iter().chain(request.thumbnail.iter()) {
            self.upload_discard(id).await;
        }
        result
    }

    async fn publish_uploads_inner(
        &self,
        request: &UploadPublishRequest,
    ) -> Result<PublishedView, ApiError> {
        if request.uploads.is_empty() {
            return Err(ApiError::Invalid(
                "nothing to publish: upload a file".into(),
            ));
        }
        if request.uploads.len() > kolokol_core::record::MAX_FILES {
            return Err(ApiError::Invalid("too many files".into()));
        }
        let mut paths = Vec::with_capacity(request.uploads.len());
        for id in &request.uploads {
            paths.push(self.upload_path(id)?);
        }
        let thumbnail = match &request.thumbnail {
            Some(id) => Some(self.upload_path(id)?),
            None => None,
        };
        self.publish(PublishRequest {
            paths,
            title: request.title.clone(),
            description: request.description.clone(),
            tags: request.tags.clone(),
            lang: request.lang.clone(),
            keep_metadata: false,
            allow_metadata: request.allow_metadata,
            keep_names: request.keep_names,
            thumbnail,
            identity: request.identity.clone(),
        })
        .await
    }

    /// The one file of a finished upload.
    fn upload_path(&self, id: &str) -> Result<PathBuf, ApiError> {
        check_upload_id(id)?;
        let dir = self.uploads_dir().join(id);
        let unknown = || ApiError::NotFound(format!("no upload {id}"));
        let mut entries = std::fs::read_dir(&dir).map_err(|_| unknown())?;
        let entry = entries.next().ok_or_else(unknown)?.map_err(|_| unknown())?;
        Ok(entry.path())
    }

    fn uploads_dir(&self) -> PathBuf {
        self.dir.root().join("uploads")
    }

    /// Every download and seed this node knows, newest first.
    pub async fn transfers(&self) -> Result<Vec<TransferView>, ApiError> {
        let mut rows = self.catalog.run(|c| c.list_torrents()).await?;
        rows.sort_by_key(|r| std::cmp::Reverse(r.added_at));
        let mut views = Vec::with_capacity(rows.len());
        for row in &rows {
            views.push(
                crate::views::transfer_view(
                    &self.catalog,
                    &self.engine,
                    &self.cache,
                    &row.infohash,
                    None,
                )
                .await?,
            );
        }
        Ok(views)
    }

    /// A record's thumbnail image, if it has one.
    pub async fn thumbnail(&self, id: &str) -> Result<Option<Thumbnail>, ApiError> {
        let id: RecordId = id
            .trim()
            .parse()
            .map_err(|_| ApiError::Invalid(format!("{id:?} is not a publication id")))?;
        let record = self
            .catalog
            .run(move |c| c.get_record(&id))
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("unknown publication {id}")))?;
        Ok(record.body().thumbnail.clone())
    }

    /// Space used by the data directory and free on its disk.
    pub async fn storage(&self) -> StorageView {
        let root = self.dir.root().to_path_buf();
        self.tasks
            .spawn_blocking("storage use", move || StorageView {
                used_bytes: used_bytes(&root),
                free_bytes: fs4::available_space(&root).ok(),
            })
            .await
            .unwrap_or(StorageView {
                used_bytes: 0,
                free_bytes: None,
            })
    }
}

/// A plain file name: not empty, no folders, no control characters, not hidden, bounded.
fn check_upload_name(name: &str) -> Result<&str, ApiError> {
    let bad = |why: &str| ApiError::Invalid(format!("bad upload file name {name:?}: {why}"));
    if name.is_empty() || name.trim().is_empty() {
        return Err(bad("empty"));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(bad("too long"));
    }
    if name.contains(['/', '\\']) || name.chars().any(char::is_control) {
        return Err(bad(
            "a file name may not hold slashes or control characters",
        ));
    }
    if name.starts_with('.') {
        return Err(bad("it may not start with a dot"));
    }
    Ok(name)
}

fn check_upload_id(id: &str) -> Result<(), ApiError> {
    if id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(ApiError::Invalid(format!("{id:?} is not an upload id")))
    }
}

fn random_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Remove uploads older than a day; returns how many remain.
fn remove_stale_uploads(root: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(root) else {
        return 0;
    };
    let now = SystemTime::now();
    let mut remaining = 0;
    for entry in entries.flatten() {
        let age = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .unwrap_or(Duration::ZERO);
        if age > Duration::from_secs(STALE_UPLOAD_SECS) {
            let _ = std::fs::remove_dir_all(entry.path());
        } else {
            remaining += 1;
        }
    }
    remaining
}

/// Total size of the files under `root`, not following symbolic links, counting at most a bounded number of
/// entries.
fn used_bytes(root: &Path) -> u64 {
    let mut total = 0u64;
    let mut seen = 0usize;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            seen += 1;
            if seen > MAX_STORAGE_ENTRIES {
                return total;
            }
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                total = total.saturating_add(entry.metadata().map_or(0, |m| m.len()));
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_names_are_plain_file_names() {
        assert!(check_upload_name("clip.webm").is_ok());
        assert!(check_upload_name("Видео 1.mp4").is_ok());
        for bad in [
            "",
            "  ",
            "../x",
            "a/b",
            "a\\b",
            ".hidden",
            "a\nb",
            &"x".repeat(201),
        ] {
            assert!(check_upload_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn upload_ids_are_32_lowercase_hex() {
        assert!(check_upload_id(&random_id()).is_ok());
        assert!(check_upload_id("../../etc").is_err());
        assert!(check_upload_id(&"A".repeat(32)).is_err());
        assert!(check_upload_id(&"a".repeat(31)).is_err());
    }
}
