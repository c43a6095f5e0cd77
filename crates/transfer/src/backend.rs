//! Every call into librqbit. Nothing outside this file names a librqbit item except the handle
//! alias, so replacing the engine means rewriting this file (and `fastresume.rs`, which knows
//! librqbit's resume-file layout).

use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use librqbit::api::TorrentIdOrHash;
use librqbit::dht::Id20;
use librqbit::limits::LimitsConfig;
use librqbit::{
    AddTorrent, AddTorrentOptions, AddTorrentResponse, ConnectionOptions, ListenerMode,
    ListenerOptions, PeerConnectionOptions, Session, SessionOptions, SessionPersistenceConfig,
    TorrentStatsState,
};
use tokio::io::{AsyncRead, AsyncSeek};

use crate::error::TransferError;
use crate::fastresume::hex;
use crate::metainfo::TorrentMeta;
use crate::progress::{Progress, TorrentState};

/// A torrent running in the session.
pub(crate) type Handle = Arc<librqbit::ManagedTorrent>;
/// The running librqbit session.
pub(crate) type EngineSession = Arc<Session>;

/// librqbit's blocking pool (disk reads and writes) has this many permits, and every open file
/// stream holds one for as long as it lives: room for the streams and 8 (librqbit's default) more.
const BLOCKING_PERMITS: usize = 8 + crate::stream::MAX_OPEN_STREAMS;

/// How long an outgoing TCP connect may take before the peer is retried later.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts a session that can reach nobody it was not told about.
///
/// - `dht: None`: no mainline DHT (no UDP socket, no bootstrap routers contacted).
/// - `disable_trackers: true` and no session trackers: announce URLs in torrents and magnets are
///   never contacted (we also strip them from every torrent before adding it).
/// - `disable_local_service_discovery: true`: no BEP 14 multicast on the LAN.
/// - `enable_upnp_port_forwarding: false`: no UPnP/SSDP to the router.
/// - TCP only, bound exactly to the configured address: uTP would bind a UDP socket too, and
///   librqbit's uTP is slower than TCP on loopback. Outgoing connections use TCP as well.
/// - No SOCKS proxy, no blocklist/allowlist URLs (both would be fetched over HTTP).
/// - A Transmission peer id and client name in the handshakes (`fingerprint.rs`), new each start.
///
/// Peers still exchange peer lists with each other (ut_pex) for public torrents; that is part of
/// the BitTorrent swarm, not a public service, and librqbit has no switch for it.
pub(crate) async fn start_session(
    listen: SocketAddr,
    download_dir: PathBuf,
    persistence_dir: PathBuf,
    upload_limit: Option<NonZeroU32>,
    download_limit: Option<NonZeroU32>,
) -> Result<EngineSession, TransferError> {
    let opts = SessionOptions {
        dht: None,
        disable_trackers: true,
        trackers: HashSet::new(),
        disable_local_service_discovery: true,
        fastresume: true,
        persistence: Some(SessionPersistenceConfig::Json {
            folder: Some(persistence_dir),
        }),
        listen: Some(ListenerOptions {
            mode: ListenerMode::TcpOnly,
            listen_addr: listen,
            enable_upnp_port_forwarding: false,
            utp_opts: None,
            announce_port: None,
            ..Default::default()
        }),
        connect: Some(ConnectionOptions {
            proxy_url: None,
            enable_tcp: true,
            peer_opts: Some(PeerConnectionOptions {
                connect_timeout: Some(CONNECT_TIMEOUT),
                ..Default::default()
            }),
        }),
        blocklist_url: None,
        allowlist_url: None,
        ratelimits: LimitsConfig {
            upload_bps: upload_limit,
            download_bps: download_limit,
        },
        runtime_worker_threads: Some(BLOCKING_PERMITS),
        // The handshakes name a common client, not kolokol or rqbit (see `fingerprint.rs`).
        peer_id: Some(Id20::new(crate::fingerprint::new_peer_id())),
        client_name_and_version: Some(crate::fingerprint::CLIENT_NAME_AND_VERSION.to_owned()),
        ..Default::default()
    };
    let session = guarded("start", "-", Session::new_with_opts(download_dir, opts))
        .await?
        .map_err(|source| TransferError::Start { listen, source })?;
    Ok(session)
}

