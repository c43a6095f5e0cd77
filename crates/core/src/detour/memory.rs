//! What the proxy remembers per site: whether the direct route failed, and so whether new connections should go
//! through a bridge for a while (or for good).
//!
//! # Invariants
//! - At most `max_sites` entries; `by_age` indexes every entry exactly once, so eviction is `O(log n)`.
//! - Sites that never needed a bridge are evicted before those that did (forgetting them costs nothing), each class
//!   oldest first by last use.
//! - A site's failure count rises at most once per temporary bridge period, so twenty parallel connections of one
//!   page failing together count as one failure, not twenty.

use std::collections::{BTreeMap, HashMap};

use super::host::Host;
use super::{DetourConfig, Failure};

/// How long a site is routed through a bridge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BridgeMark {
    /// The direct route works (or was never tried and failed).
    None,
    /// Through a bridge until this time (milliseconds on the caller's clock), then direct is tried again.
    Until(u64),
    /// Through a bridge until the user clears it.
    Permanent,
}

/// Everything remembered about one site.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteMemory {
    /// Direct failures in a row, counted once per bridge period; reset by a direct success.
    pub failures: u32,
    /// The most recent reason the direct route failed.
    pub last_failure: Option<Failure>,
    pub bridge: BridgeMark,
    /// Connections that went through directly.
    pub direct_ok: u64,
    /// Connections that went through a bridge.
    pub via_bridge: u64,
    /// When a connection to the site last started or changed route.
    pub last_used_ms: u64,
}

impl SiteMemory {
    fn new(now_ms: u64) -> SiteMemory {
        SiteMemory {
            failures: 0,
            last_failure: None,
            bridge: BridgeMark::None,
            direct_ok: 0,
            via_bridge: 0,
            last_used_ms: now_ms,
        }
    }

    /// Whether new connections should go through a bridge at `now_ms`.
    pub fn wants_bridge(&self, now_ms: u64) -> bool {
        match self.bridge {
            BridgeMark::None => false,
            BridgeMark::Until(until) => now_ms < until,
            BridgeMark::Permanent => true,
        }
    }

    fn eviction_class(&self) -> u8 {
        u8::from(self.bridge != BridgeMark::None || self.failures > 0)
    }
}

/// Eviction order: class (0 = never needed a bridge, evicted first), then last use, then insertion order.
type AgeKey = (u8, u64, u64);

/// The bounded per-site memory.
#[derive(Clone, Debug)]
pub(super) struct Memory {
    sites: HashMap<Host, (SiteMemory, AgeKey)>,
    by_age: BTreeMap<AgeKey, Host>,
    next_seq: u64,
    max_sites: usize,
}

impl Memory {
    pub(super) fn new(max_sites: usize) -> Memory {
        Memory {
            sites: HashMap::new(),
            by_age: BTreeMap::new(),
            next_seq: 0,
            max_sites: max_sites.max(1),
        }
    }

    pub(super) fn get(&self, host: &Host) -> Option<&SiteMemory> {
        self.sites.get(host).map(|(site, _)| site)
    }

    pub(super) fn len(&self) -> usize {
        self.sites.len()
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&Host, &SiteMemory)> {
        self.sites.iter().map(|(host, (site, _))| (host, site))
    }

    pub(super) fn forget(&mut self, host: &Host) -> bool {
        match self.sites.remove(host) {
            Some((_, key)) => {
                self.by_age.remove(&key);
                true
            }
            None => false,
        }
    }

    /// Applies `change` to the site's entry (creating it, evicting another if full) and refreshes its age.
    pub(super) fn update(
        &mut self,
        host: &Host,
        now_ms: u64,
        change: impl FnOnce(&mut SiteMemory),
    ) {
        let mut site = match self.sites.remove(host) {
            Some((site, key)) => {
                self.by_age.remove(&key);
                site
            }
            None => {
                while self.sites.len() >= self.max_sites {
                    let Some((_, oldest)) = self.by_age.pop_first() else {
                        break;
                    };
                    self.sites.remove(&oldest);
                }
                SiteMemory::new(now_ms)
            }
        };
        change(&mut site);
        site.last_used_ms = site.last_used_ms.max(now_ms);
        let key = (site.eviction_class(), site.last_used_ms, self.next_seq);
        self.next_seq += 1;
        self.by_age.insert(key, host.clone());
        self.sites.insert(host.clone(), (site, key));
    }

    /// The direct route to `host` failed at `now_ms`.
    pub(super) fn record_failure(
        &mut self,
        host: &Host,
        failure: Failure,
        now_ms: u64,
        config: &DetourConfig,
    ) {
        self.update(host, now_ms, |site| {
            site.last_failure = Some(failure);
            if site.wants_bridge(now_ms) {
                // Already routed around (a parallel connection failed first): not a new failure episode.
                return;
            }
            site.failures = site.failures.saturating_add(1);
            site.bridge = if site.failures >= config.permanent_after {
                BridgeMark::Permanent
            } else {
                BridgeMark::Until(now_ms.saturating_add(config.temporary_bridge_ms))
            };
        });
    }

    /// A connection to `host` went direct; `proven` when the site sent a real answer, which clears earlier failures.
    pub(super) fn record_direct_ok(&mut self, host: &Host, now_ms: u64, proven: bool) {
        self.update(host, now_ms, |site| {
            site.direct_ok = site.direct_ok.saturating_add(1);
            if !proven {
                return;
            }
            site.failures = 0;
            if let BridgeMark::Until(_) = site.bridge {
                site.bridge = BridgeMark::None;
            }
        });
    }

    /// A bridge stream to `host` opened.
    pub(super) fn record_bridged(&mut self, host: &Host, now_ms: u64) {
        self.update(host, now_ms, |site| {
            site.via_bridge = site.via_bridge.saturating_add(1);
        });
    }

    /// Checks the invariants (for tests).
    #[cfg(test)]
    pub(super) fn check_invariants(&self) {
        assert!(self.sites.len() <= self.max_sites);
        assert_eq!(self.sites.len(), self.by_age.len());
        for (host, (_, key)) in &self.sites {
            assert_eq!(self.by_age.get(key), Some(host));
        }
    }
}
