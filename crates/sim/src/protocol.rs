//! What a node does with messages, gossip actions and reconciliation sessions: the glue the real node will
//! have, over the same core state machines.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::time::Duration;

use kolokol_core::gossip::{Action, Event, Via};
use kolokol_core::reconcile::{Initiator, Responder};
use kolokol_core::record::RecordId;

use crate::config::MESSAGE_OVERHEAD;
use crate::node::Traffic;
use crate::records::{RecordKind, Records, UNIX_BASE};
use crate::world::{Ev, World};

/// A wire message between simulated nodes. Records travel as indices; sizes are those of the real messages.
pub(crate) enum Msg {
    /// Whole records; `reconcile` says a reconciliation found them missing (else they were pushed).
    Records { records: Vec<u32>, reconcile: bool },
    /// Ids the sender holds (gossip).
    Announce(Vec<u32>),
    /// Ids the sender holds that a reconciliation found the receiver lacks.
    Offer(Vec<u32>),
    /// Ids the sender wants; `reconcile` as for `Records`.
    Want { records: Vec<u32>, reconcile: bool },
    /// A reconciliation frame; `to_responder` tells which session of the receiver it belongs to.
    Reconcile { frame: Vec<u8>, to_responder: bool },
    /// The initiator's session is over.
    ReconcileDone,
}

impl Msg {
    /// Bytes on the wire; record, announce and request bytes are also attributed to their records.
    pub(crate) fn size(&self, records: &mut Records, record_bytes: u32) -> u64 {
        let id_bytes = 32 + 2;
        let mut attribute = |list: &[u32], each: u64| {
            let share = MESSAGE_OVERHEAD / list.len().max(1) as u64;
            for r in list {
                records.gossip_bytes[*r as usize] += each + share;
            }
        };
        match self {
            Msg::Records { records: list, .. } => {
                let each = u64::from(record_bytes) + 4;
                attribute(list, each);
                MESSAGE_OVERHEAD + each * list.len() as u64
            }
            Msg::Announce(list) | Msg::Offer(list) | Msg::Want { records: list, .. } => {
                attribute(list, id_bytes);
                MESSAGE_OVERHEAD + id_bytes * list.len() as u64
            }
            Msg::Reconcile { frame, .. } => MESSAGE_OVERHEAD + frame.len() as u64,
            Msg::ReconcileDone => MESSAGE_OVERHEAD,
        }
    }

    pub(crate) fn traffic(&self) -> Traffic {
        match self {
            Msg::Records {
                reconcile: true, ..
            } => Traffic::RecordReconcile,
            Msg::Records {
                reconcile: false, ..
            } => Traffic::RecordPush,
            Msg::Announce(_) => Traffic::Announce,
            Msg::Want { .. } => Traffic::Want,
            Msg::Offer(_) | Msg::Reconcile { .. } | Msg::ReconcileDone => Traffic::Reconcile,
        }
    }
}

/// Messages to send, merged per peer so that one event produces one message of each kind per peer.
#[derive(Default)]
struct Outbox {
    push: BTreeMap<u32, Vec<u32>>,
    announce: BTreeMap<u32, Vec<u32>>,
    want: BTreeMap<u32, Vec<u32>>,
}

impl World {
    /// Feeds one event to a node's gossip machine and carries out its actions.
    pub(crate) fn gossip_event(&mut self, node: u32, event: Event<u32>) {
        let now = self.now();
        let actions = self.nodes[node as usize].gossip.handle(event, now);
        self.apply(node, actions);
    }

    pub(crate) fn gossip_tick(&mut self, node: u32) {
        self.gossip_event(node, Event::Tick);
    }

    fn apply(&mut self, node: u32, actions: Vec<Action<u32>>) {
        let mut outbox = Outbox::default();
        for action in actions {
            match action {
                Action::SendRecord { to, id } => {
                    if let Some(r) = self.records.index_of(&id) {
                        outbox.push.entry(to).or_default().push(r);
                    }
                }
                Action::Announce { to, id } => {
                    if let Some(r) = self.records.index_of(&id) {
                        outbox.announce.entry(to).or_default().push(r);
                    }
                }
                Action::Request { from, id } => {
                    if let Some(r) = self.records.index_of(&id) {
                        outbox.want.entry(from).or_default().push(r);
                    }
                }
                Action::StartReconcile { peer } => self.start_session(node, peer),
                Action::ScheduleTimer { at } => {
                    self.nodes[node as usize].timer_at = Some(at);
                    self.queue.push(at, Ev::GossipTimer { node, at });
                }
            }
        }
        for (to, records) in outbox.push {
            self.send(
                node,
                to,
                Msg::Records {
                    records,
                    reconcile: false,
                },
            );
        }
        for (to, list) in outbox.announce {
            self.send(node, to, Msg::Announce(list));
        }
        for (to, records) in outbox.want {
            self.request(node, to, records, false);
        }
    }

    /// Asks `from` for the records among `records` that are neither held nor already asked for.
    fn request(&mut self, node: u32, from: u32, records: Vec<u32>, reconcile: bool) {
        let now = self.now();
        let retry_after = now + self.config.gossip.request_timeout;
        let n = &mut self.nodes[node as usize];
        // A request is outstanding while its time has not run out and its connection is open.
        let wanted: Vec<u32> = records
            .into_iter()
            .filter(|r| {
                !n.held.contains(*r)
                    && n.inflight
                        .get(r)
                        .is_none_or(|(asked, until)| *until <= now || !n.conns.contains_key(asked))
            })
            .collect();
        for r in &wanted {
            n.inflight.insert(*r, (from, retry_after));
        }
        if !wanted.is_empty() {
            self.send(
                node,
                from,
                Msg::Want {
                    records: wanted,
                    reconcile,
                },
            );
        }
    }

