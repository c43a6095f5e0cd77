//! What this node keeps of others' publications: mirror mode and the viewer cache, under a quota.
//!
//! The decisions (what to fetch, what to evict) are `kolokol_core::replication::cache::CachePolicy`'s; this module
//! feeds it the catalog, the held torrents, pins, requests and holder counts, and carries out its actions. Data this
//! node published, data the user saved outside the data directory (`get -o`) and pinned data are never evicted.

use std::collections::{HashMap, HashSet};

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use kolokol_core::record::InfoHash;
use kolokol_core::replication::cache::{
    CacheAction, CacheConfig, CacheMode, CachePolicy, Candidate,
};
use kolokol_store::TorrentState;
use tokio::sync::Notify;

use crate::config::CacheOptions;
use crate::node::{Inner, unix_now};

/// How often the policy is run without a wake-up.
const ROUND: Duration = Duration::from_secs(5);
/// Newest catalog records a mirror considers each round.
const MIRROR_WINDOW: u32 = 500;
/// Downloads a mirror runs at once.
const MIRROR_PARALLEL: usize = 2;
/// A mirror's download that gains no verified byte for this long is given up (and retried later by the policy's
/// back-off): a publication nobody can serve must not hold a fetch slot for ever.
const MIRROR_STALL: Duration = Duration::from_secs(180);

/// The cache settings and policy of the node.
pub(crate) struct Cache {
    options: CacheOptions,
    policy: Mutex<CachePolicy>,
    /// Torrents the policy has been told about, with the state it was told.
    known: Mutex<HashMap<InfoHash, TorrentState>>,
    wake: Notify,
}

impl Cache {
    pub fn new(options: CacheOptions) -> Cache {
        let mode = if options.mirror {
            CacheMode::Mirror
        } else {
            CacheMode::Viewer
        };
        let policy = CachePolicy::new(CacheConfig {
            mode,
            quota_bytes: options.quota,
            max_parallel_fetches: MIRROR_PARALLEL,
        });
        Cache {
            options,
            policy: Mutex::new(policy),
            known: Mutex::new(HashMap::new()),
            wake: Notify::new(),
        }
    }

    /// Bytes of others' publications this node may keep.
    pub fn quota(&self) -> u64 {
        self.options.quota
    }

