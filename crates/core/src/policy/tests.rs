//! Unit tests of the propagation policy.

use std::collections::BTreeSet;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;

type Machine = RecordPolicy<u32, StdRng>;

pub(super) fn id(n: u8) -> RecordId {
    RecordId([n; 32])
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn machine(config: PolicyConfig) -> Machine {
    RecordPolicy::new(config, StdRng::seed_from_u64(7)).unwrap()
}

/// A machine with peers 1..=n connected inbound (so no reconciliation starts on connect).
fn with_peers(config: PolicyConfig, n: u32) -> Machine {
    let mut g = machine(config);
    for peer in 1..=n {
        g.handle(
            InEvent::PeerUp {
                peer,
                outbound: false,
            },
            secs(0),
        );
    }
    g
}

fn pushes(actions: &[OutEvent<u32>]) -> (BTreeSet<u32>, BTreeSet<u32>) {
    let mut eager = BTreeSet::new();
    let mut announced = BTreeSet::new();
    for action in actions {
        match action {
            OutEvent::SendRecord { to, .. } => assert!(eager.insert(*to), "pushed twice to {to}"),
            OutEvent::Announce { to, .. } => {
                assert!(announced.insert(*to), "announced twice to {to}")
            }
            _ => {}
        }
    }
    assert!(eager.is_disjoint(&announced));
    (eager, announced)
}

#[test]
fn a_published_record_is_pushed_whole_to_the_whole_fanout() {
    let mut g = with_peers(PolicyConfig::default(), 12);
    let actions = g.handle(
        InEvent::Published {
            id: id(1),
            hold_back: false,
        },
        secs(1),
    );
    let (eager, announced) = pushes(&actions);
    assert_eq!(eager.len(), 8);
    assert!(announced.is_empty());
    // Publishing it again (or receiving it) does nothing.
    assert!(
        pushes(&g.handle(
            InEvent::Published {
                id: id(1),
                hold_back: false
            },
            secs(1)
        ))
        .0
        .is_empty()
    );
    let again = g.handle(
        InEvent::Received {
            from: 3,
            id: id(1),
            age: Duration::ZERO,
            verdict: Verdict::Stored,
        },
        secs(2),
    );
    assert_eq!(pushes(&again), (BTreeSet::new(), BTreeSet::new()));
}

#[test]
fn a_received_record_is_pushed_to_a_few_and_announced_to_more() {
    let config = PolicyConfig {
        eager_fanout: 2,
        announce_fanout: 6,
        ..PolicyConfig::default()
    };
    let mut g = with_peers(config, 12);
    let actions = g.handle(
        InEvent::Received {
            from: 12,
            id: id(1),
            age: Duration::ZERO,
            verdict: Verdict::Stored,
        },
        secs(1),
    );
    let (eager, announced) = pushes(&actions);
    assert_eq!(eager.len(), 2);
    assert_eq!(announced.len(), 6);
    // With the defaults, nothing goes whole past the first hop.
    let mut g = with_peers(PolicyConfig::default(), 12);
    let actions = g.handle(
        InEvent::Received {
            from: 12,
            id: id(1),
            age: Duration::ZERO,
            verdict: Verdict::Stored,
        },
        secs(1),
    );
    let (eager, announced) = pushes(&actions);
    assert!(eager.is_empty());
    assert_eq!(announced.len(), 8);
}

#[test]
fn a_received_record_never_goes_back_to_its_sender() {
    let mut g = with_peers(PolicyConfig::default(), 3);
    for n in 0..50 {
        let actions = g.handle(
            InEvent::Received {
                from: 2,
                id: id(n),
                age: Duration::ZERO,
                verdict: Verdict::Stored,
            },
            secs(1),
        );
        let (eager, announced) = pushes(&actions);
        assert!(!eager.contains(&2) && !announced.contains(&2));
        assert_eq!(eager.len() + announced.len(), 2);
    }
}

#[test]
fn records_found_by_reconciliation_are_pushed_only_while_young() {
    let mut g = with_peers(PolicyConfig::default(), 5);
    let old = g.handle(
        InEvent::Received {
            from: 1,
            id: id(1),
            age: secs(7200),
            verdict: Verdict::Stored,
        },
        secs(1),
    );
    assert_eq!(pushes(&old).0.len() + pushes(&old).1.len(), 0);
    let young = g.handle(
        InEvent::Received {
            from: 1,
            id: id(2),
            age: secs(60),
            verdict: Verdict::Stored,
        },
        secs(1),
    );
    assert_eq!(pushes(&young).0.len() + pushes(&young).1.len(), 4);
}

#[test]
fn an_announced_record_is_requested_once_and_then_from_alternates() {
    let mut g = with_peers(PolicyConfig::default(), 5);
    let first = g.handle(InEvent::Announced { from: 1, id: id(9) }, secs(10));
    assert!(first.contains(&OutEvent::Request { from: 1, id: id(9) }));
    assert!(first.contains(&OutEvent::ScheduleTimer { at: secs(15) }));
    // Further announcers are remembered, not asked.
    for from in [2, 3] {
        let actions = g.handle(InEvent::Announced { from, id: id(9) }, secs(11));
        assert!(
            !actions
                .iter()
                .any(|a| matches!(a, OutEvent::Request { .. }))
        );
    }
    assert!(g.has_seen(&id(9)));
    // No answer within the timeout: the next announcer is asked.
    let retry = g.handle(InEvent::Tick, secs(15));
    assert!(retry.contains(&OutEvent::Request { from: 2, id: id(9) }));
    // Its connection closes: the last one is asked at once.
    let after_down = g.handle(InEvent::PeerDown { peer: 2 }, secs(16));
    assert!(after_down.contains(&OutEvent::Request { from: 3, id: id(9) }));
    // The record arrives: it is pushed on, but not to peers that announced it.
    let arrived = g.handle(
        InEvent::Received {
            from: 3,
            id: id(9),
            age: Duration::ZERO,
            verdict: Verdict::Stored,
        },
        secs(17),
    );
    let (eager, announced) = pushes(&arrived);
    let all: BTreeSet<u32> = eager.union(&announced).copied().collect();
    assert_eq!(all, BTreeSet::from([4, 5]));
    assert_eq!(g.counts().pending, 0);
}

#[test]
fn a_request_without_alternates_is_forgotten_after_the_timeout() {
    let mut g = with_peers(PolicyConfig::default(), 2);
    g.handle(InEvent::Announced { from: 1, id: id(4) }, secs(0));
    assert_eq!(g.counts().pending, 1);
    let actions = g.handle(InEvent::Tick, secs(5));
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, OutEvent::Request { .. }))
    );
    assert_eq!(g.counts().pending, 0);
    // Announced again later: asked again (reconciliation would also find it).
    let again = g.handle(InEvent::Announced { from: 2, id: id(4) }, secs(6));
    assert!(again.contains(&OutEvent::Request { from: 2, id: id(4) }));
}

