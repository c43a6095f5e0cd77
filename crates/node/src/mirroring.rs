//! Runs the cache policy for the node's life: tells it what is held and (for a mirror) what the catalog offers,
//! and carries out its actions (mirror fetches, evictions). The state is the cache owner's (`cache.rs`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use kolokol_core::record::InfoHash;
use kolokol_core::replication::cache::{CacheAction, Candidate};
use kolokol_store::TorrentState;
use kolokol_transfer::Engine;

use crate::cache::Cache;
use crate::catalog::CatalogError;
use crate::catalog::CatalogService;
use crate::clock::unix_now;
use crate::data_dir::DataPaths;
use crate::fetch::Fetcher;
use crate::replicas::Replication;
use crate::tasks::Tasks;

/// What mirror mode uses: the cache policy, the catalog, the engine and the downloads it starts (through the
/// fetcher), the replication owner (what is held for others is never evicted). Cheap to clone.
#[derive(Clone)]
pub(crate) struct Mirror {
    pub tasks: Tasks,
    pub cache: Arc<Cache>,
    pub catalog: Arc<CatalogService>,
    pub engine: Arc<Engine>,
    pub replication: Arc<Replication>,
    pub identities: Arc<crate::identities::Identities>,
    pub dir: DataPaths,
    pub fetcher: Fetcher,
}

/// How often the policy is run without a wake-up.
const ROUND: Duration = Duration::from_secs(5);
/// Newest catalog records a mirror considers each round.
const MIRROR_WINDOW: u32 = 500;
/// A mirror's download that gains no verified byte for this long is given up (and retried later by the policy's
/// back-off): a publication nobody can serve must not hold a fetch slot for ever.
const MIRROR_STALL: Duration = Duration::from_secs(180);

/// Run the policy for the node's lifetime.
pub(crate) fn spawn(mirror: Mirror) {
    let tasks = mirror.tasks.clone();
    tasks.spawn("cache policy", async move {
        loop {
            if let Err(error) = round(&mirror).await {
                tracing::warn!(%error, "cache round failed");
            }
            tokio::select! {
                _ = mirror.tasks.cancelled() => return,
                _ = mirror.cache.woken() => {}
                _ = tokio::time::sleep(ROUND) => {}
            }
        }
    });
}

async fn round(mirror: &Mirror) -> Result<(), CatalogError> {
    sync_held(mirror).await?;
    if mirror.cache.is_mirror() {
        offer_catalog(mirror).await?;
    }
    let actions = mirror.cache.policy().next_actions(unix_now());
    for action in actions {
        match action {
            CacheAction::Fetch(infohash) => fetch(mirror, infohash).await,
            CacheAction::Evict(infohash) => evict(mirror, infohash).await,
        }
    }
    Ok(())
}

