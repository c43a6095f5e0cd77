//! `get`: download a publication (by record id) or any torrent (by magnet link) from the peers this node knows.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kolokol_core::magnet::Magnet;
use kolokol_core::record::{InfoHash, RecordId};
use kolokol_store::{TorrentRow, TorrentState};
use kolokol_transfer::Engine;
use kolokol_transfer::FetchSource;

use crate::cache::Cache;
use crate::catalog::CatalogService;
use crate::clock::unix_now;
use crate::data_dir::DataPaths;
use crate::discovery::Discovery;
use crate::error::ApiError;
use crate::peers::PeerRegistry;
use crate::tasks::Tasks;
use crate::views::{TransferView, torrent_name};

/// What downloads use: the engine that runs them, the catalog that remembers them, the peers whose BitTorrent
/// addresses it offers, the cache (what the viewer asked for) and discovery (DHT lookups and announcements).
#[derive(Clone)]
pub(crate) struct Fetcher {
    pub tasks: Tasks,
    /// Told of each completed download, so that earlier claims of it can be proven.
    pub replication: Arc<crate::replicas::Replication>,
    pub catalog: Arc<CatalogService>,
    pub engine: Arc<Engine>,
    pub peers: Arc<PeerRegistry>,
    pub cache: Arc<Cache>,
    pub dir: DataPaths,
    pub discovery: Discovery,
}

/// What `get` was asked for.
pub(crate) enum Target {
    Record(RecordId),
    Magnet(Magnet),
    /// A checked .torrent file (`torrent_file.rs`), in its minimal form.
    Torrent(kolokol_transfer::metainfo::MinimalTorrent),
}

fn parse_target(target: &str) -> Result<Target, ApiError> {
    let target = target.trim();
    if target.starts_with("magnet:") {
        return Magnet::parse(target)
            .map(Target::Magnet)
            .map_err(|e| ApiError::Invalid(format!("malformed magnet link: {e}")));
    }
    target.parse::<RecordId>().map(Target::Record).map_err(|_| {
        ApiError::Invalid(format!(
            "{target:?} is neither a publication id (64 hex characters) nor a magnet link"
        ))
    })
}

/// Start (or join) a download; returns at once with where the data will be.
pub(crate) async fn start_get(
    fetcher: &Fetcher,
    target: &str,
    out_dir: Option<PathBuf>,
) -> Result<TransferView, ApiError> {
    start_get_target(fetcher, parse_target(target)?, out_dir).await
}

/// [`start_get`] of a target already parsed.
pub(crate) async fn start_get_target(
    fetcher: &Fetcher,
    target: Target,
    out_dir: Option<PathBuf>,
) -> Result<TransferView, ApiError> {
    let mut torrent = None;
    let (infohash, record_id, name, magnet_peers) = match target {
        Target::Record(id) => {
            let record = fetcher.catalog.run(move |c| c.get_record(&id)).await?;
            let record = record.ok_or_else(|| {
                ApiError::NotFound(format!(
                    "unknown publication {id}: it is not in this node's catalog"
                ))
            })?;
            let body = record.body();
            let name = body.files.first().map(|f| torrent_name(&f.path).to_owned());
            (body.infohash, Some(id), name, Vec::new())
        }
        Target::Magnet(magnet) => (
            magnet.infohash,
            first_record_of(fetcher, magnet.infohash).await?,
            magnet.name.clone(),
            magnet.peers.clone(),
        ),
        Target::Torrent(minimal) => {
            // The info-hash is the SHA-1 of the file's info dictionary, so a record with this info-hash signed
            // exactly these files: that is the check against the catalog. With no such record the torrent is
            // downloaded all the same, as a magnet link would be, and the view says so by having no id.
            let infohash = InfoHash(minimal.infohash);
            torrent = Some(minimal.bytes);
            (
                infohash,
                first_record_of(fetcher, infohash).await?,
                Some(minimal.name),
                Vec::new(),
            )
        }
    };
    if let Some(dir) = &out_dir {
        if !dir.is_absolute() {
            return Err(ApiError::Invalid(format!(
                "{} is not an absolute path",
                dir.display()
            )));
        }
        fs::create_dir_all(dir)
            .map_err(|e| ApiError::Invalid(format!("{}: {e}", dir.display())))?;
    }

    fetcher.cache.requested(&fetcher.catalog, &infohash).await;
    let existing = fetcher
        .catalog
        .run(move |c| c.get_torrent(&infohash))
        .await?;
    if let Some(row) = existing {
        if let Some(dir) = &out_dir
            && dir != &row.output_dir
        {
            if row.state != TorrentState::Complete {
                return Err(ApiError::Invalid(format!(
                    "this publication is already downloading into {}; wait for it to finish",
                    row.output_dir.display()
                )));
            }
            copy_complete(fetcher, &row, dir).await?;
            let mut view = crate::views::transfer_view(
                &fetcher.catalog,
                &fetcher.engine,
                &fetcher.cache,
                &infohash,
                record_id,
            )
            .await?;
            view.path = Some(dir.join(&row.name));
            return Ok(view);
        }
        if fetcher.engine.progress(&infohash.0).is_none() {
            resume(fetcher, &row, &[]).await?;
        }
        return crate::views::transfer_view(
            &fetcher.catalog,
            &fetcher.engine,
            &fetcher.cache,
            &infohash,
            record_id,
        )
        .await;
    }

    // A user's `get` or the gateway: the reader's own viewing, not advertised unless they share what they watch.
    begin(
        fetcher,
        infohash,
        name,
        out_dir,
        magnet_peers,
        torrent,
        true,
    )
    .await?;
    crate::views::transfer_view(
        &fetcher.catalog,
        &fetcher.engine,
        &fetcher.cache,
        &infohash,
        record_id,
    )
    .await
}

