//! What the engine reports about one torrent.

/// Where a torrent is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TorrentState {
    /// A magnet link whose metadata (BEP 9) has not arrived from any peer yet.
    Resolving,
    /// Data already on disk is being hashed to find out which pieces we have.
    Checking,
    /// Exchanging pieces with peers; not all pieces are here yet.
    Downloading,
    /// Every piece is here and verified; serving it to others.
    Seeding,
    /// Stopped inside the engine; nothing moves.
    Paused,
    /// Stopped by an error, see [`Progress::error`].
    Failed,
}

/// A snapshot of one torrent's progress.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// The torrent's name, or the magnet `dn` until the metadata is known.
    pub name: Option<String>,
    pub state: TorrentState,
    /// Size of all files; 0 until the metadata is known.
    pub total_bytes: u64,
    /// Bytes of pieces whose SHA-1 matched. Never counts unverified data.
    pub have_bytes: u64,
    /// Every piece is here and verified.
    pub finished: bool,
    /// The last error, if the torrent failed (or, while resolving, the last failed attempt).
    pub error: Option<String>,
    /// Peers connected right now.
    pub peers: u32,
    /// Current download rate, bytes per second.
    pub download_rate: u64,
    /// Current upload rate, bytes per second.
    pub upload_rate: u64,
    /// Bytes sent to peers since the torrent was (re)started in this engine.
    pub uploaded_bytes: u64,
}

impl Progress {
    pub(crate) fn without_data(
        name: Option<String>,
        state: TorrentState,
        error: Option<String>,
    ) -> Self {
        Progress {
            name,
            state,
            total_bytes: 0,
            have_bytes: 0,
            finished: false,
            error,
            peers: 0,
            download_rate: 0,
            upload_rate: 0,
            uploaded_bytes: 0,
        }
    }
}
