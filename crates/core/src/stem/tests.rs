//! Unit tests of the stem phase.

use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;

pub(super) type Machine = Stem<u32, u32, StdRng>;
pub(super) type Action = StemAction<u32, u32>;

pub(super) fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub(super) fn machine(seed: u64) -> Machine {
    Stem::new(StemConfig::default(), StdRng::seed_from_u64(seed)).expect("default config is valid")
}

/// A machine with outbound peers `peers`, all reported at time zero.
pub(super) fn with_peers(seed: u64, peers: &[u32]) -> Machine {
    let mut m = machine(seed);
    for &peer in peers {
        m.handle(StemEvent::PeerUp { peer }, Duration::ZERO);
    }
    m
}

/// The role a node made with `seed` and peers 1, 2, 3 draws for the first stem it gets, from `from`.
fn first_role(seed: u64, from: u32) -> Role {
    let mut m = with_peers(seed, &[1, 2, 3]);
    m.handle(
        StemEvent::StemReceived {
            from,
            id: 0,
            bytes: 1,
        },
        secs(0),
    );
    m.handle(StemEvent::DataComplete { id: 0 }, secs(0));
    m.role_for(&from).expect("drawn at the first stem")
}

/// A seed whose node is `role` for the first stem it gets.
fn seed_with_role(role: Role) -> u64 {
    (0..1000)
        .find(|&seed| first_role(seed, 7) == role)
        .expect("both roles occur among 1,000 seeds")
}

fn without_timers(actions: Vec<Action>) -> Vec<Action> {
    actions
        .into_iter()
        .filter(|a| !matches!(a, StemAction::ScheduleTimer { .. }))
        .collect()
}

fn sent_to(actions: &[Action]) -> Vec<u32> {
    actions
        .iter()
        .filter_map(|a| match a {
            StemAction::SendStem { to, .. } => Some(*to),
            _ => None,
        })
        .collect()
}

#[test]
fn origin_and_relay_send_the_same() {
    let mb = 5 << 20;
    let mut relays = 0;
    for seed in 0..200 {
        let mut origin = with_peers(seed, &[1, 2, 3, 4]);
        let mut relay = with_peers(seed, &[1, 2, 3, 4]);
        let now = secs(7);
        let from_origin = origin.handle(StemEvent::Originate { id: 9, bytes: mb }, now);
        let fetch = relay.handle(
            StemEvent::StemReceived {
                from: 50,
                id: 9,
                bytes: mb,
            },
            secs(6),
        );
        assert_eq!(
            without_timers(fetch),
            vec![StemAction::Fetch { id: 9, from: 50 }]
        );
        let from_relay = relay.handle(StemEvent::DataComplete { id: 9 }, now);
        if relay.role_for(&50) == Some(Role::Relay) {
            relays += 1;
            // The same message to the same relay and the same fail-safe time: nothing tells them apart.
            assert_eq!(from_origin, from_relay, "seed {seed}");
            assert_eq!(sent_to(&from_origin).len(), 1);
        } else {
            // A diffuser ends others' stems; its own publication still goes to a relay.
            assert_eq!(
                without_timers(from_relay),
                vec![StemAction::Fluff { id: 9 }]
            );
            assert_eq!(sent_to(&from_origin).len(), 1);
        }
    }
    assert!(relays > 100, "most epochs are relay epochs: {relays}");
}

#[test]
fn own_publication_is_never_fluffed_first_hand() {
    for seed in 0..200 {
        let mut m = with_peers(seed, &[1, 2, 3]);
        // Also when the node is a diffuser for another source.
        m.handle(
            StemEvent::StemReceived {
                from: 7,
                id: 0,
                bytes: 1,
            },
            secs(0),
        );
        m.handle(StemEvent::DataComplete { id: 0 }, secs(0));
        let out = m.handle(StemEvent::Originate { id: 1, bytes: 100 }, secs(1));
        assert_eq!(sent_to(&out).len(), 1);
        assert!(!out.iter().any(|a| matches!(a, StemAction::Fluff { .. })));
    }
}

