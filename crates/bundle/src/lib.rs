//! kolokol-bundle: one file that carries signed publication records and their data, for when the network is gone
//! and a USB stick has to do (design decision 5). The byte format is specified in `FORMAT.md` beside this crate.
//!
//! [`BundleWriter`] writes a bundle to any `Write`; [`read_bundle`] reads one from any `Read`, validates every record
//! with `kolokol_core::record::validate_record`, and writes file data straight into a staging directory while
//! checking it against the torrent's v1 piece hashes. Both stream: file data passes through one 64 KiB buffer, so a
//! 4 GiB video costs no more memory than a photo. What the reader holds until the end (records and torrents) is
//! capped by [`MAX_METADATA_BYTES`], and every length in the file is checked against its cap before anything is
//! allocated.
//!
//! Two kinds of damage are told apart:
//! - **A damaged file** (a piece whose SHA-1 does not match) is reported by name in its publication's
//!   [`DataOutcome`]; the other files, and the other publications, are still good. Damaged files are removed from
//!   the staging directory, so nothing staged is unverified. A piece that straddles two files taints both (which of
//!   them holds the bad byte cannot be known).
//! - **A damaged bundle** (truncated, framing altered, a record or torrent altered, bytes after the end) is refused
//!   as a whole by [`read_bundle`]: the trailer's counts and SHA-256 cover every byte except file contents, so the
//!   reader can tell a complete bundle from a cut one.
//!
//! Sync `std::io` only: the node runs it on a blocking thread.

mod format;
mod pieces;
mod reader;
mod writer;

use std::path::{Path, PathBuf};

use kolokol_transfer::metainfo::{LayoutFile, TorrentLayout};

pub use format::{
    FORMAT_VERSION, MAGIC, MAX_METADATA_BYTES, MAX_PUBLICATIONS, MAX_RECORD_BYTES,
    MAX_TORRENT_BYTES,
};
pub use reader::{
    BundleContents, DataOutcome, ReadOptions, SkipReason, StagedPublication, read_bundle,
};
pub use writer::BundleWriter;

/// Whether one file of a publication verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCheck {
    /// The file's path as records name it: the torrent name for a single file, `<name>/<path>` otherwise.
    pub path: String,
    pub size: u64,
    /// Every piece overlapping the file matched its hash.
    pub good: bool,
}

/// Errors writing or reading a bundle. Each is one line meant for the user.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("not a kolokol bundle (it does not start with the bundle magic bytes)")]
    NotABundle,
    #[error(
        "bundle format version {0} is not supported (this kolokol reads version {FORMAT_VERSION})"
    )]
    Version(u16),
    #[error(
        "the bundle is truncated: it ends at byte {offset}, where {expected} should be (copy it again from the source)"
    )]
    Truncated { offset: u64, expected: &'static str },
    #[error("the bundle is malformed at byte {offset}: {reason}")]
    Malformed { offset: u64, reason: String },
    #[error(
        "the bundle is damaged: its checksum does not match (a record, a torrent or the framing was altered)"
    )]
    Checksum,
    #[error(
        "the bundle's trailer states {stated} (publications, files, bytes) but it holds {found}"
    )]
    Counts { stated: String, found: String },
    #[error("{what} of {len} bytes is more than the {max} allowed")]
    TooLarge {
        what: &'static str,
        len: u64,
        max: u64,
    },
    #[error("torrent: {0}")]
    Torrent(#[source] kolokol_transfer::MetainfoError),
    #[error("{path} is {actual} bytes but its torrent says {expected}")]
    SizeMismatch {
        path: PathBuf,
        actual: u64,
        expected: u64,
    },
    #[error("reading the bundle: {0}")]
    Read(#[source] std::io::Error),
    #[error("writing the bundle: {0}")]
    Write(#[source] std::io::Error),
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Where a torrent's file lives under `dir`, the way the engine lays torrents out.
pub(crate) fn stored_path(layout: &TorrentLayout, dir: &Path, file: &LayoutFile) -> PathBuf {
    let mut path = dir.join(&layout.name);
    if !layout.single_file {
        path.extend(&file.components);
    }
    path
}

/// The record-style path of a file: `<name>` for a single file, `<name>/<path>` otherwise.
pub(crate) fn display_path(layout: &TorrentLayout, file: &LayoutFile) -> String {
    if layout.single_file {
        layout.name.clone()
    } else {
        format!("{}/{}", layout.name, file.components.join("/"))
    }
}

/// One check per non-padding file, from the verifier's per-file results (which include padding files).
pub(crate) fn file_checks(layout: &TorrentLayout, results: &[bool]) -> Vec<FileCheck> {
    layout
        .files
        .iter()
        .zip(results)
        .filter(|(f, _)| !f.padding)
        .map(|(f, &good)| FileCheck {
            path: display_path(layout, f),
            size: f.length,
            good,
        })
        .collect()
}

#[cfg(test)]
mod tests;