    /// A message arrived at `node` from `from` over their current connection.
    pub(crate) fn receive(&mut self, node: u32, from: u32, msg: Msg) {
        match msg {
            Msg::Records { records, reconcile } => {
                for record in records {
                    if !self.store(node, record) {
                        self.metrics.duplicate_records += 1;
                        continue;
                    }
                    let meta = self.records.get(record);
                    let via = if reconcile {
                        let now_unix = UNIX_BASE + self.now().as_secs();
                        Via::Reconcile {
                            age: Duration::from_secs(now_unix.saturating_sub(meta.created)),
                        }
                    } else {
                        Via::Push
                    };
                    let id = meta.id;
                    self.gossip_event(node, Event::Received { from, id, via });
                }
            }
            Msg::Announce(records) => {
                for record in records {
                    if !self.nodes[node as usize].held.contains(record) {
                        let id = self.records.get(record).id;
                        self.gossip_event(node, Event::Announced { from, id });
                    }
                }
            }
            Msg::Offer(records) => self.request(node, from, records, true),
            Msg::Want { records, reconcile } => {
                let held: Vec<u32> = records
                    .into_iter()
                    .filter(|r| self.nodes[node as usize].held.contains(*r))
                    .collect();
                if !held.is_empty() {
                    self.send(
                        node,
                        from,
                        Msg::Records {
                            records: held,
                            reconcile,
                        },
                    );
                }
            }
            Msg::Reconcile {
                frame,
                to_responder: true,
            } => self.answer_session(node, from, &frame),
            Msg::Reconcile {
                frame,
                to_responder: false,
            } => self.continue_session(node, from, &frame),
            Msg::ReconcileDone => {
                let n = &mut self.nodes[node as usize];
                n.responders.remove(&from);
                if n.initiators.is_empty() && n.responders.is_empty() {
                    n.held.drop_storage();
                }
            }
        }
    }

    fn start_session(&mut self, node: u32, peer: u32) {
        let config = self.config.reconcile.clone();
        let n = &mut self.nodes[node as usize];
        let started = if n.conns.contains_key(&peer) {
            Initiator::new(config).ok().and_then(|mut initiator| {
                let storage = n.held.storage(&self.records);
                let frame = initiator.initiate(storage).ok()?;
                Some((initiator, frame))
            })
        } else {
            None
        };
        match started {
            Some((initiator, frame)) => {
                n.initiators.insert(peer, initiator);
                self.metrics.sessions_started += 1;
                self.send(
                    node,
                    peer,
                    Msg::Reconcile {
                        frame,
                        to_responder: true,
                    },
                );
            }
            None => self.gossip_event(node, Event::ReconcileEnded { peer }),
        }
    }

    fn answer_session(&mut self, node: u32, from: u32, frame: &[u8]) {
        let config = self.config.reconcile.clone();
        let n = &mut self.nodes[node as usize];
        if let Entry::Vacant(slot) = n.responders.entry(from) {
            match Responder::new(config) {
                Ok(responder) => {
                    slot.insert(responder);
                }
                Err(_) => return,
            }
        }
        let storage = n.held.storage(&self.records);
        let Some(responder) = n.responders.get_mut(&from) else {
            return;
        };
        match responder.handle(storage, frame) {
            Ok(reply) => self.send(
                node,
                from,
                Msg::Reconcile {
                    frame: reply,
                    to_responder: false,
                },
            ),
            Err(_) => {
                n.responders.remove(&from);
                self.metrics.session_errors += 1;
            }
        }
    }

    fn continue_session(&mut self, node: u32, from: u32, frame: &[u8]) {
        let n = &mut self.nodes[node as usize];
        let storage = n.held.storage(&self.records);
        let Some(initiator) = n.initiators.get_mut(&from) else {
            return;
        };
        let step = match initiator.handle(storage, frame) {
            Ok(step) => step,
            Err(_) => {
                n.initiators.remove(&from);
                self.metrics.session_errors += 1;
                self.gossip_event(node, Event::ReconcileEnded { peer: from });
                return;
            }
        };
        let have = self.indices(&step.have);
        let need = self.indices(&step.need);
        self.metrics.reconciled_ids += (have.len() + need.len()) as u64;
        // What the peer lacks is offered by id rather than sent whole: it may be fetching some of it from
        // elsewhere already, and it asks for the rest.
        if !have.is_empty() {
            self.send(node, from, Msg::Offer(have));
        }
        self.request(node, from, need, true);
        match step.reply {
            Some(frame) => self.send(
                node,
                from,
                Msg::Reconcile {
                    frame,
                    to_responder: true,
                },
            ),
            None => {
                let n = &mut self.nodes[node as usize];
                if let Some(done) = n.initiators.remove(&from) {
                    self.metrics.sessions_completed += 1;
                    self.metrics.session_rounds.push(done.rounds());
                }
                if n.initiators.is_empty() && n.responders.is_empty() {
                    n.held.drop_storage();
                }
                self.send(node, from, Msg::ReconcileDone);
                self.gossip_event(node, Event::ReconcileEnded { peer: from });
            }
        }
    }

    fn indices(&self, ids: &[RecordId]) -> Vec<u32> {
        ids.iter()
            .filter_map(|id| self.records.index_of(id))
            .collect()
    }

    /// Records of `kind` published so far.
    pub fn published(&self, kind: fn(RecordKind) -> bool) -> usize {
        self.records.iter().filter(|r| kind(r.kind)).count()
    }
}
