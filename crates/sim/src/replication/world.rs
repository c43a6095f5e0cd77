//! The replication world: nodes with disks, quotas and sessions; publishers, mirrors and viewers driving the
//! core policies ([`PublisherPush`], [`CachePolicy`]); the piece transfers themselves are in `swarm.rs`.
//!
//! The catalog is not simulated here (the gossip scenarios measure it: a record reaches every online node in
//! seconds). A record is known to every node from the moment its publisher announces it, and to nobody but the
//! asked peers before; a node that was offline acts on it when it returns, as after a reconciliation.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kolokol_core::replication::{
    CacheAction, CacheConfig, CacheMode, CachePolicy, Candidate, PublisherPush, PushAction,
};
use kolokol_core::{InfoHash, NodeId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::config::{MAX_PIECES, MIN_PIECE_BYTES, ReplicationConfig};
use crate::queue::EventQueue;
use crate::records::UNIX_BASE;

/// Things that happen at a point of virtual time.
pub(super) enum Ev {
    Churn {
        node: u32,
    },
    Publish {
        plan: u32,
    },
    PublisherLeaves {
        publication: u32,
    },
    PushTick {
        publication: u32,
    },
    AskArrives {
        publication: u32,
        peer: u32,
    },
    Reply {
        publication: u32,
        peer: u32,
        reply: Reply,
    },
    Watch {
        publication: u32,
    },
    PieceDone {
        transfer: u64,
    },
    Pump {
        node: u32,
        at: Duration,
    },
    MirrorTick {
        node: u32,
    },
    Check {
        publication: u32,
        which: usize,
    },
}

/// What an asked peer tells the publisher.
#[derive(Clone, Copy, Debug)]
pub(super) enum Reply {
    Accepted,
    Refused,
    Complete,
    Gone,
}

/// One node.
pub(super) struct Node {
    pub(super) online: bool,
    pub(super) mirror: bool,
    /// A publisher that left for good.
    pub(super) retired: bool,
    pub(super) up_rate: f64,
    pub(super) down_rate: f64,
    pub(super) policy: CachePolicy,
    /// Pieces on disk per publication (a bit per piece).
    pub(super) pieces: BTreeMap<u32, u64>,
    pub(super) downloads: BTreeMap<u32, Download>,
    pub(super) up_busy: usize,
    pub(super) down_busy: usize,
    pub(super) transfers: BTreeSet<u64>,
    pub(super) pump_at: Option<Duration>,
    /// Holder counts last given to the policy (mirrors).
    reported_holders: BTreeMap<u32, u32>,
}

/// A fetch in progress.
pub(super) struct Download {
    pub(super) inflight: u64,
    /// Since when no online holder had a wanted piece and a free slot (reset by any request and on return).
    pub(super) no_source_since: Option<Duration>,
    /// Asked by the publisher: report completion to it.
    pub(super) for_push: bool,
}

/// Measured per publication at each check.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct CheckResult {
    /// Every piece held by at least one online node.
    pub(super) available: bool,
    /// Online nodes holding every piece.
    pub(super) full_copies: u32,
}

/// How the announcement came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Announced {
    /// No push: at once.
    AtOnce,
    /// After a confirmed full replica.
    Confirmed,
    /// At the time-out, with no confirmed replica.
    Timeout,
}

/// One publication.
pub(super) struct Publication {
    pub(super) infohash: InfoHash,
    pub(super) size: u64,
    pub(super) pieces: u32,
    pub(super) piece_bytes: u64,
    pub(super) publisher: u32,
    pub(super) published_at: Duration,
    pub(super) announced: Option<(Duration, Announced)>,
    /// Nodes with at least one piece.
    pub(super) holders: Vec<u32>,
    /// Online nodes holding each piece.
    pub(super) avail: [u32; MAX_PIECES as usize],
    /// Online nodes holding every piece.
    pub(super) online_full: u32,
    push: Option<PublisherPush>,
    /// When a node other than the publisher first held every piece.
    pub(super) first_replica_at: Option<Duration>,
    pub(super) checks: [Option<CheckResult>; 2],
    /// Viewers who will come after the announcement.
    viewers: u32,
}

impl Publication {
    pub(super) fn full_mask(&self) -> u64 {
        if self.pieces >= 64 {
            u64::MAX
        } else {
            (1u64 << self.pieces) - 1
        }
    }
}

