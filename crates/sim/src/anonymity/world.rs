//! One trial of the anonymity scenario: a churning overlay in which every node runs core's stem machine
//! ([`kolokol_core::stem::Stem`]) and some nodes are spies that log what they receive.
//!
//! Model: each online node keeps `outbound` connections to random online nodes (a dial takes two round trips;
//! a node accepts up to `max_inbound`); links have a fixed one-way latency per pair. A stem message arrives one
//! latency after it is sent; the receiving node then fetches the publication from the sender, which takes a
//! round trip plus its size at the sender's upload rate. A fluff spreads the way the record policy relays a
//! record by id: a node announces it to all its peers, a peer that lacks it asks and gets it, so each hop
//! takes three latencies (plus up to 20 ms of processing); a spy *hears* of it from the first announcement.
//! The fluff is computed once per fluffing node as shortest arrival times over the overlay at that moment
//! (a fluff is over in seconds, churn acts over minutes). A node going offline loses its connections and its
//! in-memory stem state; it comes back with a fresh machine.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::time::Duration;

use kolokol_core::stem::{Stem, StemAction, StemEvent};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{AnonConfig, Design};
use crate::queue::EventQueue;

/// What a spy logged first about an item: when, from which node, and whether in stem or in fluff.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Observation {
    pub at: Duration,
    pub sender: u32,
    pub in_stem: bool,
}

/// One publication and what happened to it.
#[derive(Clone, Debug)]
pub(crate) struct Item {
    pub publisher: u32,
    pub bytes: u64,
    pub published_at: Duration,
    /// The first fluff: node and time.
    pub fluffed: Option<(u32, Duration)>,
    /// Whether that fluff came from a fail-safe (the node had passed the item on before).
    pub by_failsafe: bool,
    /// Nodes that received it in stem before the first fluff.
    pub hops: u32,
    /// Nodes that hold stem state for it (told when the fluff reaches them).
    pub stem_nodes: Vec<u32>,
    /// Nodes that passed it on in stem.
    pub forwarded_by: BTreeSet<u32>,
    /// The spies' first observation.
    pub first: Option<Observation>,
    /// The adversary's candidate publishers with weights, made at the first observation (see `estimate`).
    pub candidates: Vec<(u32, f64)>,
}

pub(super) enum Ev {
    Churn {
        node: u32,
    },
    Maintain {
        node: u32,
    },
    Connected {
        dialer: u32,
        target: u32,
    },
    Stem {
        from: u32,
        to: u32,
        conn: u64,
        id: u32,
    },
    FetchDone {
        node: u32,
        from: u32,
        conn: u64,
        id: u32,
    },
    Timer {
        node: u32,
        at: Duration,
        life: u64,
    },
    Publish {
        node: u32,
    },
    SeenFluff {
        node: u32,
        id: u32,
        life: u64,
    },
}

pub(super) struct Node {
    pub(super) online: bool,
    pub(super) spy: bool,
    /// Peer -> (connection id, whether we dialed).
    pub(super) conns: BTreeMap<u32, (u64, bool)>,
    pub(super) dialing: BTreeSet<u32>,
    pub(super) stem: Stem<u32, u32, StdRng>,
    pub(super) timer_at: Option<Duration>,
    /// Incremented at every start, so that events of an earlier life are dropped.
    pub(super) life: u64,
}

/// A trial's network.
pub(crate) struct Trial {
    pub(super) config: AnonConfig,
    pub(super) design: Design,
    pub(super) queue: EventQueue<Ev>,
    pub(super) rng: StdRng,
    pub(super) nodes: Vec<Node>,
    pub items: Vec<Item>,
    /// Each node's own publication, if it made one.
    pub(super) own: Vec<Option<u32>>,
    /// Publications not fluffed yet.
    pub(super) unfluffed: usize,
    pub(super) next_conn: u64,
}

