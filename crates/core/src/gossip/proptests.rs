//! Property tests: under any sequence of events, pushes stay bounded and never echo, every action targets a
//! connected peer, and the caps hold.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::tests::id;
use super::*;

#[derive(Clone, Debug)]
enum Op {
    Up {
        peer: u32,
        outbound: bool,
    },
    Down {
        peer: u32,
    },
    Publish {
        id: u8,
    },
    Receive {
        from: u32,
        id: u8,
        reconciled_age: Option<u16>,
    },
    Announce {
        from: u32,
        id: u8,
    },
    Ended {
        peer: u32,
    },
    Advance {
        millis: u32,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let peer = 0u32..12;
    let record = 0u8..40;
    prop_oneof![
        (peer.clone(), any::<bool>()).prop_map(|(peer, outbound)| Op::Up { peer, outbound }),
        peer.clone().prop_map(|peer| Op::Down { peer }),
        record.clone().prop_map(|id| Op::Publish { id }),
        (
            peer.clone(),
            record.clone(),
            proptest::option::of(any::<u16>())
        )
            .prop_map(|(from, id, reconciled_age)| Op::Receive {
                from,
                id,
                reconciled_age
            }),
        (peer.clone(), record).prop_map(|(from, id)| Op::Announce { from, id }),
        peer.prop_map(|peer| Op::Ended { peer }),
        (0u32..20_000).prop_map(|millis| Op::Advance { millis }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn invariants_hold_under_any_events(ops in proptest::collection::vec(op(), 1..300), seed: u64, eager in 0usize..4, announce in 0usize..5) {
        let config = GossipConfig {
            eager_fanout: eager,
            announce_fanout: announce,
            max_pending: 8,
            max_reconciles: 2,
            ..GossipConfig::default()
        };
        let mut g = Gossip::new(config.clone(), StdRng::seed_from_u64(seed)).unwrap();
        let mut now = Duration::ZERO;
        let mut connected = BTreeSet::new();
        let mut forwards: BTreeMap<RecordId, usize> = BTreeMap::new();
        let mut scheduled = None;
        for op in ops {
            let (event, sender) = match op {
                Op::Up { peer, outbound } => {
                    connected.insert(peer);
                    (Event::PeerUp { peer, outbound }, None)
                }
                Op::Down { peer } => {
                    connected.remove(&peer);
                    (Event::PeerDown { peer }, None)
                }
                Op::Publish { id: n } => (Event::Published { id: id(n) }, None),
                Op::Receive { from, id: n, reconciled_age } => {
                    let via = match reconciled_age {
                        None => Via::Push,
                        Some(age) => Via::Reconcile { age: Duration::from_secs(u64::from(age)) },
                    };
                    (Event::Received { from, id: id(n), via }, Some(from))
                }
                Op::Announce { from, id: n } => (Event::Announced { from, id: id(n) }, None),
                Op::Ended { peer } => (Event::ReconcileEnded { peer }, None),
                Op::Advance { millis } => {
                    now += Duration::from_millis(u64::from(millis));
                    (Event::Tick, None)
                }
            };
            for action in g.handle(event, now) {
                match action {
                    Action::SendRecord { to, id } | Action::Announce { to, id } => {
                        prop_assert!(connected.contains(&to));
                        prop_assert_ne!(Some(to), sender);
                        *forwards.entry(id).or_default() += 1;
                    }
                    Action::Request { from, .. } => prop_assert!(connected.contains(&from)),
                    Action::StartReconcile { peer } => prop_assert!(connected.contains(&peer)),
                    Action::ScheduleTimer { at } => scheduled = Some(at),
                }
            }
            // The last timer asked for is the machine's next wake-up.
            if let Some(at) = g.poll_timeout() {
                prop_assert_eq!(scheduled, Some(at));
            }
            let counts = g.counts();
            prop_assert!(counts.pending <= config.max_pending);
            prop_assert!(counts.reconciling <= config.max_reconciles);
            prop_assert_eq!(counts.peers, connected.len());
        }
        // The seen set never filled (40 ids), so each record was forwarded at most once.
        for (_, n) in forwards {
            prop_assert!(n <= eager + announce);
        }
    }
}