#[test]
fn roles_are_drawn_per_source_and_kept_for_the_epoch() {
    let mut m = with_peers(1, &[1, 2, 3]);
    let mut roles = std::collections::BTreeMap::new();
    for round in 0..3u32 {
        for from in 10..60u32 {
            let id = round * 100 + from;
            m.handle(StemEvent::StemReceived { from, id, bytes: 1 }, secs(1));
            let out = without_timers(m.handle(StemEvent::DataComplete { id }, secs(1)));
            let role = m.role_for(&from).expect("drawn");
            assert_eq!(
                *roles.entry(from).or_insert(role),
                role,
                "role of {from} changed"
            );
            let fluffed = out == vec![StemAction::Fluff { id }];
            assert_eq!(fluffed, role == Role::Diffuser);
        }
    }
    // 50 sources at q = 0.2: both roles occur (a spy fluffed by this node learns nothing of other sources).
    let diffusers = roles.values().filter(|r| **r == Role::Diffuser).count();
    assert!((1..50).contains(&diffusers), "{diffusers} diffusers");
}

#[test]
fn a_relay_fetches_before_it_forwards_and_a_diffuser_fluffs() {
    for role in [Role::Relay, Role::Diffuser] {
        let mut m = with_peers(seed_with_role(role), &[1, 2, 3]);
        assert_eq!(m.role_for(&7), None, "drawn at the first stem, not before");
        let out = m.handle(
            StemEvent::StemReceived {
                from: 7,
                id: 3,
                bytes: 1000,
            },
            secs(1),
        );
        assert_eq!(
            without_timers(out),
            vec![StemAction::Fetch { id: 3, from: 7 }]
        );
        let out = without_timers(m.handle(StemEvent::DataComplete { id: 3 }, secs(2)));
        match role {
            Role::Relay => assert_eq!(sent_to(&out).len(), 1, "{out:?}"),
            Role::Diffuser => assert_eq!(out, vec![StemAction::Fluff { id: 3 }]),
        }
    }
}

#[test]
fn a_source_keeps_its_relay_for_the_epoch_and_sources_spread_over_relays() {
    let relays_both = |seed: u64| {
        let mut m = with_peers(seed, &[1, 2, 3, 4, 5]);
        for (id, from) in [(90, 10), (91, 11)] {
            m.handle(
                StemEvent::StemReceived {
                    from,
                    id,
                    bytes: 10,
                },
                secs(0),
            );
        }
        m.handle(StemEvent::DataComplete { id: 90 }, secs(0));
        m.handle(StemEvent::DataComplete { id: 91 }, secs(0));
        m.role_for(&10) == Some(Role::Relay) && m.role_for(&11) == Some(Role::Relay)
    };
    let seed = (0..1000)
        .find(|s| relays_both(*s))
        .expect("a seed relaying both");
    let mut m = with_peers(seed, &[1, 2, 3, 4, 5]);
    let mut by_source = std::collections::BTreeMap::new();
    for (n, from) in [10u32, 11, 10, 11, 10, 11].into_iter().enumerate() {
        let id = n as u32;
        m.handle(
            StemEvent::StemReceived {
                from,
                id,
                bytes: 10,
            },
            secs(1),
        );
        let out = m.handle(StemEvent::DataComplete { id }, secs(1));
        let to = sent_to(&out);
        assert_eq!(to.len(), 1);
        let first = *by_source.entry(from).or_insert(to[0]);
        assert_eq!(first, to[0], "source {from} changed relay within the epoch");
        assert!(m.relays().contains(&to[0]));
    }
    // Two sources, two relays: one each.
    assert_ne!(by_source[&10], by_source[&11]);
}

