//! The disk-quota policy of a node: mirror mode (fetch on its own) and viewer mode (keep what the user fetched)
//! are one machine with a mode.
//!
//! Each publication the policy knows is an entry in one of three states: a *candidate* (known from the catalog,
//! not on disk; mirror mode only), *fetching*, or *held*. Two ordered indexes make every decision a walk in
//! order: candidates by rank, held unpinned items by last request.
//!
//! Rank (best first): followed author, then fewer failed fetches in a row, then fewer known holders, then newer
//! `created`, then infohash. Failures come before rarity because a publication nobody can serve has no known
//! holders and would otherwise rank first forever, holding the fetch slots at each retry while fresh, servable
//! publications wait. An item the policy never got a [`Candidate`] for (data found on disk, a fetch the user
//! started for something not in the catalog) ranks last.
//!
//! Eviction has two causes. Over the quota (data registered with [`CachePolicy::held`], a fetch the user
//! started, a lower quota), the least recently requested unpinned items go, ties broken by worse rank, until
//! the rest fits. To make room for a mirror candidate, only items ranking strictly below the candidate may go,
//! again least recently requested first, and only if together they make enough room (else nothing goes). An
//! evicted item returns to the candidates (mirror mode) but is not fetched again for a cool-down that doubles
//! with each eviction of it; after that it can displace only items ranking below it, never the one that
//! displaced it, so with unchanged ranks no pair of items can take turns.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use crate::record::InfoHash;

/// Default cache quota of an ordinary (viewer) node: 4 GiB.
pub const DEFAULT_VIEWER_QUOTA_BYTES: u64 = 4 << 30;
/// Default number of fetches the policy runs at once.
pub const DEFAULT_MAX_PARALLEL_FETCHES: usize = 2;

/// Whether the node fetches on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheMode {
    /// Fetches new publications on its own, within the quota (`kolokol up --mirror`).
    Mirror,
    /// Only keeps what the user fetched, watched or published; never returns [`CacheAction::Fetch`].
    Viewer,
}

/// What the node configures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheConfig {
    /// Mirror or viewer.
    pub mode: CacheMode,
    /// Bytes of publication data the node keeps (held plus being fetched).
    pub quota_bytes: u64,
    /// Most fetches ordered by the policy running at once (fetches the user started do not count).
    pub max_parallel_fetches: usize,
}

impl CacheConfig {
    /// A mirror with this quota and the default parallelism.
    pub fn mirror(quota_bytes: u64) -> CacheConfig {
        CacheConfig {
            mode: CacheMode::Mirror,
            quota_bytes,
            max_parallel_fetches: DEFAULT_MAX_PARALLEL_FETCHES,
        }
    }

    /// A viewer cache with this quota.
    pub fn viewer(quota_bytes: u64) -> CacheConfig {
        CacheConfig {
            mode: CacheMode::Viewer,
            quota_bytes,
            max_parallel_fetches: DEFAULT_MAX_PARALLEL_FETCHES,
        }
    }
}

impl Default for CacheConfig {
    /// An ordinary node: viewer mode, [`DEFAULT_VIEWER_QUOTA_BYTES`].
    fn default() -> Self {
        CacheConfig::viewer(DEFAULT_VIEWER_QUOTA_BYTES)
    }
}

/// Bounds and timings that rarely need changing (see [`CachePolicy::with_limits`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheLimits {
    /// Most candidates tracked; past it the lowest-ranked is dropped: 10,000.
    pub max_candidates: usize,
    /// Wait before retrying a failed fetch; doubles with each failure in a row: 60 s.
    pub retry_base_secs: u64,
    /// Longest wait before a retry: 6 h.
    pub retry_max_secs: u64,
    /// How long an evicted item is not fetched again; doubles with each eviction of the item: 6 h. (In the
    /// simulator, 1 h let mirrors that all see the same holder counts evict and re-fetch the same items in
    /// waves: half again as many bytes fetched as with 6 h.)
    pub evicted_cooldown_secs: u64,
    /// Longest such cool-down: 7 days.
    pub evicted_cooldown_max_secs: u64,
}

impl Default for CacheLimits {
    fn default() -> Self {
        CacheLimits {
            max_candidates: 10_000,
            retry_base_secs: 60,
            retry_max_secs: 6 * 3600,
            evicted_cooldown_secs: 6 * 3600,
            evicted_cooldown_max_secs: 7 * 86_400,
        }
    }
}

