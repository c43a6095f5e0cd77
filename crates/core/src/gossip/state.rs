//! The [`Gossip`] state machine: connected peers, recently seen records, outstanding requests and
//! reconciliation sessions.

use std::collections::BTreeMap;
use std::time::Duration;

use rand_core::RngCore;

use super::recent::RecentSet;
use super::{Action, Event, GossipConfig, GossipConfigError, MAX_ALTERNATES, Via};
use crate::record::RecordId;

/// A record requested after an announcement, waiting to arrive.
#[derive(Clone, Debug)]
struct Pending<P> {
    /// The peer asked last.
    asked: P,
    /// When to give up on it and ask the next alternate.
    deadline: Duration,
    /// Other peers that announced it, asked in turn.
    alternates: Vec<P>,
    /// Peers asked before (they announced it too, so they hold it). At most `MAX_ALTERNATES`.
    tried: Vec<P>,
}

/// How much state the machine holds, for status reports and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GossipCounts {
    /// Connected peers.
    pub peers: usize,
    /// Record ids remembered as seen.
    pub seen: usize,
    /// Requests waiting for their record.
    pub pending: usize,
    /// Reconciliation sessions started and not ended.
    pub reconciling: usize,
}

/// The propagation policy state machine; see the [module documentation](super).
#[derive(Clone, Debug)]
pub struct Gossip<P: Ord + Clone, R: RngCore> {
    config: GossipConfig,
    rng: R,
    peers: BTreeMap<P, ()>,
    seen: RecentSet<RecordId>,
    pending: BTreeMap<RecordId, Pending<P>>,
    /// Sessions we started, with their start time.
    reconciling: BTreeMap<P, Duration>,
    /// When the periodic reconciliation runs next; `None` until the first peer connects.
    next_reconcile: Option<Duration>,
    /// The wake-up time last handed to the driver.
    scheduled: Option<Duration>,
}

impl<P: Ord + Clone, R: RngCore> Gossip<P, R> {
    /// A node with no peers. `rng` draws the peers to push to and reconcile with, and the timer jitter.
    pub fn new(config: GossipConfig, rng: R) -> Result<Self, GossipConfigError> {
        config.validate()?;
        Ok(Gossip {
            seen: RecentSet::new(config.seen_capacity),
            config,
            rng,
            peers: BTreeMap::new(),
            pending: BTreeMap::new(),
            reconciling: BTreeMap::new(),
            next_reconcile: None,
            scheduled: None,
        })
    }

    /// The parameters in force.
    pub fn config(&self) -> &GossipConfig {
        &self.config
    }

    /// Sizes of the state.
    pub fn counts(&self) -> GossipCounts {
        GossipCounts {
            peers: self.peers.len(),
            seen: self.seen.len(),
            pending: self.pending.len(),
            reconciling: self.reconciling.len(),
        }
    }

    /// Whether `id` was seen recently (published, received, or being requested).
    pub fn has_seen(&self, id: &RecordId) -> bool {
        self.seen.contains(id) || self.pending.contains_key(id)
    }

    /// Whether a session we started with `peer` is running.
    pub fn is_reconciling(&self, peer: &P) -> bool {
        self.reconciling.contains_key(peer)
    }

    /// The connected peers.
    pub fn peers(&self) -> impl Iterator<Item = &P> {
        self.peers.keys()
    }

    /// When the machine next needs an [`Event::Tick`], if ever.
    pub fn poll_timeout(&self) -> Option<Duration> {
        let pending = self.pending.values().map(|p| p.deadline).min();
        let sessions = self
            .reconciling
            .values()
            .map(|started| started.saturating_add(self.config.reconcile_timeout))
            .min();
        [self.next_reconcile, pending, sessions]
            .into_iter()
            .flatten()
            .min()
    }

    /// Takes one event at time `now` and returns what to do.
    pub fn handle(&mut self, event: Event<P>, now: Duration) -> Vec<Action<P>> {
        let mut actions = Vec::new();
        match event {
            Event::PeerUp { peer, outbound } => self.peer_up(peer, outbound, now, &mut actions),
            Event::PeerDown { peer } => self.peer_down(&peer, now, &mut actions),
            Event::Published { id } => {
                if self.seen.insert(id) {
                    // No peer can hold a record just published: everyone chosen gets it whole.
                    let fanout = self.config.eager_fanout + self.config.announce_fanout;
                    self.forward(id, &[], fanout, &mut actions);
                }
            }
            Event::Received { from, id, via } => self.received(from, id, via, &mut actions),
            Event::Announced { from, id } => self.announced(from, id, now, &mut actions),
            Event::ReconcileEnded { peer } => {
                self.reconciling.remove(&peer);
            }
            Event::Tick => self.tick(now, &mut actions),
        }
        let wakeup = self.poll_timeout();
        if wakeup != self.scheduled {
            self.scheduled = wakeup;
            if let Some(at) = wakeup {
                actions.push(Action::ScheduleTimer { at });
            }
        }
        actions
    }

    fn peer_up(&mut self, peer: P, outbound: bool, now: Duration, actions: &mut Vec<Action<P>>) {
        if self.peers.contains_key(&peer) || self.peers.len() >= self.config.max_peers {
            return;
        }
        self.peers.insert(peer.clone(), ());
        if self.next_reconcile.is_none() {
            self.next_reconcile = Some(now + self.jittered_interval());
        }
        if outbound && self.config.reconcile_on_connect {
            self.start_reconcile(peer, now, actions);
        }
    }