#[test]
fn announcements_from_strangers_or_beyond_the_cap_are_ignored() {
    let config = PolicyConfig {
        max_pending: 3,
        ..PolicyConfig::default()
    };
    let mut g = with_peers(config, 2);
    assert!(
        g.handle(
            InEvent::Announced {
                from: 99,
                id: id(1)
            },
            secs(0)
        )
        .is_empty()
    );
    for n in 0..10 {
        g.handle(InEvent::Announced { from: 1, id: id(n) }, secs(0));
    }
    assert_eq!(g.counts().pending, 3);
}

#[test]
fn outbound_connections_start_a_reconciliation_and_the_timer_starts_more() {
    let config = PolicyConfig {
        reconcile_interval: secs(30),
        ..PolicyConfig::default()
    };
    let mut g = machine(config);
    let up = g.handle(
        InEvent::PeerUp {
            peer: 1,
            outbound: true,
        },
        secs(0),
    );
    assert!(up.contains(&OutEvent::StartReconcile { peer: 1 }));
    // Only one session at a time (max_reconciles = 1).
    let up2 = g.handle(
        InEvent::PeerUp {
            peer: 2,
            outbound: true,
        },
        secs(0),
    );
    assert!(
        !up2.iter()
            .any(|a| matches!(a, OutEvent::StartReconcile { .. }))
    );
    g.handle(InEvent::ReconcileEnded { peer: 1 }, secs(1));
    // Inbound connections do not start one.
    let up3 = g.handle(
        InEvent::PeerUp {
            peer: 3,
            outbound: false,
        },
        secs(1),
    );
    assert!(
        !up3.iter()
            .any(|a| matches!(a, OutEvent::StartReconcile { .. }))
    );

    // The periodic timer fires between 15 and 45 s after the first peer came.
    let at = g.poll_timeout().unwrap();
    assert!(at >= secs(15) && at < secs(45), "{at:?}");
    assert!(
        g.handle(InEvent::Tick, at - Duration::from_millis(1))
            .is_empty()
    );
    let fired = g.handle(InEvent::Tick, at);
    let started: Vec<_> = fired
        .iter()
        .filter(|a| matches!(a, OutEvent::StartReconcile { .. }))
        .collect();
    assert_eq!(started.len(), 1);
    assert!(matches!(fired.last(), Some(OutEvent::ScheduleTimer { .. })));
}