/// The id of a record in the catalog for this infohash, if any (the record's signature covers the infohash).
async fn first_record_of(
    fetcher: &Fetcher,
    infohash: InfoHash,
) -> Result<Option<RecordId>, ApiError> {
    Ok(fetcher
        .catalog
        .run(move |c| c.records_by_infohash(&infohash))
        .await?
        .first()
        .map(|r| r.id()))
}

/// Start downloading a publication this node knows the record of, into the downloads folder, also from `extra_peers`
/// (a replica fetches from its publisher). Joins a download already running (and leaves its `watched` mark as it
/// is). `watched`: fetched for the reader (a pin) rather than on purpose for others (a replica, a mirror).
pub(crate) async fn start_download(
    fetcher: &Fetcher,
    record: &kolokol_core::record::SignedRecord,
    extra_peers: Vec<SocketAddr>,
    watched: bool,
) -> Result<(), ApiError> {
    let body = record.body();
    let infohash = body.infohash;
    let existing = fetcher
        .catalog
        .run(move |c| c.get_torrent(&infohash))
        .await?;
    if let Some(row) = existing {
        if fetcher.engine.progress(&body.infohash.0).is_none() {
            resume(fetcher, &row, &extra_peers).await?;
        } else if !extra_peers.is_empty() {
            let _ = fetcher
                .engine
                .add_peers(&body.infohash.0, extra_peers)
                .await;
        }
        return Ok(());
    }
    let name = body.files.first().map(|f| torrent_name(&f.path).to_owned());
    begin(
        fetcher,
        body.infohash,
        name,
        None,
        extra_peers,
        None,
        watched,
    )
    .await
}