/// The address the session really listens on.
pub(crate) fn listen_addr(session: &EngineSession) -> Option<SocketAddr> {
    session.listen_addr()
}

/// Runs a librqbit future on its own task, so that a panic inside librqbit (it has `unwrap`s and
/// `expect`s on data from peers) becomes an error instead of taking our task down with it.
async fn guarded<T: Send + 'static>(
    action: &'static str,
    infohash: &str,
    fut: impl Future<Output = T> + Send + 'static,
) -> Result<T, TransferError> {
    tokio::spawn(fut)
        .await
        .map_err(|e| match e.try_into_panic() {
            Ok(_) => TransferError::EnginePanicked {
                action,
                infohash: infohash.to_owned(),
            },
            Err(e) => TransferError::Internal(format!("librqbit task for {action}: {e}")),
        })
}

/// Adds a checked torrent whose files live in (or will be written to) `output_folder`.
pub(crate) async fn add(
    session: &EngineSession,
    meta: &TorrentMeta,
    output_folder: &Path,
    peers: &[SocketAddr],
) -> Result<Handle, TransferError> {
    let infohash = hex(&meta.infohash);
    let engine_err = |source| TransferError::Engine {
        action: "add",
        infohash: infohash.clone(),
        source,
    };
    let folder = output_folder
        .to_str()
        .ok_or_else(|| TransferError::Config(format!("folder {output_folder:?} is not UTF-8")))?
        .to_owned();
    let opts = AddTorrentOptions {
        // Existing data is checked and kept, not refused: that is how resume and seeding work.
        overwrite: true,
        output_folder: Some(folder),
        initial_peers: (!peers.is_empty()).then(|| peers.to_vec()),
        disable_trackers: true,
        ..Default::default()
    };
    let bytes = meta.minimal_torrent();
    let session = Arc::clone(session);
    let response = guarded("add", &infohash, async move {
        session
            .add_torrent(AddTorrent::from_bytes(bytes), Some(opts))
            .await
    })
    .await?
    .map_err(engine_err)?;
    match response {
        AddTorrentResponse::Added(_, handle) | AddTorrentResponse::AlreadyManaged(_, handle) => {
            Ok(handle)
        }
        AddTorrentResponse::ListOnly(_) => Err(TransferError::Internal(
            "librqbit listed a torrent it was asked to add".to_owned(),
        )),
    }
}

/// Fetches a magnet link's metadata (BEP 9) from `peers` without starting a download, and
/// returns the torrent as librqbit rebuilt it from the info dictionary.
pub(crate) async fn resolve_magnet(
    session: &EngineSession,
    infohash: &[u8; 20],
    peers: &[SocketAddr],
) -> Result<Vec<u8>, TransferError> {
    let hex_hash = hex(infohash);
    // Only the hash: trackers or other parameters of the user's magnet never reach librqbit.
    let magnet = format!("magnet:?xt=urn:btih:{hex_hash}");
    let opts = AddTorrentOptions {
        list_only: true,
        initial_peers: Some(peers.to_vec()),
        disable_trackers: true,
        ..Default::default()
    };
    let session = Arc::clone(session);
    let response = guarded("resolve", &hex_hash, async move {
        session
            .add_torrent(AddTorrent::from_url(magnet), Some(opts))
            .await
    })
    .await?
    .map_err(|source| TransferError::Engine {
        action: "resolve metadata of",
        infohash: hex_hash.clone(),
        source,
    })?;
    match response {
        AddTorrentResponse::ListOnly(listed) => Ok(listed.torrent_bytes.to_vec()),
        _ => Err(TransferError::Internal(
            "librqbit added a torrent it was asked only to list".to_owned(),
        )),
    }
}

