//! Bundles: signed records and their data in one file, for a USB stick when the network is gone (format in
//! `crates/bundle/FORMAT.md`).
//!
//! Export picks records from the catalog and streams each with its torrent and, when this node holds the data
//! complete, its files. A record whose data is not held complete travels alone (its torrent too, when known) and is
//! listed in the report as `record_only`. With no filter at all, only records whose data is held complete are
//! exported. The file is written beside its destination under a temporary name, synced, then renamed: an
//! interrupted export never leaves a file that looks complete.
//!
//! Import streams the bundle into a staging folder under `content/` while every piece is verified, and commits only
//! once the whole bundle has been read and its trailer matched, so a truncated or altered bundle changes nothing.
//! Commit, per publication:
//! - the record passes the node's one path for records from outside: `validate_record` (in the reader), then
//!   admission (work stamp, blocked author, per-author cap). The hourly rate limit is not applied: it defends
//!   against peers flooding, and here the user chose the file;
//! - every file verified: the data moves to `content/<infohash>` as `publish` lays it out, the record and a
//!   complete torrent row are stored in one transaction, and the node seeds it. A download of the same torrent
//!   in progress is replaced by the verified data;
//! - some file damaged: the record is stored, the damaged files are named in the report and never stored; the
//!   verified files move to `downloads/<infohash>` and the torrent is left to complete from the network like any
//!   `get` (the engine checks what is there and fetches only the missing pieces);
//! - data already held, or no data in the bundle: the record alone. Importing the same bundle twice changes nothing.

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kolokol_bundle::{BundleWriter, DataOutcome, ReadOptions, SkipReason, StagedPublication};
use kolokol_core::keys::AuthorId;
use kolokol_core::record::{InfoHash, RecordId, SignedRecord, ValidationContext};
use kolokol_store::{TorrentRow, TorrentState};
use serde::{Deserialize, Serialize};

use crate::admission::Refusal;
use crate::api::Api;
use crate::clock::unix_now;
use crate::context::Inner;
use crate::error::ApiError;

/// Most ids or authors one export request may name.
pub const MAX_EXPORT_FILTERS: usize = 10_000;

/// What to export.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BundleExportRequest {
    /// Absolute path of the bundle to write on the node's machine; must not exist yet.
    pub out: PathBuf,
    /// Only records by these authors (hex ids).
    #[serde(default)]
    pub authors: Vec<String>,
    /// Only records created at or after this Unix time.
    #[serde(default)]
    pub since: Option<u64>,
    /// Only these records (hex ids).
    #[serde(default)]
    pub ids: Vec<String>,
}

/// What an export wrote.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BundleExportView {
    pub path: PathBuf,
    /// Size of the bundle file.
    pub bytes: u64,
    /// Records in the bundle.
    pub publications: u64,
    /// Records exported with their files.
    pub with_data: u64,
    /// Bytes of file data in the bundle.
    pub data_bytes: u64,
    /// Ids of records exported without data (this node does not hold it complete).
    pub record_only: Vec<String>,
    /// Files that did not match their piece hashes on this node while they were written: an importer will find
    /// them damaged too.
    pub damaged: Vec<DamagedFileView>,
}

/// A file that failed verification.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DamagedFileView {
    /// The publication's record id.
    pub id: String,
    /// The file's path as the record names it.
    pub path: String,
}

/// What to import.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BundleImportRequest {
    /// Absolute path of the bundle on the node's machine.
    pub path: PathBuf,
}

/// What an import did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BundleImportView {
    pub path: PathBuf,
    /// Records in the bundle.
    pub publications: u64,
    /// Records added to the catalog.
    pub new_records: u64,
    /// Records the catalog already held.
    pub known_records: u64,
    /// Records refused (invalid, not enough work, blocked author, author full).
    pub refused_records: u64,
    /// Publications whose verified data was stored complete and is now seeded.
    pub imported_data: u64,
    /// Publications with damaged files: the verified files were kept and the rest is left to the network.
    pub partial_data: u64,
    /// Bytes of verified file data stored.
    pub data_bytes: u64,
    /// Every damaged file, by name.
    pub damaged: Vec<DamagedFileView>,
    /// One entry per record of the bundle, in bundle order.
    pub items: Vec<BundleItemView>,
}

