//! The engine: which torrents run, in which folder, with which peers.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::AbortHandle;

use crate::backend::{self, EngineSession, Handle};
use crate::create::{self, ContentFile};
use crate::error::TransferError;
use crate::fastresume::{FastResume, hex};
use crate::metainfo::TorrentMeta;
use crate::progress::{Progress, TorrentState};
use crate::stream::{FileStream, MAX_OPEN_STREAMS};
use kolokol_core::magnet::Magnet;

/// Most peers remembered for one torrent.
pub const MAX_PEERS_PER_TORRENT: usize = 1000;
/// Smallest rate limit accepted: librqbit asks the limiter for 16 KiB blocks at once, and a
/// limit below a few blocks per second would stall instead of slowing down.
pub const MIN_RATE_LIMIT: u32 = 64 * 1024;
/// How many recently created torrents are remembered so that seeding them skips the re-check.
const CREATED_MEMORY: usize = 32;
/// Default of [`EngineConfig::stream_timeout`].
pub const DEFAULT_STREAM_TIMEOUT: Duration = Duration::from_secs(20);

/// Settings of an [`Engine`].
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// BitTorrent TCP listen address; port 0 picks a free port (see [`Engine::listen_addr`]).
    pub listen: SocketAddr,
    /// Engine-private state (fast-resume bitfields) inside the node's data directory.
    pub state_dir: PathBuf,
    /// Default download folder (used only where a call gives none).
    pub download_dir: PathBuf,
    /// Upload and download limits of the whole engine (default: none).
    pub limits: RateLimits,
    /// How long a [`FileStream`](crate::FileStream) waits for data that does not come (no peer has
    /// the piece, or the metadata) before its read fails with [`std::io::ErrorKind::TimedOut`].
    pub stream_timeout: Duration,
}

impl EngineConfig {
    /// A configuration with no rate limits and the default stream timeout.
    pub fn new(listen: SocketAddr, state_dir: PathBuf, download_dir: PathBuf) -> Self {
        EngineConfig {
            listen,
            state_dir,
            download_dir,
            limits: RateLimits::default(),
            stream_timeout: DEFAULT_STREAM_TIMEOUT,
        }
    }
}

/// Bandwidth limits for a whole engine, in bytes per second (each at least [`MIN_RATE_LIMIT`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimits {
    pub upload: Option<NonZeroU32>,
    pub download: Option<NonZeroU32>,
}

/// A torrent made by [`Engine::create_torrent`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedTorrent {
    pub infohash: [u8; 20],
    /// The .torrent file (v1, no trackers).
    pub torrent: Vec<u8>,
    /// The torrent's name: the file or directory name.
    pub name: String,
    /// Every file as ('/'-separated path inside the torrent, length). For a single file, its name.
    pub files: Vec<(String, u64)>,
    pub piece_length: u32,
}

/// Where a download starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchSource {
    /// `magnet:?xt=urn:btih:...`; its `x.pe` peers are used, its trackers are not.
    Magnet(String),
    /// The bytes of a .torrent file.
    Torrent(Vec<u8>),
}

/// The BitTorrent engine of one node.
pub struct Engine {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) session: EngineSession,
    listen: SocketAddr,
    pub(crate) fastresume: FastResume,
    pub(crate) torrents: Mutex<HashMap<[u8; 20], Entry>>,
    /// Woken whenever an entry changes state or gets peers.
    pub(crate) changed: Notify,
    /// Serialises the operations that add or remove torrents in the session.
    pub(crate) ops: tokio::sync::Mutex<()>,
    created: Mutex<VecDeque<Created>>,
    /// One permit per open [`FileStream`]: librqbit lends each stream a permit of its own blocking
    /// pool, which it also needs to write received pieces, so streams must not take them all.
    pub(crate) stream_slots: Arc<tokio::sync::Semaphore>,
    pub(crate) stream_timeout: Duration,
}

pub(crate) struct Entry {
    pub(crate) output_dir: PathBuf,
    /// Magnet `dn`, until the metadata is known.
    name: Option<String>,
    pub(crate) peers: Vec<SocketAddr>,
    pub(crate) meta: Option<Arc<TorrentMeta>>,
    pub(crate) state: EntryState,
}

