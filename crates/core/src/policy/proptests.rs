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
    /// Ids 40..48 are published held back, and only they.
    HoldBack {
        id: u8,
    },
    Release {
        id: u8,
    },
    Receive {
        from: u32,
        id: u8,
        age_secs: u16,
        verdict: Verdict,
    },
    Announce {
        from: u32,
        id: u8,
    },
    Request {
        from: u32,
        ids: Vec<u8>,
    },
    Reconciled {
        peer: u32,
        have: Vec<u8>,
        need: Vec<u8>,
    },
    Ended {
        peer: u32,
    },
    Advance {
        millis: u32,
    },
}

fn verdict() -> impl Strategy<Value = Verdict> {
    prop_oneof![
        Just(Verdict::Stored),
        Just(Verdict::Duplicate),
        Just(Verdict::Invalid),
        Just(Verdict::Refused),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let peer = 0u32..12;
    let record = 0u8..40;
    let any_record = 0u8..48;
    let held = 40u8..48;
    let ids = proptest::collection::vec(any_record.clone(), 0..6);
    prop_oneof![
        (peer.clone(), any::<bool>()).prop_map(|(peer, outbound)| Op::Up { peer, outbound }),
        peer.clone().prop_map(|peer| Op::Down { peer }),
        record.prop_map(|id| Op::Publish { id }),
        held.clone().prop_map(|id| Op::HoldBack { id }),
        held.prop_map(|id| Op::Release { id }),
        (peer.clone(), any_record.clone(), 0u16..7200, verdict()).prop_map(
            |(from, id, age_secs, verdict)| Op::Receive {
                from,
                id,
                age_secs,
                verdict
            }
        ),
        (peer.clone(), any_record).prop_map(|(from, id)| Op::Announce { from, id }),
        (peer.clone(), ids.clone()).prop_map(|(from, ids)| Op::Request { from, ids }),
        (peer.clone(), ids.clone(), ids).prop_map(|(peer, have, need)| Op::Reconciled {
            peer,
            have,
            need
        }),
        peer.prop_map(|peer| Op::Ended { peer }),
        (0u32..20_000).prop_map(|millis| Op::Advance { millis }),
    ]
}

fn ids(list: &[u8]) -> Vec<RecordId> {
    list.iter().map(|n| id(*n)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn invariants_hold_under_any_events(ops in proptest::collection::vec(op(), 1..300), seed: u64, eager in 0usize..4, announce in 0usize..5) {
        let config = PolicyConfig {
            eager_fanout: eager,
            announce_fanout: announce,
            max_pending: 8,
            max_reconciles: 2,
            max_bad_records: 3,
            ..PolicyConfig::default()
        };
        let mut g = RecordPolicy::new(config.clone(), StdRng::seed_from_u64(seed)).unwrap();
        let mut now = Duration::ZERO;
        let mut connected = BTreeSet::new();
        let mut held = BTreeSet::new();
        let mut forwards: BTreeMap<RecordId, usize> = BTreeMap::new();
        let mut disconnects: BTreeMap<u32, usize> = BTreeMap::new();
        let mut scheduled = None;
        for op in ops {
            let mut reconciling = false;
            let (event, sender) = match op {
                Op::Up { peer, outbound } => {
                    if !connected.contains(&peer) {
                        disconnects.remove(&peer);
                    }
                    connected.insert(peer);
                    (InEvent::PeerUp { peer, outbound }, None)
                }
                Op::Down { peer } => {
                    connected.remove(&peer);
                    (InEvent::PeerDown { peer }, None)
                }
                Op::Publish { id: n } => (InEvent::Published { id: id(n), hold_back: false }, None),
                Op::HoldBack { id: n } => {
                    held.insert(id(n));
                    (InEvent::Published { id: id(n), hold_back: true }, None)
                }
                Op::Release { id: n } => {
                    held.remove(&id(n));
                    (InEvent::Released { id: id(n) }, None)
                }
                Op::Receive { from, id: n, age_secs, verdict } => {
                    let age = Duration::from_secs(u64::from(age_secs));
                    (InEvent::Received { from, id: id(n), age, verdict }, Some(from))
                }
                Op::Announce { from, id: n } => (InEvent::Announced { from, id: id(n) }, None),
                Op::Request { from, ids: list } => (InEvent::Requested { from, ids: ids(&list) }, None),
                Op::Reconciled { peer, have, need } => {
                    reconciling = true;
                    (InEvent::Reconciled { peer, have: ids(&have), need: ids(&need) }, None)
                }
                Op::Ended { peer } => (InEvent::ReconcileEnded { peer }, None),
                Op::Advance { millis } => {
                    now += Duration::from_millis(u64::from(millis));
                    (InEvent::Tick, None)
                }
            };
            for action in g.handle(event, now) {
                match action {
                    OutEvent::SendRecord { to, id } | OutEvent::Announce { to, id } => {
                        prop_assert!(connected.contains(&to));
                        prop_assert!(!held.contains(&id), "held-back record named");
                        prop_assert_ne!(Some(to), sender);
                        if !reconciling {
                            *forwards.entry(id).or_default() += 1;
                        }
                    }
                    OutEvent::Request { from, id } => {
                        prop_assert!(connected.contains(&from));
                        prop_assert!(!held.contains(&id));
                    }
                    OutEvent::SendRecords { to, ids } => {
                        prop_assert!(connected.contains(&to));
                        prop_assert!(ids.iter().all(|id| !held.contains(id)));
                    }
                    OutEvent::StartReconcile { peer } => prop_assert!(connected.contains(&peer)),
                    OutEvent::Disconnect { peer, .. } => {
                        prop_assert!(connected.contains(&peer));
                        *disconnects.entry(peer).or_default() += 1;
                    }
                    OutEvent::ScheduleTimer { at } => scheduled = Some(at),
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
            prop_assert_eq!(counts.held_back, held.len());
            // A misbehaving peer is reported once per connection.
            prop_assert!(disconnects.values().all(|n| *n <= 1));
        }
        // The seen set never filled (48 ids), so each record not held back was forwarded at most once.
        for (id, n) in forwards {
            if id.0[0] < 40 {
                prop_assert!(n <= eager + announce);
            }
        }
    }
}