/// One record of an imported bundle.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BundleItemView {
    /// Record id (the SHA-256 of the record bytes, even for a refused record).
    pub id: String,
    pub title: Option<String>,
    /// `new`, `known` or `refused`.
    pub record: String,
    /// Why the record was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `imported` (complete, seeding), `partial` (damaged files; the rest downloads), `held` (this node already
    /// had it), `downloading` (a download of it was already running), `none` (the bundle carried no data),
    /// `refused` (the record was refused, or its torrent is not the record's).
    pub data: String,
    /// Paths of this publication's damaged files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub damaged: Vec<String>,
}

impl Api {
    /// Write a bundle of records and their data to `request.out` (see the module documentation for what is
    /// selected).
    pub async fn bundle_export(
        &self,
        request: BundleExportRequest,
    ) -> Result<BundleExportView, ApiError> {
        let inner = self.inner.clone();
        let tasks = inner.tasks.clone();
        tasks
            .spawn_blocking("bundle export", move || export(&inner, &request))
            .await
            .map_err(|e| ApiError::internal("export task", e))?
    }

    /// Read a bundle, verify every record and piece, and store what is good (see the module documentation).
    pub async fn bundle_import(
        &self,
        request: BundleImportRequest,
    ) -> Result<BundleImportView, ApiError> {
        let inner = self.inner.clone();
        let tasks = inner.tasks.clone();
        let (view, starts) = tasks
            .spawn_blocking("bundle import", move || import(&inner, &request.path))
            .await
            .map_err(|e| ApiError::internal("import task", e))??;
        let inner = self.inner.clone();
        for start in starts {
            start_torrent(&inner, start).await;
        }
        Ok(view)
    }
}

// ---- export ----

struct Selection {
    ids: Option<BTreeSet<RecordId>>,
    authors: Option<BTreeSet<AuthorId>>,
    since: Option<u64>,
}

impl Selection {
    fn parse(request: &BundleExportRequest) -> Result<Selection, ApiError> {
        if request.ids.len() > MAX_EXPORT_FILTERS || request.authors.len() > MAX_EXPORT_FILTERS {
            return Err(ApiError::Invalid(format!(
                "at most {MAX_EXPORT_FILTERS} ids and {MAX_EXPORT_FILTERS} authors per export"
            )));
        }
        let ids = request
            .ids
            .iter()
            .map(|id| {
                id.trim().parse::<RecordId>().map_err(|_| {
                    ApiError::Invalid(format!(
                        "{id:?} is not a publication id (64 hex characters)"
                    ))
                })
            })
            .collect::<Result<BTreeSet<_>, _>>()?;
        let authors = request
            .authors
            .iter()
            .map(|a| {
                a.trim().parse::<AuthorId>().map_err(|_| {
                    ApiError::Invalid(format!("{a:?} is not an author id (64 hex characters)"))
                })
            })
            .collect::<Result<BTreeSet<_>, _>>()?;
        Ok(Selection {
            ids: (!ids.is_empty()).then_some(ids),
            authors: (!authors.is_empty()).then_some(authors),
            since: request.since,
        })
    }

    fn unfiltered(&self) -> bool {
        self.ids.is_none() && self.authors.is_none() && self.since.is_none()
    }

    fn matches(&self, record: &SignedRecord) -> bool {
        let body = record.body();
        self.ids
            .as_ref()
            .is_none_or(|ids| ids.contains(&record.id()))
            && self
                .authors
                .as_ref()
                .is_none_or(|authors| authors.contains(&body.author))
            && self.since.is_none_or(|since| body.created >= since)
    }
}