pub(crate) enum EntryState {
    Resolving {
        task: AbortHandle,
        last_error: Option<String>,
    },
    Active(Handle),
    /// Being removed and added again with more peers (see [`Engine::add_peers`]); the old handle is going away, so
    /// waiters wait and `progress` shows the last figures.
    Replacing(Progress),
    Failed(String),
}

/// Content we hashed, and how it looked then.
struct Created {
    infohash: [u8; 20],
    content: PathBuf,
    files: Vec<ContentFile>,
}

impl Engine {
    /// Like [`Engine::start`], with other bandwidth limits than `cfg.limits`.
    pub async fn start_with_limits(
        mut cfg: EngineConfig,
        limits: RateLimits,
    ) -> Result<Engine, TransferError> {
        cfg.limits = limits;
        Self::start(cfg).await
    }

    /// Starts the engine: binds `cfg.listen` (TCP) and nothing else.
    pub async fn start(cfg: EngineConfig) -> Result<Engine, TransferError> {
        let limits = cfg.limits;
        if cfg.stream_timeout.is_zero() {
            return Err(TransferError::Config(
                "the stream timeout must be greater than zero".into(),
            ));
        }
        for limit in [limits.upload, limits.download].into_iter().flatten() {
            if limit.get() < MIN_RATE_LIMIT {
                return Err(TransferError::Config(format!(
                    "rate limit {limit} B/s is below the minimum of {MIN_RATE_LIMIT} B/s"
                )));
            }
        }
        for dir in [&cfg.state_dir, &cfg.download_dir] {
            std::fs::create_dir_all(dir).map_err(|source| TransferError::Io {
                path: dir.clone(),
                source,
            })?;
        }
        let fastresume = FastResume::open(&cfg.state_dir).map_err(|source| TransferError::Io {
            path: cfg.state_dir.clone(),
            source,
        })?;
        let session = backend::start_session(
            cfg.listen,
            cfg.download_dir.clone(),
            fastresume.dir().to_path_buf(),
            limits.upload,
            limits.download,
        )
        .await?;
        let Some(listen) = backend::listen_addr(&session) else {
            backend::stop(&session).await;
            return Err(TransferError::Internal(
                "librqbit did not report its listen address".into(),
            ));
        };
        tracing::info!(%listen, "BitTorrent engine listening (TCP only; no DHT, trackers, LSD or UPnP)");
        Ok(Engine {
            inner: Arc::new(Inner {
                session,
                listen,
                fastresume,
                torrents: Mutex::new(HashMap::new()),
                changed: Notify::new(),
                ops: tokio::sync::Mutex::new(()),
                created: Mutex::new(VecDeque::new()),
                stream_slots: Arc::new(tokio::sync::Semaphore::new(MAX_OPEN_STREAMS)),
                stream_timeout: cfg.stream_timeout,
            }),
        })
    }

    /// The address the engine really listens on (the chosen port when the config said 0).
    pub fn listen_addr(&self) -> SocketAddr {
        self.inner.listen
    }

    /// Hashes a file or a directory into a v1 torrent named after it. Files are taken in sorted
    /// order, so the same content always gives the same info-hash. Symbolic links, special files,
    /// names that are not UTF-8 and empty content are refused.
    pub async fn create_torrent(&self, content: &Path) -> Result<CreatedTorrent, TransferError> {
        let path = content.to_path_buf();
        let hashed = tokio::task::spawn_blocking(move || create::hash_content(&path))
            .await
            .map_err(|e| TransferError::Internal(format!("hashing task failed: {e}")))??;
        // Read back what we wrote, through the same checks as any other torrent.
        let meta = TorrentMeta::from_info_bytes(&hashed.info)?;
        let created = CreatedTorrent {
            infohash: meta.infohash,
            torrent: meta.minimal_torrent(),
            name: meta.name.clone(),
            files: meta.listed_files(),
            piece_length: meta.piece_length,
        };
        let mut memory = lock(&self.inner.created);
        memory.retain(|c| c.infohash != meta.infohash);
        if memory.len() >= CREATED_MEMORY {
            memory.pop_front();
        }
        memory.push_back(Created {
            infohash: meta.infohash,
            content: content.to_path_buf(),
            files: hashed.files,
        });
        Ok(created)
    }

