//! Runs the cache policy for the node's life: tells it what is held and (for a mirror) what the catalog offers,
//! and carries out its actions (mirror fetches, evictions). The state is the cache owner's (`cache.rs`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use kolokol_core::record::InfoHash;
use kolokol_core::replication::cache::{CacheAction, Candidate};
use kolokol_store::TorrentState;

use crate::catalog::CatalogError;
use crate::clock::unix_now;
use crate::context::Inner;

/// How often the policy is run without a wake-up.
const ROUND: Duration = Duration::from_secs(5);
/// Newest catalog records a mirror considers each round.
const MIRROR_WINDOW: u32 = 500;
/// A mirror's download that gains no verified byte for this long is given up (and retried later by the policy's
/// back-off): a publication nobody can serve must not hold a fetch slot for ever.
const MIRROR_STALL: Duration = Duration::from_secs(180);

/// Run the policy for the node's lifetime.
pub(crate) fn spawn(inner: Arc<Inner>) {
    let tasks = inner.tasks.clone();
    tasks.spawn("cache policy", async move {
        loop {
            if let Err(error) = round(&inner).await {
                tracing::warn!(%error, "cache round failed");
            }
            tokio::select! {
                _ = inner.tasks.cancelled() => return,
                _ = inner.cache.woken() => {}
                _ = tokio::time::sleep(ROUND) => {}
            }
        }
    });
}

async fn round(inner: &Arc<Inner>) -> Result<(), CatalogError> {
    sync_held(inner).await?;
    if inner.cache.is_mirror() {
        offer_catalog(inner).await?;
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
async fn sync_held(inner: &Inner) -> Result<(), CatalogError> {
    let (rows, entries) = inner
        .catalog
        .run(|c| Ok((c.list_torrents()?, c.cache_entries()?)))
        .await?;
    let entries: HashMap<InfoHash, kolokol_store::CacheEntry> =
        entries.into_iter().map(|e| (e.infohash, e)).collect();
    let mut new_rows = Vec::new();
    {
        let mut known = inner.cache.known();
        for row in rows {
            match known.get(&row.infohash) {
                Some(state) if *state == row.state => {}
                Some(_) => {
                    // A download finished (the policy's own fetches are also reported by their watcher; twice is
                    // fine).
                    inner
                        .cache
                        .policy()
                        .fetch_finished(&row.infohash, true, unix_now());
                    known.insert(row.infohash, row.state);
                }
                None => new_rows.push(row),
            }
        }
    }
    if new_rows.is_empty() {
        return Ok(());
    }
    let infohashes: Vec<InfoHash> = new_rows.iter().map(|r| r.infohash).collect();
    let records = inner
        .catalog
        .run(move |c| {
            infohashes
                .iter()
                .map(|infohash| c.records_by_infohash(infohash))
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
    let own = inner.author_key.public();
    let data_root = inner.dir.root().to_path_buf();
    let mut known = inner.cache.known();
    for (row, records) in new_rows.into_iter().zip(records) {
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
async fn offer_catalog(inner: &Inner) -> Result<(), CatalogError> {
    let (page, following) = inner
        .catalog
        .run(|c| Ok((c.list_records(MIRROR_WINDOW, 0)?, c.following()?)))
        .await?;
    let followed: HashSet<_> = following.into_iter().map(|f| f.author).collect();
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
        .catalog
        .run(move |c| c.records_by_infohash(&infohash))
        .await
        .ok()
        .and_then(|r| r.into_iter().next());
    let Some(record) = record else {
        inner
            .cache
            .policy()
            .fetch_finished(&infohash, false, unix_now());
        return;
    };
    if let Err(error) = crate::fetch::start_download(inner, &record, Vec::new(), false).await {
        tracing::warn!(%error, "mirror cannot start a download");
        tracing::debug!(%error, %infohash, "mirror cannot start a download");
        inner
            .cache
            .policy()
            .fetch_finished(&infohash, false, unix_now());
        return;
    }
    tracing::info!("mirroring");
    tracing::debug!(%infohash, title = %record.body().title, "mirroring");
    let inner = inner.clone();
    let tasks = inner.tasks.clone();
    tasks.spawn("mirror download watch", async move {
        let ok = tokio::select! {
            _ = inner.tasks.cancelled() => return,
            result = inner.engine.wait_finished(&infohash.0) => result.is_ok(),
            _ = stalled(&inner, infohash) => false,
        };
        if !ok {
            tracing::info!("mirror gives up a download that makes no progress");
            tracing::debug!(%infohash, "mirror gives up a download that makes no progress");
            remove_data(&inner, infohash).await;
        }
        inner
            .cache
            .policy()
            .fetch_finished(&infohash, ok, unix_now());
        inner.cache.wake();
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
        tracing::info!("evicted (over the cache quota)");
        tracing::debug!(%infohash, "evicted (over the cache quota)");
    }
}

/// Stop a torrent and delete its data inside the data directory and its row. Returns whether there was one.
async fn remove_data(inner: &Inner, infohash: InfoHash) -> bool {
    let row = match inner.catalog.run(move |c| c.get_torrent(&infohash)).await {
        Ok(Some(row)) => row,
        _ => return false,
    };
    let inside = row.output_dir.starts_with(inner.dir.root());
    if let Err(error) = inner.engine.remove(&infohash.0, inside).await {
        tracing::debug!(%error, %infohash, "engine had nothing to remove");
    }
    if inside {
        let dir = row.output_dir.clone();
        let removed = inner
            .tasks
            .spawn_blocking("remove evicted data", move || std::fs::remove_dir_all(&dir))
            .await;
        if !matches!(removed, Ok(Ok(()))) {
            tracing::debug!(%infohash, "evicted data was not fully removed");
        }
    }
    if let Err(error) = inner
        .catalog
        .run(move |c| c.delete_torrent(&infohash))
        .await
    {
        tracing::warn!(%error, "cannot forget an evicted torrent");
        tracing::debug!(%error, %infohash, "cannot forget an evicted torrent");
    }
    inner.cache.known().remove(&infohash);
    true
}