/// A new download: its row in the catalog (so it resumes after a restart), the engine, and the watch that records
/// its completion. With `torrent` (a checked minimal .torrent) the metadata is known at once; otherwise it comes from
/// peers (BEP 9).
async fn begin(
    fetcher: &Fetcher,
    infohash: InfoHash,
    name: Option<String>,
    out_dir: Option<PathBuf>,
    extra_peers: Vec<SocketAddr>,
    torrent: Option<Vec<u8>>,
    watched: bool,
) -> Result<(), ApiError> {
    let output_dir =
        out_dir.unwrap_or_else(|| fetcher.dir.downloads_dir().join(infohash.to_string()));
    fs::create_dir_all(&output_dir)
        .map_err(|e| ApiError::internal("creating the download folder", e))?;
    let mut peers = fetcher.peers.bt_addrs();
    peers.extend(extra_peers);
    let uri = Magnet {
        infohash,
        name: name.clone(),
        peers: Vec::new(),
        trackers: Vec::new(),
    }
    .to_uri();
    let row = TorrentRow {
        infohash,
        name: name.unwrap_or_else(|| infohash.to_string()),
        torrent: torrent.clone(),
        output_dir: output_dir.clone(),
        state: TorrentState::Downloading,
        added_at: unix_now(),
        watched,
    };
    let stored = row.clone();
    fetcher.catalog.run(move |c| c.put_torrent(&stored)).await?;
    let source = match torrent {
        Some(bytes) => FetchSource::Torrent(bytes),
        None => FetchSource::Magnet(uri),
    };
    fetcher
        .engine
        .fetch(source, &output_dir, peers)
        .await
        .map_err(|e| ApiError::internal("starting the download", e))?;
    watch(fetcher.clone(), infohash);
    crate::discovery::spawn_peer_lookup(fetcher.discovery.clone(), infohash);
    Ok(())
}

/// A kolokol peer told us its BitTorrent address: every download still in progress may find data there.
pub(crate) async fn offer_peer_to_downloads(fetcher: &Fetcher, bt_addr: SocketAddr) {
    let rows = match fetcher.catalog.run(|c| c.list_torrents()).await {
        Ok(rows) => rows,
        Err(error) => {
            tracing::debug!(%error, "cannot list downloads to offer a peer to");
            return;
        }
    };
    let downloading: Vec<InfoHash> = rows
        .into_iter()
        .filter(|row| row.state == TorrentState::Downloading)
        .map(|row| row.infohash)
        .collect();
    for infohash in downloading {
        let fetcher = fetcher.clone();
        let tasks = fetcher.tasks.clone();
        tasks.spawn("offer a peer to a download", async move {
            if let Err(error) = fetcher.engine.add_peers(&infohash.0, vec![bt_addr]).await {
                tracing::debug!(%error, %infohash, "cannot offer a peer to a download");
            }
        });
    }
}

/// Start the engine on a torrent known from an earlier run (at start-up, or when `get` asks again).
pub(crate) async fn resume(
    fetcher: &Fetcher,
    row: &TorrentRow,
    extra_peers: &[SocketAddr],
) -> Result<(), ApiError> {
    let mut peers = fetcher.peers.bt_addrs();
    peers.extend_from_slice(extra_peers);
    match (&row.torrent, row.state) {
        (Some(torrent), TorrentState::Complete) => {
            fetcher
                .engine
                .seed(torrent, &row.output_dir)
                .await
                .map_err(|e| ApiError::internal("seeding", e))?;
        }
        (torrent, _) => {
            let source = match torrent {
                Some(bytes) => FetchSource::Torrent(bytes.clone()),
                None => FetchSource::Magnet(
                    Magnet {
                        infohash: row.infohash,
                        name: None,
                        peers: Vec::new(),
                        trackers: Vec::new(),
                    }
                    .to_uri(),
                ),
            };
            fetcher
                .engine
                .fetch(source, &row.output_dir, peers)
                .await
                .map_err(|e| ApiError::internal("resuming the download", e))?;
            watch(fetcher.clone(), row.infohash);
            crate::discovery::spawn_peer_lookup(fetcher.discovery.clone(), row.infohash);
        }
    }
    Ok(())
}

