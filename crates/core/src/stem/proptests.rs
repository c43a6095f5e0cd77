//! Property tests: an origin's outputs are a relay's, routes hold for an epoch, every forwarded item is fluffed
//! by its fail-safe, and in a small network every stem ends in a fluff with at least one relay hop.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::tests::{Machine, machine, with_peers};
use super::*;

#[derive(Clone, Debug)]
enum Op {
    Up { peer: u32 },
    Down { peer: u32 },
    Originate { id: u32, bytes: u32 },
    Stem { from: u32, id: u32, bytes: u32 },
    Complete { id: u32 },
    Failed { id: u32 },
    Fetched { id: u32, by: u32 },
    Fluffed { id: u32 },
    Advance { secs: u32 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u32..12).prop_map(|peer| Op::Up { peer }),
        (0u32..12).prop_map(|peer| Op::Down { peer }),
        (100u32..110, 0u32..(50 << 20)).prop_map(|(id, bytes)| Op::Originate { id, bytes }),
        (0u32..16, 0u32..40, 0u32..(50 << 20)).prop_map(|(from, id, bytes)| Op::Stem {
            from,
            id,
            bytes
        }),
        (0u32..40).prop_map(|id| Op::Complete { id }),
        (0u32..40).prop_map(|id| Op::Failed { id }),
        (0u32..110, 0u32..12).prop_map(|(id, by)| Op::Fetched { id, by }),
        (0u32..110).prop_map(|id| Op::Fluffed { id }),
        (0u32..400).prop_map(|secs| Op::Advance { secs }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// For any seed, peers, size and time, a node's outputs for its own publication are exactly those of the
    /// same node relaying a publication it received (in a relay epoch), and in any epoch one stem to a relay.
    #[test]
    fn origin_outputs_match_a_relay_outputs(
        seed in any::<u64>(),
        peers in prop::collection::btree_set(1u32..40, 1..8),
        bytes in any::<u32>(),
        fetch_secs in 0u64..500,
        at in 0u64..10_000,
    ) {
        let peers: Vec<u32> = peers.into_iter().collect();
        let mut origin = with_peers(seed, &peers);
        let mut relay = with_peers(seed, &peers);
        let now = Duration::from_millis(at);
        let bytes = u64::from(bytes);
        let mine = origin.handle(StemEvent::Originate { id: 1, bytes }, now + Duration::from_secs(fetch_secs));
        relay.handle(StemEvent::StemReceived { from: 99, id: 1, bytes }, now);
        let theirs = relay.handle(StemEvent::DataComplete { id: 1 }, now + Duration::from_secs(fetch_secs));
        let stems: Vec<&StemAction<u32, u32>> =
            mine.iter().filter(|a| matches!(a, StemAction::SendStem { .. })).collect();
        prop_assert_eq!(stems.len(), 1);
        if let StemAction::SendStem { to, .. } = stems[0] {
            prop_assert!(origin.relays().contains(to));
        }
        if relay.role_for(&99) == Some(Role::Relay) {
            prop_assert_eq!(mine, theirs);
        }
    }

    /// Under any sequence of events: stems go only to this epoch's relays, a source keeps its relay for the
    /// epoch (unless that relay goes), an own publication is fluffed only by the fail-safe, state stays
    /// bounded, and once time runs past the longest fail-safe every forwarded item was fluffed or seen.
    #[test]
    fn random_events_keep_the_invariants(seed in any::<u64>(), ops in prop::collection::vec(op(), 1..80)) {
        let config = StemConfig { max_items: 8, ..StemConfig::default() };
        let mut m: Machine = Stem::new(config.clone(), StdRng::seed_from_u64(seed)).expect("valid");
        let mut now = Duration::ZERO;
        let mut sources: BTreeMap<u32, Option<u32>> = BTreeMap::new(); // id -> source (None = own)
        let mut routes: BTreeMap<(Option<Duration>, Option<u32>), u32> = BTreeMap::new();
        let mut sent: BTreeMap<u32, Duration> = BTreeMap::new(); // id -> when forwarded
        let mut finished: BTreeSet<u32> = BTreeSet::new();
        let mut sizes: BTreeMap<u32, u64> = BTreeMap::new();
        let mut own = 0;
        for op in ops {
            let event = match op {
                Op::Up { peer } => StemEvent::PeerUp { peer },
                Op::Down { peer } => {
                    routes.retain(|_, to| *to != peer);
                    routes.retain(|(_, from), _| *from != Some(peer));
                    StemEvent::PeerDown { peer }
                }
                Op::Originate { id, bytes } => {
                    if !m.is_in_progress(&id) && !finished.contains(&id) {
                        sources.insert(id, None);
                        sizes.insert(id, u64::from(bytes));
                        own += 1;
                    }
                    StemEvent::Originate { id, bytes: u64::from(bytes) }
                }
                Op::Stem { from, id, bytes } => {
                    if !m.is_in_progress(&id) && !finished.contains(&id) {
                        sources.insert(id, Some(from));
                        sizes.insert(id, u64::from(bytes));
                    }
                    StemEvent::StemReceived { from, id, bytes: u64::from(bytes) }
                }
                Op::Complete { id } => StemEvent::DataComplete { id },
                Op::Failed { id } => StemEvent::FetchFailed { id },
                Op::Fetched { id, by } => StemEvent::Fetched { id, by },
                Op::Fluffed { id } => {
                    if sent.contains_key(&id) || m.is_in_progress(&id) {
                        finished.insert(id);
                    }
                    StemEvent::SeenInFluff { id }
                }
                Op::Advance { secs } => {
                    now += Duration::from_secs(u64::from(secs));
                    StemEvent::Tick
                }
            };
            let epoch_before = m.epoch_end();
            let out = m.handle(event, now);
            if m.epoch_end() != epoch_before {
                routes.clear();
            }
            for action in out {
                match action {
                    StemAction::SendStem { to, id } => {
                        prop_assert!(m.relays().contains(&to), "{to} is not a relay");
                        let source = sources.get(&id).copied().flatten();
                        let key = (m.epoch_end(), source);
                        let first = *routes.entry(key).or_insert(to);
                        prop_assert_eq!(first, to, "source {:?} changed relay", source);
                        sent.insert(id, now);
                    }
                    StemAction::Fluff { id } => {
                        if sources.get(&id) == Some(&None) {
                            let since = sent.get(&id).copied();
                            prop_assert!(since.is_some(), "own {} fluffed before it was sent", id);
                            let floor = config.failsafe_floor(sizes.get(&id).copied().unwrap_or(0));
                            prop_assert!(now >= since.unwrap_or_default() + floor);
                        }
                        finished.insert(id);
                    }
                    StemAction::Fetch { from, .. } => prop_assert!(from < 16),
                    StemAction::ScheduleTimer { at } => prop_assert!(at >= now),
                }
            }
            let counts = m.counts();
            prop_assert!(counts.items <= config.max_items + own);
            prop_assert!(counts.relays <= config.relays);
            prop_assert!(counts.peers <= 12);
        }
        // Far enough ahead, every forwarded item was fluffed here or seen in fluff, unless its relay went
        // before fetching it and no relay is left: then it waits for one, with no timer (with no outbound peer
        // there is nobody to fluff to either).
        now += config.max_failsafe(50 << 20) + Duration::from_secs(1);
        for action in m.handle(StemEvent::Tick, now) {
            if let StemAction::Fluff { id } = action {
                finished.insert(id);
            }
        }
        for id in sent.keys() {
            let waiting = m.is_in_progress(id) && m.forwarded_to(id).is_none() && m.relays().is_empty();
            prop_assert!(finished.contains(id) || waiting, "item {} forwarded but never fluffed", id);
        }
    }

    /// A small network, stems delivered at once, some nodes swallowing every stem (black holes): every
    /// publication is fluffed, no later than its publisher's longest fail-safe, and a stem that no fail-safe
    /// ended (fluffed at time zero) always has at least one relay hop: the publisher never fluffs first-hand.
    #[test]
    fn every_stem_ends_in_a_fluff_with_at_least_one_relay_hop(
        seeds in prop::collection::vec(any::<u64>(), 2..9),
        holes in prop::collection::btree_set(1usize..9, 0..3),
        bytes in 0u64..(20 << 20),
    ) {
        let n = seeds.len();
        let mut nodes: Vec<Machine> = seeds.iter().map(|s| machine(*s)).collect();
        for (i, node) in nodes.iter_mut().enumerate() {
            for peer in 0..n as u32 {
                if peer as usize != i {
                    node.handle(StemEvent::PeerUp { peer }, Duration::ZERO);
                }
            }
        }
        let mut queue: VecDeque<(usize, StemAction<u32, u32>)> = nodes[0]
            .handle(StemEvent::Originate { id: 1, bytes }, Duration::ZERO)
            .into_iter()
            .map(|a| (0, a))
            .collect();
        let mut now = Duration::ZERO;
        let mut fluffed: Option<(usize, Duration)> = None;
        let mut hops = 0;
        for _round in 0..1000 {
            while let Some((node, action)) = queue.pop_front() {
                match action {
                    StemAction::SendStem { to, id } => {
                        let to = to as usize;
                        if holes.contains(&to) || to >= n {
                            continue;
                        }
                        hops += 1;
                        let ev = StemEvent::StemReceived { from: node as u32, id, bytes };
                        for a in nodes[to].handle(ev, now) {
                            queue.push_back((to, a));
                        }
                    }
                    StemAction::Fetch { id, .. } => {
                        for a in nodes[node].handle(StemEvent::DataComplete { id }, now) {
                            queue.push_back((node, a));
                        }
                    }
                    StemAction::Fluff { id } => {
                        fluffed.get_or_insert((node, now));
                        // Fluff reaches everyone at once here.
                        for (i, other) in nodes.iter_mut().enumerate() {
                            if i != node {
                                other.handle(StemEvent::SeenInFluff { id }, now);
                            }
                        }
                    }
                    StemAction::ScheduleTimer { .. } => {}
                }
            }
            if fluffed.is_some() {
                break;
            }
            let Some(next) = nodes.iter().filter_map(|m| m.poll_timeout()).min() else {
                break;
            };
            now = next;
            for (i, node) in nodes.iter_mut().enumerate() {
                for a in node.handle(StemEvent::Tick, now) {
                    queue.push_back((i, a));
                }
            }
        }
        let (by, at) = fluffed.expect("every publication is fluffed");
        prop_assert!(at <= StemConfig::default().max_failsafe(bytes));
        if at == Duration::ZERO {
            prop_assert!(by != 0, "the publisher fluffed its own publication first-hand");
            prop_assert!(hops >= 1);
        }
    }
}
