//! Property tests of the cache policy: any sequence of events, checked against a model of the node's disk.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::cache::*;
use super::cache_tests::ih;

const ITEMS: u8 = 8;

#[derive(Clone, Debug)]
enum Op {
    Offer {
        n: u8,
        created: u64,
        followed: bool,
        holders: u32,
    },
    SetHolders {
        n: u8,
        holders: u32,
    },
    SetFollowed {
        n: u8,
        followed: bool,
    },
    Held {
        n: u8,
        pinned: bool,
    },
    Requested {
        n: u8,
    },
    Pin {
        n: u8,
    },
    Unpin {
        n: u8,
    },
    UserFetch {
        n: u8,
    },
    Finish {
        n: u8,
        ok: bool,
    },
    Forget {
        n: u8,
    },
    Advance {
        secs: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let n = 0..ITEMS;
    prop_oneof![
        4 => (n.clone(), 0u64..1000, any::<bool>(), 0u32..5).prop_map(|(n, created, followed, holders)| {
            Op::Offer { n, created, followed, holders }
        }),
        1 => (n.clone(), 0u32..5).prop_map(|(n, holders)| Op::SetHolders { n, holders }),
        1 => (n.clone(), any::<bool>()).prop_map(|(n, followed)| Op::SetFollowed { n, followed }),
        1 => (n.clone(), any::<bool>()).prop_map(|(n, pinned)| Op::Held { n, pinned }),
        2 => n.clone().prop_map(|n| Op::Requested { n }),
        1 => n.clone().prop_map(|n| Op::Pin { n }),
        1 => n.clone().prop_map(|n| Op::Unpin { n }),
        2 => n.clone().prop_map(|n| Op::UserFetch { n }),
        4 => (n.clone(), prop::bool::weighted(0.7)).prop_map(|(n, ok)| Op::Finish { n, ok }),
        1 => n.prop_map(|n| Op::Forget { n }),
        3 => prop_oneof![0u64..100, 0u64..5000].prop_map(|secs| Op::Advance { secs }),
    ]
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Disk {
    #[default]
    Absent,
    Fetching,
    Held,
}

/// What the node knows of one publication.
#[derive(Clone, Debug, Default)]
struct Model {
    disk: Disk,
    pinned: bool,
    /// Whether the policy has catalog facts for it (so it ranks by them).
    known: bool,
    followed: bool,
    holders: u32,
    created: u64,
    /// Failed fetches in a row.
    failures: u32,
    /// The policy must not fetch it before this (back-off or eviction cool-down).
    no_fetch_before: u64,
}

impl Model {
    fn rank(&self) -> (bool, u32, u32, u64) {
        if self.known {
            (
                !self.followed,
                self.failures,
                self.holders,
                u64::MAX - self.created,
            )
        } else {
            (true, u32::MAX, u32::MAX, u64::MAX)
        }
    }
}

struct Harness {
    policy: CachePolicy,
    mode: CacheMode,
    quota: u64,
    parallel: usize,
    sizes: Vec<u64>,
    models: Vec<Model>,
    now: u64,
}

impl Harness {
    fn used(&self) -> u64 {
        self.models
            .iter()
            .zip(&self.sizes)
            .filter(|(m, _)| m.disk != Disk::Absent)
            .map(|(_, s)| *s)
            .sum()
    }

    /// Whether an entry dropped from disk stays a tracked candidate (so keeps its catalog facts).
    fn stays_candidate(&self, n: usize) -> bool {
        self.mode == CacheMode::Mirror && self.models[n].known && self.sizes[n] <= self.quota
    }

    fn apply(&mut self, op: &Op) {
        let now = self.now;
        match *op {
            Op::Offer {
                n,
                created,
                followed,
                holders,
            } => {
                let i = usize::from(n);
                self.policy.offer(Candidate {
                    infohash: ih(n),
                    size: self.sizes[i],
                    created,
                    followed,
                    holders,
                });
                let on_disk = self.models[i].disk != Disk::Absent;
                let m = &mut self.models[i];
                m.known =
                    on_disk || (self.mode == CacheMode::Mirror && self.sizes[i] <= self.quota);
                (m.created, m.followed, m.holders) = (created, followed, holders);
            }
            Op::SetHolders { n, holders } => {
                self.policy.set_holders(&ih(n), holders);
                self.models[usize::from(n)].holders = holders;
            }
            Op::SetFollowed { n, followed } => {
                self.policy.set_followed(&ih(n), followed);
                self.models[usize::from(n)].followed = followed;
            }
            Op::Held { n, pinned } => {
                let i = usize::from(n);
                self.policy.held(ih(n), self.sizes[i], pinned, now);
                let m = &mut self.models[i];
                m.disk = Disk::Held;
                m.pinned |= pinned;
                m.failures = 0;
            }
            Op::Requested { n } => self.policy.requested(&ih(n), now),
            Op::Pin { n } | Op::Unpin { n } => {
                let pin = matches!(op, Op::Pin { .. });
                let i = usize::from(n);
                let done = if pin {
                    self.policy.pin(&ih(n))
                } else {
                    self.policy.unpin(&ih(n))
                };
                let m = &mut self.models[i];
                assert_eq!(done, m.disk != Disk::Absent);
                if done {
                    m.pinned = pin;
                }
            }
            Op::UserFetch { n } => {
                let i = usize::from(n);
                self.policy.fetch_started(ih(n), self.sizes[i], now);
                let m = &mut self.models[i];
                if m.disk == Disk::Absent {
                    m.disk = Disk::Fetching;
                    m.pinned = false;
                }
            }
            Op::Finish { n, ok } => {
                let i = usize::from(n);
                self.policy.fetch_finished(&ih(n), ok, now);
                if self.models[i].disk == Disk::Fetching {
                    if ok {
                        self.models[i].disk = Disk::Held;
                        self.models[i].failures = 0;
                    } else {
                        let stays = self.stays_candidate(i);
                        let m = &mut self.models[i];
                        m.disk = Disk::Absent;
                        m.pinned = false;
                        m.known = stays;
                        m.failures = if stays { m.failures + 1 } else { 0 };
                        // A dropped entry starts afresh when offered again.
                        m.no_fetch_before = if stays {
                            m.no_fetch_before
                                .max(now + CacheLimits::default().retry_base_secs)
                        } else {
                            0
                        };
                    }
                }
            }
            Op::Forget { n } => {
                self.policy.forget(&ih(n));
                self.models[usize::from(n)] = Model::default();
            }
            Op::Advance { secs } => self.now += secs,
        }
        assert_eq!(self.policy.used_bytes(), self.used(), "after {op:?}");
    }

    /// Runs `next_actions`, applies it to the model and checks every rule.
    fn decide(&mut self) {
        let now = self.now;
        let quota = self.quota;
        let before: BTreeMap<_, _> = self.policy.items().map(|v| (v.infohash, v)).collect();
        let actions = self.policy.next_actions(now);
        let index = |target| {
            (0..ITEMS)
                .find(|n| ih(*n) == target)
                .map(usize::from)
                .unwrap()
        };
        let mut used = self.used();
        let mut pending_victims = Vec::new();
        let mut over_quota_phase = true;
        let mut fetched = false;
        for action in &actions {
            match *action {
                CacheAction::Evict(target) => {
                    let i = index(target);
                    let m = &self.models[i];
                    assert_eq!(m.disk, Disk::Held, "evicts only what is on disk");
                    assert!(!m.pinned, "never evicts a pin");
                    over_quota_phase &= used > quota;
                    if !over_quota_phase {
                        pending_victims.push(i);
                    }
                    used -= self.sizes[i];
                    let stays = self.stays_candidate(i);
                    let m = &mut self.models[i];
                    m.disk = Disk::Absent;
                    m.known = stays;
                    if !stays {
                        m.failures = 0;
                    }
                    m.no_fetch_before = if stays {
                        m.no_fetch_before
                            .max(now + CacheLimits::default().evicted_cooldown_secs)
                    } else {
                        0
                    };
                    if over_quota_phase {
                        // Least recently requested of everything unpinned still held.
                        let last = before[&target].last_requested;
                        for (j, other) in self.models.iter().enumerate() {
                            if other.disk == Disk::Held && !other.pinned {
                                assert!(last <= before[&ih(j as u8)].last_requested);
                            }
                        }
                    }
                }
                CacheAction::Fetch(target) => {
                    over_quota_phase = false;
                    fetched = true;
                    let i = index(target);
                    assert_eq!(self.mode, CacheMode::Mirror, "a viewer never fetches");
                    assert!(self.sizes[i] <= quota, "never bigger than the quota");
                    assert_eq!(self.models[i].disk, Disk::Absent);
                    assert!(now >= self.models[i].no_fetch_before, "no retry too soon");
                    let rank = self.models[i].rank();
                    for v in pending_victims.drain(..) {
                        assert!(self.models[v].rank() > rank, "evicts only lower-ranked");
                    }
                    used += self.sizes[i];
                    assert!(used <= quota, "a fetch always fits");
                    self.models[i].disk = Disk::Fetching;
                    self.models[i].pinned = false;
                }
            }
        }
        assert!(pending_victims.is_empty(), "evictions only to make room");
        assert_eq!(used, self.policy.used_bytes());
        if used > quota {
            assert!(!fetched);
            assert!(
                self.models.iter().all(|m| m.disk != Disk::Held || m.pinned),
                "over the quota only with pins and running fetches"
            );
        }
        assert!(self.policy.policy_fetches() <= self.parallel);
        assert!(
            self.policy.next_actions(now).is_empty(),
            "quiet when nothing changed"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn quota_pins_ranking_and_backoff_hold(
        mirror in any::<bool>(),
        quota in 50u64..300,
        parallel in 1usize..4,
        sizes in prop::collection::vec(1u64..120, usize::from(ITEMS)),
        ops in prop::collection::vec(op(), 1..80),
    ) {
        let mode = if mirror { CacheMode::Mirror } else { CacheMode::Viewer };
        let config = CacheConfig { mode, quota_bytes: quota, max_parallel_fetches: parallel };
        let mut h = Harness {
            policy: CachePolicy::new(config),
            mode,
            quota,
            parallel,
            sizes,
            models: vec![Model::default(); usize::from(ITEMS)],
            now: 0,
        };
        for op in &ops {
            h.apply(op);
            h.decide();
        }
    }
}
