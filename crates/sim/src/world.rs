//! The simulated network: nodes, links, the overlay, churn and partitions, driven by one event queue.
//!
//! The model: a link between two nodes has a one-way latency drawn once for the pair, carries `bandwidth`
//! bytes per second in each direction with messages queued behind each other, and loses a message with
//! probability `loss`, which the transport resends after a timeout (so loss is delay, and each direction stays
//! in order, as over TCP). A node dials `degree / 2` random nodes and accepts up to `max_inbound`; it replaces
//! its oldest outbound connection now and then. A node going offline closes its connections (peers notice one
//! latency later), keeps its catalog, and starts with fresh in-memory state when it returns.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::config::{HANDSHAKE_BYTES, SimConfig};
use crate::metrics::{Catchup, Metrics};
use crate::node::{Conn, SimNode, Traffic};
use crate::protocol::Msg;
use crate::queue::EventQueue;
use crate::records::{RecordKind, Records, UNIX_BASE};

/// Things that happen at a point of virtual time.
pub(crate) enum Ev {
    Deliver {
        from: u32,
        to: u32,
        conn: u64,
        msg: Msg,
    },
    Connected {
        dialer: u32,
        target: u32,
    },
    DialFailed {
        dialer: u32,
        target: u32,
    },
    PeerGone {
        node: u32,
        peer: u32,
        conn: u64,
    },
    PolicyTimer {
        node: u32,
        at: Duration,
    },
    Maintain {
        node: u32,
    },
    Rotate {
        node: u32,
    },
    Churn {
        node: u32,
    },
    Publish {
        node: u32,
        kind: RecordKind,
    },
    Spam {
        node: u32,
    },
}

/// State of one direction of a link.
#[derive(Clone, Copy, Default)]
struct LinkState {
    /// When the link finishes sending what is queued.
    busy_until: Duration,
    /// Arrival time of the last message (arrivals stay in order).
    last_arrival: Duration,
}

/// The whole simulated network.
pub struct World {
    pub(crate) config: SimConfig,
    pub(crate) queue: EventQueue<Ev>,
    pub(crate) rng: StdRng,
    pub(crate) nodes: Vec<SimNode>,
    pub(crate) records: Records,
    /// What was measured so far.
    pub metrics: Metrics,
    links: BTreeMap<(u32, u32), LinkState>,
    next_conn: u64,
    /// Whether the two halves are cut off from each other.
    partitioned: bool,
}

impl World {
    /// A network of `config.nodes` nodes, each holding `config.initial_records`; none started yet.
    pub fn new(config: SimConfig) -> anyhow::Result<Self> {
        config.policy.validate()?;
        config.reconcile.validate()?;
        anyhow::ensure!(config.nodes >= 2, "need at least two nodes");
        anyhow::ensure!(
            (0.0..1.0).contains(&config.churn),
            "churn must be in [0, 1)"
        );
        anyhow::ensure!((0.0..1.0).contains(&config.loss), "loss must be in [0, 1)");
        anyhow::ensure!(config.bandwidth > 0, "bandwidth must be positive");
        anyhow::ensure!(
            config.latency_min <= config.latency_max,
            "latency range is empty"
        );
        let mut rng = StdRng::seed_from_u64(config.seed);
        let mut nodes = Vec::with_capacity(config.nodes);
        for i in 0..config.nodes {
            let mut node = SimNode::new(&config.policy, rng.random())?;
            node.half = u8::from(i % 2 == 1);
            node.spammer = i < config.spammers;
            nodes.push(node);
        }
        let mut records = Records::default();
        for i in 0..config.initial_records {
            // Spread over the year before the start.
            let created = UNIX_BASE - 365 * 86_400
                + (i as u64 * 31_536_000) / config.initial_records.max(1) as u64;
            let index = records.add(config.seed, created, 0, Duration::ZERO, RecordKind::Initial);
            for node in &mut nodes {
                node.held.insert(index);
            }
        }
        let metrics = Metrics {
            catchup: vec![None; config.nodes],
            ..Metrics::default()
        };
        Ok(World {
            config,
            queue: EventQueue::default(),
            rng,
            nodes,
            records,
            metrics,
            links: BTreeMap::new(),
            next_conn: 0,
            partitioned: false,
        })
    }