/// The data of `infohash`, if this node holds it complete: (torrent, folder holding the torrent's name).
fn complete_data(inner: &Inner, infohash: &InfoHash) -> Result<Option<TorrentRow>, ApiError> {
    let infohash = *infohash;
    Ok(inner
        .catalog
        .run_blocking(move |c| c.get_torrent(&infohash))?
        .filter(|row| row.state == TorrentState::Complete && row.torrent.is_some()))
}

fn export(inner: &Inner, request: &BundleExportRequest) -> Result<BundleExportView, ApiError> {
    let selection = Selection::parse(request)?;
    let out = &request.out;
    if !out.is_absolute() {
        return Err(ApiError::Invalid(format!(
            "{} is not an absolute path",
            out.display()
        )));
    }
    if out.exists() {
        return Err(ApiError::Invalid(format!(
            "{} already exists; choose a new file name",
            out.display()
        )));
    }
    let (Some(parent), Some(file_name)) = (out.parent(), out.file_name()) else {
        return Err(ApiError::Invalid(format!(
            "{} is not a file path",
            out.display()
        )));
    };
    if !parent.is_dir() {
        return Err(ApiError::Invalid(format!(
            "{}: no such folder",
            parent.display()
        )));
    }

    // Ids first (newest first, as the catalog lists them), records one at a time afterwards: the catalog lock is
    // held for one page at a time, never across file I/O.
    let mut selected = Vec::new();
    let mut seen = HashSet::new();
    let mut offset = 0u64;
    loop {
        let page = inner
            .catalog
            .run_blocking(move |c| c.list_records(crate::api::MAX_LIST, offset))?;
        if page.records.is_empty() {
            break;
        }
        offset += page.records.len() as u64;
        for record in page.records {
            if !selection.matches(&record) || !seen.insert(record.id()) {
                continue;
            }
            if selection.unfiltered() && complete_data(inner, &record.body().infohash)?.is_none() {
                continue;
            }
            selected.push(record.id());
        }
    }
    if let Some(ids) = &selection.ids
        && let Some(missing) = ids.iter().find(|id| !seen.contains(id))
    {
        return Err(ApiError::NotFound(format!(
            "unknown publication {missing}: it is not in this node's catalog"
        )));
    }
    if selected.is_empty() {
        return Err(ApiError::NotFound(if selection.unfiltered() {
            "nothing to export: this node holds no publication's data complete".into()
        } else {
            "no publication in this node's catalog matches".into()
        }));
    }

    let partial = parent.join(format!(
        ".{}.partial-{:016x}",
        file_name.to_string_lossy(),
        rand::random::<u64>()
    ));
    let result = write_bundle(inner, &selected, &partial).and_then(|view| {
        fs::rename(&partial, out)
            .map_err(|e| ApiError::Invalid(format!("{}: {e}", out.display())))?;
        Ok(BundleExportView {
            path: out.clone(),
            ..view
        })
    });
    if result.is_err() {
        let _ = fs::remove_file(&partial);
    }
    result
}

