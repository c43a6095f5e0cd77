//! A test harness that wires several [`RecordPolicy`] cores together in memory with a virtual clock (in the
//! manner of quinn's `Pair`): each core gets a toy store and admission rules, every message it asks for is
//! delivered to its peer after a fixed latency, and timers fire when the clock reaches them. A "raw" node has
//! no core: the test speaks for it (a hostile or silent peer) and sees what it is sent.
//!
//! Reconciliation is modelled by its result: a started session reports, one round trip later, the exact
//! difference of the two stores (held-back records left out on both sides), as `kolokol_core::reconcile` does
//! (tested on its own in that module).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::{InEvent, OutEvent, PolicyConfig, RecordPolicy, Verdict};
use crate::record::RecordId;

/// A record as the harness knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Rec {
    pub id: RecordId,
    /// Its signed creation time, on the virtual clock.
    pub created: Duration,
    /// Whether it passes validation.
    pub valid: bool,
}

/// A message between nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Wire {
    Records(Vec<Rec>),
    Announce(Vec<RecordId>),
    Request(Vec<RecordId>),
}

/// One node with a core.
pub(super) struct Core {
    pub policy: RecordPolicy<u32, StdRng>,
    pub store: BTreeMap<RecordId, Rec>,
    /// Records this node's admission refuses (a blocked author, say).
    pub refuses: BTreeSet<RecordId>,
    timer: Option<Duration>,
}

/// A delivered message, for assertions.
#[derive(Clone, Debug)]
pub(super) struct Delivery {
    pub from: u32,
    pub to: u32,
    pub wire: Wire,
}

/// The network.
pub(super) struct Net {
    pub now: Duration,
    pub latency: Duration,
    /// By node id; `None` for a raw node.
    pub nodes: Vec<Option<Core>>,
    links: BTreeSet<(u32, u32)>,
    /// Messages in flight, by delivery time and sequence.
    flight: BTreeMap<(Duration, u64), Delivery>,
    /// Reconciliation results in flight: (time, seq) -> (initiator, peer).
    sessions: BTreeMap<(Duration, u64), (u32, u32)>,
    seq: u64,
    next_record: u64,
    /// Every message delivered, in order.
    pub log: Vec<Delivery>,
}

impl Net {
    /// `cores` nodes with a core each (ids 0..cores) and `raw` raw nodes after them.
    pub fn new(config: &PolicyConfig, cores: u32, raw: u32) -> Net {
        let mut nodes = Vec::new();
        for n in 0..cores {
            nodes.push(Some(Core {
                policy: RecordPolicy::new(config.clone(), StdRng::seed_from_u64(u64::from(n)))
                    .expect("valid config"),
                store: BTreeMap::new(),
                refuses: BTreeSet::new(),
                timer: None,
            }));
        }
        nodes.extend((0..raw).map(|_| None));
        Net {
            now: Duration::from_secs(100_000),
            latency: Duration::from_millis(50),
            nodes,
            links: BTreeSet::new(),
            flight: BTreeMap::new(),
            sessions: BTreeMap::new(),
            seq: 0,
            next_record: 1,
            log: Vec::new(),
        }
    }

    pub fn core(&self, n: u32) -> &Core {
        self.nodes[n as usize].as_ref().expect("a node with a core")
    }

    fn core_mut(&mut self, n: u32) -> Option<&mut Core> {
        self.nodes.get_mut(n as usize).and_then(Option::as_mut)
    }

    pub fn is_linked(&self, a: u32, b: u32) -> bool {
        self.links.contains(&(a, b))
    }

    /// `a` dials `b`.
    pub fn connect(&mut self, a: u32, b: u32) {
        self.links.insert((a, b));
        self.links.insert((b, a));
        self.feed(
            a,
            InEvent::PeerUp {
                peer: b,
                outbound: true,
            },
        );
        self.feed(
            b,
            InEvent::PeerUp {
                peer: a,
                outbound: false,
            },
        );
    }

    pub fn disconnect(&mut self, a: u32, b: u32) {
        if self.links.remove(&(a, b)) | self.links.remove(&(b, a)) {
            self.feed(a, InEvent::PeerDown { peer: b });
            self.feed(b, InEvent::PeerDown { peer: a });
        }
    }