    /// Current virtual time.
    pub fn now(&self) -> Duration {
        self.queue.now()
    }

    /// Starts every node (a `churn` fraction of them offline) and their churn, rotation and spam.
    pub fn start(&mut self) {
        for node in 0..self.nodes.len() as u32 {
            let online = !self.rng.random_bool(self.config.churn);
            if online {
                self.go_online(node);
            }
            let next = self.churn_wait(online);
            let now = self.now();
            self.queue.push(now + next, Ev::Churn { node });
            let rotate = self.exponential(self.config.rotate_interval);
            self.queue.push(now + rotate, Ev::Rotate { node });
            if self.nodes[node as usize].spammer && self.config.spam_per_minute > 0 {
                let wait = self.spam_wait();
                self.queue.push(now + wait, Ev::Spam { node });
            }
        }
    }

    /// Runs every event due up to `until`.
    pub fn run_until(&mut self, until: Duration) {
        while let Some(event) = self.queue.pop_until(until) {
            self.dispatch(event);
        }
    }

    /// Schedules a publication by `node` (or, if it is offline then, by a random online node of the same half).
    pub fn publish_at(&mut self, at: Duration, node: u32, kind: RecordKind) {
        self.queue.push(at, Ev::Publish { node, kind });
    }

    /// Nodes and their state, for inspection.
    pub fn nodes(&self) -> &[SimNode] {
        &self.nodes
    }

    /// Records that exist.
    pub fn records(&self) -> &Records {
        &self.records
    }

    /// Number of nodes online.
    pub fn online_count(&self) -> usize {
        self.nodes.iter().filter(|n| n.online).count()
    }

    /// Cuts every connection between the two halves and refuses new ones until [`World::heal`].
    pub fn partition(&mut self) {
        self.partitioned = true;
        let mut cut = Vec::new();
        for (a, node) in self.nodes.iter().enumerate() {
            for peer in node.conns.keys() {
                if (a as u32) < *peer && node.half != self.nodes[*peer as usize].half {
                    cut.push((a as u32, *peer));
                }
            }
        }
        for (a, b) in cut {
            self.drop_connection(a, b);
            self.drop_connection(b, a);
        }
    }

    /// Lets the halves connect again.
    pub fn heal(&mut self) {
        self.partitioned = false;
    }

    fn dispatch(&mut self, event: Ev) {
        match event {
            Ev::Deliver {
                from,
                to,
                conn,
                msg,
            } => {
                let node = &self.nodes[to as usize];
                if node.online && node.conns.get(&from).is_some_and(|c| c.id == conn) {
                    self.metrics.messages += 1;
                    self.receive(to, from, msg);
                }
            }
            Ev::Connected { dialer, target } => self.connected(dialer, target),
            Ev::DialFailed { dialer, target } => {
                let node = &mut self.nodes[dialer as usize];
                node.dialing.remove(&target);
                if node.online {
                    self.maintain(dialer);
                }
            }
            Ev::PeerGone { node, peer, conn } => {
                if self.nodes[node as usize]
                    .conns
                    .get(&peer)
                    .is_some_and(|c| c.id == conn)
                {
                    self.drop_connection(node, peer);
                }
            }
            Ev::PolicyTimer { node, at } => {
                let n = &self.nodes[node as usize];
                if n.online && n.timer_at == Some(at) {
                    self.policy_tick(node);
                }
            }
            Ev::Maintain { node } => {
                if self.nodes[node as usize].online {
                    self.maintain(node);
                    let wait = Duration::from_millis(self.rng.random_range(5_000..15_000));
                    let now = self.now();
                    self.queue.push(now + wait, Ev::Maintain { node });
                }
            }
            Ev::Rotate { node } => {
                self.rotate(node);
                let wait = self.exponential(self.config.rotate_interval);
                let now = self.now();
                self.queue.push(now + wait, Ev::Rotate { node });
            }
            Ev::Churn { node } => {
                let online = self.nodes[node as usize].online;
                if online {
                    self.go_offline(node);
                } else {
                    self.go_online(node);
                }
                let wait = self.churn_wait(!online);
                let now = self.now();
                self.queue.push(now + wait, Ev::Churn { node });
            }
            Ev::Publish { node, kind } => self.publish(node, kind),
            Ev::Spam { node } => {
                if self.nodes[node as usize].online {
                    self.publish(node, RecordKind::Spam);
                }
                let wait = self.spam_wait();
                let now = self.now();
                self.queue.push(now + wait, Ev::Spam { node });
            }
        }
    }