fn write_bundle(
    inner: &Inner,
    selected: &[RecordId],
    path: &Path,
) -> Result<BundleExportView, ApiError> {
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| ApiError::Invalid(format!("{}: {e}", path.display())))?;
    let bundle_error = |e: kolokol_bundle::BundleError| ApiError::internal("writing the bundle", e);
    let mut writer =
        BundleWriter::new(BufWriter::with_capacity(1 << 20, file)).map_err(bundle_error)?;
    let mut view = BundleExportView {
        path: path.to_path_buf(),
        bytes: 0,
        publications: 0,
        with_data: 0,
        data_bytes: 0,
        record_only: Vec::new(),
        damaged: Vec::new(),
    };
    // A torrent shared by two records travels with its data once.
    let mut data_written = HashSet::new();
    for id in selected {
        let id = *id;
        let found = inner.catalog.run_blocking(move |c| {
            let Some(record) = c.get_record(&id)? else {
                return Ok(None);
            };
            let row = c.get_torrent(&record.body().infohash)?;
            Ok(Some((record, row)))
        })?;
        let Some((record, row)) = found else {
            continue; // removed (blocked) since it was selected
        };
        let infohash = record.body().infohash;
        match row {
            Some(TorrentRow {
                state: TorrentState::Complete,
                torrent: Some(torrent),
                output_dir,
                ..
            }) if !data_written.contains(&infohash) => {
                let checks = writer
                    .add_publication(record.bytes(), &torrent, &output_dir)
                    .map_err(bundle_error)?;
                data_written.insert(infohash);
                view.with_data += 1;
                view.data_bytes += checks.iter().map(|c| c.size).sum::<u64>();
                view.damaged
                    .extend(
                        checks
                            .into_iter()
                            .filter(|c| !c.good)
                            .map(|c| DamagedFileView {
                                id: id.to_string(),
                                path: c.path,
                            }),
                    );
            }
            row => {
                let shared = data_written.contains(&infohash);
                let torrent = row.and_then(|r| r.torrent);
                writer
                    .add_record(record.bytes(), torrent.as_deref())
                    .map_err(bundle_error)?;
                if !shared {
                    view.record_only.push(id.to_string());
                }
            }
        }
        view.publications += 1;
    }
    let out = writer.finish().map_err(bundle_error)?;
    let file = out
        .into_inner()
        .map_err(|e| ApiError::internal("writing the bundle", e.error().to_string()))?;
    // A USB stick pulled right after "done" must hold the whole bundle.
    file.sync_all()
        .map_err(|e| ApiError::internal("writing the bundle", e))?;
    view.bytes = file
        .metadata()
        .map_err(|e| ApiError::internal("writing the bundle", e))?
        .len();
    if !view.damaged.is_empty() {
        tracing::warn!(
            files = view.damaged.len(),
            "exported data that failed verification on this node"
        );
    }
    Ok(view)
}

// ---- import ----

/// A torrent to hand to the engine once the blocking part is done.
struct Start {
    row: TorrentRow,
    /// A download of the same torrent that the imported data replaces: stopped first, and its folder removed if
    /// it is inside the data directory.
    replaces: Option<TorrentRow>,
}

fn import(inner: &Arc<Inner>, path: &Path) -> Result<(BundleImportView, Vec<Start>), ApiError> {
    if !path.is_absolute() {
        return Err(ApiError::Invalid(format!(
            "{} is not an absolute path",
            path.display()
        )));
    }
    let file =
        fs::File::open(path).map_err(|e| ApiError::Invalid(format!("{}: {e}", path.display())))?;
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return Err(ApiError::Invalid(format!(
            "{} is not a file",
            path.display()
        )));
    }
    let staging = inner
        .dir
        .content_dir()
        .join(format!(".staging-bundle-{:016x}", rand::random::<u64>()));
    fs::create_dir_all(&staging)
        .map_err(|e| ApiError::internal("creating the staging folder", e))?;
    let result = read_and_commit(inner, path, file, &staging);
    // Whatever happened, the staging folder is gone afterwards (what was committed was renamed out of it).
    let _ = fs::remove_dir_all(&staging);
    result
}