    fn peer_down(&mut self, peer: &P, now: Duration, actions: &mut Vec<Action<P>>) {
        if self.peers.remove(peer).is_none() {
            return;
        }
        self.reconciling.remove(peer);
        // Requests sent to this peer will not be answered: ask an alternate now.
        let mut orphaned = Vec::new();
        for (id, pending) in self.pending.iter_mut() {
            pending.alternates.retain(|p| p != peer);
            pending.tried.retain(|p| p != peer);
            if pending.asked == *peer {
                orphaned.push(*id);
            }
        }
        for id in orphaned {
            self.ask_next(id, now, actions);
        }
        if self.peers.is_empty() {
            self.next_reconcile = None;
        }
    }

    fn received(&mut self, from: P, id: RecordId, via: Via, actions: &mut Vec<Action<P>>) {
        // Peers that announced it hold it already: no need to push it to them.
        let holders: Vec<P> = match self.pending.remove(&id) {
            Some(pending) => std::iter::once(pending.asked)
                .chain(pending.alternates)
                .chain(pending.tried)
                .chain(std::iter::once(from))
                .collect(),
            None => vec![from],
        };
        if !self.seen.insert(id) {
            return;
        }
        let forward = match via {
            Via::Push => true,
            Via::Reconcile { age } => age <= self.config.push_max_age,
        };
        if forward {
            self.forward(id, &holders, self.config.eager_fanout, actions);
        }
    }

    fn announced(&mut self, from: P, id: RecordId, now: Duration, actions: &mut Vec<Action<P>>) {
        if self.seen.contains(&id) || !self.peers.contains_key(&from) {
            return;
        }
        if let Some(pending) = self.pending.get_mut(&id) {
            if pending.asked != from
                && !pending.alternates.contains(&from)
                && !pending.tried.contains(&from)
                && pending.alternates.len() + pending.tried.len() < MAX_ALTERNATES
            {
                pending.alternates.push(from);
            }
            return;
        }
        if self.pending.len() >= self.config.max_pending {
            // Left to reconciliation.
            return;
        }
        self.pending.insert(
            id,
            Pending {
                asked: from.clone(),
                deadline: now + self.config.request_timeout,
                alternates: Vec::new(),
                tried: Vec::new(),
            },
        );
        actions.push(Action::Request { from, id });
    }

    /// Asks the next alternate for `id`, or forgets the request when none is left.
    fn ask_next(&mut self, id: RecordId, now: Duration, actions: &mut Vec<Action<P>>) {
        let Some(pending) = self.pending.get_mut(&id) else {
            return;
        };
        if pending.alternates.is_empty() {
            self.pending.remove(&id);
            return;
        }
        let next = pending.alternates.remove(0);
        let previous = std::mem::replace(&mut pending.asked, next.clone());
        pending.tried.push(previous);
        pending.deadline = now + self.config.request_timeout;
        actions.push(Action::Request { from: next, id });
    }

    fn tick(&mut self, now: Duration, actions: &mut Vec<Action<P>>) {
        let timeout = self.config.reconcile_timeout;
        self.reconciling
            .retain(|_, started| started.saturating_add(timeout) > now);

        let expired: Vec<RecordId> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            self.ask_next(id, now, actions);
        }

        if let Some(at) = self.next_reconcile
            && at <= now
        {
            self.next_reconcile = Some(now + self.jittered_interval());
            let idle: Vec<P> = self
                .peers
                .keys()
                .filter(|p| !self.reconciling.contains_key(*p))
                .cloned()
                .collect();
            if !idle.is_empty() {
                let pick = self.random_below(idle.len());
                let peer = idle[pick].clone();
                self.start_reconcile(peer, now, actions);
            }
        }
    }

    fn start_reconcile(&mut self, peer: P, now: Duration, actions: &mut Vec<Action<P>>) {
        if self.reconciling.len() >= self.config.max_reconciles
            || self.reconciling.contains_key(&peer)
        {
            return;
        }
        self.reconciling.insert(peer.clone(), now);
        actions.push(Action::StartReconcile { peer });
    }

    /// Sends `id` whole to `eager` random peers and announces it to more, `eager_fanout + announce_fanout` in
    /// all, skipping `holders`.
    fn forward(&mut self, id: RecordId, holders: &[P], eager: usize, actions: &mut Vec<Action<P>>) {
        let mut targets: Vec<P> = self
            .peers
            .keys()
            .filter(|p| !holders.contains(p))
            .cloned()
            .collect();
        let wanted = (self.config.eager_fanout + self.config.announce_fanout).min(targets.len());
        // Partial Fisher-Yates: the first `wanted` entries become a uniform random sample.
        for i in 0..wanted {
            let j = i + self.random_below(targets.len() - i);
            targets.swap(i, j);
        }
        for (rank, to) in targets.into_iter().take(wanted).enumerate() {
            if rank < eager {
                actions.push(Action::SendRecord { to, id });
            } else {
                actions.push(Action::Announce { to, id });
            }
        }
    }

    /// A uniform draw from `0..n` (`n > 0`), by the multiply-shift method (bias below 2^-32 for the small `n`
    /// used here).
    fn random_below(&mut self, n: usize) -> usize {
        ((u128::from(self.rng.next_u64()) * n as u128) >> 64) as usize
    }

    /// The reconcile interval scaled by a uniform factor in [0.5, 1.5), so that nodes do not synchronise.
    fn jittered_interval(&mut self) -> Duration {
        let unit = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        self.config.reconcile_interval.mul_f64(0.5 + unit)
    }
}
