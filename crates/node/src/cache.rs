//! The cache owner: what this node keeps of others' publications (mirror mode and the viewer cache, under a quota).
//! It holds the policy (`kolokol_core::replication::cache::CachePolicy`) and what the policy was told; `mirroring.rs`
//! runs it. Data this node published, data the user saved outside the data directory (`get -o`) and pinned data are
//! never evicted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use kolokol_core::record::InfoHash;
use kolokol_core::replication::cache::{CacheConfig, CacheMode, CachePolicy};
use kolokol_store::{TorrentRow, TorrentState};
use tokio::sync::Notify;

use crate::catalog::CatalogService;
use crate::clock::unix_now;
use crate::config::CacheOptions;

/// Downloads a mirror runs at once.
const MIRROR_PARALLEL: usize = 2;

/// The cache settings and policy of the node.
pub(crate) struct Cache {
    options: CacheOptions,
    policy: Mutex<CachePolicy>,
    /// Torrents the policy has been told about, with the state it was told.
    known: Mutex<HashMap<InfoHash, TorrentState>>,
    wake: Notify,
    /// Whether what the user watched is advertised (see [`CacheOptions::share_watched`]); the web UI can change it.
    share_watched: AtomicBool,
}

/// Settings key of the web UI's choice for [`Cache::shares_watched`].
pub(crate) const SHARE_WATCHED_KEY: &str = "share_watched";

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
        let share_watched = AtomicBool::new(options.share_watched.unwrap_or(options.mirror));
        Cache {
            share_watched,
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

    /// Whether this node mirrors (fetches publications nobody asked it for).
    pub fn is_mirror(&self) -> bool {
        self.options.mirror
    }

    /// Whether this node advertises what the user watched.
    pub fn shares_watched(&self) -> bool {
        self.share_watched.load(Ordering::Relaxed)
    }

    pub(crate) fn set_shares_watched(&self, on: bool) {
        self.share_watched.store(on, Ordering::Relaxed);
    }

    /// Whether `up` chose the sharing of watched data explicitly (then a setting saved from the UI does not apply).
    pub(crate) fn share_watched_given(&self) -> bool {
        self.options.share_watched.is_some()
    }

    /// Whether the node may tell others that it holds this torrent (DHT announce, `Holding` to peers). Data the
    /// user watched is only served, not advertised, unless they share what they watch (design decision 11).
    pub fn advertises(&self, row: &TorrentRow) -> bool {
        !row.watched || self.shares_watched()
    }

    /// At start, before anything is announced: the sharing choice saved from the web UI, unless `up` gave one.
    pub(crate) async fn load_saved_sharing(&self, catalog: &CatalogService) {
        if self.share_watched_given() {
            return;
        }
        match catalog.run(|c| c.get_setting(SHARE_WATCHED_KEY)).await {
            Ok(Some(saved)) => self.set_shares_watched(saved == "on"),
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "cannot read the saved sharing setting"),
        }
    }

    /// The user's choice from the web UI: applied now and saved for later starts. Torrents it newly advertises are
    /// announced at the announcer's next round; those it stops advertising drop out of the DHT as announcements
    /// expire (about 30 minutes) and are no longer listed to peers that connect.
    pub(crate) async fn choose_sharing(
        &self,
        catalog: &CatalogService,
        on: bool,
    ) -> Result<(), crate::catalog::CatalogError> {
        let value = if on { "on" } else { "off" };
        catalog
            .run(move |c| c.set_setting(SHARE_WATCHED_KEY, value))
            .await?;
        self.set_shares_watched(on);
        Ok(())
    }

    /// The policy, locked for one short decision (never across an await).
    pub(crate) fn policy(&self) -> MutexGuard<'_, CachePolicy> {
        self.policy.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The torrents the policy was told about, with the state it was told.
    pub(crate) fn known(&self) -> MutexGuard<'_, HashMap<InfoHash, TorrentState>> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Run the policy now rather than at its next round.
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    pub(crate) async fn woken(&self) {
        self.wake.notified().await
    }

    /// The user pinned or unpinned a publication.
    pub fn pinned(&self, infohash: &InfoHash, pinned: bool) {
        let mut policy = self.policy();
        if pinned {
            policy.pin(infohash);
        } else {
            policy.unpin(infohash);
        }
        drop(policy);
        self.wake();
    }

    /// A publication's data was asked for (a user `get`, the streaming gateway).
    pub async fn requested(&self, catalog: &CatalogService, infohash: &InfoHash) {
        let now = unix_now();
        let infohash = *infohash;
        if let Err(error) = catalog.run(move |c| c.touch(&infohash, now)).await {
            tracing::debug!(%error, "cannot note a request");
        }
        self.policy().requested(&infohash, now);
    }

    /// A publication's data is gone (its author was blocked): off the policy's books.
    pub fn forget(&self, infohash: &InfoHash) {
        self.policy().forget(infohash);
        self.known().remove(infohash);
    }
}
