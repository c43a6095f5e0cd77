//! What a node does with messages, record-policy decisions and reconciliation sessions: the glue the real node
//! has too, over the same core state machines (`kolokol_core::policy` decides what to push, announce, request
//! and serve; this module only moves messages and keeps the catalog).

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::time::Duration;

use kolokol_core::policy::{InEvent as Event, OutEvent, Verdict};
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
    /// Ids the sender holds (a relay announcement).
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
    /// Feeds one event to a node's record policy and carries out what it decides.
    pub(crate) fn policy_event(&mut self, node: u32, event: Event<u32>) {
        self.policy_event_for(node, event, false);
    }

    /// [`World::policy_event`]; `reconcile` says the event comes from a reconciliation (for the accounting of
    /// the messages it causes).
    fn policy_event_for(&mut self, node: u32, event: Event<u32>, reconcile: bool) {
        self.policy_events(node, vec![event], reconcile);
    }

    /// Feeds several events (one message's worth) and carries out all their decisions together, so that they
    /// make one message of each kind per peer, as the node's driver does.
    fn policy_events(&mut self, node: u32, events: Vec<Event<u32>>, reconcile: bool) {
        let now = self.now();
        let policy = &mut self.nodes[node as usize].policy;
        let actions = events
            .into_iter()
            .flat_map(|event| policy.handle(event, now))
            .collect();
        self.apply(node, actions, reconcile);
    }

    pub(crate) fn policy_tick(&mut self, node: u32) {
        self.policy_event(node, Event::Tick);
    }

    fn apply(&mut self, node: u32, actions: Vec<OutEvent<u32>>, reconcile: bool) {
        let mut outbox = Outbox::default();
        for action in actions {
            match action {
                OutEvent::SendRecord { to, id } => {
                    if let Some(r) = self.records.index_of(&id) {
                        outbox.push.entry(to).or_default().push(r);
                    }
                }
                OutEvent::SendRecords { to, ids } => {
                    let n = &self.nodes[node as usize];
                    let held: Vec<u32> = ids
                        .iter()
                        .filter_map(|id| self.records.index_of(id))
                        .filter(|r| n.held.contains(*r))
                        .collect();
                    if !held.is_empty() {
                        self.send(
                            node,
                            to,
                            Msg::Records {
                                records: held,
                                reconcile,
                            },
                        );
                    }
                }
                OutEvent::Announce { to, id } => {
                    if let Some(r) = self.records.index_of(&id) {
                        outbox.announce.entry(to).or_default().push(r);
                    }
                }
                OutEvent::Request { from, id } => {
                    if let Some(r) = self.records.index_of(&id) {
                        outbox.want.entry(from).or_default().push(r);
                    }
                }
                OutEvent::StartReconcile { peer } => self.start_session(node, peer),
                OutEvent::Disconnect { peer, .. } => self.close(node, peer),
                OutEvent::ScheduleTimer { at } => {
                    self.nodes[node as usize].timer_at = Some(at);
                    self.queue.push(at, Ev::PolicyTimer { node, at });
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
            let msg = if reconcile {
                Msg::Offer(list)
            } else {
                Msg::Announce(list)
            };
            self.send(node, to, msg);
        }
        for (to, records) in outbox.want {
            self.request(node, to, records, reconcile);
        }
    }

    /// Asks `from` for the records among `records` that are neither held nor already asked for.
    fn request(&mut self, node: u32, from: u32, records: Vec<u32>, reconcile: bool) {
        let now = self.now();
        let retry_after = now + self.config.policy.request_timeout;
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
        let offered = matches!(msg, Msg::Offer(_));
        match msg {
            Msg::Records { records, .. } => {
                let now_unix = UNIX_BASE + self.now().as_secs();
                let mut events = Vec::with_capacity(records.len());
                for record in records {
                    let verdict = if self.store(node, record) {
                        Verdict::Stored
                    } else {
                        self.metrics.duplicate_records += 1;
                        Verdict::Duplicate
                    };
                    let meta = self.records.get(record);
                    let age = Duration::from_secs(now_unix.saturating_sub(meta.created));
                    events.push(Event::Received {
                        from,
                        id: meta.id,
                        age,
                        verdict,
                    });
                }
                self.policy_events(node, events, false);
            }
            Msg::Announce(records) | Msg::Offer(records) => {
                // What a reconciliation offered is fetched as reconciliation traffic.
                let reconcile = offered;
                let n = &self.nodes[node as usize];
                let events = records
                    .into_iter()
                    .filter(|r| !n.held.contains(*r))
                    .map(|r| Event::Announced {
                        from,
                        id: self.records.get(r).id,
                    })
                    .collect();
                self.policy_events(node, events, reconcile);
            }
            Msg::Want { records, reconcile } => {
                let ids = records.iter().map(|r| self.records.get(*r).id).collect();
                self.policy_event_for(node, Event::Requested { from, ids }, reconcile);
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
            None => self.policy_event(node, Event::ReconcileEnded { peer }),
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
                self.policy_event(node, Event::ReconcileEnded { peer: from });
                return;
            }
        };
        let have = self.indices(&step.have);
        let need = self.indices(&step.need);
        self.metrics.reconciled_ids += (have.len() + need.len()) as u64;
        // The policy offers what the peer lacks by id and requests what this node lacks.
        let n = &self.nodes[node as usize];
        let need: Vec<RecordId> = need
            .into_iter()
            .filter(|r| !n.held.contains(*r))
            .map(|r| self.records.get(r).id)
            .collect();
        self.policy_event_for(
            node,
            Event::Reconciled {
                peer: from,
                have: step.have,
                need,
            },
            true,
        );
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
                self.policy_event(node, Event::ReconcileEnded { peer: from });
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