    /// Seeds content that is already complete on disk at `output_dir/<torrent name>`.
    ///
    /// Content just hashed by [`Engine::create_torrent`] and unchanged since is not hashed again;
    /// anything else is checked (fully, or by sample if this engine's state dir has a bitfield from
    /// an earlier run and the file sizes still match).
    pub async fn seed(&self, torrent: &[u8], output_dir: &Path) -> Result<[u8; 20], TransferError> {
        let meta = Arc::new(TorrentMeta::parse(torrent)?);
        let content = output_dir.join(&meta.name);
        std::fs::symlink_metadata(&content).map_err(|source| TransferError::Io {
            path: content.clone(),
            source,
        })?;
        let _ops = self.inner.ops.lock().await;
        if self.already_managed(&meta.infohash, output_dir)? {
            return Ok(meta.infohash);
        }
        let folder = output_folder(&meta, output_dir);
        if self.just_created(&meta, &content) {
            tracing::debug!(infohash = %hex(&meta.infohash), "seeding freshly hashed content without re-check");
            self.inner.fastresume.mark_complete(&meta)
        } else {
            self.inner.fastresume.distrust_if_resized(&meta, &folder)
        }
        .map_err(|source| TransferError::Io {
            path: self.inner.fastresume.dir().to_path_buf(),
            source,
        })?;
        let handle = backend::add(&self.inner.session, &meta, &folder, &[]).await?;
        self.insert(
            meta.infohash,
            output_dir,
            None,
            Vec::new(),
            Some(meta.clone()),
            EntryState::Active(handle),
        );
        Ok(meta.infohash)
    }

    /// Starts a download into `output_dir` (a single-file torrent becomes `output_dir/<name>`, a
    /// multi-file one `output_dir/<name>/...`), from a magnet link or .torrent bytes, with initial
    /// peers. Data already there is checked and kept, so calling this again after an interruption
    /// resumes. Returns at once with the info-hash: a magnet's metadata is fetched in the
    /// background (see [`Engine::progress`]). If the torrent is already running into the same
    /// folder, the peers are added to it (see [`Engine::add_peers`]).
    pub async fn fetch(
        &self,
        source: FetchSource,
        output_dir: &Path,
        peers: Vec<SocketAddr>,
    ) -> Result<[u8; 20], TransferError> {
        let (infohash, name, meta, mut all_peers) = match &source {
            FetchSource::Torrent(bytes) => {
                let meta = Arc::new(TorrentMeta::parse(bytes)?);
                (meta.infohash, None, Some(meta), Vec::new())
            }
            FetchSource::Magnet(uri) => {
                let magnet = Magnet::parse(uri)?;
                (magnet.infohash.0, magnet.name, None, magnet.peers)
            }
        };
        all_peers.extend(peers);
        let all_peers = self.clean_peers(&[], all_peers);
        std::fs::create_dir_all(output_dir).map_err(|source| TransferError::Io {
            path: output_dir.to_path_buf(),
            source,
        })?;

        let ops = self.inner.ops.lock().await;
        if self.already_managed(&infohash, output_dir)? {
            drop(ops);
            self.add_peers(&infohash, all_peers).await?;
            return Ok(infohash);
        }
        match meta {
            Some(meta) => {
                let folder = output_folder(&meta, output_dir);
                self.inner
                    .fastresume
                    .prepare_download(&meta, &folder)
                    .map_err(|source| TransferError::Io {
                        path: self.inner.fastresume.dir().to_path_buf(),
                        source,
                    })?;
                let handle = backend::add(&self.inner.session, &meta, &folder, &all_peers).await?;
                self.insert(
                    infohash,
                    output_dir,
                    None,
                    all_peers,
                    Some(meta),
                    EntryState::Active(handle),
                );
            }
            None => {
                let inner = Arc::clone(&self.inner);
                let task =
                    tokio::spawn(crate::resolve::resolve_task(inner, infohash)).abort_handle();
                let state = EntryState::Resolving {
                    task,
                    last_error: None,
                };
                self.insert(infohash, output_dir, name, all_peers, None, state);
            }
        }
        Ok(infohash)
    }