    fn policy(&self) -> MutexGuard<'_, CachePolicy> {
        self.policy.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn known(&self) -> MutexGuard<'_, HashMap<InfoHash, TorrentState>> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The user pinned or unpinned a publication.
pub(crate) fn pinned(inner: &Inner, infohash: &InfoHash, pinned: bool) {
    let mut policy = inner.cache.policy();
    if pinned {
        policy.pin(infohash);
    } else {
        policy.unpin(infohash);
    }
    drop(policy);
    inner.cache.wake.notify_one();
}

/// A publication's data was asked for (a user `get`, the streaming gateway).
pub(crate) fn requested(inner: &Inner, infohash: &InfoHash) {
    let now = unix_now();
    if let Err(error) = inner.catalog().touch(infohash, now) {
        tracing::debug!(%error, "cannot note a request");
    }
    inner.cache.policy().requested(infohash, now);
}

/// A publication's data is gone (its author was blocked): off the policy's books.
pub(crate) fn forget(inner: &Inner, infohash: &InfoHash) {
    inner.cache.policy().forget(infohash);
    inner.cache.known().remove(infohash);
}

/// Run the policy for the node's lifetime.
pub(crate) fn spawn(inner: Arc<Inner>) {
    tokio::spawn(async move {
        loop {
            if let Err(error) = round(&inner).await {
                tracing::warn!(%error, "cache round failed");
            }
            tokio::select! {
                _ = inner.cancel.cancelled() => return,
                _ = inner.cache.wake.notified() => {}
                _ = tokio::time::sleep(ROUND) => {}
            }
        }
    });
}

async fn round(inner: &Arc<Inner>) -> Result<(), String> {
    sync_held(inner).map_err(|e| e.to_string())?;
    if inner.cache.options.mirror {
        offer_catalog(inner).map_err(|e| e.to_string())?;
    }
    let actions = inner.cache.policy().next_actions(unix_now());
    for action in actions {
        match action {
            CacheAction::Fetch(infohash) => fetch(inner, infohash).await,
            CacheAction::Evict(infohash) => evict(inner, infohash).await,
        }
    }
    Ok(())
}

/// Tell the policy about held torrents it does not know yet (downloads the user started, replicas, imports).
fn sync_held(inner: &Inner) -> Result<(), kolokol_store::StoreError> {
    let rows = inner.catalog().list_torrents()?;
    let entries: HashMap<InfoHash, kolokol_store::CacheEntry> = inner
        .catalog()
        .cache_entries()?
        .into_iter()
        .map(|e| (e.infohash, e))
        .collect();
    let own = inner.author_key.public();
    let data_root = inner.dir.root().to_path_buf();
    let mut known = inner.cache.known();
    for row in rows {
        match known.get(&row.infohash) {
            Some(state) if *state == row.state => continue,
            Some(_) => {
                // A download finished (the policy's own fetches are also reported by their watcher; twice is fine).
                inner
                    .cache
                    .policy()
                    .fetch_finished(&row.infohash, true, unix_now());
                known.insert(row.infohash, row.state);
                continue;
            }
            None => {}
        }
        let records = inner.catalog().records_by_infohash(&row.infohash)?;
        let size = records.first().map(|r| r.body().total_size()).or_else(|| {
            inner
                .engine
                .progress(&row.infohash.0)
                .map(|p| p.total_bytes)
                .filter(|size| *size > 0)
        });
        let Some(size) = size else {
            // A magnet download whose size is not known yet: told about once its metadata arrived.
            continue;
        };
        // Own publications and data saved outside the data directory are not the cache's: they do not count against
        // the quota and are never evicted.
        if records.iter().any(|r| r.body().author == own) || !row.output_dir.starts_with(&data_root)
        {
            known.insert(row.infohash, row.state);
            continue;
        }
        let entry = entries.get(&row.infohash);
        let pinned = entry.is_some_and(|e| e.pinned);
        let last = entry.map_or(row.added_at, |e| e.last_requested.max(row.added_at));
        let mut policy = inner.cache.policy();
        match row.state {
            TorrentState::Complete => policy.held(row.infohash, size, pinned, last),
            TorrentState::Downloading => {
                policy.fetch_started(row.infohash, size, last.max(unix_now()));
                if pinned {
                    policy.pin(&row.infohash);
                }
            }
        }
        known.insert(row.infohash, row.state);
    }
    Ok(())
}

/// A mirror considers the newest publications of the catalog, with what it knows of their holders.
fn offer_catalog(inner: &Inner) -> Result<(), kolokol_store::StoreError> {
    let page = inner.catalog().list_records(MIRROR_WINDOW, 0)?;
    let followed: HashSet<_> = inner
        .catalog()
        .following()?
        .into_iter()
        .map(|f| f.author)
        .collect();
    let mut policy = inner.cache.policy();
    for record in &page.records {
        let body = record.body();
        let holders = inner.replication.holders(&body.infohash).len();
        policy.offer(Candidate {
            infohash: body.infohash,
            size: body.total_size(),
            created: body.created,
            followed: followed.contains(&body.author),
            holders: u32::try_from(holders).unwrap_or(u32::MAX),
        });
    }
    Ok(())
}

async fn fetch(inner: &Arc<Inner>, infohash: InfoHash) {
    let record = inner
        .catalog()
        .records_by_infohash(&infohash)
        .ok()
        .and_then(|r| r.into_iter().next());
    let Some(record) = record else {
        inner
            .cache
            .policy()
            .fetch_finished(&infohash, false, unix_now());
        return;
    };
    if let Err(error) = crate::fetch::start_download(inner, &record, Vec::new()).await {
        tracing::warn!(%error, %infohash, "mirror cannot start a download");
        inner
            .cache
            .policy()
            .fetch_finished(&infohash, false, unix_now());
        return;
    }
    tracing::info!(%infohash, title = %record.body().title, "mirroring");
    let inner = inner.clone();
    tokio::spawn(async move {
        let ok = tokio::select! {
            _ = inner.cancel.cancelled() => return,
            result = inner.engine.wait_finished(&infohash.0) => result.is_ok(),
            _ = stalled(&inner, infohash) => false,
        };
        if !ok {
            tracing::info!(%infohash, "mirror gives up a download that makes no progress");
            remove_data(&inner, infohash).await;
        }
        inner
            .cache
            .policy()
            .fetch_finished(&infohash, ok, unix_now());
        inner.cache.wake.notify_one();
    });
}

/// Returns once a download has gained no verified byte for [`MIRROR_STALL`].
async fn stalled(inner: &Inner, infohash: InfoHash) {
    let mut best = 0;
    let mut since = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let have = inner
            .engine
            .progress(&infohash.0)
            .map_or(0, |p| p.have_bytes);
        if have > best {
            best = have;
            since = tokio::time::Instant::now();
        } else if since.elapsed() >= MIRROR_STALL {
            return;
        }
    }
}

/// Remove a publication's data from this node; its record stays in the catalog.
async fn evict(inner: &Arc<Inner>, infohash: InfoHash) {
    if remove_data(inner, infohash).await {
        tracing::info!(%infohash, "evicted (over the cache quota)");
    }
}

/// Stop a torrent and delete its data inside the data directory and its row. Returns whether there was one.
async fn remove_data(inner: &Inner, infohash: InfoHash) -> bool {
    let row = match inner.catalog().get_torrent(&infohash) {
        Ok(Some(row)) => row,
        _ => return false,
    };
    let inside = row.output_dir.starts_with(inner.dir.root());
    if let Err(error) = inner.engine.remove(&infohash.0, inside).await {
        tracing::debug!(%error, %infohash, "engine had nothing to remove");
    }
    if inside {
        let _ = std::fs::remove_dir_all(&row.output_dir);
    }
    if let Err(error) = inner.catalog().delete_torrent(&infohash) {
        tracing::warn!(%error, %infohash, "cannot forget an evicted torrent");
    }
    inner.cache.known().remove(&infohash);
    true
}