impl Trial {
    pub(crate) fn new(
        config: &AnonConfig,
        design: Design,
        spies: usize,
        seed: u64,
    ) -> anyhow::Result<Self> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut nodes = Vec::with_capacity(config.nodes);
        for _ in 0..config.nodes {
            nodes.push(Node {
                online: false,
                spy: false,
                conns: BTreeMap::new(),
                dialing: BTreeSet::new(),
                stem: Stem::new(config.stem.clone(), StdRng::seed_from_u64(rng.random()))?,
                timer_at: None,
                life: 0,
            });
        }
        // Spies are a uniform random subset.
        let mut order: Vec<u32> = (0..config.nodes as u32).collect();
        for i in 0..spies.min(order.len()) {
            let j = rng.random_range(i..order.len());
            order.swap(i, j);
            nodes[order[i] as usize].spy = true;
        }
        Ok(Trial {
            config: config.clone(),
            design,
            queue: EventQueue::default(),
            rng,
            nodes,
            items: Vec::new(),
            own: vec![None; config.nodes],
            unfluffed: 0,
            next_conn: 0,
        })
    }

    pub(crate) fn is_spy(&self, node: u32) -> bool {
        self.nodes[node as usize].spy
    }

    /// Starts the network, lets it settle, has every online honest node publish once within the window, and
    /// runs until the horizon.
    pub(crate) fn run(&mut self) {
        for node in 0..self.nodes.len() as u32 {
            let online = !self.rng.random_bool(self.config.churn);
            if online {
                self.go_online(node);
            }
            let wait = self.churn_wait(online);
            self.queue.push(wait, Ev::Churn { node });
        }
        self.run_until(self.config.warmup);
        let start = self.queue.now();
        for node in 0..self.nodes.len() as u32 {
            let n = &self.nodes[node as usize];
            if n.online && !n.spy {
                let at = start + self.config.publish_window.mul_f64(self.rng.random::<f64>());
                self.queue.push(at, Ev::Publish { node });
            }
        }
        let end = start + self.config.publish_window + self.config.horizon;
        while let Some(event) = self.queue.pop_until(end) {
            self.dispatch(event);
            if self.queue.now() > start + self.config.publish_window && self.unfluffed == 0 {
                break;
            }
        }
    }

    fn run_until(&mut self, until: Duration) {
        while let Some(event) = self.queue.pop_until(until) {
            self.dispatch(event);
        }
    }

    fn dispatch(&mut self, event: Ev) {
        let now = self.queue.now();
        match event {
            Ev::Churn { node } => {
                let online = self.nodes[node as usize].online;
                if online {
                    self.go_offline(node);
                } else {
                    self.go_online(node);
                }
                let wait = self.churn_wait(!online);
                self.queue.push(now + wait, Ev::Churn { node });
            }
            Ev::Maintain { node } => {
                if self.nodes[node as usize].online {
                    self.maintain(node);
                    let wait = Duration::from_millis(self.rng.random_range(5_000..15_000));
                    self.queue.push(now + wait, Ev::Maintain { node });
                }
            }
            Ev::Connected { dialer, target } => self.connected(dialer, target),
            Ev::Stem { from, to, conn, id } => {
                if self.conn_of(to, from) == Some(conn) {
                    if self.nodes[to as usize].spy {
                        self.observe(id, from, now, true);
                        if self.config.spies_swallow_stems {
                            return;
                        }
                    }
                    let item = &mut self.items[id as usize];
                    if item.fluffed.is_none() {
                        item.hops += 1;
                    }
                    item.stem_nodes.push(to);
                    let bytes = item.bytes;
                    self.handle(to, StemEvent::StemReceived { from, id, bytes });
                }
            }
            Ev::FetchDone {
                node,
                from,
                conn,
                id,
            } => {
                if self.nodes[node as usize].online {
                    let ok = self.conn_of(node, from) == Some(conn);
                    let event = if ok {
                        StemEvent::DataComplete { id }
                    } else {
                        StemEvent::FetchFailed { id }
                    };
                    self.handle(node, event);
                    if ok {
                        // The sender served every piece: it knows the stem no longer depends on it.
                        self.handle(from, StemEvent::Fetched { id, by: node });
                    }
                }
            }
            Ev::Timer { node, at, life } => {
                let n = &self.nodes[node as usize];
                if n.online && n.life == life && n.timer_at == Some(at) {
                    self.handle(node, StemEvent::Tick);
                }
            }
            Ev::Publish { node } => self.publish(node),
            Ev::SeenFluff { node, id, life } => {
                let n = &self.nodes[node as usize];
                if n.online && n.life == life {
                    self.handle(node, StemEvent::SeenInFluff { id });
                }
            }
        }
    }

    fn publish(&mut self, node: u32) {
        if !self.nodes[node as usize].online {
            return;
        }
        let now = self.queue.now();
        let (lo, hi) = (self.config.size_min as f64, self.config.size_max as f64);
        let bytes = (lo * (hi / lo).powf(self.rng.random::<f64>())) as u64;
        let id = self.items.len() as u32;
        self.own[node as usize] = Some(id);
        self.unfluffed += 1;
        self.items.push(Item {
            publisher: node,
            bytes,
            published_at: now,
            fluffed: None,
            by_failsafe: false,
            hops: 0,
            stem_nodes: vec![node],
            forwarded_by: BTreeSet::new(),
            first: None,
            candidates: Vec::new(),
        });
        match self.design {
            // Today: the publisher itself is the first to send the record to its peers.
            Design::Push => self.fluff(node, id),
            Design::Stem => self.handle(node, StemEvent::Originate { id, bytes }),
        }
    }

    /// Feeds one event to a node's stem machine and carries out its actions.
    pub(super) fn handle(&mut self, node: u32, event: StemEvent<u32, u32>) {
        let now = self.queue.now();
        let actions = self.nodes[node as usize].stem.handle(event, now);
        for action in actions {
            match action {
                StemAction::Fetch { id, from } => match self.conn_of(node, from) {
                    Some(conn) => {
                        let bytes = self.items[id as usize].bytes;
                        let transfer =
                            Duration::from_secs_f64(bytes as f64 / self.config.upload as f64);
                        let at = now + self.latency(node, from) * 2 + transfer;
                        self.queue.push(
                            at,
                            Ev::FetchDone {
                                node,
                                from,
                                conn,
                                id,
                            },
                        );
                    }
                    None => self.handle(node, StemEvent::FetchFailed { id }),
                },
                StemAction::SendStem { to, id } => {
                    self.items[id as usize].forwarded_by.insert(node);
                    if let Some(conn) = self.conn_of(node, to) {
                        let at = now + self.latency(node, to);
                        self.queue.push(
                            at,
                            Ev::Stem {
                                from: node,
                                to,
                                conn,
                                id,
                            },
                        );
                    }
                }
                StemAction::Fluff { id } => self.fluff(node, id),
                StemAction::ScheduleTimer { at } => {
                    let n = &mut self.nodes[node as usize];
                    n.timer_at = Some(at);
                    let life = n.life;
                    self.queue.push(at, Ev::Timer { node, at, life });
                }
            }
        }
    }

    /// `node` fluffs item `id` now: shortest arrival times over the overlay give when every node holds it and
    /// when each spy first hears of it, and from whom.
    fn fluff(&mut self, node: u32, id: u32) {
        let now = self.queue.now();
        let first_fluff = self.items[id as usize].fluffed.is_none();
        if first_fluff {
            let item = &mut self.items[id as usize];
            item.fluffed = Some((node, now));
            self.unfluffed -= 1;
            item.by_failsafe = item.forwarded_by.contains(&node);
        }
        let (arrival, pred) = self.spread(node, now);
        // Each spy hears first from the earliest announcer among its honest peers (never from the peer it
        // gave the item to).
        let mut best: Option<Observation> = None;
        for spy in 0..self.nodes.len() as u32 {
            let s = &self.nodes[spy as usize];
            if !s.spy || !s.online {
                continue;
            }
            for &w in s.conns.keys() {
                if self.nodes[w as usize].spy || pred[w as usize] == Some(spy) {
                    continue;
                }
                if let Some(t) = arrival[w as usize] {
                    let at = t + self.latency(w, spy);
                    if best.is_none_or(|b| at < b.at) {
                        best = Some(Observation {
                            at,
                            sender: w,
                            in_stem: false,
                        });
                    }
                }
            }
        }
        if let Some(obs) = best {
            self.record(id, obs);
        }
        if first_fluff {
            let holders = self.items[id as usize].stem_nodes.clone();
            for holder in holders {
                if let Some(at) = arrival[holder as usize] {
                    let life = self.nodes[holder as usize].life;
                    self.queue.push(
                        at,
                        Ev::SeenFluff {
                            node: holder,
                            id,
                            life,
                        },
                    );
                }
            }
        }
    }

    /// Arrival time at every online node of a fluff starting at `source` at `now`, and each node's
    /// predecessor on the way.
    fn spread(&mut self, source: u32, now: Duration) -> (Vec<Option<Duration>>, Vec<Option<u32>>) {
        let n = self.nodes.len();
        let mut arrival: Vec<Option<Duration>> = vec![None; n];
        let mut pred: Vec<Option<u32>> = vec![None; n];
        let mut heap = BinaryHeap::new();
        arrival[source as usize] = Some(now);
        heap.push(Reverse((now, source)));
        while let Some(Reverse((t, u))) = heap.pop() {
            if arrival[u as usize] != Some(t) {
                continue;
            }
            let peers: Vec<u32> = self.nodes[u as usize].conns.keys().copied().collect();
            for v in peers {
                let jitter = Duration::from_micros(self.rng.random_range(0..20_000));
                let at = t + self.latency(u, v) * 3 + jitter;
                if arrival[v as usize].is_none_or(|old| at < old) {
                    arrival[v as usize] = Some(at);
                    pred[v as usize] = Some(u);
                    heap.push(Reverse((at, v)));
                }
            }
        }
        (arrival, pred)
    }

    /// A spy received `id` from `sender` at `at`.
    fn observe(&mut self, id: u32, sender: u32, at: Duration, in_stem: bool) {
        if self.nodes[sender as usize].spy {
            return;
        }
        self.record(
            id,
            Observation {
                at,
                sender,
                in_stem,
            },
        );
    }

    /// Keeps the earliest observation of `id`, with the candidates it points at.
    fn record(&mut self, id: u32, obs: Observation) {
        if self.items[id as usize]
            .first
            .is_some_and(|f| f.at <= obs.at)
        {
            return;
        }
        let candidates = super::estimate::candidates(self, obs);
        let item = &mut self.items[id as usize];
        item.first = Some(obs);
        item.candidates = candidates;
    }

    pub(crate) fn design(&self) -> Design {
        self.design
    }

    pub(crate) fn config(&self) -> &AnonConfig {
        &self.config
    }

    /// Honest online nodes that have `node` as a stem relay now (the anonymity graph, reversed).
    pub(crate) fn relaying_to(&self, node: u32) -> Vec<u32> {
        (0..self.nodes.len() as u32)
            .filter(|u| {
                let n = &self.nodes[*u as usize];
                n.online && !n.spy && n.stem.relays().contains(&node)
            })
            .collect()
    }

    /// Honest online peers of `node`.
    pub(crate) fn honest_peers(&self, node: u32) -> Vec<u32> {
        self.nodes[node as usize]
            .conns
            .keys()
            .copied()
            .filter(|p| !self.nodes[*p as usize].spy)
            .collect()
    }
}