/// Counters over the run.
#[derive(Clone, Debug, Default)]
pub(super) struct Stats {
    pub(super) bytes: u64,
    pub(super) asks: u64,
    pub(super) watches: u64,
    pub(super) watches_done: u64,
    pub(super) mirror_fetches: u64,
    pub(super) evictions: u64,
    pub(super) failed_fetches: u64,
    pub(super) mirror_bytes: u64,
    pub(super) wasted_bytes: u64,
}

/// The whole simulated network.
pub struct ReplicationWorld {
    pub(super) config: ReplicationConfig,
    pub(super) queue: EventQueue<Ev>,
    pub(super) rng: StdRng,
    pub(super) nodes: Vec<Node>,
    pub(super) publications: Vec<Publication>,
    pub(super) transfers: BTreeMap<u64, super::swarm::Transfer>,
    pub(super) next_transfer: u64,
    pub(super) stats: Stats,
    announced: Vec<u32>,
    /// Size and audience of each planned publication.
    plan: Vec<(u64, u32)>,
}

impl ReplicationWorld {
    /// A network as configured, nothing started yet.
    pub fn new(config: ReplicationConfig) -> anyhow::Result<Self> {
        config.validate()?;
        let rng = StdRng::seed_from_u64(config.seed);
        let mirrors = if config.variant.mirrors {
            (config.nodes as f64 * config.mirror_share).round() as usize
        } else {
            0
        };
        let nodes = (0..config.nodes)
            .map(|i| {
                let mirror = i < mirrors;
                let policy = if mirror {
                    CacheConfig {
                        mode: CacheMode::Mirror,
                        quota_bytes: config.mirror_quota,
                        max_parallel_fetches: config.mirror_parallel,
                    }
                } else {
                    CacheConfig::viewer(config.viewer_quota)
                };
                let (up, down) = if mirror {
                    (config.mirror_rate, config.mirror_rate)
                } else {
                    (config.ordinary_up, config.ordinary_down)
                };
                Node {
                    online: false,
                    mirror,
                    retired: false,
                    up_rate: up as f64,
                    down_rate: down as f64,
                    policy: CachePolicy::new(policy),
                    pieces: BTreeMap::new(),
                    downloads: BTreeMap::new(),
                    up_busy: 0,
                    down_busy: 0,
                    transfers: BTreeSet::new(),
                    pump_at: None,
                    reported_holders: BTreeMap::new(),
                }
            })
            .collect();
        Ok(ReplicationWorld {
            config,
            queue: EventQueue::default(),
            rng,
            nodes,
            publications: Vec::new(),
            transfers: BTreeMap::new(),
            next_transfer: 0,
            stats: Stats::default(),
            announced: Vec::new(),
            plan: Vec::new(),
        })
    }

    /// Current virtual time.
    pub fn now(&self) -> Duration {
        self.queue.now()
    }

    /// The policies' clock: unix seconds.
    pub(super) fn unix(&self) -> u64 {
        UNIX_BASE + self.now().as_secs()
    }

    /// Puts every node in its first state, schedules sessions, mirror ticks and the publications.
    pub fn start(&mut self) {
        for node in 0..self.nodes.len() as u32 {
            let churn = self.churn_of(node);
            let online = !self.rng.random_bool(churn);
            if online {
                self.set_online(node, true);
            }
            let wait = self.session(node, online);
            self.queue.push(wait, Ev::Churn { node });
            if self.nodes[node as usize].mirror {
                let first = self.config.mirror_tick.mul_f64(self.rng.random::<f64>());
                self.queue.push(first, Ev::MirrorTick { node });
            }
        }
        // The publications (time, size, audience) come from their own generator, so that every variant of
        // a seed publishes the same ones.
        let mut plan_rng = StdRng::seed_from_u64(self.config.seed ^ 0x9ab1_1ca7_1015);
        let ratio = self.config.size_max as f64 / self.config.size_min as f64;
        let ln_viewers = f64::from(self.config.max_viewers).ln();
        for plan in 0..self.config.publications as u32 {
            let at = self.config.publish_window.mul_f64(plan_rng.random::<f64>());
            let size = (self.config.size_min as f64 * ratio.powf(plan_rng.random::<f64>())) as u64;
            let viewers = ((plan_rng.random::<f64>() * ln_viewers).exp().floor() as u32).max(1);
            self.plan.push((size, viewers));
            self.queue.push(at, Ev::Publish { plan });
        }
    }

    /// Runs every event up to `until`.
    pub fn run_until(&mut self, until: Duration) {
        while let Some(event) = self.queue.pop_until(until) {
            self.dispatch(event);
        }
    }