    /// Gives a torrent more peers. Returns how many were new.
    ///
    /// librqbit takes peers only when a torrent is added. So for a download in progress, new
    /// peers make this engine remove the torrent (keeping its files and its fast-resume bitfield)
    /// and add it again with all known peers: connections drop for a moment and a sample of pieces
    /// is re-hashed. Call it with batches of peers, not one peer at a time. A magnet still waiting
    /// for metadata just uses the new peers on its next attempt; a finished torrent keeps them for
    /// the record (peers that need data connect to it).
    pub async fn add_peers(
        &self,
        infohash: &[u8; 20],
        peers: Vec<SocketAddr>,
    ) -> Result<usize, TransferError> {
        let _ops = self.inner.ops.lock().await;
        let (new, readd) = {
            let mut torrents = lock(&self.inner.torrents);
            let entry = torrents
                .get_mut(infohash)
                .ok_or_else(|| TransferError::NotFound(hex(infohash)))?;
            let merged = self.clean_peers(&entry.peers, peers);
            let new = merged.len() - entry.peers.len();
            entry.peers = merged;
            let readd = match &entry.state {
                EntryState::Active(handle)
                    if new > 0 && !backend::progress(handle, None).finished =>
                {
                    let last = backend::progress(handle, entry.name.clone());
                    let readd = entry
                        .meta
                        .clone()
                        .map(|meta| (meta, entry.output_dir.clone(), entry.peers.clone()));
                    if readd.is_some() {
                        // Waiters must not read the old handle while it is being removed: librqbit reports a
                        // removed torrent as broken, which looked like a failed download.
                        entry.state = EntryState::Replacing(last);
                    }
                    readd
                }
                _ => None,
            };
            (new, readd)
        };
        self.inner.changed.notify_waiters();
        if let Some((meta, output_dir, peers)) = readd {
            let folder = output_folder(&meta, &output_dir);
            // The pieces verified up to now (the file on disk may lag by up to 16 MiB of them).
            let saved = self
                .current_bitfield(&meta)
                .or_else(|| self.inner.fastresume.read(infohash));
            let result = async {
                backend::remove(&self.inner.session, infohash, false).await?;
                if let Some(bits) = &saved {
                    // librqbit deletes the bitfield with the torrent; put it back.
                    self.inner
                        .fastresume
                        .write(infohash, bits)
                        .map_err(|source| TransferError::Io {
                            path: self.inner.fastresume.dir().to_path_buf(),
                            source,
                        })?;
                }
                backend::add(&self.inner.session, &meta, &folder, &peers).await
            }
            .await;
            let state = match &result {
                Ok(handle) => EntryState::Active(handle.clone()),
                Err(e) => EntryState::Failed(format!("re-adding with new peers failed: {e}")),
            };
            self.set_state(infohash, state);
            result?;
        }
        Ok(new)
    }

    /// The progress of a torrent, or `None` if this engine does not know it.
    pub fn progress(&self, infohash: &[u8; 20]) -> Option<Progress> {
        let torrents = lock(&self.inner.torrents);
        let entry = torrents.get(infohash)?;
        let name = entry
            .meta
            .as_ref()
            .map(|m| m.name.clone())
            .or_else(|| entry.name.clone());
        Some(match &entry.state {
            EntryState::Resolving { last_error, .. } => {
                Progress::without_data(name, TorrentState::Resolving, last_error.clone())
            }
            EntryState::Failed(message) => {
                Progress::without_data(name, TorrentState::Failed, Some(message.clone()))
            }
            EntryState::Active(handle) => backend::progress(handle, name),
            EntryState::Replacing(last) => last.clone(),
        })
    }

    /// The .torrent file (minimal form, no trackers) once the metadata is known.
    pub fn torrent_bytes(&self, infohash: &[u8; 20]) -> Option<Vec<u8>> {
        let torrents = lock(&self.inner.torrents);
        torrents
            .get(infohash)?
            .meta
            .as_ref()
            .map(|m| m.minimal_torrent())
    }