/// A publication the node knows of from its catalog.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Its torrent.
    pub infohash: InfoHash,
    /// Total bytes of its files.
    pub size: u64,
    /// The record's `created` time (same unit as `now`).
    pub created: u64,
    /// Whether the user follows its author.
    pub followed: bool,
    /// Other peers known to hold a full copy (never counting this node, or holding it would make it look less
    /// rare and invite its own eviction).
    pub holders: u32,
}

/// What the node should do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheAction {
    /// Fetch this publication's data; report the end with [`CachePolicy::fetch_finished`].
    Fetch(InfoHash),
    /// Delete this publication's data (it is already off the policy's books).
    Evict(InfoHash),
}

/// Where an item is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemState {
    /// On disk.
    Held,
    /// Being fetched.
    Fetching,
}

/// One item on disk or on its way, for status displays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheItemView {
    /// Its torrent.
    pub infohash: InfoHash,
    /// Its bytes.
    pub size: u64,
    /// Held or fetching.
    pub state: ItemState,
    /// Whether it is pinned.
    pub pinned: bool,
    /// Last request (or arrival) time.
    pub last_requested: u64,
    /// Whether the policy ordered the fetch (mirror mode) rather than the user.
    pub by_policy: bool,
}

/// Order of candidates, best first: followed, fewer failures, fewer holders, newer. `Rank::UNKNOWN` sorts
/// last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Rank {
    not_followed: bool,
    failures: u32,
    holders: u32,
    age_key: u64,
}

impl Rank {
    const UNKNOWN: Rank = Rank {
        not_followed: true,
        failures: u32::MAX,
        holders: u32::MAX,
        age_key: u64::MAX,
    };
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Candidate,
    Fetching { by_policy: bool },
    Held,
}

#[derive(Clone, Debug)]
struct Entry {
    size: u64,
    /// Catalog facts, once offered.
    known: bool,
    created: u64,
    followed: bool,
    holders: u32,
    pinned: bool,
    state: State,
    last_used: u64,
    failures: u32,
    retry_at: u64,
    evictions: u32,
}

impl Entry {
    fn new(size: u64, state: State) -> Entry {
        Entry {
            size,
            known: false,
            created: 0,
            followed: false,
            holders: 0,
            pinned: false,
            state,
            last_used: 0,
            failures: 0,
            retry_at: 0,
            evictions: 0,
        }
    }

    fn rank(&self) -> Rank {
        if !self.known {
            return Rank::UNKNOWN;
        }
        Rank {
            not_followed: !self.followed,
            failures: self.failures,
            holders: self.holders,
            age_key: u64::MAX - self.created,
        }
    }
}

/// The policy. See the module documentation.
#[derive(Clone, Debug)]
pub struct CachePolicy {
    config: CacheConfig,
    limits: CacheLimits,
    entries: BTreeMap<InfoHash, Entry>,
    /// Candidates (mirror mode), best first.
    ranked: BTreeSet<(Rank, InfoHash)>,
    /// Held unpinned items, first to evict first.
    lru: BTreeSet<(u64, Reverse<Rank>, InfoHash)>,
    held_bytes: u64,
    fetching_bytes: u64,
    policy_fetches: usize,
}

impl CachePolicy {
    /// An empty policy with the default [`CacheLimits`].
    pub fn new(config: CacheConfig) -> Self {
        CachePolicy::with_limits(config, CacheLimits::default())
    }

