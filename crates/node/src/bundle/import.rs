//! Import: the bundle streamed into staging and verified, then committed publication by publication (see the
//! module above for what each case stores).

use std::collections::HashSet;
use std::fs;
use std::io::BufReader;
use std::path::Path;

use kolokol_bundle::{DataOutcome, ReadOptions, SkipReason, StagedPublication};
use kolokol_core::record::{RecordId, SignedRecord, ValidationContext};
use kolokol_store::{TorrentRow, TorrentState};

use super::{BundleImportView, BundleItemView, Bundler, DamagedFileView, complete_data};
use crate::admission::Refusal;
use crate::clock::unix_now;
use crate::error::ApiError;

/// A torrent to hand to the engine once the blocking part is done.
pub(super) struct Start {
    row: TorrentRow,
    /// A download of the same torrent that the imported data replaces: stopped first, and its folder removed if
    /// it is inside the data directory.
    replaces: Option<TorrentRow>,
}

pub(super) fn import(
    bundler: &Bundler,
    path: &Path,
) -> Result<(BundleImportView, Vec<Start>), ApiError> {
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
    let staging = bundler
        .dir
        .content_dir()
        .join(format!(".staging-bundle-{:016x}", rand::random::<u64>()));
    fs::create_dir_all(&staging)
        .map_err(|e| ApiError::internal("creating the staging folder", e))?;
    let result = read_and_commit(bundler, path, file, &staging);
    // Whatever happened, the staging folder is gone afterwards (what was committed was renamed out of it).
    let _ = fs::remove_dir_all(&staging);
    result
}

fn read_and_commit(
    bundler: &Bundler,
    path: &Path,
    file: fs::File,
    staging: &Path,
) -> Result<(BundleImportView, Vec<Start>), ApiError> {
    let mut wanted = HashSet::new();
    let mut want_data = |record: &SignedRecord| {
        let infohash = record.body().infohash;
        admissible(bundler, record).is_ok()
            && !complete_data(bundler, &infohash).is_ok_and(|row| row.is_some())
            && wanted.insert(infohash)
    };
    let contents = kolokol_bundle::read_bundle(
        BufReader::with_capacity(1 << 20, file),
        staging,
        ReadOptions {
            validation: ValidationContext {
                network: bundler.network.clone(),
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
        let item = commit(bundler, publication, &mut view, &mut starts)?;
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
fn admissible(bundler: &Bundler, record: &SignedRecord) -> Result<(), Refusal> {
    let rules = bundler.admission.rules(false);
    let record = record.clone();
    bundler
        .catalog
        .run_blocking(move |c| Ok(crate::admission::admit(c, rules, &record, unix_now())))
        .unwrap_or_else(|error| {
            tracing::warn!(%error, "cannot check a bundle record's admission; refused");
            Err(Refusal::Unchecked)
        })
}

fn commit(
    bundler: &Bundler,
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
            bundler.admission.invalid();
            view.refused_records += 1;
            item.reason = Some(error.to_string());
            return Ok(item);
        }
    };
    item.title = Some(record.body().title.clone());
    if let Err(refusal) = admissible(bundler, &record) {
        bundler.admission.refused(refusal);
        view.refused_records += 1;
        item.reason = Some(refusal_text(refusal).into());
        return Ok(item);
    }
    let infohash = record.body().infohash;
    let now = unix_now();
    let known = bundler
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
            let existing = bundler
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
                    ("held", insert(bundler, &record, now)?)
                }
                // A download is already running and our copy is incomplete: let that download finish.
                Some(_) if !damaged.is_empty() => ("downloading", insert(bundler, &record, now)?),
                existing => {
                    let complete = damaged.is_empty();
                    let target = if complete {
                        bundler.dir.content_dir()
                    } else {
                        bundler.dir.downloads_dir()
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
                    let inserted = bundler
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
            ("refused", insert(bundler, &record, now)?)
        }
        DataOutcome::Skipped(_) => {
            let held = complete_data(bundler, &infohash)?.is_some();
            (
                if held { "held" } else { "none" },
                insert(bundler, &record, now)?,
            )
        }
        DataOutcome::NotInBundle => {
            let held = complete_data(bundler, &infohash)?.is_some();
            (
                if held { "held" } else { "none" },
                insert(bundler, &record, now)?,
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

fn insert(bundler: &Bundler, record: &SignedRecord, now: u64) -> Result<bool, ApiError> {
    let record = record.clone();
    Ok(bundler
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
pub(super) async fn start_torrent(bundler: &Bundler, start: Start) {
    let infohash = start.row.infohash;
    if let Some(old) = &start.replaces {
        let inside = old.output_dir.starts_with(bundler.dir.downloads_dir());
        if let Err(error) = bundler.engine.remove(&infohash.0, inside).await {
            tracing::debug!(%error, %infohash, "no running download to replace");
        }
        if inside && old.output_dir != start.row.output_dir {
            let _ = fs::remove_dir_all(&old.output_dir);
        }
    }
    if let Err(error) = crate::fetch::resume(&bundler.fetcher, &start.row, &[]).await {
        // The record and the data are stored; seeding is retried at the next start, like after a publish.
        tracing::warn!(%error, "cannot start the imported torrent");
        tracing::debug!(%error, %infohash, "cannot start the imported torrent");
        return;
    }
    if start.row.state == TorrentState::Complete {
        crate::discovery::announce_torrent(&bundler.discovery, infohash).await;
    }
}