    /// Opens a reader over one file of a torrent this engine runs (`file_index` counts the files
    /// as [`CreatedTorrent::files`] lists them). It works while the torrent downloads: librqbit
    /// fetches the pieces from the read position onward first. Waits (at most
    /// [`EngineConfig::stream_timeout`]) for the metadata of a magnet and for the check of data
    /// already on disk. At most [`MAX_OPEN_STREAMS`] readers are open at once.
    pub async fn open_stream(
        &self,
        infohash: &[u8; 20],
        file_index: usize,
    ) -> Result<FileStream, TransferError> {
        self.open_stream_where(infohash, FileRef::Index(file_index))
            .await
    }

    /// Like [`Engine::open_stream`], naming the file by its path as a kolokol record gives it: the
    /// torrent's name, then (for a multi-file torrent) the path inside it, '/'-separated.
    pub async fn open_stream_by_path(
        &self,
        infohash: &[u8; 20],
        path: &str,
    ) -> Result<FileStream, TransferError> {
        self.open_stream_where(infohash, FileRef::Path(path)).await
    }

    async fn open_stream_where(
        &self,
        infohash: &[u8; 20],
        file: FileRef<'_>,
    ) -> Result<FileStream, TransferError> {
        let inner = &self.inner;
        let waited = inner.stream_timeout;
        let timed_out = |waiting_for: &str| TransferError::TimedOut {
            infohash: hex(infohash),
            waiting_for: waiting_for.to_owned(),
            secs: waited.as_secs(),
        };
        let deadline = tokio::time::Instant::now() + waited;
        let slot =
            tokio::time::timeout_at(deadline, Arc::clone(&inner.stream_slots).acquire_owned())
                .await
                .map_err(|_| timed_out("a free stream (too many are open)"))?
                .map_err(|_| TransferError::Internal("stream slots closed".into()))?;
        let (handle, meta) = tokio::time::timeout_at(deadline, inner.wait_active(infohash))
            .await
            .map_err(|_| timed_out("the torrent's metadata from a peer"))??;
        let (file_id, len) = file.find(&meta).ok_or_else(|| TransferError::NoSuchFile {
            infohash: hex(infohash),
            file: file.to_string(),
        })?;
        let reader = tokio::time::timeout_at(deadline, backend::open_stream(&handle, file_id))
            .await
            .map_err(|_| timed_out("the check of the data already on disk"))??;
        Ok(FileStream::new(
            Arc::clone(inner),
            *infohash,
            file_id,
            len,
            handle,
            reader,
            slot,
        ))
    }

