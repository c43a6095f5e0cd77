//! librqbit's fast-resume bitfields, so that data is not hashed again without need.
//!
//! With `fastresume` on, librqbit keeps one file per torrent, `<hex info-hash>.bitv`, in its
//! persistence folder: the pieces it has verified, one bit each, most significant bit first (the
//! BitTorrent bitfield layout). When a torrent is added and that file exists, librqbit re-hashes
//! only a sample (one piece per file and a few dozen more) instead of everything. We use that twice:
//!
//! * after [`crate::Engine::create_torrent`] hashed content, seeding it writes an all-pieces
//!   bitfield, so publishing reads the data once instead of twice;
//! * after a restart, a download or a seed resumes from the bitfield of the last run.
//!
//! A bitfield is only trusted while the files still have their expected sizes: if any file is
//! missing or has another length (truncated, replaced), the bitfield is deleted and librqbit
//! checks everything. Data damaged in place at the same size is caught only if the sample hits it;
//! that is the price of not re-reading every seeded byte at each start (libtorrent's resume data
//! makes the same trade).
//!
//! librqbit writes a running download's bitfield only every 16 MiB of verified data, so after a
//! crash the file lags the data (verified pieces would be fetched again), and after a power cut it
//! may even name pieces whose data never reached the disk. A marker file present while the engine
//! runs tells the next start that the last one did not stop cleanly: then the bitfields of
//! unfinished downloads are dropped and their data checked in full, which finds every piece that
//! is really there. A clean stop writes every download's current bitfield first.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::metainfo::TorrentMeta;

/// The folder librqbit persists into, and the bitfields in it.
#[derive(Debug, Clone)]
pub(crate) struct FastResume {
    dir: PathBuf,
    /// The engine that used this folder last did not stop cleanly.
    after_crash: bool,
}

/// Present in the folder while an engine runs on it.
const RUNNING_MARKER: &str = "running";

impl FastResume {
    /// Prepares librqbit's persistence folder inside `state_dir`.
    ///
    /// librqbit also records the list of torrents there (`session.json`) and would add them all back
    /// by itself at the next start, without their peers and before the node decides what to run.
    /// The node owns that list, so we remove librqbit's copy and keep only the bitfields.
    pub(crate) fn open(state_dir: &Path) -> io::Result<Self> {
        let dir = state_dir.join("librqbit");
        fs::create_dir_all(&dir)?;
        for stale in ["session.json", "session.json.tmp"] {
            match fs::remove_file(dir.join(stale)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        let marker = dir.join(RUNNING_MARKER);
        let after_crash = marker.exists();
        if after_crash {
            tracing::warn!(
                "the BitTorrent engine did not stop cleanly last time: unfinished downloads are checked in full"
            );
        }
        fs::write(&marker, b"")?;
        Ok(FastResume { dir, after_crash })
    }

    /// Records that the engine stopped cleanly (after every download's bitfield was written).
    pub(crate) fn stopped_cleanly(&self) -> io::Result<()> {
        match fs::remove_file(self.dir.join(RUNNING_MARKER)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn bitv_path(&self, infohash: &[u8; 20]) -> PathBuf {
        self.dir.join(format!("{}.bitv", hex(infohash)))
    }

    /// Records that every piece of `meta` is present (we just hashed it ourselves).
    pub(crate) fn mark_complete(&self, meta: &TorrentMeta) -> io::Result<()> {
        let pieces = usize::try_from(meta.piece_count).map_err(io::Error::other)?;
        let mut bits = vec![0xffu8; pieces.div_ceil(8)];
        // Bits past the last piece stay 0, as in a BitTorrent bitfield.
        if pieces % 8 != 0
            && let Some(last) = bits.last_mut()
        {
            *last = 0xffu8 << (8 - pieces % 8);
        }
        self.write(&meta.infohash, &bits)
    }

    /// The saved bitfield, if any.
    pub(crate) fn read(&self, infohash: &[u8; 20]) -> Option<Vec<u8>> {
        fs::read(self.bitv_path(infohash)).ok()
    }

    /// Puts back a bitfield saved by [`FastResume::read`].
    pub(crate) fn write(&self, infohash: &[u8; 20], bits: &[u8]) -> io::Result<()> {
        let path = self.bitv_path(infohash);
        let tmp = path.with_extension("bitv.kolokol-tmp");
        fs::write(&tmp, bits)?;
        fs::rename(&tmp, &path)
    }

    /// Deletes the bitfield, so that librqbit hashes all data on the next add.
    pub(crate) fn forget(&self, infohash: &[u8; 20]) -> io::Result<()> {
        match fs::remove_file(self.bitv_path(infohash)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Before an unfinished download is added: after a crash its bitfield is dropped (librqbit then
    /// checks all data), otherwise it is kept as long as the files have their expected sizes.
    pub(crate) fn prepare_download(&self, meta: &TorrentMeta, folder: &Path) -> io::Result<()> {
        if self.after_crash {
            return self.forget(&meta.infohash);
        }
        self.distrust_if_resized(meta, folder)
    }

    /// Whether `bits` has the length of `meta`'s bitfield (one bit per piece, whole bytes).
    pub(crate) fn fits(meta: &TorrentMeta, bits: &[u8]) -> bool {
        usize::try_from(meta.piece_count).is_ok_and(|pieces| bits.len() == pieces.div_ceil(8))
    }

    /// Keeps the bitfield only if every file under `folder` has exactly its expected length.
    pub(crate) fn distrust_if_resized(&self, meta: &TorrentMeta, folder: &Path) -> io::Result<()> {
        if self.read(&meta.infohash).is_none() {
            return Ok(());
        }
        let intact = meta.files.iter().filter(|f| !f.padding).all(|f| {
            let path = file_path(meta, folder, &f.components);
            fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == f.length)
        });
        if !intact {
            tracing::info!("files changed size; full check");
            tracing::debug!(infohash = %hex(&meta.infohash), "files changed size; full check");
            self.forget(&meta.infohash)?;
        }
        Ok(())
    }
}

/// Where librqbit keeps a file of `meta` when the torrent's output folder is `folder`.
pub(crate) fn file_path(meta: &TorrentMeta, folder: &Path, components: &[String]) -> PathBuf {
    if meta.single_file {
        return folder.join(&meta.name);
    }
    let mut path = folder.to_path_buf();
    path.extend(components);
    path
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
