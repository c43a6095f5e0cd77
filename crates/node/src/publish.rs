//! Publishing: a dry run first (see [`crate::publish_plan`]: neutral names, hidden files left out, and a refusal
//! when a file would keep metadata and the user did not allow it), then copy the user's files into the data
//! directory, hash them into a torrent, sign the record, store it, seed it, and tell connected peers.
//!
//! The published bytes are a copy: the user's original files are never touched, and the published data stays
//! intact (and seedable) whatever later happens to the originals.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kolokol_core::keys::Keypair;
use kolokol_core::record::{
    FileEntry, InfoHash, MAX_THUMBNAIL_BYTES, RecordBody, Thumbnail, sign_record,
    sign_record_with_work,
};
use kolokol_store::{TorrentRow, TorrentState};
use kolokol_transfer::Engine;
use rand::RngCore;

use crate::admission::Admission;
use crate::catalog::CatalogService;
use crate::clock::unix_now;
use crate::data_dir::DataPaths;
use crate::error::ApiError;
use crate::identities::Identities;
use crate::publish_plan::{Plan, PlanOptions, PlannedFile, hidden_line, plan, plan_warnings};
use crate::replication::Replicator;
use crate::tasks::Tasks;
use crate::views::{PublishedView, magnet_of};

/// What publishing uses: the author key, the content directory, the engine that hashes and seeds, admission (a
/// publish passes the same rules), and replication (push before announcing). Cheap to clone.
#[derive(Clone)]
pub(crate) struct Publisher {
    pub tasks: Tasks,
    pub catalog: Arc<CatalogService>,
    pub identities: Arc<Identities>,
    pub dir: DataPaths,
    pub engine: Arc<Engine>,
    pub admission: Arc<Admission>,
    pub network: String,
    pub replicator: Replicator,
}

/// Upper bound on the number of files in one publication (the record's own cap).
const MAX_FILES: usize = kolokol_core::record::MAX_FILES;

/// What to publish.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PublishRequest {
    /// Absolute paths of files or directories on the node's machine.
    pub paths: Vec<PathBuf>,
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub lang: Option<String>,
    /// Publish the files exactly as they are, with their metadata. Default: scrubbed (see `kolokol_scrub`).
    #[serde(default)]
    pub keep_metadata: bool,
    /// Publish even files that would keep metadata after scrubbing (unknown formats, HEIC, office documents,
    /// encrypted PDF...). Without it, such a publish is refused before anything is copied or signed, naming the
    /// files and what they keep.
    #[serde(default)]
    pub allow_metadata: bool,
    /// Publish files under their own names (and folders with their structure). Default: neutral names by type and
    /// order (`video.mp4`, `photo-1.jpg`), all files in one folder.
    #[serde(default)]
    pub keep_names: bool,
    /// An image file (JPEG, PNG, WebP or GIF, at most 32 KiB) carried in the record as its thumbnail.
    #[serde(default)]
    pub thumbnail: Option<PathBuf>,
    /// The author identity that signs the record (`kolokol identity list`); default: the identity `default`. An
    /// unknown or locked identity is refused before anything is copied or signed.
    #[serde(default)]
    pub identity: Option<String>,
}

pub(crate) async fn publish(
    publisher: &Publisher,
    request: PublishRequest,
) -> Result<PublishedView, ApiError> {
    // Before anything else: an unknown or locked identity changes nothing.
    let key = publisher.identities.key(request.identity.as_deref())?;
    let sources = check_sources(&request.paths)?;
    let thumbnail = match &request.thumbnail {
        Some(path) => Some(read_thumbnail(path, request.keep_metadata)?),
        None => None,
    };
    // Judge title, description, tags and language before copying anything: a bad title must not cost a 1 GiB copy.
    let mut draft = draft_body(
        publisher,
        &key,
        &request,
        placeholder_files(),
        InfoHash([0; 20]),
    );
    draft.thumbnail = thumbnail.clone();
    sign_record(draft, &key).map_err(|e| ApiError::Invalid(e.to_string()))?;

    // The dry run: reads the files, writes nothing.
    let plan = {
        let sources = sources.clone();
        let options = PlanOptions {
            keep_names: request.keep_names,
            scrub: !request.keep_metadata,
            max_files: MAX_FILES,
        };
        let folder_name = folder_name_for(&request.title);
        publisher
            .tasks
            .spawn_blocking("inspect before publishing", move || {
                plan(&sources, &folder_name, options)
            })
            .await
            .map_err(|e| ApiError::internal("inspection task", e))??
    };
    if !plan.kept.is_empty() && !request.allow_metadata {
        let hidden = (!plan.hidden.is_empty()).then(|| hidden_line(&plan.hidden));
        return Err(ApiError::MetadataKept {
            files: plan.kept,
            hidden,
        });
    }

    let staging = publisher
        .dir
        .content_dir()
        .join(format!(".staging-{}", random_hex()));
    let result = stage_and_publish(publisher, key, &request, plan, &staging, thumbnail).await;
    // Whatever happened, the staging folder is gone afterwards (renamed into place on success).
    let _ = fs::remove_dir_all(&staging);
    result
}