#[test]
fn a_new_epoch_draws_role_and_relays_again() {
    let mut m = with_peers(3, &[1, 2, 3, 4, 5, 6, 7, 8]);
    let first_end = m.epoch_end().expect("an epoch started");
    let mut relay_sets = std::collections::BTreeSet::new();
    let mut now = Duration::ZERO;
    for _ in 0..20 {
        now += m.config().epoch;
        m.handle(StemEvent::Tick, now);
        let mut relays = m.relays().to_vec();
        relays.sort();
        assert_eq!(relays.len(), 2);
        relay_sets.insert(relays);
    }
    assert!(m.epoch_end() > Some(first_end));
    assert!(relay_sets.len() > 1, "relays never changed over 20 epochs");
}

#[test]
fn the_failsafe_fluffs_what_was_not_seen_in_fluff() {
    let mut m = with_peers(1, &[1, 2]);
    m.handle(StemEvent::Originate { id: 1, bytes: 0 }, secs(0));
    m.handle(StemEvent::Originate { id: 2, bytes: 0 }, secs(0));
    assert!(m.poll_timeout() <= Some(m.config().max_failsafe(0)));
    m.handle(StemEvent::SeenInFluff { id: 2 }, secs(5));
    // Before the floor nothing fires.
    let early = m.handle(StemEvent::Tick, m.config().failsafe_floor(0) - secs(1));
    assert!(!early.iter().any(|a| matches!(a, StemAction::Fluff { .. })));
    let late = m.handle(StemEvent::Tick, m.config().max_failsafe(0));
    assert_eq!(without_timers(late), vec![StemAction::Fluff { id: 1 }]);
    assert_eq!(m.counts().items, 0);
}

#[test]
fn the_failsafe_allows_for_the_size_and_is_bounded() {
    let config = StemConfig::default();
    assert!(config.failsafe_floor(100 << 20) > config.failsafe_floor(1 << 20));
    // 5 expected hops at 2 s per MiB: 100 MiB allows 1,000 s beyond the base.
    assert_eq!(config.failsafe_floor(100 << 20), secs(20 + 1000));
    // A size no record has does not overflow.
    assert_eq!(config.failsafe_floor(u64::MAX), secs(20) + MAX_ALLOWANCE);
    assert!(config.max_failsafe(u64::MAX) < Duration::MAX);
    // The draw's mean grows with the size as well, so a long hop does not decide who fires first.
    assert_eq!(config.failsafe_draw_mean(0), secs(30));
    assert_eq!(config.failsafe_draw_mean(100 << 20), secs(30 + 1000));
}

#[test]
fn a_duplicate_stem_starts_nothing() {
    let mut m = with_peers(1, &[1, 2]);
    let stem = |from| StemEvent::StemReceived {
        from,
        id: 4,
        bytes: 10,
    };
    assert_eq!(without_timers(m.handle(stem(8), secs(1))).len(), 1);
    assert!(without_timers(m.handle(stem(9), secs(1))).is_empty());
    m.handle(StemEvent::SeenInFluff { id: 4 }, secs(2));
    // Finished: a late copy is ignored too (no fetch, no fluff).
    assert!(without_timers(m.handle(stem(9), secs(3))).is_empty());
}

#[test]
fn with_no_peer_a_publication_waits_then_goes_to_a_relay() {
    let mut m = machine(1);
    let out = m.handle(StemEvent::Originate { id: 1, bytes: 10 }, secs(1));
    assert!(
        without_timers(out).is_empty(),
        "nothing goes out with no peer"
    );
    assert!(m.is_in_progress(&1));
    let out = m.handle(StemEvent::PeerUp { peer: 5 }, secs(2));
    assert_eq!(sent_to(&out), vec![5]);
    assert_eq!(m.forwarded_to(&1), Some(&5));
}