    fn publish(&mut self, node: u32, kind: RecordKind) {
        let mut author = node;
        if !self.nodes[author as usize].online {
            // Pick an online node of the same half instead, so that every scheduled record is published.
            let half = self.nodes[node as usize].half;
            let candidates: Vec<u32> = (0..self.nodes.len() as u32)
                .filter(|n| {
                    let candidate = &self.nodes[*n as usize];
                    candidate.online
                        && (!matches!(kind, RecordKind::Partition(_)) || candidate.half == half)
                })
                .collect();
            if candidates.is_empty() {
                return;
            }
            author = candidates[self.rng.random_range(0..candidates.len())];
        }
        let now = self.now();
        let created = UNIX_BASE + now.as_secs();
        let index = self
            .records
            .add(self.config.seed, created, author, now, kind);
        if kind == RecordKind::Probe {
            self.metrics.probes.push(crate::metrics::Probe {
                record: index,
                published_at: now,
                cohort: self.nodes.iter().map(|n| n.online).collect(),
                reached: vec![None; self.nodes.len()],
            });
        }
        if let (RecordKind::Partition(_), Some(track)) = (kind, &mut self.metrics.partition) {
            track.total += 1;
        }
        self.store(author, index);
        let id = self.records.get(index).id;
        self.policy_event(
            author,
            kolokol_core::policy::InEvent::Published {
                id,
                hold_back: false,
            },
        );
    }

    /// Adds a record to a node's catalog; returns whether it was new.
    pub(crate) fn store(&mut self, node: u32, record: u32) -> bool {
        let n = &mut self.nodes[node as usize];
        n.inflight.remove(&record);
        if !n.held.insert(record) {
            return false;
        }
        let now = self.now();
        self.metrics
            .on_hold(node as usize, record, now, &self.records);
        true
    }

    fn go_online(&mut self, node: u32) {
        let seed = self.rng.random();
        let now = self.now();
        let config = self.config.policy.clone();
        let n = &mut self.nodes[node as usize];
        n.online = true;
        n.timer_at = None;
        // In-memory state starts afresh; the catalog was on disk.
        if let Ok(policy) = SimNode::new(&config, seed).map(|fresh| fresh.policy) {
            n.policy = policy;
        }
        let existing = self.records.len() as u32;
        let lacking = (0..existing)
            .filter(|r| self.records.get(*r).kind != RecordKind::Spam && !n.held.contains(*r))
            .count() as u32;
        self.metrics.catchup[node as usize] =
            (now > Duration::ZERO && lacking > 0).then_some(Catchup {
                since: now,
                existing,
                lacking,
                lacked_at_start: lacking,
            });
        self.queue.push(now, Ev::Maintain { node });
    }

    fn go_offline(&mut self, node: u32) {
        let peers: Vec<u32> = self.nodes[node as usize].conns.keys().copied().collect();
        for peer in peers {
            self.close(node, peer);
        }
        let n = &mut self.nodes[node as usize];
        n.online = false;
        n.dialing.clear();
        n.inflight.clear();
        n.initiators.clear();
        n.responders.clear();
        n.timer_at = None;
        n.held.drop_storage();
        self.metrics.on_offline(node as usize);
    }