    /// A new valid record created `age` ago (not stored anywhere yet).
    pub fn new_record(&mut self, age: Duration) -> Rec {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&self.next_record.to_be_bytes());
        self.next_record += 1;
        Rec {
            id: RecordId(bytes),
            created: self.now.saturating_sub(age),
            valid: true,
        }
    }

    /// `n` publishes a new record.
    pub fn publish(&mut self, n: u32, hold_back: bool) -> RecordId {
        let rec = self.new_record(Duration::ZERO);
        if let Some(core) = self.core_mut(n) {
            core.store.insert(rec.id, rec);
        }
        self.feed(
            n,
            InEvent::Published {
                id: rec.id,
                hold_back,
            },
        );
        rec.id
    }

    pub fn release(&mut self, n: u32, id: RecordId) {
        self.feed(n, InEvent::Released { id });
    }

    /// Sends `wire` from `from` to `to` as if `from` had (a raw node speaking).
    pub fn send(&mut self, from: u32, to: u32, wire: Wire) {
        if !self.is_linked(from, to) {
            return;
        }
        self.seq += 1;
        self.flight.insert(
            (self.now + self.latency, self.seq),
            Delivery { from, to, wire },
        );
    }

    /// Feeds one event to `n`'s core and carries out what it asks.
    pub fn feed(&mut self, n: u32, event: InEvent<u32>) {
        let now = self.now;
        let Some(core) = self.core_mut(n) else {
            return;
        };
        let out = core.policy.handle(event, now);
        self.carry_out(n, out);
    }

    fn carry_out(&mut self, n: u32, out: Vec<OutEvent<u32>>) {
        for event in out {
            match event {
                OutEvent::SendRecord { to, id } => {
                    if let Some(rec) = self.core(n).store.get(&id).copied() {
                        self.send(n, to, Wire::Records(vec![rec]));
                    }
                }
                OutEvent::SendRecords { to, ids } => {
                    let store = &self.core(n).store;
                    let found: Vec<Rec> =
                        ids.iter().filter_map(|id| store.get(id).copied()).collect();
                    if !found.is_empty() {
                        self.send(n, to, Wire::Records(found));
                    }
                }
                OutEvent::Announce { to, id } => self.send(n, to, Wire::Announce(vec![id])),
                OutEvent::Request { from, id } => self.send(n, from, Wire::Request(vec![id])),
                OutEvent::StartReconcile { peer } => {
                    self.seq += 1;
                    self.sessions
                        .insert((self.now + 2 * self.latency, self.seq), (n, peer));
                }
                OutEvent::Disconnect { peer, .. } => self.disconnect(n, peer),
                OutEvent::ScheduleTimer { at } => {
                    if let Some(core) = self.core_mut(n) {
                        core.timer = Some(at);
                    }
                }
            }
        }
    }

    /// What `n` offers to reconciliation: its store without held-back records.
    fn offered(&self, n: u32) -> BTreeSet<RecordId> {
        match &self.nodes[n as usize] {
            Some(core) => core
                .store
                .keys()
                .filter(|id| !core.policy.is_held_back(id))
                .copied()
                .collect(),
            None => BTreeSet::new(),
        }
    }

    fn deliver(&mut self, delivery: Delivery) {
        let Delivery { from, to, wire } = delivery.clone();
        self.log.push(delivery);
        if !self.is_linked(from, to) || self.nodes[to as usize].is_none() {
            return;
        }
        match wire {
            Wire::Records(list) => {
                for rec in list {
                    let core = self.core_mut(to).expect("checked");
                    let verdict = if !rec.valid {
                        Verdict::Invalid
                    } else if core.refuses.contains(&rec.id) {
                        Verdict::Refused
                    } else if let std::collections::btree_map::Entry::Vacant(slot) =
                        core.store.entry(rec.id)
                    {
                        slot.insert(rec);
                        Verdict::Stored
                    } else {
                        Verdict::Duplicate
                    };
                    let age = self.now.saturating_sub(rec.created);
                    self.feed(
                        to,
                        InEvent::Received {
                            from,
                            id: rec.id,
                            age,
                            verdict,
                        },
                    );
                }
            }
            Wire::Announce(ids) => {
                for id in ids {
                    if !self.core(to).store.contains_key(&id) {
                        self.feed(to, InEvent::Announced { from, id });
                    }
                }
            }
            Wire::Request(ids) => self.feed(to, InEvent::Requested { from, ids }),
        }
    }

    fn finish_session(&mut self, initiator: u32, peer: u32) {
        if self.is_linked(initiator, peer) {
            let ours = self.offered(initiator);
            let theirs = self.offered(peer);
            let have = ours.difference(&theirs).copied().collect();
            let need = theirs.difference(&ours).copied().collect();
            self.feed(initiator, InEvent::Reconciled { peer, have, need });
        }
        self.feed(initiator, InEvent::ReconcileEnded { peer });
    }

    /// Runs every delivery and timer due up to `now + span`, then leaves the clock there.
    pub fn run_for(&mut self, span: Duration) {
        let until = self.now + span;
        loop {
            let message = self.flight.keys().next().map(|k| k.0);
            let session = self.sessions.keys().next().map(|k| k.0);
            let timer = self
                .nodes
                .iter()
                .enumerate()
                .filter_map(|(n, c)| c.as_ref().and_then(|c| c.timer).map(|t| (t, n as u32)))
                .min();
            let next = [message, session, timer.map(|t| t.0)]
                .into_iter()
                .flatten()
                .min();
            let Some(at) = next.filter(|at| *at <= until) else {
                break;
            };
            self.now = self.now.max(at);
            if message == Some(at) {
                let (_, delivery) = self.flight.pop_first().expect("present");
                self.deliver(delivery);
            } else if session == Some(at) {
                let (_, (initiator, peer)) = self.sessions.pop_first().expect("present");
                self.finish_session(initiator, peer);
            } else if let Some((_, n)) = timer {
                if let Some(core) = self.core_mut(n) {
                    core.timer = None;
                }
                self.feed(n, InEvent::Tick);
            }
        }
        self.now = until;
    }

    /// Messages delivered to `to` that carry `id` whole.
    pub fn whole_copies(&self, to: u32, id: &RecordId) -> usize {
        self.log
            .iter()
            .filter(|d| d.to == to)
            .map(|d| match &d.wire {
                Wire::Records(list) => list.iter().filter(|r| r.id == *id).count(),
                _ => 0,
            })
            .sum()
    }

    /// Messages sent by `from` that name `id` (whole or by id).
    pub fn mentions_by(&self, from: u32, id: &RecordId) -> Vec<&Delivery> {
        self.log
            .iter()
            .filter(|d| d.from == from)
            .filter(|d| match &d.wire {
                Wire::Records(list) => list.iter().any(|r| r.id == *id),
                Wire::Announce(ids) | Wire::Request(ids) => ids.contains(id),
            })
            .collect()
    }
}
