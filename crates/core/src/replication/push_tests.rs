//! Tests of the publisher push: unit cases and properties over random event sequences.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::push::*;
use crate::keys::NodeId;
use crate::record::InfoHash;

fn peer(n: u8) -> NodeId {
    NodeId::from_bytes([n; 32])
}

fn config() -> PushConfig {
    PushConfig {
        replicas_wanted: 3,
        announce_timeout_secs: 120,
        ask_timeout_secs: 30,
    }
}

fn drain(p: &mut PublisherPush) -> Vec<PushAction> {
    std::iter::from_fn(|| p.poll()).collect()
}

fn asked(actions: &[PushAction]) -> Vec<NodeId> {
    actions
        .iter()
        .filter_map(|a| match a {
            PushAction::AskReplicate(p) => Some(*p),
            _ => None,
        })
        .collect()
}

#[test]
fn announces_after_the_first_full_replica_then_finishes_asking() {
    let mut p = PublisherPush::new(config(), InfoHash([1; 20]), 1000);
    assert!(drain(&mut p).is_empty(), "nothing before peers are known");
    p.peers_available(&[peer(1), peer(2), peer(3), peer(4), peer(5)], 1001);
    assert_eq!(asked(&drain(&mut p)), vec![peer(1), peer(2), peer(3)]);
    p.refused(&peer(2), 1002);
    assert_eq!(drain(&mut p), vec![PushAction::AskReplicate(peer(4))]);
    p.replica_progress(&peer(1), false, 1010);
    p.replica_progress(&peer(3), true, 1030);
    assert_eq!(drain(&mut p), vec![PushAction::Announce]);
    assert_eq!(p.full_replicas(), 1);
    // Peer 4 said nothing for 30 s: replaced by 5; peer 1's progress at 1010 keeps it until 1040.
    p.tick(1032);
    assert_eq!(drain(&mut p), vec![PushAction::AskReplicate(peer(5))]);
    p.replica_progress(&peer(1), true, 1035);
    p.replica_progress(&peer(5), true, 1036);
    assert_eq!(drain(&mut p), vec![PushAction::Done]);
    assert_eq!(p.full_replicas(), 3);
    p.peers_available(&[peer(6)], 1037);
    assert!(drain(&mut p).is_empty(), "nothing after done");
}

#[test]
fn announces_at_the_timeout_without_a_replica_and_ends_when_nobody_is_left() {
    let mut p = PublisherPush::new(config(), InfoHash([1; 20]), 0);
    p.peers_available(&[peer(1)], 0);
    assert_eq!(asked(&drain(&mut p)), vec![peer(1)]);
    assert_eq!(p.next_timeout(), Some(30));
    p.peer_gone(&peer(1), 10);
    assert!(drain(&mut p).is_empty());
    assert_eq!(p.next_timeout(), Some(120));
    p.tick(119);
    assert!(drain(&mut p).is_empty());
    p.tick(120);
    assert_eq!(drain(&mut p), vec![PushAction::Announce, PushAction::Done]);
    assert_eq!(p.next_timeout(), None);
}

#[test]
fn a_resumed_push_keeps_its_original_announce_deadline() {
    // Begun at 1000 by an earlier run, taken up at 1100: the 120 s time-out ends at 1120, not at 1220.
    let mut p = PublisherPush::resumed(config(), InfoHash([1; 20]), 1000, 1100);
    assert_eq!(p.next_timeout(), Some(1120));
    p.tick(1119);
    assert!(drain(&mut p).is_empty());
    p.tick(1120);
    assert_eq!(drain(&mut p).first(), Some(&PushAction::Announce));

    // Taken up after its deadline: announced at once.
    let mut late = PublisherPush::resumed(config(), InfoHash([1; 20]), 1000, 5000);
    assert_eq!(drain(&mut late).first(), Some(&PushAction::Announce));

    // A start in the future (the clock went back) counts from now.
    let mut back = PublisherPush::resumed(config(), InfoHash([1; 20]), 9000, 1000);
    assert_eq!(back.next_timeout(), Some(1120));
    assert!(drain(&mut back).is_empty());
}

#[test]
fn zero_replicas_wanted_announces_at_once() {
    let config = PushConfig {
        replicas_wanted: 0,
        ..config()
    };
    let mut p = PublisherPush::new(config, InfoHash([1; 20]), 0);
    assert_eq!(drain(&mut p), vec![PushAction::Announce, PushAction::Done]);
}

