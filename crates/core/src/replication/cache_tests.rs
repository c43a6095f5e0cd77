//! Unit tests of the cache policy: ranking, quota, pins, back-off, the candidate cap.

use super::cache::*;
use crate::record::InfoHash;

pub(super) fn ih(n: u8) -> InfoHash {
    InfoHash([n; 20])
}

fn cand(n: u8, size: u64, created: u64, followed: bool, holders: u32) -> Candidate {
    Candidate {
        infohash: ih(n),
        size,
        created,
        followed,
        holders,
    }
}

fn mirror(quota: u64, parallel: usize) -> CachePolicy {
    CachePolicy::new(CacheConfig {
        mode: CacheMode::Mirror,
        quota_bytes: quota,
        max_parallel_fetches: parallel,
    })
}

fn fetches(actions: &[CacheAction]) -> Vec<InfoHash> {
    actions
        .iter()
        .filter_map(|a| match a {
            CacheAction::Fetch(ih) => Some(*ih),
            CacheAction::Evict(_) => None,
        })
        .collect()
}

fn evictions(actions: &[CacheAction]) -> Vec<InfoHash> {
    actions
        .iter()
        .filter_map(|a| match a {
            CacheAction::Evict(ih) => Some(*ih),
            CacheAction::Fetch(_) => None,
        })
        .collect()
}

#[test]
fn mirror_fetches_followed_then_rarer_then_newer() {
    let mut p = mirror(1000, 1);
    p.offer(cand(1, 10, 500, false, 0)); // new, rare
    p.offer(cand(2, 10, 100, false, 0)); // old, rare
    p.offer(cand(3, 10, 900, false, 5)); // newest, common
    p.offer(cand(4, 10, 50, true, 9)); // followed: first whatever else
    let mut order = Vec::new();
    for now in 0..4 {
        let got = fetches(&p.next_actions(now));
        assert_eq!(got.len(), 1, "one at a time");
        p.fetch_finished(&got[0], true, now);
        order.push(got[0]);
    }
    assert_eq!(order, vec![ih(4), ih(1), ih(2), ih(3)]);
    assert_eq!(p.used_bytes(), 40);
    assert!(p.next_actions(5).is_empty());
}

#[test]
fn holders_and_follows_rerank_candidates() {
    let mut p = mirror(1000, 1);
    p.offer(cand(1, 10, 500, false, 0));
    p.offer(cand(2, 10, 100, false, 1));
    p.set_holders(&ih(1), 3);
    assert_eq!(fetches(&p.next_actions(0)), vec![ih(2)]);
    p.fetch_finished(&ih(2), true, 0);
    p.offer(cand(3, 10, 100, false, 7));
    p.set_followed(&ih(3), true);
    assert_eq!(fetches(&p.next_actions(1)), vec![ih(3)]);
}

#[test]
fn parallel_fetches_are_capped() {
    let mut p = mirror(1000, 2);
    for n in 1..=5 {
        p.offer(cand(n, 10, u64::from(n), false, 0));
    }
    assert_eq!(fetches(&p.next_actions(0)).len(), 2);
    assert!(p.next_actions(0).is_empty());
    p.fetch_finished(&ih(5), true, 1);
    assert_eq!(fetches(&p.next_actions(1)).len(), 1);
    assert_eq!(p.policy_fetches(), 2);
}

#[test]
fn never_fetches_more_than_the_quota_and_never_too_big() {
    let mut p = mirror(100, 4);
    p.offer(cand(1, 101, 10, true, 0)); // bigger than the whole quota
    p.offer(cand(2, 60, 9, false, 0));
    p.offer(cand(3, 50, 8, false, 0));
    p.offer(cand(4, 40, 7, false, 0));
    let got = fetches(&p.next_actions(0));
    // 2 (60) then 4 (40) fills it exactly; 3 (50) does not fit and cannot evict better-ranked 2.
    assert_eq!(got, vec![ih(2), ih(4)]);
    assert_eq!(p.used_bytes(), 100);
    assert_eq!(p.candidates_len(), 1);
}

#[test]
fn better_candidate_evicts_lower_ranked_least_recently_requested_first() {
    let mut p = mirror(100, 1);
    // Three held, common items; 12 was requested last.
    for (n, last) in [(10u8, 5u64), (11, 1), (12, 9)] {
        p.offer(cand(n, 30, 1, false, 8));
        p.held(ih(n), 30, false, last);
    }
    p.offer(cand(1, 40, 50, false, 0)); // rare: ranks above all three
    let actions = p.next_actions(20);
    // 10 free; 30 more needed: the least recently requested (11) goes, and that is enough.
    assert_eq!(evictions(&actions), vec![ih(11)]);
    assert_eq!(fetches(&actions), vec![ih(1)]);
    assert!(p.used_bytes() <= 100);
    // An equally-ranked or better candidate never evicts a better item.
    p.fetch_finished(&ih(1), true, 21);
    p.offer(cand(2, 60, 40, false, 1)); // ranks below 1 (40 created, 1 holder), above the common ones
    let actions = p.next_actions(22);
    assert_eq!(evictions(&actions), vec![ih(10), ih(12)]);
    assert_eq!(fetches(&actions), vec![ih(2)]);
    p.fetch_finished(&ih(2), true, 23);
    p.offer(cand(3, 50, 30, false, 2)); // ranks below 1 and 2: nothing it may evict
    assert!(p.next_actions(24).is_empty());
}