    /// Waits until every piece is here and verified. Fails if the torrent fails or is removed.
    /// Put a time limit around it: a torrent that no peer has never finishes.
    pub async fn wait_finished(&self, infohash: &[u8; 20]) -> Result<(), TransferError> {
        loop {
            let changed = self.inner.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let handle = {
                let torrents = lock(&self.inner.torrents);
                match torrents.get(infohash).map(|e| &e.state) {
                    None => {
                        return Err(TransferError::Removed {
                            infohash: hex(infohash),
                        });
                    }
                    Some(EntryState::Failed(message)) => {
                        return Err(TransferError::Failed {
                            infohash: hex(infohash),
                            message: message.clone(),
                        });
                    }
                    Some(EntryState::Resolving { .. } | EntryState::Replacing(_)) => None,
                    Some(EntryState::Active(handle)) => Some(handle.clone()),
                }
            };
            let Some(handle) = handle else {
                tokio::select! {
                    _ = &mut changed => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                continue;
            };
            let progress = backend::progress(&handle, None);
            if progress.finished {
                return Ok(());
            }
            if progress.state == TorrentState::Failed {
                return Err(TransferError::Failed {
                    infohash: hex(infohash),
                    message: progress.error.unwrap_or_default(),
                });
            }
            // librqbit's own wait does not end when the torrent fails or is removed: re-check.
            tokio::select! {
                _ = backend::wait_completed(&handle) => {}
                _ = &mut changed => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// Stops a torrent; with `delete_files`, also deletes its downloaded files.
    pub async fn remove(
        &self,
        infohash: &[u8; 20],
        delete_files: bool,
    ) -> Result<(), TransferError> {
        let _ops = self.inner.ops.lock().await;
        let entry = lock(&self.inner.torrents)
            .remove(infohash)
            .ok_or_else(|| TransferError::NotFound(hex(infohash)))?;
        self.inner.changed.notify_waiters();
        match entry.state {
            EntryState::Resolving { task, .. } => task.abort(),
            EntryState::Active(_) => {
                backend::remove(&self.inner.session, infohash, delete_files).await?
            }
            // A replacement that was interrupted: whatever the session holds goes.
            EntryState::Replacing(_) => {
                let _ = backend::remove(&self.inner.session, infohash, delete_files).await;
            }
            EntryState::Failed(_) => {}
        }
        if delete_files {
            self.inner
                .fastresume
                .forget(infohash)
                .map_err(|source| TransferError::Io {
                    path: self.inner.fastresume.dir().to_path_buf(),
                    source,
                })?;
        }
        Ok(())
    }

    /// Stops every torrent and closes the listener. Partial downloads stay on disk and resume
    /// at the next [`Engine::fetch`].
    /// Takes `&self` so that an engine shared behind an `Arc` can be stopped; calls made after it
    /// fail or find nothing.
    pub async fn shutdown(&self) {
        self.abort_resolvers();
        self.save_download_bitfields();
        backend::stop(&self.inner.session).await;
        if let Err(error) = self.inner.fastresume.stopped_cleanly() {
            tracing::warn!(%error, "cannot record the clean stop; the next start checks downloads in full");
        }
    }

    /// The torrent's bitfield as librqbit holds it in memory now, if it is running and has `meta`'s shape.
    fn current_bitfield(&self, meta: &TorrentMeta) -> Option<Vec<u8>> {
        backend::have_pieces(&self.inner.session, &meta.infohash)
            .filter(|bits| FastResume::fits(meta, bits))
    }

    /// Writes every unfinished download's current bitfield, so that the next start resumes from all
    /// of its verified pieces.
    fn save_download_bitfields(&self) {
        let running: Vec<Arc<TorrentMeta>> = lock(&self.inner.torrents)
            .values()
            .filter_map(|entry| match &entry.state {
                EntryState::Active(handle) if !backend::progress(handle, None).finished => {
                    entry.meta.clone()
                }
                _ => None,
            })
            .collect();
        for meta in running {
            if let Some(bits) = self.current_bitfield(&meta)
                && let Err(error) = self.inner.fastresume.write(&meta.infohash, &bits)
            {
                tracing::warn!(%error, "cannot save the download's bitfield");
                tracing::debug!(%error, infohash = %hex(&meta.infohash), "cannot save the download's bitfield");
            }
        }
    }

    fn abort_resolvers(&self) {
        for entry in lock(&self.inner.torrents).values() {
            if let EntryState::Resolving { task, .. } = &entry.state {
                task.abort();
            }
        }
    }

    /// Whether the torrent runs already; an error if it runs into another folder.
    fn already_managed(
        &self,
        infohash: &[u8; 20],
        output_dir: &Path,
    ) -> Result<bool, TransferError> {
        match lock(&self.inner.torrents).get(infohash) {
            None => Ok(false),
            Some(entry) if entry.output_dir == output_dir => Ok(true),
            Some(entry) => Err(TransferError::AlreadyManaged {
                infohash: hex(infohash),
                output_dir: entry.output_dir.clone(),
            }),
        }
    }

    /// `known` followed by the new peers in `extra`: no duplicates, not ourselves, capped.
    fn clean_peers(&self, known: &[SocketAddr], extra: Vec<SocketAddr>) -> Vec<SocketAddr> {
        let mut out = known.to_vec();
        for peer in extra {
            if out.len() >= MAX_PEERS_PER_TORRENT {
                break;
            }
            if peer != self.inner.listen && peer.port() != 0 && !out.contains(&peer) {
                out.push(peer);
            }
        }
        out
    }

    fn just_created(&self, meta: &TorrentMeta, content: &Path) -> bool {
        let memory = lock(&self.inner.created);
        let Some(created) = memory.iter().find(|c| c.infohash == meta.infohash) else {
            return false;
        };
        let same_place = match (
            std::fs::canonicalize(&created.content),
            std::fs::canonicalize(content),
        ) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        same_place
            && created.files.iter().all(|f| {
                std::fs::metadata(&f.path)
                    .is_ok_and(|m| m.len() == f.length && m.modified().ok() == f.modified)
            })
    }

    fn insert(
        &self,
        infohash: [u8; 20],
        output_dir: &Path,
        name: Option<String>,
        peers: Vec<SocketAddr>,
        meta: Option<Arc<TorrentMeta>>,
        state: EntryState,
    ) {
        let entry = Entry {
            output_dir: output_dir.to_path_buf(),
            name,
            peers,
            meta,
            state,
        };
        lock(&self.inner.torrents).insert(infohash, entry);
        self.inner.changed.notify_waiters();
    }

    fn set_state(&self, infohash: &[u8; 20], state: EntryState) {
        if let Some(entry) = lock(&self.inner.torrents).get_mut(infohash) {
            entry.state = state;
        }
        self.inner.changed.notify_waiters();
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Without this, resolver tasks (which hold the session) would keep it alive.
        self.abort_resolvers();
        backend::cancel(&self.inner.session);
    }
}

/// librqbit puts a multi-file torrent's files directly in the folder it is given, so the folder
/// named after the torrent is added here; a single file goes directly into `output_dir`.
pub(crate) fn output_folder(meta: &TorrentMeta, output_dir: &Path) -> PathBuf {
    if meta.single_file {
        output_dir.to_path_buf()
    } else {
        output_dir.join(&meta.name)
    }
}

/// Locks a table, recovering it if a thread panicked while holding it: every update of these
/// tables is a single insert, remove or assignment, so a poisoned lock still guards valid data.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Which file of a torrent a stream reads.
#[derive(Clone, Copy)]
enum FileRef<'a> {
    /// Index among the torrent's files, padding files not counted.
    Index(usize),
    /// The record's path: the torrent name, then the path inside a multi-file torrent.
    Path(&'a str),
}

impl FileRef<'_> {
    /// librqbit's index of the file (padding files counted) and its length.
    fn find(&self, meta: &TorrentMeta) -> Option<(usize, u64)> {
        let mut listed = meta.files.iter().enumerate().filter(|(_, f)| !f.padding);
        let (id, file) = match *self {
            FileRef::Index(index) => listed.nth(index)?,
            FileRef::Path(path) => listed.find(|(_, f)| {
                if meta.single_file {
                    f.components.len() == 1 && f.components[0] == path
                } else {
                    path.strip_prefix(meta.name.as_str())
                        .and_then(|rest| rest.strip_prefix('/'))
                        .is_some_and(|rest| {
                            rest.split('/').eq(f.components.iter().map(String::as_str))
                        })
                }
            })?,
        };
        Some((id, file.length))
    }
}

impl std::fmt::Display for FileRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileRef::Index(index) => write!(f, "file #{index}"),
            FileRef::Path(path) => write!(f, "{path:?}"),
        }
    }
}