fn read_and_commit(
    inner: &Arc<Inner>,
    path: &Path,
    file: fs::File,
    staging: &Path,
) -> Result<(BundleImportView, Vec<Start>), ApiError> {
    let mut wanted = HashSet::new();
    let mut want_data = |record: &SignedRecord| {
        let infohash = record.body().infohash;
        admissible(inner, record).is_ok()
            && !complete_data(inner, &infohash).is_ok_and(|row| row.is_some())
            && wanted.insert(infohash)
    };
    let contents = kolokol_bundle::read_bundle(
        BufReader::with_capacity(1 << 20, file),
        staging,
        ReadOptions {
            validation: ValidationContext {
                network: inner.network.clone(),
                now_unix: unix_now(),
            },
            want_data: &mut want_data,
        },
    )
    .map_err(|e| ApiError::Invalid(format!("{}: {e}", path.display())))?;

    let mut view = BundleImportView {
        path: path.to_path_buf(),
        publications: contents.publications.len() as u64,
        ..BundleImportView::default()
    };
    let mut starts = Vec::new();
    for publication in contents.publications {
        let item = commit(inner, publication, &mut view, &mut starts)?;
        view.items.push(item);
    }
    tracing::info!(
        bundle = %path.display(),
        new = view.new_records,
        imported = view.imported_data,
        partial = view.partial_data,
        refused = view.refused_records,
        "bundle imported"
    );
    Ok((view, starts))
}

/// Admission for a bundle's record: as from a peer, except the hourly rate.
fn admissible(inner: &Inner, record: &SignedRecord) -> Result<(), Refusal> {
    let rules = inner.admission.rules(false);
    let record = record.clone();
    inner
        .catalog
        .run_blocking(move |c| Ok(crate::admission::admit(c, rules, &record, unix_now())))
        .unwrap_or_else(|error| {
            tracing::warn!(%error, "cannot check a bundle record's admission; refused");
            Err(Refusal::Unchecked)
        })
}

fn commit(
    inner: &Arc<Inner>,
    publication: StagedPublication,
    view: &mut BundleImportView,
    starts: &mut Vec<Start>,
) -> Result<BundleItemView, ApiError> {
    let id = RecordId::of_signed_bytes(&publication.record_bytes);
    let mut item = BundleItemView {
        id: id.to_string(),
        title: None,
        record: "refused".into(),
        reason: None,
        data: "refused".into(),
        damaged: Vec::new(),
    };
    let record = match publication.record {
        Ok(record) => record,
        Err(error) => {
            inner.admission.invalid();
            view.refused_records += 1;
            item.reason = Some(error.to_string());
            return Ok(item);
        }
    };
    item.title = Some(record.body().title.clone());
    if let Err(refusal) = admissible(inner, &record) {
        inner.admission.refused(refusal);
        view.refused_records += 1;
        item.reason = Some(refusal_text(refusal).into());
        return Ok(item);
    }
    let infohash = record.body().infohash;
    let now = unix_now();
    let known = inner
        .catalog
        .run_blocking(move |c| c.get_record(&id))?
        .is_some();
    let (data, new) = match publication.data {
        DataOutcome::Staged { dir, files } => {
            let damaged: Vec<String> = files
                .iter()
                .filter(|f| !f.good)
                .map(|f| f.path.clone())
                .collect();
            let good_bytes: u64 = files.iter().filter(|f| f.good).map(|f| f.size).sum();
            let (Some(torrent), Some(name)) = (publication.torrent, publication.name) else {
                return Err(ApiError::Internal("staged data without a torrent".into()));
            };
            let existing = inner
                .catalog
                .run_blocking(move |c| c.get_torrent(&infohash))?;
            view.damaged
                .extend(damaged.iter().map(|path| DamagedFileView {
                    id: id.to_string(),
                    path: path.clone(),
                }));
            item.damaged = damaged.clone();
            match existing {
                Some(row) if row.state == TorrentState::Complete => {
                    ("held", insert(inner, &record, now)?)
                }
                // A download is already running and our copy is incomplete: let that download finish.
                Some(_) if !damaged.is_empty() => ("downloading", insert(inner, &record, now)?),
                existing => {
                    let complete = damaged.is_empty();
                    let target = if complete {
                        inner.dir.content_dir()
                    } else {
                        inner.dir.downloads_dir()
                    }
                    .join(infohash.to_string());
                    let row = TorrentRow {
                        infohash,
                        name,
                        torrent: Some(torrent),
                        output_dir: target.clone(),
                        state: if complete {
                            TorrentState::Complete
                        } else {
                            TorrentState::Downloading
                        },
                        added_at: now,
                        // Imported: the reader's, like what they download (advertised only if they share it).
                        watched: true,
                    };
                    place(&dir, &target)?;
                    let (stored, stored_row) = (record.clone(), row.clone());
                    let inserted = inner
                        .catalog
                        .run_blocking(move |c| c.insert_published(&stored, &stored_row, now));
                    if let Err(error) = inserted {
                        let _ = fs::remove_dir_all(&target);
                        return Err(error.into());
                    }
                    view.data_bytes += good_bytes;
                    starts.push(Start {
                        row,
                        replaces: existing,
                    });
                    if complete {
                        view.imported_data += 1;
                        ("imported", !known)
                    } else {
                        view.partial_data += 1;
                        ("partial", !known)
                    }
                }
            }
        }
        DataOutcome::Skipped(SkipReason::TorrentMismatch) => {
            ("refused", insert(inner, &record, now)?)
        }
        DataOutcome::Skipped(_) => {
            let held = complete_data(inner, &infohash)?.is_some();
            (
                if held { "held" } else { "none" },
                insert(inner, &record, now)?,
            )
        }
        DataOutcome::NotInBundle => {
            let held = complete_data(inner, &infohash)?.is_some();
            (
                if held { "held" } else { "none" },
                insert(inner, &record, now)?,
            )
        }
    };
    item.data = data.into();
    if new {
        view.new_records += 1;
        item.record = "new".into();
    } else {
        view.known_records += 1;
        item.record = "known".into();
    }
    Ok(item)
}