/// Tell the policy about held torrents it does not know yet (downloads the user started, replicas, imports).
async fn sync_held(mirror: &Mirror) -> Result<(), CatalogError> {
    let (rows, entries) = mirror
        .catalog
        .run(|c| Ok((c.list_torrents()?, c.cache_entries()?)))
        .await?;
    let entries: HashMap<InfoHash, kolokol_store::CacheEntry> =
        entries.into_iter().map(|e| (e.infohash, e)).collect();
    let mut new_rows = Vec::new();
    {
        let mut known = mirror.cache.known();
        for row in rows {
            match known.get(&row.infohash) {
                Some(state) if *state == row.state => {}
                Some(_) => {
                    // A download finished (the policy's own fetches are also reported by their watcher; twice is
                    // fine).
                    mirror
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
    let records = mirror
        .catalog
        .run(move |c| {
            infohashes
                .iter()
                .map(|infohash| c.records_by_infohash(infohash))
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
    let data_root = mirror.dir.root().to_path_buf();
    let mut known = mirror.cache.known();
    for (row, records) in new_rows.into_iter().zip(records) {
        let size = records.first().map(|r| r.body().total_size()).or_else(|| {
            mirror
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
        if records
            .iter()
            .any(|r| mirror.identities.is_own(&r.body().author))
            || !row.output_dir.starts_with(&data_root)
        {
            known.insert(row.infohash, row.state);
            continue;
        }
        let entry = entries.get(&row.infohash);
        let pinned = entry.is_some_and(|e| e.pinned);
        let last = entry.map_or(row.added_at, |e| e.last_requested.max(row.added_at));
        let mut policy = mirror.cache.policy();
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
async fn offer_catalog(mirror: &Mirror) -> Result<(), CatalogError> {
    let (page, following) = mirror
        .catalog
        .run(|c| Ok((c.list_records(MIRROR_WINDOW, 0)?, c.following()?)))
        .await?;
    let followed: HashSet<_> = following.into_iter().map(|f| f.author).collect();
    let mut policy = mirror.cache.policy();
    for record in &page.records {
        let body = record.body();
        let holders = mirror.replication.holders(&body.infohash).len();
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

async fn fetch(mirror: &Mirror, infohash: InfoHash) {
    let record = mirror
        .catalog
        .run(move |c| c.records_by_infohash(&infohash))
        .await
        .ok()
        .and_then(|r| r.into_iter().next());
    let Some(record) = record else {
        mirror
            .cache
            .policy()
            .fetch_finished(&infohash, false, unix_now());
        return;
    };
    if let Err(error) =
        crate::fetch::start_download(&mirror.fetcher, &record, Vec::new(), false).await
    {
        tracing::warn!(%error, "mirror cannot start a download");
        tracing::debug!(%error, %infohash, "mirror cannot start a download");
        mirror
            .cache
            .policy()
            .fetch_finished(&infohash, false, unix_now());
        return;
    }
    tracing::info!("mirroring");
    tracing::debug!(%infohash, title = %record.body().title, "mirroring");
    let mirror = mirror.clone();
    let tasks = mirror.tasks.clone();
    tasks.spawn("mirror download watch", async move {
        let ok = tokio::select! {
            _ = mirror.tasks.cancelled() => return,
            result = mirror.engine.wait_finished(&infohash.0) => result.is_ok(),
            _ = stalled(&mirror, infohash) => false,
        };
        if !ok {
            tracing::info!("mirror gives up a download that makes no progress");
            tracing::debug!(%infohash, "mirror gives up a download that makes no progress");
            remove_data(&mirror, infohash).await;
        }
        mirror
            .cache
            .policy()
            .fetch_finished(&infohash, ok, unix_now());
        mirror.cache.wake();
    });
}

/// Returns once a download has gained no verified byte for [`MIRROR_STALL`].
async fn stalled(mirror: &Mirror, infohash: InfoHash) {
    let mut best = 0;
    let mut since = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let have = mirror
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
async fn evict(mirror: &Mirror, infohash: InfoHash) {
    if remove_data(mirror, infohash).await {
        tracing::info!("evicted (over the cache quota)");
        tracing::debug!(%infohash, "evicted (over the cache quota)");
    }
}

/// Stop a torrent and delete its data inside the data directory and its row. Returns whether there was one.
async fn remove_data(mirror: &Mirror, infohash: InfoHash) -> bool {
    let row = match mirror.catalog.run(move |c| c.get_torrent(&infohash)).await {
        Ok(Some(row)) => row,
        _ => return false,
    };
    let inside = row.output_dir.starts_with(mirror.dir.root());
    if let Err(error) = mirror.engine.remove(&infohash.0, inside).await {
        tracing::debug!(%error, %infohash, "engine had nothing to remove");
    }
    if inside {
        let dir = row.output_dir.clone();
        let removed = mirror
            .tasks
            .spawn_blocking("remove evicted data", move || std::fs::remove_dir_all(&dir))
            .await;
        if !matches!(removed, Ok(Ok(()))) {
            tracing::debug!(%infohash, "evicted data was not fully removed");
        }
    }
    if let Err(error) = mirror
        .catalog
        .run(move |c| c.delete_torrent(&infohash))
        .await
    {
        tracing::warn!(%error, "cannot forget an evicted torrent");
        tracing::debug!(%error, %infohash, "cannot forget an evicted torrent");
    }
    mirror.cache.known().remove(&infohash);
    true
}
