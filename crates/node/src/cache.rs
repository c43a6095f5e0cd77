//! The cache owner: what this node keeps of others' publications (mirror mode and the viewer cache, under a quota).
//! It holds the policy (`kolokol_core::replication::cache::CachePolicy`) and what the policy was told; `mirroring.rs`
//! runs it. Data this node published, data the user saved outside the data directory (`get -o`) and pinned data are
//! never evicted.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use kolokol_core::record::InfoHash;
use kolokol_core::replication::cache::{CacheConfig, CacheMode, CachePolicy};
use kolokol_store::TorrentState;
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

    /// Whether this node mirrors (fetches publications nobody asked it for).
    pub fn is_mirror(&self) -> bool {
        self.options.mirror
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