#[test]
fn a_lost_relay_is_replaced_and_a_lost_sender_forgotten() {
    let mut m = with_peers(1, &[1, 2, 3]);
    let before = m.relays().to_vec();
    m.handle(StemEvent::PeerDown { peer: before[0] }, secs(1));
    assert_eq!(m.relays().len(), 2);
    assert!(!m.relays().contains(&before[0]));
    // A fetch from a peer that went away is dropped, so another sender can still bring the item.
    m.handle(
        StemEvent::StemReceived {
            from: 9,
            id: 1,
            bytes: 10,
        },
        secs(1),
    );
    m.handle(StemEvent::PeerDown { peer: 9 }, secs(2));
    assert!(!m.is_in_progress(&1));
    let out = m.handle(
        StemEvent::StemReceived {
            from: 8,
            id: 1,
            bytes: 10,
        },
        secs(3),
    );
    assert_eq!(
        without_timers(out),
        vec![StemAction::Fetch { id: 1, from: 8 }]
    );
    m.handle(StemEvent::FetchFailed { id: 1 }, secs(4));
    assert!(!m.is_in_progress(&1));
}

#[test]
fn a_relay_lost_before_it_fetched_is_replaced_for_the_item() {
    let mut m = with_peers(1, &[1, 2, 3]);
    let first = sent_to(&m.handle(StemEvent::Originate { id: 1, bytes: 10 }, secs(1)))[0];
    let second = sent_to(&m.handle(StemEvent::Originate { id: 2, bytes: 10 }, secs(1)))[0];
    assert_eq!(first, second, "one source, one relay");
    // Item 2 was fetched by the relay before it went; item 1 was not.
    m.handle(StemEvent::Fetched { id: 2, by: first }, secs(2));
    let out = m.handle(StemEvent::PeerDown { peer: first }, secs(3));
    let resent: Vec<u32> = out
        .iter()
        .filter_map(|a| match a {
            StemAction::SendStem { to, id } => Some((*id, *to)),
            _ => None,
        })
        .map(|(id, to)| {
            assert_eq!(id, 1, "only the item not handed over is sent again");
            to
        })
        .collect();
    assert_eq!(resent.len(), 1);
    assert_ne!(resent[0], first);
    assert!(m.relays().contains(&resent[0]));
    assert_eq!(
        m.forwarded_to(&2),
        Some(&first),
        "item 2 waits on its fail-safe"
    );
}

#[test]
fn an_item_is_not_sent_back_to_the_relay_it_came_from() {
    for seed in 0..50 {
        let mut m = with_peers(seed, &[1, 2]);
        let from = m.relays()[0];
        m.handle(
            StemEvent::StemReceived {
                from,
                id: 1,
                bytes: 10,
            },
            secs(1),
        );
        let out = m.handle(StemEvent::DataComplete { id: 1 }, secs(1));
        if m.role_for(&from) == Some(Role::Relay) {
            assert_eq!(sent_to(&out), vec![m.relays()[1]]);
        }
    }
}

#[test]
fn stems_past_the_cap_are_ignored() {
    let config = StemConfig {
        max_items: 3,
        ..StemConfig::default()
    };
    let mut m: Machine = Stem::new(config, StdRng::seed_from_u64(1)).expect("valid");
    m.handle(StemEvent::PeerUp { peer: 1 }, secs(0));
    for id in 0..10 {
        m.handle(
            StemEvent::StemReceived {
                from: 2,
                id,
                bytes: 1,
            },
            secs(1),
        );
    }
    assert_eq!(m.counts().items, 3);
}

#[test]
fn bad_configs_are_refused() {
    let zero_q = StemConfig {
        diffuse_per_mille: 0,
        ..StemConfig::default()
    };
    assert!(matches!(
        zero_q.validate(),
        Err(StemConfigError::OutOfRange {
            field: "diffuse_per_mille",
            ..
        })
    ));
    let zero_epoch = StemConfig {
        epoch: Duration::ZERO,
        ..StemConfig::default()
    };
    assert_eq!(
        zero_epoch.validate(),
        Err(StemConfigError::ZeroDuration { field: "epoch" })
    );
    assert!(StemConfig::default().validate().is_ok());
}