/// What the engine's table says of a torrent, for a stream reading it.
pub(crate) enum Lookup {
    Active(Handle),
    Waiting,
    Gone(TransferError),
}

impl Inner {
    /// The torrent's current state, as a stream needs it.
    pub(crate) fn lookup(&self, infohash: &[u8; 20]) -> Lookup {
        match lock(&self.torrents).get(infohash).map(|e| &e.state) {
            None => Lookup::Gone(TransferError::Removed {
                infohash: hex(infohash),
            }),
            Some(EntryState::Failed(message)) => Lookup::Gone(TransferError::Failed {
                infohash: hex(infohash),
                message: message.clone(),
            }),
            Some(EntryState::Resolving { .. } | EntryState::Replacing(_)) => Lookup::Waiting,
            Some(EntryState::Active(handle)) => Lookup::Active(handle.clone()),
        }
    }

    /// Waits until the torrent runs in librqbit with known metadata (a magnet may still be
    /// resolving, or being re-added with new peers). Fails if it fails or is removed. No time limit.
    pub(crate) async fn wait_active(
        &self,
        infohash: &[u8; 20],
    ) -> Result<(Handle, Arc<TorrentMeta>), TransferError> {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            match self.lookup(infohash) {
                Lookup::Active(handle) => {
                    let meta = lock(&self.torrents)
                        .get(infohash)
                        .and_then(|e| e.meta.clone());
                    if let Some(meta) = meta {
                        return Ok((handle, meta));
                    }
                }
                Lookup::Waiting => {}
                Lookup::Gone(error) => return Err(error),
            }
            tokio::select! {
                _ = &mut changed => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }
}