    /// An empty policy with chosen limits.
    pub fn with_limits(config: CacheConfig, limits: CacheLimits) -> Self {
        CachePolicy {
            config,
            limits,
            entries: BTreeMap::new(),
            ranked: BTreeSet::new(),
            lru: BTreeSet::new(),
            held_bytes: 0,
            fetching_bytes: 0,
            policy_fetches: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &CacheConfig {
        &self.config
    }

    /// Changes the quota; the next [`CachePolicy::next_actions`] evicts down to it. Candidates that no longer
    /// fit are dropped now; bigger ones offered again later are kept if they fit.
    pub fn set_quota(&mut self, quota_bytes: u64) {
        self.config.quota_bytes = quota_bytes;
        let too_big: Vec<InfoHash> = self
            .ranked
            .iter()
            .filter(|(_, ih)| self.entries.get(ih).is_some_and(|e| e.size > quota_bytes))
            .map(|(_, ih)| *ih)
            .collect();
        for ih in too_big {
            self.detach(&ih);
        }
    }

    /// A publication from the catalog. Mirror mode tracks it as a candidate (unless it is bigger than the whole
    /// quota, or ranks below every tracked candidate when the cap is reached); in both modes it updates what is
    /// known of an item already held or being fetched.
    pub fn offer(&mut self, c: Candidate) {
        let mut entry = match self.detach(&c.infohash) {
            Some(entry) => entry,
            None if self.config.mode == CacheMode::Mirror => Entry::new(c.size, State::Candidate),
            None => return,
        };
        if entry.state == State::Candidate {
            entry.size = c.size;
        }
        entry.known = true;
        entry.created = c.created;
        entry.followed = c.followed;
        entry.holders = c.holders;
        self.attach(c.infohash, entry);
    }

    /// Updates the number of other peers known to hold a full copy.
    pub fn set_holders(&mut self, infohash: &InfoHash, holders: u32) {
        self.modify(infohash, |e| e.holders = holders);
    }

    /// Marks one publication as by a followed author or not. Following is per publication here: when the user
    /// follows or unfollows an author, the node calls this for each of the author's publications it knows
    /// (and sets [`Candidate::followed`] on later offers).
    pub fn set_followed(&mut self, infohash: &InfoHash, followed: bool) {
        self.modify(infohash, |e| e.followed = followed);
    }

    /// Data on disk (found at start, or fetched or published outside the policy): counts against the quota.
    /// `pinned` adds to a pin already set.
    pub fn held(&mut self, infohash: InfoHash, size: u64, pinned: bool, last_requested: u64) {
        let mut entry = self
            .detach(&infohash)
            .unwrap_or_else(|| Entry::new(size, State::Held));
        entry.size = size;
        entry.state = State::Held;
        entry.pinned |= pinned;
        entry.last_used = entry.last_used.max(last_requested);
        entry.failures = 0;
        self.attach(infohash, entry);
    }

    /// A read of the data (the user, the gateway, a peer downloading from us): it moves to the back of the
    /// eviction line.
    pub fn requested(&mut self, infohash: &InfoHash, now: u64) {
        self.modify(infohash, |e| {
            if e.state != State::Candidate {
                e.last_used = e.last_used.max(now);
            }
        });
    }

    /// Pins an item held or being fetched; returns false (and changes nothing) for anything else. To pin what
    /// is not on disk, the node starts the fetch ([`CachePolicy::fetch_started`]) and then pins it.
    pub fn pin(&mut self, infohash: &InfoHash) -> bool {
        self.set_pin(infohash, true)
    }

    /// Unpins an item held or being fetched; returns false for anything else.
    pub fn unpin(&mut self, infohash: &InfoHash) -> bool {
        self.set_pin(infohash, false)
    }

    fn set_pin(&mut self, infohash: &InfoHash, pinned: bool) -> bool {
        let on_disk = self
            .entries
            .get(infohash)
            .is_some_and(|e| e.state != State::Candidate);
        if on_disk {
            self.modify(infohash, |e| e.pinned = pinned);
        }
        on_disk
    }

    /// A fetch the policy did not order (user get, watch, a replication request) started: its bytes count
    /// against the quota from now on, and the next [`CachePolicy::next_actions`] makes room. Nothing happens
    /// if the item is already held or being fetched.
    pub fn fetch_started(&mut self, infohash: InfoHash, size: u64, now: u64) {
        let mut entry = match self.detach(&infohash) {
            Some(entry) if entry.state != State::Candidate => {
                self.attach(infohash, entry);
                return;
            }
            Some(entry) => entry,
            None => Entry::new(size, State::Candidate),
        };
        entry.size = size;
        entry.state = State::Fetching { by_policy: false };
        entry.last_used = entry.last_used.max(now);
        self.attach(infohash, entry);
    }

    /// A fetch ended. On success the item is held (last requested `now`). On failure its bytes are released;
    /// in mirror mode a known publication goes back to the candidates, retried after a back-off that doubles
    /// with each failure in a row.
    pub fn fetch_finished(&mut self, infohash: &InfoHash, ok: bool, now: u64) {
        let Some(mut entry) = self.detach(infohash) else {
            return;
        };
        if !matches!(entry.state, State::Fetching { .. }) {
            self.attach(*infohash, entry);
            return;
        }
        if ok {
            entry.state = State::Held;
            entry.failures = 0;
            entry.last_used = entry.last_used.max(now);
        } else {
            entry.failures = entry.failures.saturating_add(1);
            let wait = doubled(
                self.limits.retry_base_secs,
                entry.failures,
                self.limits.retry_max_secs,
            );
            entry.retry_at = entry.retry_at.max(now.saturating_add(wait));
            entry.state = State::Candidate;
            entry.pinned = false;
            if !entry.known {
                return;
            }
        }
        self.attach(*infohash, entry);
    }

    /// Forgets a publication (its author was blocked). The node deletes the data or cancels the fetch itself;
    /// no [`CacheAction::Evict`] follows.
    pub fn forget(&mut self, infohash: &InfoHash) {
        self.detach(infohash);
    }

    /// Bytes held plus bytes being fetched.
    pub fn used_bytes(&self) -> u64 {
        self.held_bytes.saturating_add(self.fetching_bytes)
    }

    /// Candidates tracked (mirror mode).
    pub fn candidates_len(&self) -> usize {
        self.ranked.len()
    }

    /// Fetches ordered by the policy and not finished.
    pub fn policy_fetches(&self) -> usize {
        self.policy_fetches
    }

    /// Items held or being fetched.
    pub fn items(&self) -> impl Iterator<Item = CacheItemView> + '_ {
        self.entries.iter().filter_map(|(ih, e)| {
            let (state, by_policy) = match e.state {
                State::Candidate => return None,
                State::Held => (ItemState::Held, false),
                State::Fetching { by_policy } => (ItemState::Fetching, by_policy),
            };
            Some(CacheItemView {
                infohash: *ih,
                size: e.size,
                state,
                pinned: e.pinned,
                last_requested: e.last_used,
                by_policy,
            })
        })
    }

    /// What to do now: evictions down to the quota, then (mirror mode) fetches of the best candidates that fit,
    /// each preceded by the evictions that make its room. The policy counts every returned action as done.
    pub fn next_actions(&mut self, now: u64) -> Vec<CacheAction> {
        let mut actions = Vec::new();
        while self.used_bytes() > self.config.quota_bytes {
            let Some(&(_, _, victim)) = self.lru.first() else {
                break;
            };
            self.evict(victim, now, &mut actions);
        }
        if self.config.mode == CacheMode::Mirror {
            while self.policy_fetches < self.config.max_parallel_fetches
                && self.start_best_fetch(now, &mut actions)
            {}
        }
        actions
    }

    /// Starts the best candidate that can fit; returns whether one started.
    fn start_best_fetch(&mut self, now: u64, actions: &mut Vec<CacheAction>) -> bool {
        // Held unpinned items by rank, with the bytes of all items ranked at or below each: how much a
        // candidate could evict. Built only once some candidate does not fit in free space.
        let mut below: Option<Vec<(Rank, u64)>> = None;
        let mut cursor = Bound::Unbounded;
        while let Some(&(rank, ih)) = self.ranked.range((cursor, Bound::Unbounded)).next() {
            cursor = Bound::Excluded((rank, ih));
            let Some(entry) = self.entries.get(&ih) else {
                continue;
            };
            if entry.retry_at > now {
                continue;
            }
            let free = self.config.quota_bytes.saturating_sub(self.used_bytes());
            if entry.size <= free {
                self.start_fetch(ih, now, actions);
                return true;
            }
            let table = below.get_or_insert_with(|| self.evictable_by_rank());
            let first_below = table.partition_point(|(r, _)| *r <= rank);
            let evictable = table.get(first_below).map_or(0, |(_, bytes)| *bytes);
            if free.saturating_add(evictable) < entry.size {
                continue;
            }
            let needed = entry.size - free;
            for victim in self.victims_below(rank, needed) {
                self.evict(victim, now, actions);
            }
            self.start_fetch(ih, now, actions);
            return true;
        }
        false
    }

    /// Held unpinned items sorted by rank, each with the total bytes of itself and every item after it.
    fn evictable_by_rank(&self) -> Vec<(Rank, u64)> {
        let mut items: Vec<(Rank, u64)> = self
            .lru
            .iter()
            .map(|(_, Reverse(rank), ih)| (*rank, self.entries.get(ih).map_or(0, |e| e.size)))
            .collect();
        items.sort();
        let mut total = 0u64;
        for item in items.iter_mut().rev() {
            total = total.saturating_add(item.1);
            item.1 = total;
        }
        items
    }

    /// Least recently requested unpinned items ranking strictly below `rank` that together free `needed`
    /// bytes (the caller checked that they can).
    fn victims_below(&self, rank: Rank, needed: u64) -> Vec<InfoHash> {
        let mut chosen = Vec::new();
        let mut total = 0u64;
        for (_, Reverse(victim_rank), ih) in &self.lru {
            if total >= needed {
                break;
            }
            if *victim_rank > rank {
                chosen.push(*ih);
                total = total.saturating_add(self.entries.get(ih).map_or(0, |e| e.size));
            }
        }
        chosen
    }

    fn start_fetch(&mut self, infohash: InfoHash, now: u64, actions: &mut Vec<CacheAction>) {
        if let Some(mut entry) = self.detach(&infohash) {
            entry.state = State::Fetching { by_policy: true };
            entry.last_used = entry.last_used.max(now);
            self.attach(infohash, entry);
            actions.push(CacheAction::Fetch(infohash));
        }
    }

    fn evict(&mut self, infohash: InfoHash, now: u64, actions: &mut Vec<CacheAction>) {
        let Some(mut entry) = self.detach(&infohash) else {
            return;
        };
        actions.push(CacheAction::Evict(infohash));
        entry.evictions = entry.evictions.saturating_add(1);
        let cooldown = doubled(
            self.limits.evicted_cooldown_secs,
            entry.evictions,
            self.limits.evicted_cooldown_max_secs,
        );
        entry.retry_at = entry.retry_at.max(now.saturating_add(cooldown));
        entry.state = State::Candidate;
        if entry.known {
            self.attach(infohash, entry);
        }
    }

    /// Applies `f` to an entry, keeping the indexes and counters right.
    fn modify(&mut self, infohash: &InfoHash, f: impl FnOnce(&mut Entry)) {
        if let Some(mut entry) = self.detach(infohash) {
            f(&mut entry);
            self.attach(*infohash, entry);
        }
    }

    /// Takes an entry out of the map, the indexes and the counters.
    fn detach(&mut self, infohash: &InfoHash) -> Option<Entry> {
        let entry = self.entries.remove(infohash)?;
        match entry.state {
            State::Candidate => {
                self.ranked.remove(&(entry.rank(), *infohash));
            }
            State::Fetching { by_policy } => {
                self.fetching_bytes = self.fetching_bytes.saturating_sub(entry.size);
                if by_policy {
                    self.policy_fetches = self.policy_fetches.saturating_sub(1);
                }
            }
            State::Held => {
                self.held_bytes = self.held_bytes.saturating_sub(entry.size);
                if !entry.pinned {
                    self.lru
                        .remove(&(entry.last_used, Reverse(entry.rank()), *infohash));
                }
            }
        }
        Some(entry)
    }

    /// Puts an entry back. A candidate is dropped in viewer mode, when bigger than the quota, or when it ranks
    /// last among a full set of candidates (else the last one makes way).
    fn attach(&mut self, infohash: InfoHash, entry: Entry) {
        match entry.state {
            State::Candidate => {
                if self.config.mode == CacheMode::Viewer || entry.size > self.config.quota_bytes {
                    return;
                }
                let key = (entry.rank(), infohash);
                if self.ranked.len() >= self.limits.max_candidates {
                    match self.ranked.last() {
                        Some(worst) if *worst > key => {
                            let worst = worst.1;
                            self.detach(&worst);
                        }
                        _ => return,
                    }
                }
                self.ranked.insert(key);
            }
            State::Fetching { by_policy } => {
                self.fetching_bytes = self.fetching_bytes.saturating_add(entry.size);
                if by_policy {
                    self.policy_fetches += 1;
                }
            }
            State::Held => {
                self.held_bytes = self.held_bytes.saturating_add(entry.size);
                if !entry.pinned {
                    self.lru
                        .insert((entry.last_used, Reverse(entry.rank()), infohash));
                }
            }
        }
        self.entries.insert(infohash, entry);
    }
}

/// `base` doubled `times - 1` times, capped at `max`.
fn doubled(base: u64, times: u32, max: u64) -> u64 {
    let shift = times.saturating_sub(1).min(40);
    base.saturating_mul(1u64 << shift).min(max)
}