async fn stage_and_publish(
    publisher: &Publisher,
    key: Arc<Keypair>,
    request: &PublishRequest,
    plan: Plan,
    staging: &Path,
    thumbnail: Option<Thumbnail>,
) -> Result<PublishedView, ApiError> {
    let root = staging.join(&plan.root_name);
    let warnings = {
        let root = root.clone();
        let scrub = !request.keep_metadata;
        publisher
            .tasks
            .spawn_blocking("copy for publishing", move || {
                copy_planned(&plan, &root, scrub)?;
                let warnings = plan_warnings(&plan);
                // On disk before anything names it (see `durable`).
                crate::durable::sync_tree_and_parent(&root)
                    .map_err(|e| ApiError::internal("writing the files to disk", e))?;
                Ok::<_, ApiError>(warnings)
            })
            .await
            .map_err(|e| ApiError::internal("copy task", e))??
    };
    let created = publisher
        .engine
        .create_torrent(&root)
        .await
        .map_err(|e| ApiError::internal("hashing the files", e))?;
    let infohash = InfoHash(created.infohash);
    let final_dir = publisher.dir.content_dir().join(infohash.to_string());
    if final_dir.exists() {
        // The same bytes were published before: keep the copy that is already seeding.
        tracing::info!("content already present, reusing it");
        tracing::debug!(%infohash, "content already present, reusing it");
    } else {
        fs::rename(staging, &final_dir).map_err(|e| ApiError::internal("storing the files", e))?;
        crate::durable::sync_dir(&publisher.dir.content_dir())
            .map_err(|e| ApiError::internal("storing the files", e))?;
    }

    // Record paths are relative to the download folder: a folder's files carry the folder's name first.
    let single_file = fs::metadata(final_dir.join(&created.name)).is_ok_and(|m| m.is_file());
    let files = created
        .files
        .iter()
        .map(|(path, size)| {
            let path = if single_file {
                path.clone()
            } else {
                format!("{}/{path}", created.name)
            };
            FileEntry {
                mime: mime_for(&path),
                path,
                size: *size,
            }
        })
        .collect();
    let mut body = draft_body(publisher, &key, request, files, infohash);
    body.thumbnail = thumbnail;
    let record = {
        // The proof-of-work search takes about a second at the default difficulty: off the async threads.
        let bits = publisher.admission.work_bits();
        publisher
            .tasks
            .spawn_blocking("sign with work", move || {
                sign_record_with_work(body, &key, bits)
            })
            .await
            .map_err(|e| ApiError::internal("signing task", e))?
            .map_err(|e| ApiError::Invalid(e.to_string()))?
    };

    let row = TorrentRow {
        infohash,
        name: created.name.clone(),
        torrent: Some(created.torrent.clone()),
        output_dir: final_dir.clone(),
        state: TorrentState::Complete,
        added_at: unix_now(),
        watched: false,
    };
    let (stored, stored_row) = (record.clone(), row.clone());
    publisher
        .catalog
        .run(move |c| c.insert_published(&stored, &stored_row, unix_now()))
        .await?;
    if let Err(error) = publisher.engine.seed(&created.torrent, &final_dir).await {
        // The record is stored; seeding is retried at the next start. Say so rather than fail the publish.
        tracing::warn!(%error, "could not start seeding");
        tracing::debug!(%error, %infohash, "could not start seeding");
    }
    // Announced at once, or only once a peer holds a full replica (publisher push).
    let announced = crate::replication::after_publish(&publisher.replicator, &record).await;
    tracing::info!(announced, "published");
    tracing::debug!(id = %record.id(), %infohash, announced, "published");
    Ok(PublishedView {
        id: record.id().to_string(),
        magnet: magnet_of(&record).to_uri(),
        infohash: infohash.to_string(),
        path: final_dir.join(&created.name),
        warnings,
        announced,
    })
}

fn draft_body(
    publisher: &Publisher,
    key: &Keypair,
    request: &PublishRequest,
    files: Vec<FileEntry>,
    infohash: InfoHash,
) -> RecordBody {
    RecordBody {
        network: publisher.network.clone(),
        author: key.public(),
        created: unix_now(),
        title: request.title.clone(),
        description: request.description.clone(),
        tags: request.tags.clone(),
        lang: request.lang.clone().filter(|l| !l.is_empty()),
        files,
        infohash,
        thumbnail: None,
    }
}

