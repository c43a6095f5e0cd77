//! The one error type of this crate's public API.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::metainfo::MetainfoError;
use kolokol_core::magnet::MagnetError;

/// Everything that can go wrong in the transfer engine.
///
/// Errors from librqbit arrive as `anyhow::Error`; they are kept whole as the source of
/// [`TransferError::Engine`] (or [`TransferError::Start`]) together with what we were doing.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("invalid engine configuration: {0}")]
    Config(String),
    #[error("could not start the BitTorrent engine on {listen}")]
    Start {
        listen: SocketAddr,
        #[source]
        source: anyhow::Error,
    },
    #[error("I/O error on {path:?}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path:?} cannot be published: it {reason}")]
    InvalidContent { path: PathBuf, reason: String },
    #[error("{path:?} changed while it was being hashed; publish it again")]
    ContentChanged { path: PathBuf },
    #[error("invalid torrent")]
    InvalidTorrent(#[from] MetainfoError),
    #[error("invalid magnet link")]
    InvalidMagnet(#[from] MagnetError),
    #[error("torrent {infohash} is already being handled with output folder {output_dir:?}")]
    AlreadyManaged {
        infohash: String,
        output_dir: PathBuf,
    },
    #[error("torrent {0} is not known to this engine")]
    NotFound(String),
    #[error("torrent {infohash} was removed while waiting for it")]
    Removed { infohash: String },
    #[error("torrent {infohash} failed: {message}")]
    Failed { infohash: String, message: String },
    #[error("BitTorrent engine failed to {action} torrent {infohash}")]
    Engine {
        action: &'static str,
        infohash: String,
        #[source]
        source: anyhow::Error,
    },
    #[error("BitTorrent engine crashed while trying to {action} torrent {infohash}")]
    EnginePanicked {
        action: &'static str,
        infohash: String,
    },
    #[error("torrent {infohash} has no {file}")]
    NoSuchFile { infohash: String, file: String },
    #[error("torrent {infohash}: waited {secs} s for {waiting_for} in vain")]
    TimedOut {
        infohash: String,
        waiting_for: String,
        secs: u64,
    },
    #[error("internal error: {0}")]
    Internal(String),
}