fn insert(inner: &Inner, record: &SignedRecord, now: u64) -> Result<bool, ApiError> {
    let record = record.clone();
    Ok(inner
        .catalog
        .run_blocking(move |c| c.insert_record(&record, now))?)
}

/// Move a staged publication folder to `target`. A folder already there is a leftover that no complete torrent row
/// refers to (the caller checked), so it is replaced.
fn place(staged: &Path, target: &Path) -> Result<(), ApiError> {
    if target.exists() {
        fs::remove_dir_all(target)
            .map_err(|e| ApiError::internal("replacing a leftover folder", e))?;
    }
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent).map_err(|e| ApiError::internal("storing the files", e))?;
    }
    fs::rename(staged, target).map_err(|e| ApiError::internal("storing the files", e))
}

fn refusal_text(refusal: Refusal) -> &'static str {
    match refusal {
        Refusal::NotEnoughWork => {
            "its proof-of-work stamp is weaker than this network's difficulty"
        }
        Refusal::Blocked => "its author is blocked on this node",
        Refusal::RateLimited => "its author added too many records this hour",
        Refusal::AuthorFull => "this node holds as many records of its author as it accepts",
        Refusal::Unchecked => "the catalog could not be consulted to check it; try again",
    }
}

/// Seed imported data (or resume a partial one from the network), after stopping a download it replaces.
async fn start_torrent(inner: &Arc<Inner>, start: Start) {
    let infohash = start.row.infohash;
    if let Some(old) = &start.replaces {
        let inside = old.output_dir.starts_with(inner.dir.downloads_dir());
        if let Err(error) = inner.engine.remove(&infohash.0, inside).await {
            tracing::debug!(%error, %infohash, "no running download to replace");
        }
        if inside && old.output_dir != start.row.output_dir {
            let _ = fs::remove_dir_all(&old.output_dir);
        }
    }
    if let Err(error) = crate::fetch::resume(inner, &start.row, &[]).await {
        // The record and the data are stored; seeding is retried at the next start, like after a publish.
        tracing::warn!(%error, "cannot start the imported torrent");
        tracing::debug!(%error, %infohash, "cannot start the imported torrent");
        return;
    }
    if start.row.state == TorrentState::Complete {
        crate::discovery::announce_torrent(inner, infohash).await;
    }
}