/// Read a thumbnail image, judging its type by its first bytes (never by its name).
fn read_thumbnail(path: &Path, keep_metadata: bool) -> Result<Thumbnail, ApiError> {
    let io = |e: std::io::Error| ApiError::Invalid(format!("thumbnail {}: {e}", path.display()));
    if !path.is_absolute() {
        return Err(ApiError::Invalid(format!(
            "thumbnail {} is not an absolute path",
            path.display()
        )));
    }
    let len = fs::metadata(path).map_err(io)?.len();
    if len > MAX_THUMBNAIL_BYTES as u64 {
        return Err(ApiError::Invalid(format!(
            "thumbnail {} is {len} bytes; a thumbnail holds at most {MAX_THUMBNAIL_BYTES}",
            path.display()
        )));
    }
    let mut bytes = fs::read(path).map_err(io)?;
    if !keep_metadata {
        // A thumbnail cut from a phone photo carries the photo's GPS position just the same.
        let mut clean = Vec::with_capacity(bytes.len());
        kolokol_scrub::scrub(bytes.as_slice(), &mut clean).map_err(|e| {
            ApiError::Invalid(format!(
                "thumbnail {}: cannot remove its metadata ({e})",
                path.display()
            ))
        })?;
        bytes = clean;
    }
    let mime = image_mime(&bytes).ok_or_else(|| {
        ApiError::Invalid(format!(
            "thumbnail {} is not a JPEG, PNG, WebP or GIF image",
            path.display()
        ))
    })?;
    Ok(Thumbnail {
        mime: mime.to_owned(),
        bytes,
    })
}

fn image_mime(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else {
        None
    }
}

fn placeholder_files() -> Vec<FileEntry> {
    vec![FileEntry {
        path: "placeholder".into(),
        size: 0,
        mime: "application/octet-stream".into(),
    }]
}

/// Every source must be an absolute path to an existing regular file or directory.
fn check_sources(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ApiError> {
    if paths.is_empty() {
        return Err(ApiError::Invalid(
            "nothing to publish: give a file or a directory".into(),
        ));
    }
    let mut names = std::collections::BTreeSet::new();
    let mut out = Vec::with_capacity(paths.len());
    for path in paths {
        if !path.is_absolute() {
            return Err(ApiError::Invalid(format!(
                "{} is not an absolute path",
                path.display()
            )));
        }
        let meta = fs::metadata(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                ApiError::Invalid(format!("{}: no such file or directory", path.display()))
            }
            _ => ApiError::Invalid(format!("{}: {e}", path.display())),
        })?;
        if !meta.is_file() && !meta.is_dir() {
            return Err(ApiError::Invalid(format!(
                "{} is neither a file nor a directory",
                path.display()
            )));
        }
        let name = crate::publish_plan::file_name(path)?;
        if !names.insert(name.clone()) {
            return Err(ApiError::Invalid(format!(
                "two paths are both named {name:?}"
            )));
        }
        out.push(path.clone());
    }
    Ok(out)
}

/// The name of a publication's folder when it is not a folder's own: the title, made safe as a file name (the
/// title is what the user typed for everyone to read, so it reveals nothing more).
fn folder_name_for(title: &str) -> String {
    let cleaned: String = title
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.');
    let cleaned: String = cleaned.chars().take(100).collect();
    if cleaned.is_empty() {
        "publication".into()
    } else {
        cleaned
    }
}

/// Copy the planned files into `root` (a file, or a folder of them), scrubbing each unless `scrub` is off.
fn copy_planned(plan: &Plan, root: &Path, scrub: bool) -> Result<(), ApiError> {
    let io = |path: &Path, e: std::io::Error| ApiError::Invalid(format!("{}: {e}", path.display()));
    for file in &plan.files {
        let dest = if plan.single_file {
            root.to_path_buf()
        } else {
            root.join(&file.dest)
        };
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        copy_file(file, &dest, scrub)?;
    }
    Ok(())
}

/// Copy one file; with scrubbing, without its location and device metadata (see kolokol-scrub), never re-encoded.
/// A file of a known type that cannot be parsed is refused rather than published with its metadata: the user can
/// still choose `--keep-metadata`. A file whose kind changed since the dry run is refused too: the user confirmed
/// (or was told nothing about) what the dry run saw, not what the file became.
fn copy_file(file: &PlannedFile, dest: &Path, scrub: bool) -> Result<(), ApiError> {
    let source = &file.source;
    if !scrub || file.keeps_metadata {
        return fs::copy(source, dest)
            .map(|_| ())
            .map_err(|e| ApiError::Invalid(format!("{}: {e}", source.display())));
    }
    match kolokol_scrub::scrub_file(source, dest) {
        Ok(scrubbed) if scrubbed.kind != file.kind => Err(ApiError::Invalid(format!(
            "{}: the file changed while it was being published; publish again",
            source.display()
        ))),
        Ok(scrubbed) => {
            if !scrubbed.removed.is_empty() {
                tracing::info!(file = %source.display(), removed = ?scrubbed.removed, "metadata removed");
            }
            Ok(())
        }
        Err(error) => Err(ApiError::Invalid(format!(
            "{}: cannot remove its metadata ({error}); fix the file or publish with --keep-metadata",
            source.display()
        ))),
    }
}

fn mime_for(path: &str) -> String {
    mime_guess::from_path(path)
        .first()
        .map(|m| m.essence_str().to_owned())
        .filter(|m| m.len() <= 128)
        .unwrap_or_else(|| "application/octet-stream".into())
}

fn random_hex() -> String {
    let mut bytes = [0u8; 8];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Remove staging folders a crash left behind.
pub(crate) fn clean_staging(content_dir: &Path) {
    let Ok(entries) = fs::read_dir(content_dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(".staging-") {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}