/// librqbit's reader over one file of a running torrent: reads wait for missing pieces (and never
/// time out), and the torrent fetches the pieces from the read position onward (32 MiB) first.
pub(crate) type RawStream = Pin<Box<dyn RawStreamIo>>;

pub(crate) trait RawStreamIo: AsyncRead + AsyncSeek + Send {}
impl<T: AsyncRead + AsyncSeek + Send> RawStreamIo for T {}

/// Opens a reader over librqbit's file `file_id` (its index, padding files counted). Waits for
/// the initial check of data on disk and for a permit of librqbit's blocking pool.
pub(crate) async fn open_stream(
    handle: &Handle,
    file_id: usize,
) -> Result<RawStream, TransferError> {
    let infohash = hex(&handle.info_hash().0);
    let handle = Arc::clone(handle);
    let stream = guarded(
        "stream",
        &infohash,
        async move { handle.stream(file_id).await },
    )
    .await?
    .map_err(|source| TransferError::Engine {
        action: "stream",
        infohash,
        source,
    })?;
    Ok(Box::pin(stream))
}

/// Removes a torrent from the session, deleting its files if asked.
pub(crate) async fn remove(
    session: &EngineSession,
    infohash: &[u8; 20],
    delete_files: bool,
) -> Result<(), TransferError> {
    let hex_hash = hex(infohash);
    let session = Arc::clone(session);
    let id = TorrentIdOrHash::Hash(Id20::new(*infohash));
    guarded("remove", &hex_hash, async move {
        session.delete(id, delete_files).await
    })
    .await?
    .map_err(|source| TransferError::Engine {
        action: "remove",
        infohash: hex_hash,
        source,
    })
}

/// The pieces a running torrent has verified right now, as a BitTorrent bitfield (most significant
/// bit first). librqbit writes its own copy to disk only every 16 MiB of verified data. None if the
/// torrent is not running.
pub(crate) fn have_pieces(session: &EngineSession, infohash: &[u8; 20]) -> Option<Vec<u8>> {
    let api = librqbit::Api::new(Arc::clone(session), None);
    let (bits, _pieces) = api
        .api_dump_haves(TorrentIdOrHash::Hash(Id20::new(*infohash)))
        .ok()?;
    Some(bits.as_raw_slice().to_vec())
}

/// Stops every torrent and the listener.
pub(crate) async fn stop(session: &EngineSession) {
    session.stop().await;
}

/// Cancels everything the session runs, without waiting (for `Drop`).
pub(crate) fn cancel(session: &EngineSession) {
    session.cancellation_token().cancel();
}

/// The progress of a running torrent.
pub(crate) fn progress(handle: &Handle, name: Option<String>) -> Progress {
    let stats = handle.stats();
    let state = match stats.state {
        TorrentStatsState::Initializing { .. } => TorrentState::Checking,
        TorrentStatsState::Live if stats.finished => TorrentState::Seeding,
        TorrentStatsState::Live => TorrentState::Downloading,
        TorrentStatsState::Paused => TorrentState::Paused,
        TorrentStatsState::Error => TorrentState::Failed,
    };
    let live = stats.live.as_ref();
    Progress {
        name: handle.name().or(name),
        state,
        total_bytes: stats.total_bytes,
        // While checking, librqbit reports bytes *checked* here, not bytes known to be good.
        have_bytes: if state == TorrentState::Checking {
            0
        } else {
            stats.progress_bytes
        },
        finished: stats.finished && state != TorrentState::Checking,
        error: stats.error.clone(),
        peers: live.map(|l| l.snapshot.peer_stats.live).unwrap_or(0),
        download_rate: live.map(|l| l.download_speed.as_bytes()).unwrap_or(0),
        upload_rate: live.map(|l| l.upload_speed.as_bytes()).unwrap_or(0),
        uploaded_bytes: stats.uploaded_bytes,
    }
}

/// Waits until the torrent has every piece (returns at once if it has); an error if it failed.
pub(crate) async fn wait_completed(handle: &Handle) -> Result<(), String> {
    handle
        .wait_until_completed()
        .await
        .map_err(|e| format!("{e:#}"))
}
