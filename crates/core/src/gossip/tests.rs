//! Unit tests of the propagation policy.

use std::collections::BTreeSet;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;

type Machine = Gossip<u32, StdRng>;

pub(super) fn id(n: u8) -> RecordId {
    RecordId([n; 32])
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn machine(config: GossipConfig) -> Machine {
    Gossip::new(config, StdRng::seed_from_u64(7)).unwrap()
}

/// A machine with peers 1..=n connected inbound (so no reconciliation starts on connect).
fn with_peers(config: GossipConfig, n: u32) -> Machine {
    let mut g = machine(config);
    for peer in 1..=n {
        g.handle(
            Event::PeerUp {
                peer,
                outbound: false,
            },
            secs(0),
        );
    }
    g
}

fn pushes(actions: &[Action<u32>]) -> (BTreeSet<u32>, BTreeSet<u32>) {
    let mut eager = BTreeSet::new();
    let mut announced = BTreeSet::new();
    for action in actions {
        match action {
            Action::SendRecord { to, .. } => assert!(eager.insert(*to), "pushed twice to {to}"),
            Action::Announce { to, .. } => {
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
    let mut g = with_peers(GossipConfig::default(), 12);
    let actions = g.handle(Event::Published { id: id(1) }, secs(1));
    let (eager, announced) = pushes(&actions);
    assert_eq!(eager.len(), 8);
    assert!(announced.is_empty());
    // Publishing it again (or receiving it) does nothing.
    assert!(
        pushes(&g.handle(Event::Published { id: id(1) }, secs(1)))
            .0
            .is_empty()
    );
    let again = g.handle(
        Event::Received {
            from: 3,
            id: id(1),
            via: Via::Push,
        },
        secs(2),
    );
    assert_eq!(pushes(&again), (BTreeSet::new(), BTreeSet::new()));
}

#[test]
fn a_received_record_is_pushed_to_a_few_and_announced_to_more() {
    let config = GossipConfig {
        eager_fanout: 2,
        announce_fanout: 6,
        ..GossipConfig::default()
    };
    let mut g = with_peers(config, 12);
    let actions = g.handle(
        Event::Received {
            from: 12,
            id: id(1),
            via: Via::Push,
        },
        secs(1),
    );
    let (eager, announced) = pushes(&actions);
    assert_eq!(eager.len(), 2);
    assert_eq!(announced.len(), 6);
    // With the defaults, nothing goes whole past the first hop.
    let mut g = with_peers(GossipConfig::default(), 12);
    let actions = g.handle(
        Event::Received {
            from: 12,
            id: id(1),
            via: Via::Push,
        },
        secs(1),
    );
    let (eager, announced) = pushes(&actions);
    assert!(eager.is_empty());
    assert_eq!(announced.len(), 8);
}

#[test]
fn a_received_record_never_goes_back_to_its_sender() {
    let mut g = with_peers(GossipConfig::default(), 3);
    for n in 0..50 {
        let actions = g.handle(
            Event::Received {
                from: 2,
                id: id(n),
                via: Via::Push,
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
    let mut g = with_peers(GossipConfig::default(), 5);
    let old = g.handle(
        Event::Received {
            from: 1,
            id: id(1),
            via: Via::Reconcile { age: secs(7200) },
        },
        secs(1),
    );
    assert_eq!(pushes(&old).0.len() + pushes(&old).1.len(), 0);
    let young = g.handle(
        Event::Received {
            from: 1,
            id: id(2),
            via: Via::Reconcile { age: secs(60) },
        },
        secs(1),
    );
    assert_eq!(pushes(&young).0.len() + pushes(&young).1.len(), 4);
}

#[test]
fn an_announced_record_is_requested_once_and_then_from_alternates() {
    let mut g = with_peers(GossipConfig::default(), 5);
    let first = g.handle(Event::Announced { from: 1, id: id(9) }, secs(10));
    assert!(first.contains(&Action::Request { from: 1, id: id(9) }));
    assert!(first.contains(&Action::ScheduleTimer { at: secs(15) }));
    // Further announcers are remembered, not asked.
    for from in [2, 3] {
        let actions = g.handle(Event::Announced { from, id: id(9) }, secs(11));
        assert!(!actions.iter().any(|a| matches!(a, Action::Request { .. })));
    }
    assert!(g.has_seen(&id(9)));
    // No answer within the timeout: the next announcer is asked.
    let retry = g.handle(Event::Tick, secs(15));
    assert!(retry.contains(&Action::Request { from: 2, id: id(9) }));
    // Its connection closes: the last one is asked at once.
    let after_down = g.handle(Event::PeerDown { peer: 2 }, secs(16));
    assert!(after_down.contains(&Action::Request { from: 3, id: id(9) }));
    // The record arrives: it is pushed on, but not to peers that announced it.
    let arrived = g.handle(
        Event::Received {
            from: 3,
            id: id(9),
            via: Via::Push,
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
    let mut g = with_peers(GossipConfig::default(), 2);
    g.handle(Event::Announced { from: 1, id: id(4) }, secs(0));
    assert_eq!(g.counts().pending, 1);
    let actions = g.handle(Event::Tick, secs(5));
    assert!(!actions.iter().any(|a| matches!(a, Action::Request { .. })));
    assert_eq!(g.counts().pending, 0);
    // Announced again later: asked again (reconciliation would also find it).
    let again = g.handle(Event::Announced { from: 2, id: id(4) }, secs(6));
    assert!(again.contains(&Action::Request { from: 2, id: id(4) }));
}

#[test]
fn announcements_from_strangers_or_beyond_the_cap_are_ignored() {
    let config = GossipConfig {
        max_pending: 3,
        ..GossipConfig::default()
    };
    let mut g = with_peers(config, 2);
    assert!(
        g.handle(
            Event::Announced {
                from: 99,
                id: id(1)
            },
            secs(0)
        )
        .is_empty()
    );
    for n in 0..10 {
        g.handle(Event::Announced { from: 1, id: id(n) }, secs(0));
    }
    assert_eq!(g.counts().pending, 3);
}

#[test]
fn outbound_connections_start_a_reconciliation_and_the_timer_starts_more() {
    let config = GossipConfig {
        reconcile_interval: secs(30),
        ..GossipConfig::default()
    };
    let mut g = machine(config);
    let up = g.handle(
        Event::PeerUp {
            peer: 1,
            outbound: true,
        },
        secs(0),
    );
    assert!(up.contains(&Action::StartReconcile { peer: 1 }));
    // Only one session at a time (max_reconciles = 1).
    let up2 = g.handle(
        Event::PeerUp {
            peer: 2,
            outbound: true,
        },
        secs(0),
    );
    assert!(
        !up2.iter()
            .any(|a| matches!(a, Action::StartReconcile { .. }))
    );
    g.handle(Event::ReconcileEnded { peer: 1 }, secs(1));
    // Inbound connections do not start one.
    let up3 = g.handle(
        Event::PeerUp {
            peer: 3,
            outbound: false,
        },
        secs(1),
    );
    assert!(
        !up3.iter()
            .any(|a| matches!(a, Action::StartReconcile { .. }))
    );

    // The periodic timer fires between 15 and 45 s after the first peer came.
    let at = g.poll_timeout().unwrap();
    assert!(at >= secs(15) && at < secs(45), "{at:?}");
    assert!(
        g.handle(Event::Tick, at - Duration::from_millis(1))
            .is_empty()
    );
    let fired = g.handle(Event::Tick, at);
    let started: Vec<_> = fired
        .iter()
        .filter(|a| matches!(a, Action::StartReconcile { .. }))
        .collect();
    assert_eq!(started.len(), 1);
    assert!(matches!(fired.last(), Some(Action::ScheduleTimer { .. })));
}

#[test]
fn a_session_never_reported_ended_is_forgotten() {
    let config = GossipConfig {
        reconcile_timeout: secs(60),
        ..GossipConfig::default()
    };
    let mut g = machine(config);
    g.handle(
        Event::PeerUp {
            peer: 1,
            outbound: true,
        },
        secs(0),
    );
    assert!(g.is_reconciling(&1));
    g.handle(Event::Tick, secs(59));
    assert!(g.is_reconciling(&1));
    g.handle(Event::Tick, secs(60));
    assert!(!g.is_reconciling(&1));
}

#[test]
fn periodic_reconciliation_visits_every_peer() {
    let mut g = with_peers(GossipConfig::default(), 8);
    let mut visited = BTreeSet::new();
    let mut now = secs(0);
    for _ in 0..200 {
        now = g.poll_timeout().unwrap().max(now);
        for action in g.handle(Event::Tick, now) {
            if let Action::StartReconcile { peer } = action {
                visited.insert(peer);
                g.handle(Event::ReconcileEnded { peer }, now);
            }
        }
    }
    assert_eq!(visited, (1..=8).collect());
}

#[test]
fn the_same_seed_gives_the_same_actions() {
    let run = || {
        let mut g = with_peers(GossipConfig::default(), 20);
        (0..30)
            .flat_map(|n| g.handle(Event::Published { id: id(n) }, secs(u64::from(n))))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
}

#[test]
fn config_validation() {
    assert!(GossipConfig::default().validate().is_ok());
    let bad = [
        GossipConfig {
            seen_capacity: 0,
            ..GossipConfig::default()
        },
        GossipConfig {
            max_peers: MAX_PEERS_CEILING + 1,
            ..GossipConfig::default()
        },
        GossipConfig {
            reconcile_interval: Duration::ZERO,
            ..GossipConfig::default()
        },
    ];
    for config in bad {
        assert!(Gossip::<u32, _>::new(config, StdRng::seed_from_u64(1)).is_err());
    }
}