#[test]
fn evicted_item_is_not_fetched_back_during_its_cooldown() {
    let limits = CacheLimits::default();
    let mut p = CachePolicy::with_limits(CacheConfig::mirror(100), limits.clone());
    p.offer(cand(1, 60, 1, false, 5));
    assert_eq!(fetches(&p.next_actions(0)), vec![ih(1)]);
    p.fetch_finished(&ih(1), true, 0);
    p.offer(cand(2, 60, 2, false, 0));
    let actions = p.next_actions(10);
    assert_eq!(evictions(&actions), vec![ih(1)]);
    assert_eq!(fetches(&actions), vec![ih(2)]);
    // 2 is dropped (its author blocked): 1 would fit, but waits out its cool-down.
    p.forget(&ih(2));
    assert_eq!(p.used_bytes(), 0);
    assert!(p.next_actions(11).is_empty());
    assert!(
        p.next_actions(10 + limits.evicted_cooldown_secs - 1)
            .is_empty()
    );
    assert_eq!(
        fetches(&p.next_actions(10 + limits.evicted_cooldown_secs)),
        vec![ih(1)]
    );
}

#[test]
fn failed_fetch_backs_off_exponentially() {
    let limits = CacheLimits {
        retry_base_secs: 10,
        retry_max_secs: 25,
        ..CacheLimits::default()
    };
    let mut p = CachePolicy::with_limits(CacheConfig::mirror(100), limits);
    p.offer(cand(1, 10, 1, false, 0));
    let mut now = 0;
    for wait in [10, 20, 25, 25] {
        assert_eq!(fetches(&p.next_actions(now)), vec![ih(1)]);
        p.fetch_finished(&ih(1), false, now);
        assert!(
            p.next_actions(now + wait - 1).is_empty(),
            "no retry before {wait}"
        );
        now += wait;
    }
    assert_eq!(fetches(&p.next_actions(now)), vec![ih(1)]);
    p.fetch_finished(&ih(1), true, now);
    assert_eq!(p.used_bytes(), 10);
}

#[test]
fn pins_are_never_evicted_and_block_fetches_when_over_quota() {
    let mut p = mirror(100, 2);
    p.held(ih(1), 80, true, 0);
    p.held(ih(2), 50, false, 0);
    assert_eq!(p.next_actions(1), vec![CacheAction::Evict(ih(2))]);
    assert!(p.pin(&ih(1)));
    // Pinning past the quota is allowed; nothing else comes in.
    p.held(ih(4), 30, true, 0);
    p.offer(cand(3, 10, 1, true, 0));
    assert_eq!(p.used_bytes(), 110);
    assert!(p.next_actions(2).is_empty());
    // Unpinned, it goes, and the candidate fits again.
    assert!(p.unpin(&ih(4)));
    let actions = p.next_actions(3);
    assert_eq!(evictions(&actions), vec![ih(4)]);
    assert_eq!(fetches(&actions), vec![ih(3)]);
    assert!(!p.pin(&ih(99)), "unknown items cannot be pinned");
}

#[test]
fn viewer_keeps_what_the_user_fetched_within_the_quota() {
    let mut p = CachePolicy::new(CacheConfig::viewer(100));
    p.offer(cand(1, 10, 1, true, 0));
    assert!(p.next_actions(0).is_empty(), "a viewer never fetches");
    assert_eq!(p.candidates_len(), 0);
    p.fetch_started(ih(1), 40, 1);
    p.fetch_finished(&ih(1), true, 2);
    p.fetch_started(ih(2), 40, 3);
    p.fetch_finished(&ih(2), true, 4);
    p.requested(&ih(1), 5);
    p.fetch_started(ih(3), 40, 6);
    // 2 is now the least recently requested.
    assert_eq!(p.next_actions(6), vec![CacheAction::Evict(ih(2))]);
    assert_eq!(p.used_bytes(), 80);
    let views: Vec<CacheItemView> = p.items().collect();
    assert_eq!(views.len(), 2);
    assert!(
        views
            .iter()
            .any(|v| v.infohash == ih(3) && v.state == ItemState::Fetching && !v.by_policy)
    );
    p.forget(&ih(3));
    assert_eq!(p.used_bytes(), 40);
}

#[test]
fn candidate_cap_keeps_the_best_ranked() {
    let limits = CacheLimits {
        max_candidates: 3,
        ..CacheLimits::default()
    };
    let config = CacheConfig {
        max_parallel_fetches: 1,
        ..CacheConfig::mirror(1000)
    };
    let mut p = CachePolicy::with_limits(config, limits);
    for n in 1..=6u8 {
        // Higher n: more holders, so worse.
        p.offer(cand(n, 10, 1, false, u32::from(n)));
    }
    p.offer(cand(0, 10, 1, false, 0));
    assert_eq!(p.candidates_len(), 3);
    let mut got = Vec::new();
    for now in 0..3 {
        let f = fetches(&p.next_actions(now));
        p.fetch_finished(&f[0], true, now);
        got.extend(f);
    }
    assert_eq!(got, vec![ih(0), ih(1), ih(2)]);
}

#[test]
fn lowering_the_quota_evicts_down_to_it() {
    let mut p = mirror(100, 1);
    p.held(ih(1), 40, false, 1);
    p.held(ih(2), 40, false, 2);
    p.set_quota(50);
    assert_eq!(p.next_actions(3), vec![CacheAction::Evict(ih(1))]);
    assert_eq!(p.used_bytes(), 40);
}