#[test]
fn a_session_never_reported_ended_is_forgotten() {
    let config = PolicyConfig {
        reconcile_timeout: secs(60),
        ..PolicyConfig::default()
    };
    let mut g = machine(config);
    g.handle(
        InEvent::PeerUp {
            peer: 1,
            outbound: true,
        },
        secs(0),
    );
    assert!(g.is_reconciling(&1));
    g.handle(InEvent::Tick, secs(59));
    assert!(g.is_reconciling(&1));
    g.handle(InEvent::Tick, secs(60));
    assert!(!g.is_reconciling(&1));
}

#[test]
fn periodic_reconciliation_visits_every_peer() {
    let mut g = with_peers(PolicyConfig::default(), 8);
    let mut visited = BTreeSet::new();
    let mut now = secs(0);
    for _ in 0..200 {
        now = g.poll_timeout().unwrap().max(now);
        for action in g.handle(InEvent::Tick, now) {
            if let OutEvent::StartReconcile { peer } = action {
                visited.insert(peer);
                g.handle(InEvent::ReconcileEnded { peer }, now);
            }
        }
    }
    assert_eq!(visited, (1..=8).collect());
}

#[test]
fn the_same_seed_gives_the_same_actions() {
    let run = || {
        let mut g = with_peers(PolicyConfig::default(), 20);
        (0..30)
            .flat_map(|n| {
                g.handle(
                    InEvent::Published {
                        id: id(n),
                        hold_back: false,
                    },
                    secs(u64::from(n)),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
}

#[test]
fn config_validation() {
    assert!(PolicyConfig::default().validate().is_ok());
    let bad = [
        PolicyConfig {
            seen_capacity: 0,
            ..PolicyConfig::default()
        },
        PolicyConfig {
            max_peers: MAX_PEERS_CEILING + 1,
            ..PolicyConfig::default()
        },
        PolicyConfig {
            reconcile_interval: Duration::ZERO,
            ..PolicyConfig::default()
        },
    ];
    for config in bad {
        assert!(RecordPolicy::<u32, _>::new(config, StdRng::seed_from_u64(1)).is_err());
    }
}

#[test]
fn a_held_back_publication_is_neither_pushed_nor_served_until_released() {
    let mut g = with_peers(PolicyConfig::default(), 4);
    let held = g.handle(
        InEvent::Published {
            id: id(1),
            hold_back: true,
        },
        secs(1),
    );
    assert_eq!(pushes(&held), (BTreeSet::new(), BTreeSet::new()));
    assert!(g.is_held_back(&id(1)));
    let asked = g.handle(
        InEvent::Requested {
            from: 2,
            ids: vec![id(1), id(2), id(2)],
        },
        secs(2),
    );
    assert_eq!(
        asked,
        vec![OutEvent::SendRecords {
            to: 2,
            ids: vec![id(2)]
        }]
    );
    let reconciled = g.handle(
        InEvent::Reconciled {
            peer: 3,
            have: vec![id(1)],
            need: vec![id(1)],
        },
        secs(3),
    );
    assert!(reconciled.is_empty());
    let released = g.handle(InEvent::Released { id: id(1) }, secs(4));
    assert_eq!(pushes(&released).0.len(), 4);
    assert!(!g.is_held_back(&id(1)));
    // Released twice: nothing more.
    assert!(
        g.handle(InEvent::Released { id: id(1) }, secs(5))
            .is_empty()
    );
}

#[test]
fn reconciliation_offers_what_the_peer_lacks_and_requests_what_we_lack_once() {
    let mut g = with_peers(PolicyConfig::default(), 3);
    let out = g.handle(
        InEvent::Reconciled {
            peer: 1,
            have: vec![id(1), id(1)],
            need: vec![id(2), id(3)],
        },
        secs(1),
    );
    let announced: Vec<_> = out
        .iter()
        .filter(|o| matches!(o, OutEvent::Announce { .. }))
        .collect();
    assert_eq!(announced, vec![&OutEvent::Announce { to: 1, id: id(1) }]);
    assert!(out.contains(&OutEvent::Request { from: 1, id: id(2) }));
    assert!(out.contains(&OutEvent::Request { from: 1, id: id(3) }));
    // Another session names the same records: they are on their way, not asked again.
    let again = g.handle(
        InEvent::Reconciled {
            peer: 2,
            have: vec![],
            need: vec![id(2), id(3)],
        },
        secs(2),
    );
    assert!(!again.iter().any(|o| matches!(o, OutEvent::Request { .. })));
}

#[test]
fn invalid_records_past_the_limit_ask_for_one_disconnect() {
    let config = PolicyConfig {
        max_bad_records: 2,
        ..PolicyConfig::default()
    };
    let mut g = with_peers(config, 2);
    let mut disconnects = Vec::new();
    for n in 0..6 {
        for out in g.handle(
            InEvent::Received {
                from: 1,
                id: id(n),
                age: Duration::ZERO,
                verdict: Verdict::Invalid,
            },
            secs(1),
        ) {
            assert!(!matches!(
                out,
                OutEvent::SendRecord { .. } | OutEvent::Announce { .. }
            ));
            if let OutEvent::Disconnect { peer, reason } = out {
                disconnects.push((n, peer, reason));
            }
        }
    }
    assert_eq!(disconnects, vec![(2, 1, Misbehaviour::InvalidRecords(3))]);
    // The invalid ids are not requested again when announced.
    assert!(
        g.handle(InEvent::Announced { from: 2, id: id(0) }, secs(2))
            .is_empty()
    );
    // Admission refusals are not held against the sender.
    for n in 10..20 {
        let out = g.handle(
            InEvent::Received {
                from: 2,
                id: id(n),
                age: Duration::ZERO,
                verdict: Verdict::Refused,
            },
            secs(3),
        );
        assert!(out.is_empty());
    }
}

#[test]
fn a_record_the_node_could_not_check_is_wanted_again_and_not_held_against_the_sender() {
    let mut g = with_peers(PolicyConfig::default(), 2);
    let asked = g.handle(InEvent::Announced { from: 1, id: id(7) }, secs(1));
    assert!(asked.contains(&OutEvent::Request { from: 1, id: id(7) }));
    let out = g.handle(
        InEvent::Received {
            from: 1,
            id: id(7),
            age: Duration::ZERO,
            verdict: Verdict::Unchecked,
        },
        secs(2),
    );
    assert!(
        out.iter()
            .all(|o| matches!(o, OutEvent::ScheduleTimer { .. })),
        "no relay and no disconnect: {out:?}"
    );
    assert!(!g.was_refused(&id(7)) && !g.has_seen(&id(7)));
    // Announced again, it is fetched again.
    let again = g.handle(InEvent::Announced { from: 2, id: id(7) }, secs(3));
    assert!(again.contains(&OutEvent::Request { from: 2, id: id(7) }));
}