    fn dispatch(&mut self, event: Ev) {
        match event {
            Ev::Churn { node } => {
                let n = &self.nodes[node as usize];
                if n.retired {
                    return;
                }
                let online = !n.online;
                self.set_online(node, online);
                let wait = self.session(node, online);
                let now = self.now();
                self.queue.push(now + wait, Ev::Churn { node });
            }
            Ev::Publish { plan } => self.publish(plan),
            Ev::PublisherLeaves { publication } => {
                let publisher = self.publications[publication as usize].publisher;
                self.set_online(publisher, false);
                self.nodes[publisher as usize].retired = true;
                self.publications[publication as usize].push = None;
            }
            Ev::PushTick { publication } => {
                let now = self.unix();
                if let Some(push) = &mut self.publications[publication as usize].push {
                    push.tick(now);
                    self.drive_push(publication);
                }
            }
            Ev::AskArrives { publication, peer } => self.asked(publication, peer),
            Ev::Reply {
                publication,
                peer,
                reply,
            } => self.replied(publication, peer, reply),
            Ev::Watch { publication } => self.watch(publication),
            Ev::PieceDone { transfer } => self.piece_done(transfer),
            Ev::Pump { node, at } => {
                if self.nodes[node as usize].pump_at == Some(at) {
                    self.nodes[node as usize].pump_at = None;
                    self.pump(node);
                }
            }
            Ev::MirrorTick { node } => {
                self.mirror_tick(node);
                let next = self.now() + self.config.mirror_tick;
                self.queue.push(next, Ev::MirrorTick { node });
            }
            Ev::Check { publication, which } => {
                let available = self.swarm_complete(publication);
                let p = &mut self.publications[publication as usize];
                p.checks[which] = Some(CheckResult {
                    available,
                    full_copies: p.online_full,
                });
            }
        }
    }

    fn churn_of(&self, node: u32) -> f64 {
        if self.nodes[node as usize].mirror {
            self.config.mirror_churn
        } else {
            self.config.churn
        }
    }

    /// Length of the session (online or offline) that starts now.
    fn session(&mut self, node: u32, online: bool) -> Duration {
        let churn = self.churn_of(node);
        if churn <= 0.0 {
            return Duration::from_secs(10 * 365 * 86_400);
        }
        let offline = self.config.mean_offline;
        let mean = if online {
            offline.mul_f64((1.0 - churn) / churn)
        } else {
            offline
        };
        let u: f64 = self.rng.random_range(f64::EPSILON..1.0);
        mean.mul_f64(-u.ln())
    }

    /// A publisher (a random online ordinary node) publishes; with push it starts asking peers, without it
    /// announces at once. It leaves for good after `publisher_online`.
    fn publish(&mut self, plan: u32) {
        let Some(publisher) = self.random_node(|n| n.online && !n.mirror && !n.retired) else {
            return;
        };
        let index = self.publications.len() as u32;
        let (size, viewers) = self.plan[plan as usize];
        let pieces = size.div_ceil(MIN_PIECE_BYTES).clamp(1, MAX_PIECES);
        let mut infohash = [0u8; 20];
        infohash[..4].copy_from_slice(&index.to_le_bytes());
        infohash[4..12].copy_from_slice(&self.config.seed.to_le_bytes());
        let now = self.now();
        self.publications.push(Publication {
            infohash: InfoHash(infohash),
            size,
            pieces: pieces as u32,
            piece_bytes: size.div_ceil(pieces),
            publisher,
            published_at: now,
            announced: None,
            holders: Vec::new(),
            avail: [0; MAX_PIECES as usize],
            online_full: 0,
            push: None,
            first_replica_at: None,
            checks: [None; 2],
            viewers,
        });
        let full = self.publications[index as usize].full_mask();
        self.add_pieces(publisher, index, full);
        let unix = self.unix();
        self.nodes[publisher as usize]
            .policy
            .held(InfoHash(infohash), size, true, unix);
        self.queue.push(
            now + self.config.publisher_online,
            Ev::PublisherLeaves { publication: index },
        );
        for (which, age) in self.config.checks.iter().enumerate() {
            self.queue.push(
                now + *age,
                Ev::Check {
                    publication: index,
                    which,
                },
            );
        }
        if !self.config.variant.push {
            self.announce(index, Announced::AtOnce);
            return;
        }
        let mut push = PublisherPush::new(self.config.push.clone(), InfoHash(infohash), unix);
        let mut peers = BTreeSet::new();
        for _ in 0..self.config.publisher_peers * 4 {
            if peers.len() >= self.config.publisher_peers {
                break;
            }
            if let Some(peer) = self.random_node(|n| n.online && !n.retired)
                && peer != publisher
            {
                peers.insert(peer);
            }
        }
        let ids: Vec<NodeId> = peers.iter().map(|p| node_id(*p)).collect();
        push.peers_available(&ids, unix);
        self.publications[index as usize].push = Some(push);
        self.drive_push(index);
    }