    /// Dials random nodes until the node has its share of outbound connections.
    fn maintain(&mut self, node: u32) {
        let want = self.config.degree.div_ceil(2);
        let mut attempts = 0;
        while self.nodes[node as usize].outbound_count() < want && attempts < want * 4 {
            attempts += 1;
            let target = self.rng.random_range(0..self.nodes.len() as u32);
            let n = &self.nodes[node as usize];
            if target == node || n.conns.contains_key(&target) || n.dialing.contains_key(&target) {
                continue;
            }
            self.dial(node, target);
        }
    }

    fn dial(&mut self, dialer: u32, target: u32) {
        let now = self.now();
        self.nodes[dialer as usize].dialing.insert(target, now);
        let latency = self.latency(dialer, target);
        let t = &self.nodes[target as usize];
        let reachable = t.online && !self.cut_off(dialer, target);
        if !reachable {
            // No answer: the dial times out.
            self.queue.push(
                now + Duration::from_secs(3),
                Ev::DialFailed { dialer, target },
            );
        } else if t.inbound_count() >= self.config.max_inbound || t.conns.contains_key(&dialer) {
            // Refused at once.
            self.queue
                .push(now + latency * 2, Ev::DialFailed { dialer, target });
        } else {
            // Noise XX takes one and a half round trips, then the hellos cross.
            self.queue
                .push(now + latency * 4, Ev::Connected { dialer, target });
        }
    }

    fn connected(&mut self, dialer: u32, target: u32) {
        let now = self.now();
        self.nodes[dialer as usize].dialing.remove(&target);
        let (d, t) = (&self.nodes[dialer as usize], &self.nodes[target as usize]);
        let ok = d.online
            && t.online
            && !self.cut_off(dialer, target)
            && !d.conns.contains_key(&target)
            && !t.conns.contains_key(&dialer)
            && t.inbound_count() < self.config.max_inbound;
        if !ok {
            if d.online {
                self.maintain(dialer);
            }
            return;
        }
        self.next_conn += 1;
        let id = self.next_conn;
        self.nodes[dialer as usize].conns.insert(
            target,
            Conn {
                id,
                outbound: true,
                since: now,
            },
        );
        self.nodes[target as usize].conns.insert(
            dialer,
            Conn {
                id,
                outbound: false,
                since: now,
            },
        );
        self.account(dialer, Traffic::Handshake, HANDSHAKE_BYTES / 2);
        self.account(target, Traffic::Handshake, HANDSHAKE_BYTES / 2);
        use kolokol_core::policy::InEvent as Event;
        self.policy_event(
            dialer,
            Event::PeerUp {
                peer: target,
                outbound: true,
            },
        );
        self.policy_event(
            target,
            Event::PeerUp {
                peer: dialer,
                outbound: false,
            },
        );
    }

    /// Replaces the oldest outbound connection by a fresh random one.
    fn rotate(&mut self, node: u32) {
        let n = &self.nodes[node as usize];
        if !n.online || n.outbound_count() < self.config.degree.div_ceil(2) {
            return;
        }
        let oldest = n
            .conns
            .iter()
            .filter(|(_, c)| c.outbound)
            .min_by_key(|(_, c)| c.since)
            .map(|(peer, _)| *peer);
        if let Some(peer) = oldest {
            self.close(node, peer);
            self.maintain(node);
        }
    }

    /// Closes a connection from `node`'s side; the peer notices one latency later.
    pub(crate) fn close(&mut self, node: u32, peer: u32) {
        let Some(conn) = self.nodes[node as usize].conns.get(&peer).copied() else {
            return;
        };
        self.drop_connection(node, peer);
        let at = self.now() + self.latency(node, peer);
        self.queue.push(
            at,
            Ev::PeerGone {
                node: peer,
                peer: node,
                conn: conn.id,
            },
        );
    }