/// Follow a download until it completes, then record the metainfo and the new state so it resumes as a seed.
fn watch(fetcher: Fetcher, infohash: InfoHash) {
    let cancel = fetcher.tasks.token().clone();
    let tasks = fetcher.tasks.clone();
    tasks.spawn("download watch", async move {
        // Keep the metainfo as soon as it is known: a download interrupted by a crash or a restart then resumes from
        // its verified pieces at once, even before (or without) a peer that could hand out the metadata again.
        let keep_metainfo = async {
            loop {
                if let Some(torrent) = fetcher.engine.torrent_bytes(&infohash.0) {
                    let name = fetcher.engine.progress(&infohash.0).and_then(|p| p.name);
                    let kept = fetcher
                        .catalog
                        .run(move |c| {
                            c.update_torrent(
                                &infohash,
                                name.as_deref(),
                                Some(&torrent),
                                TorrentState::Downloading,
                            )
                        })
                        .await;
                    if let Err(error) = kept {
                        tracing::warn!(%error, "could not keep a download's metainfo");
                        tracing::debug!(%error, %infohash, "could not keep a download's metainfo");
                    }
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        };
        let finished = fetcher.engine.wait_finished(&infohash.0);
        tokio::pin!(finished);
        let early = tokio::select! {
            _ = cancel.cancelled() => return,
            result = &mut finished => Some(result),
            _ = keep_metainfo => None,
        };
        let result = match early {
            Some(result) => result,
            None => tokio::select! {
                _ = cancel.cancelled() => return,
                result = &mut finished => result,
            },
        };
        match result {
            Ok(()) => {
                let torrent = fetcher.engine.torrent_bytes(&infohash.0);
                let name = fetcher.engine.progress(&infohash.0).and_then(|p| p.name);
                sync_download(&fetcher, &infohash, name.as_deref()).await;
                let updated = fetcher
                    .catalog
                    .run(move |c| {
                        c.update_torrent(
                            &infohash,
                            name.as_deref(),
                            torrent.as_deref(),
                            TorrentState::Complete,
                        )
                    })
                    .await;
                // Every connected peer learns that this node now holds it complete, and the DHT lists it as a
                // seeder: unless the reader watched it and does not share what they watch.
                let advertised = matches!(
                    fetcher.catalog.run(move |c| c.get_torrent(&infohash)).await,
                    Ok(Some(row)) if fetcher.cache.advertises(&row)
                );
                if advertised {
                    fetcher.peers.request(kolokol_wire::Message::Holding {
                        infohashes: vec![infohash.0],
                    });
                    // The peers that claimed it before can be challenged now (proven replicas).
                    let total = fetcher
                        .catalog
                        .run(move |c| c.records_by_infohash(&infohash))
                        .await
                        .ok()
                        .and_then(|records| records.first().map(|r| r.body().total_size()));
                    if let Some(total) = total {
                        fetcher.replication.now_held(infohash, total);
                    }
                    crate::discovery::announce_torrent(&fetcher.discovery, infohash).await;
                }
                match updated {
                    Ok(()) => tracing::info!("download complete and verified"),
                    Err(error) => {
                        tracing::warn!(%error, "could not record a finished download")
                    }
                }
                tracing::debug!(%infohash, advertised, "download complete");
            }
            Err(error) => {
                tracing::warn!(%error, "download failed");
                tracing::debug!(%infohash, "the failed download");
            }
        }
    });
}

/// Puts a finished download's files on disk before the catalog calls it complete (see `durable`). If that fails, the
/// download is still recorded complete: after a power cut its data is then only sampled at the next start.
async fn sync_download(fetcher: &Fetcher, infohash: &InfoHash, name: Option<&str>) {
    let infohash = *infohash;
    let row = fetcher.catalog.run(move |c| c.get_torrent(&infohash)).await;
    let (Ok(Some(row)), Some(name)) = (row, name) else {
        return;
    };
    let path = row.output_dir.join(name);
    let synced = fetcher
        .tasks
        .spawn_blocking("sync a download", move || {
            crate::durable::sync_tree_and_parent(&path)
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|result| result);
    if let Err(error) = synced {
        tracing::warn!(%error, "could not sync a finished download to disk");
        tracing::debug!(%error, %infohash, "could not sync a finished download to disk");
    }
}

/// `get -o DIR` of data this node already holds: copy the verified files there.
async fn copy_complete(fetcher: &Fetcher, row: &TorrentRow, dir: &Path) -> Result<(), ApiError> {
    let from = row.output_dir.join(&row.name);
    let to = dir.join(&row.name);
    fetcher
        .tasks
        .spawn_blocking("copy a download", move || copy_tree(&from, &to))
        .await
        .map_err(|e| ApiError::internal("copy task", e))?
        .map_err(|e| ApiError::internal("copying the data", e))
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    let meta = fs::symlink_metadata(from)?;
    if meta.is_file() {
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::copy(from, to)?;
    } else if meta.is_dir() {
        fs::create_dir_all(to)?;
        for entry in fs::read_dir(from)? {
            let entry = entry?;
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
    }
    Ok(())
}
