//! Export: the records picked from the catalog, streamed with their torrents and, when held complete, their data.

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::io::BufWriter;
use std::path::Path;

use kolokol_bundle::BundleWriter;
use kolokol_core::keys::AuthorId;
use kolokol_core::record::{RecordId, SignedRecord};
use kolokol_store::{TorrentRow, TorrentState};

use super::{
    BundleExportRequest, BundleExportView, Bundler, DamagedFileView, MAX_EXPORT_FILTERS,
    complete_data,
};
use crate::error::ApiError;

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

pub(super) fn export(
    bundler: &Bundler,
    request: &BundleExportRequest,
) -> Result<BundleExportView, ApiError> {
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
        let page = bundler
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
            if selection.unfiltered() && complete_data(bundler, &record.body().infohash)?.is_none()
            {
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
    let result = write_bundle(bundler, &selected, &partial).and_then(|view| {
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
    bundler: &Bundler,
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
        let found = bundler.catalog.run_blocking(move |c| {
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