    /// Forgets a connection on `node`'s side, with everything that ran over it.
    fn drop_connection(&mut self, node: u32, peer: u32) {
        let n = &mut self.nodes[node as usize];
        if n.conns.remove(&peer).is_none() {
            return;
        }
        n.initiators.remove(&peer);
        n.responders.remove(&peer);
        if n.initiators.is_empty() && n.responders.is_empty() {
            n.held.drop_storage();
        }
        if n.online {
            self.policy_event(node, kolokol_core::policy::InEvent::PeerDown { peer });
        }
    }

    fn cut_off(&self, a: u32, b: u32) -> bool {
        self.partitioned && self.nodes[a as usize].half != self.nodes[b as usize].half
    }

    /// The one-way latency of the pair, fixed for the run.
    pub(crate) fn latency(&self, a: u32, b: u32) -> Duration {
        let (lo, hi) = (a.min(b) as u64, a.max(b) as u64);
        let unit =
            (splitmix(self.config.seed ^ (lo << 32 | hi)) >> 11) as f64 / (1u64 << 53) as f64;
        let span = self
            .config
            .latency_max
            .saturating_sub(self.config.latency_min);
        self.config.latency_min + span.mul_f64(unit)
    }

    /// Queues `msg` from `from` to `to` over their connection and counts its bytes.
    pub(crate) fn send(&mut self, from: u32, to: u32, msg: Msg) {
        let Some(conn) = self.nodes[from as usize].conns.get(&to).copied() else {
            return;
        };
        let now = self.now();
        let size = msg.size(&mut self.records, self.config.record_bytes);
        self.account(from, msg.traffic(), size);
        let latency = self.latency(from, to);
        let transmit = Duration::from_secs_f64(size as f64 / self.config.bandwidth as f64);
        let mut delay = Duration::ZERO;
        let mut timeout = (latency * 4).max(Duration::from_millis(200));
        while self.config.loss > 0.0 && self.rng.random_bool(self.config.loss) {
            delay += timeout;
            timeout *= 2;
        }
        let link = self.links.entry((from, to)).or_default();
        let start = link.busy_until.max(now);
        link.busy_until = start + transmit;
        let arrival = (link.busy_until + latency + delay).max(link.last_arrival);
        link.last_arrival = arrival;
        self.queue.push(
            arrival,
            Ev::Deliver {
                from,
                to,
                conn: conn.id,
                msg,
            },
        );
    }

    fn account(&mut self, node: u32, kind: Traffic, bytes: u64) {
        self.nodes[node as usize].sent.add(kind, bytes);
        self.metrics.traffic.add(kind, bytes);
    }

    /// A draw from the exponential distribution with this mean.
    fn exponential(&mut self, mean: Duration) -> Duration {
        let u: f64 = self.rng.random_range(f64::EPSILON..1.0);
        mean.mul_f64(-u.ln())
    }

    fn churn_wait(&mut self, online: bool) -> Duration {
        if self.config.churn <= 0.0 {
            return Duration::from_secs(365 * 86_400);
        }
        let offline = self.config.mean_offline;
        let mean = if online {
            offline.mul_f64((1.0 - self.config.churn) / self.config.churn)
        } else {
            offline
        };
        self.exponential(mean)
    }

    fn spam_wait(&mut self) -> Duration {
        let mean = Duration::from_secs(60) / self.config.spam_per_minute.max(1);
        self.exponential(mean)
    }

    /// Marks the start of the partition measurement (call before publishing partition records).
    pub fn track_partition(&mut self) {
        self.metrics.partition = Some(crate::metrics::PartitionTrack {
            held: vec![0; self.nodes.len()],
            complete_at: vec![None; self.nodes.len()],
            cohort: vec![false; self.nodes.len()],
            ..Default::default()
        });
    }

    /// Heals the partition and starts timing convergence.
    pub fn heal_and_track(&mut self) {
        self.heal();
        let now = self.now();
        let online: Vec<bool> = self.nodes.iter().map(|n| n.online).collect();
        if let Some(track) = &mut self.metrics.partition {
            track.heal_at = Some(now);
            track.cohort = online;
        }
    }
}

/// SplitMix64: a fixed mixing of a 64-bit value (for per-pair latencies without storing them).
fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
