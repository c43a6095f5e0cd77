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

use std::path::PathBuf;
use std::sync::Arc;

use kolokol_core::record::InfoHash;
use kolokol_store::{TorrentRow, TorrentState};
use kolokol_transfer::Engine;
use serde::{Deserialize, Serialize};

use crate::admission::Admission;
use crate::api::Api;
use crate::catalog::CatalogService;
use crate::data_dir::DataPaths;
use crate::discovery::Discovery;
use crate::error::ApiError;
use crate::fetch::Fetcher;
use crate::tasks::Tasks;

mod export;
mod import;

/// What exporting and importing bundles use: the catalog read and written, admission (imported records pass the same
/// rules as records from peers), the engine and the content folders, and the drivers that seed and announce what an
/// import brought. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Bundler {
    pub tasks: Tasks,
    pub catalog: Arc<CatalogService>,
    pub admission: Arc<Admission>,
    pub engine: Arc<Engine>,
    pub dir: DataPaths,
    pub network: String,
    pub fetcher: Fetcher,
    pub discovery: Discovery,
}

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
    /// The bundle driver, made of this API's handles.
    fn bundler(&self) -> Bundler {
        Bundler {
            tasks: self.tasks.clone(),
            catalog: self.catalog.clone(),
            admission: self.admission.clone(),
            engine: self.engine.clone(),
            dir: self.dir.clone(),
            network: self.network.clone(),
            fetcher: self.fetcher.clone(),
            discovery: self.discovery.clone(),
        }
    }

    /// Write a bundle of records and their data to `request.out` (see the module documentation for what is
    /// selected).
    pub async fn bundle_export(
        &self,
        request: BundleExportRequest,
    ) -> Result<BundleExportView, ApiError> {
        let bundler = self.bundler();
        let tasks = bundler.tasks.clone();
        tasks
            .spawn_blocking("bundle export", move || export::export(&bundler, &request))
            .await
            .map_err(|e| ApiError::internal("export task", e))?
    }

    /// Read a bundle, verify every record and piece, and store what is good (see the module documentation).
    pub async fn bundle_import(
        &self,
        request: BundleImportRequest,
    ) -> Result<BundleImportView, ApiError> {
        let bundler = self.bundler();
        let tasks = bundler.tasks.clone();
        let (view, starts) = tasks
            .spawn_blocking("bundle import", move || {
                import::import(&bundler, &request.path)
            })
            .await
            .map_err(|e| ApiError::internal("import task", e))??;
        let bundler = self.bundler();
        for start in starts {
            import::start_torrent(&bundler, start).await;
        }
        Ok(view)
    }
}

// ---- export ----

/// The data of `infohash`, if this node holds it complete: (torrent, folder holding the torrent's name).
fn complete_data(bundler: &Bundler, infohash: &InfoHash) -> Result<Option<TorrentRow>, ApiError> {
    let infohash = *infohash;
    Ok(bundler
        .catalog
        .run_blocking(move |c| c.get_torrent(&infohash))?
        .filter(|row| row.state == TorrentState::Complete && row.torrent.is_some()))
}