    /// Carries out what the publisher's push machine says, and schedules its next tick.
    fn drive_push(&mut self, publication: u32) {
        let now = self.now();
        loop {
            let Some(push) = &mut self.publications[publication as usize].push else {
                return;
            };
            let Some(action) = push.poll() else {
                break;
            };
            match action {
                PushAction::AskReplicate(peer) => {
                    let peer = node_index(&peer);
                    self.stats.asks += 1;
                    let at = now + self.latency();
                    self.queue.push(at, Ev::AskArrives { publication, peer });
                }
                PushAction::Announce => {
                    let confirmed = push.full_replicas() > 0;
                    let how = if confirmed {
                        Announced::Confirmed
                    } else {
                        Announced::Timeout
                    };
                    self.announce(publication, how);
                }
                PushAction::Done => {
                    self.publications[publication as usize].push = None;
                    return;
                }
            }
        }
        if let Some(next) = self.publications[publication as usize]
            .push
            .as_ref()
            .and_then(|p| p.next_timeout())
        {
            let at = Duration::from_secs(next.saturating_sub(UNIX_BASE)).max(now);
            self.queue.push(at, Ev::PushTick { publication });
        }
    }

    /// A peer gets the publisher's request: it replicates if the publication fits its quota.
    fn asked(&mut self, publication: u32, peer: u32) {
        let n = &self.nodes[peer as usize];
        if !n.online {
            return; // The ask times out at the publisher.
        }
        let p = &self.publications[publication as usize];
        let (ih, size) = (p.infohash, p.size);
        let has = n.downloads.contains_key(&publication) || n.pieces.contains_key(&publication);
        let reply = if size <= n.policy.config().quota_bytes && !has {
            let now = self.unix();
            self.nodes[peer as usize]
                .policy
                .fetch_started(ih, size, now);
            self.start_download(peer, publication, true);
            self.apply_policy(peer);
            Reply::Accepted
        } else {
            Reply::Refused
        };
        self.reply(publication, peer, reply);
    }

    /// Sends a reply from `peer` to the publisher.
    pub(super) fn reply(&mut self, publication: u32, peer: u32, reply: Reply) {
        let at = self.now() + self.latency();
        self.queue.push(
            at,
            Ev::Reply {
                publication,
                peer,
                reply,
            },
        );
    }

    fn replied(&mut self, publication: u32, peer: u32, reply: Reply) {
        let now = self.unix();
        let id = node_id(peer);
        let Some(push) = &mut self.publications[publication as usize].push else {
            return;
        };
        match reply {
            Reply::Accepted => push.replica_progress(&id, false, now),
            Reply::Complete => push.replica_progress(&id, true, now),
            Reply::Refused => push.refused(&id, now),
            Reply::Gone => push.peer_gone(&id, now),
        }
        self.drive_push(publication);
    }

    /// The record goes public: every mirror learns it as a candidate, viewers start coming.
    fn announce(&mut self, publication: u32, how: Announced) {
        let now = self.now();
        self.announced.push(publication);
        let p = &mut self.publications[publication as usize];
        p.announced = Some((now, how));
        let (infohash, size, created) = (p.infohash, p.size, UNIX_BASE + p.published_at.as_secs());
        let online_full = p.online_full;
        for node in 0..self.nodes.len() as u32 {
            if !self.nodes[node as usize].mirror {
                continue;
            }
            let followed = self.rng.random_bool(self.config.follow_share);
            let holders = self.holders_seen(node, publication, online_full);
            let n = &mut self.nodes[node as usize];
            n.reported_holders.insert(publication, holders);
            n.policy.offer(Candidate {
                infohash,
                size,
                created,
                followed,
                holders,
            });
            if n.online {
                self.apply_policy(node);
            }
        }
        let viewers = self.publications[publication as usize].viewers;
        for _ in 0..viewers {
            let u: f64 = self.rng.random_range(f64::EPSILON..1.0);
            let delay = self.config.mean_watch_delay.mul_f64(-u.ln());
            self.queue.push(now + delay, Ev::Watch { publication });
        }
    }