#[derive(Clone, Debug)]
enum Op {
    Available(Vec<u8>),
    Gone(u8),
    Progress(u8, bool),
    Refused(u8),
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let n = 0u8..16;
    prop_oneof![
        prop::collection::vec(n.clone(), 0..6).prop_map(Op::Available),
        n.clone().prop_map(Op::Gone),
        (n.clone(), prop::bool::weighted(0.3)).prop_map(|(n, c)| Op::Progress(n, c)),
        n.prop_map(Op::Refused),
        (0u64..60).prop_map(Op::Advance),
    ]
}

/// What the node saw of the push, checked after every event.
struct Observer {
    wanted: usize,
    deadline: u64,
    ask_timeout: u64,
    announces: usize,
    done: bool,
    confirmed_seen: bool,
    asked: BTreeSet<NodeId>,
    /// Asked peers not yet refused, gone, confirmed or silent too long, with their last news.
    outstanding: BTreeMap<NodeId, u64>,
}

impl Observer {
    fn event(&mut self, op: &Op, now: u64) {
        match op {
            Op::Gone(n) | Op::Refused(n) => {
                self.outstanding.remove(&peer(*n));
            }
            Op::Progress(n, complete) => {
                self.confirmed_seen |= complete;
                if *complete {
                    self.outstanding.remove(&peer(*n));
                } else if let Some(since) = self.outstanding.get_mut(&peer(*n)) {
                    *since = now;
                }
            }
            Op::Available(_) | Op::Advance(_) => {}
        }
    }

    fn check(&mut self, p: &mut PublisherPush, now: u64) -> Result<(), TestCaseError> {
        let timeout = self.ask_timeout;
        self.outstanding.retain(|_, since| now < *since + timeout);
        while let Some(action) = p.poll() {
            prop_assert!(!self.done, "nothing after Done");
            match action {
                PushAction::AskReplicate(peer) => {
                    prop_assert!(self.asked.insert(peer), "asked twice");
                    self.outstanding.insert(peer, now);
                }
                PushAction::Announce => {
                    self.announces += 1;
                    prop_assert!(
                        self.confirmed_seen || now >= self.deadline,
                        "announced early"
                    );
                }
                PushAction::Done => {
                    prop_assert_eq!(self.announces, 1);
                    self.done = true;
                }
            }
        }
        prop_assert!(self.announces <= 1);
        prop_assert!(self.outstanding.len() <= self.wanted);
        prop_assert!(self.asked.len() <= self.wanted * ASKS_PER_REPLICA);
        prop_assert_eq!(self.done, p.is_done());
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn announce_once_never_early_no_repeat_asks_bounded(
        wanted in 1usize..5,
        announce_timeout in 0u64..200,
        ask_timeout in 0u64..60,
        ops in prop::collection::vec(op(), 0..60),
    ) {
        let config = PushConfig {
            replicas_wanted: wanted,
            announce_timeout_secs: announce_timeout,
            ask_timeout_secs: ask_timeout,
        };
        let mut now = 1_000u64;
        let mut p = PublisherPush::new(config, InfoHash([9; 20]), now);
        let mut seen = Observer {
            wanted,
            deadline: now + announce_timeout,
            ask_timeout,
            announces: 0,
            done: false,
            confirmed_seen: false,
            asked: BTreeSet::new(),
            outstanding: BTreeMap::new(),
        };
        seen.check(&mut p, now)?;
        for op in ops {
            match &op {
                Op::Available(peers) => {
                    let peers: Vec<NodeId> = peers.iter().copied().map(peer).collect();
                    p.peers_available(&peers, now);
                }
                Op::Gone(n) => p.peer_gone(&peer(*n), now),
                Op::Progress(n, complete) => p.replica_progress(&peer(*n), *complete, now),
                Op::Refused(n) => p.refused(&peer(*n), now),
                Op::Advance(secs) => {
                    now += secs;
                    p.tick(now);
                }
            }
            seen.event(&op, now);
            seen.check(&mut p, now)?;
        }
        // Time alone ends it: every ask times out, the announcement comes, and it is done.
        for _ in 0..(wanted * ASKS_PER_REPLICA + 2) {
            now += announce_timeout.max(ask_timeout) + 1;
            p.tick(now);
            seen.check(&mut p, now)?;
        }
        prop_assert_eq!(seen.announces, 1);
        prop_assert!(p.is_done());
    }
}