    /// A random online ordinary node that does not have the publication starts watching it.
    fn watch(&mut self, publication: u32) {
        let Some(viewer) = self.random_node(|n| {
            n.online
                && !n.mirror
                && !n.retired
                && !n.downloads.contains_key(&publication)
                && !n.pieces.contains_key(&publication)
        }) else {
            return;
        };
        let p = &self.publications[publication as usize];
        let (ih, size) = (p.infohash, p.size);
        let now = self.unix();
        self.stats.watches += 1;
        let policy = &mut self.nodes[viewer as usize].policy;
        policy.fetch_started(ih, size, now);
        policy.requested(&ih, now);
        self.start_download(viewer, publication, false);
        self.apply_policy(viewer);
    }

    /// A mirror refreshes the holder counts of announced publications and lets its policy act.
    fn mirror_tick(&mut self, node: u32) {
        if !self.nodes[node as usize].online {
            return;
        }
        for i in 0..self.announced.len() {
            let publication = self.announced[i];
            let online_full = self.publications[publication as usize].online_full;
            let holders = self.holders_seen(node, publication, online_full);
            let n = &mut self.nodes[node as usize];
            if n.reported_holders.get(&publication) != Some(&holders) {
                n.reported_holders.insert(publication, holders);
                let ih = self.publications[publication as usize].infohash;
                n.policy.set_holders(&ih, holders);
            }
        }
        self.apply_policy(node);
    }

    /// Carries out the node's cache policy: deletes what it evicts, starts what it fetches. Like a node that
    /// sees its peers' bitfields on joining a swarm, a fetch of a publication some piece of which no online
    /// node holds fails at once (and the policy backs off) instead of downloading what it can and stalling.
    pub(super) fn apply_policy(&mut self, node: u32) {
        let now = self.unix();
        for _ in 0..16 {
            let actions = self.nodes[node as usize].policy.next_actions(now);
            let mut failed_at_once = false;
            for action in actions {
                match action {
                    CacheAction::Evict(ih) => {
                        self.stats.evictions += 1;
                        self.remove_pieces(node, publication_index(&ih));
                    }
                    CacheAction::Fetch(ih) => {
                        self.stats.mirror_fetches += 1;
                        let publication = publication_index(&ih);
                        if self.swarm_complete(publication) {
                            self.start_download(node, publication, false);
                        } else {
                            self.stats.failed_fetches += 1;
                            let policy = &mut self.nodes[node as usize].policy;
                            policy.fetch_finished(&ih, false, now);
                            failed_at_once = true;
                        }
                    }
                }
            }
            if !failed_at_once {
                break;
            }
        }
    }

    /// Whether every piece is on some online node.
    pub(super) fn swarm_complete(&self, publication: u32) -> bool {
        let p = &self.publications[publication as usize];
        (0..p.pieces).all(|i| p.avail[i as usize] > 0)
    }

    /// Whether the node is online and holds every piece.
    /// The other full copies a mirror counts: all online ones, or (proven holders, as the node) none unless it holds
    /// the publication itself and can check their claims.
    fn holders_seen(&self, node: u32, publication: u32, online_full: u32) -> u32 {
        let holds = self.holds_full_online(node, publication);
        if self.config.proven_holders && !holds {
            return 0;
        }
        online_full - u32::from(holds)
    }

    pub(super) fn holds_full_online(&self, node: u32, publication: u32) -> bool {
        let n = &self.nodes[node as usize];
        let full = self.publications[publication as usize].full_mask();
        n.online && n.pieces.get(&publication) == Some(&full)
    }

    /// A uniformly random node matching `filter` (rejection sampling, then a scan).
    fn random_node(&mut self, filter: impl Fn(&Node) -> bool) -> Option<u32> {
        let count = self.nodes.len() as u32;
        for _ in 0..64 {
            let node = self.rng.random_range(0..count);
            if filter(&self.nodes[node as usize]) {
                return Some(node);
            }
        }
        let matching: Vec<u32> = (0..count)
            .filter(|n| filter(&self.nodes[*n as usize]))
            .collect();
        (!matching.is_empty()).then(|| matching[self.rng.random_range(0..matching.len())])
    }

    /// One-way latency of a message.
    pub(super) fn latency(&mut self) -> Duration {
        let (lo, hi) = (self.config.latency_min, self.config.latency_max);
        lo + (hi - lo).mul_f64(self.rng.random::<f64>())
    }
}

/// The simulated node id of node `index`.
fn node_id(index: u32) -> NodeId {
    let mut bytes = [0u8; 32];
    bytes[..4].copy_from_slice(&index.to_le_bytes());
    NodeId::from_bytes(bytes)
}

fn node_index(id: &NodeId) -> u32 {
    let b = id.as_bytes();
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn publication_index(ih: &InfoHash) -> u32 {
    u32::from_le_bytes([ih.0[0], ih.0[1], ih.0[2], ih.0[3]])
}
