//! The [`RecordPolicy`] state machine: connected peers, recently seen and refused records, held-back
//! publications, outstanding requests and reconciliation sessions.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand_core::RngCore;

use super::recent::RecentSet;
use super::{
    InEvent, MAX_ALTERNATES, MAX_SERVE_IDS, Misbehaviour, OutEvent, PolicyConfig,
    PolicyConfigError, Verdict,
};
use crate::record::RecordId;

/// A record requested (announced by a peer, or found missing by reconciliation), waiting to arrive.
#[derive(Clone, Debug)]
struct Pending<P> {
    /// The peer asked last.
    asked: P,
    /// When to give up on it and ask the next alternate.
    deadline: Duration,
    /// Other peers that hold it, asked in turn.
    alternates: Vec<P>,
    /// Peers asked before (they hold it too). At most `MAX_ALTERNATES`.
    tried: Vec<P>,
}

/// What the policy keeps per connected peer.
#[derive(Clone, Debug, Default)]
struct PeerState {
    /// Invalid records it sent on this connection.
    bad_records: u32,
}

/// How much state the machine holds, for status reports and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PolicyCounts {
    /// Connected peers.
    pub peers: usize,
    /// Record ids remembered as seen.
    pub seen: usize,
    /// Record ids remembered as refused or invalid.
    pub refused: usize,
    /// Publications held back.
    pub held_back: usize,
    /// Requests waiting for their record.
    pub pending: usize,
    /// Reconciliation sessions started and not ended.
    pub reconciling: usize,
}

/// The record policy state machine; see the [module documentation](super).
#[derive(Clone, Debug)]
pub struct RecordPolicy<P: Ord + Clone, R: RngCore> {
    config: PolicyConfig,
    rng: R,
    peers: BTreeMap<P, PeerState>,
    seen: RecentSet<RecordId>,
    refused: RecentSet<RecordId>,
    /// Local publications waiting for a replica. Only local publishing adds to it.
    held_back: BTreeSet<RecordId>,
    pending: BTreeMap<RecordId, Pending<P>>,
    /// Sessions we started, with their start time.
    reconciling: BTreeMap<P, Duration>,
    /// When the periodic reconciliation runs next; `None` until the first peer connects.
    next_reconcile: Option<Duration>,
    /// The wake-up time last handed to the driver.
    scheduled: Option<Duration>,
}

impl<P: Ord + Clone, R: RngCore> RecordPolicy<P, R> {
    /// A node with no peers. `rng` draws the peers to push to and reconcile with, and the timer jitter.
    pub fn new(config: PolicyConfig, rng: R) -> Result<Self, PolicyConfigError> {
        config.validate()?;
        Ok(RecordPolicy {
            seen: RecentSet::new(config.seen_capacity),
            refused: RecentSet::new(config.refused_capacity),
            config,
            rng,
            peers: BTreeMap::new(),
            held_back: BTreeSet::new(),
            pending: BTreeMap::new(),
            reconciling: BTreeMap::new(),
            next_reconcile: None,
            scheduled: None,
        })
    }

    /// The parameters in force.
    pub fn config(&self) -> &PolicyConfig {
        &self.config
    }

    /// Sizes of the state.
    pub fn counts(&self) -> PolicyCounts {
        PolicyCounts {
            peers: self.peers.len(),
            seen: self.seen.len(),
            refused: self.refused.len(),
            held_back: self.held_back.len(),
            pending: self.pending.len(),
            reconciling: self.reconciling.len(),
        }
    }

    /// Whether `id` was seen recently (published, received, or being requested).
    pub fn has_seen(&self, id: &RecordId) -> bool {
        self.seen.contains(id) || self.pending.contains_key(id)
    }

    /// Whether `id` was refused or invalid recently (it is not fetched again).
    pub fn was_refused(&self, id: &RecordId) -> bool {
        self.refused.contains(id)
    }

    /// Whether `id` is a publication of ours that must not be known yet: the driver leaves it out of what it
    /// offers to reconciliation and of anything it sends.
    pub fn is_held_back(&self, id: &RecordId) -> bool {
        self.held_back.contains(id)
    }

    /// The held-back publications.
    pub fn held_back(&self) -> impl Iterator<Item = &RecordId> {
        self.held_back.iter()
    }

    /// Whether a session we started with `peer` is running.
    pub fn is_reconciling(&self, peer: &P) -> bool {
        self.reconciling.contains_key(peer)
    }

    /// The connected peers.
    pub fn peers(&self) -> impl Iterator<Item = &P> {
        self.peers.keys()
    }

    /// When the machine next needs an [`InEvent::Tick`], if ever.
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
    pub fn handle(&mut self, event: InEvent<P>, now: Duration) -> Vec<OutEvent<P>> {
        let mut out = Vec::new();
        match event {
            InEvent::PeerUp { peer, outbound } => self.peer_up(peer, outbound, now, &mut out),
            InEvent::PeerDown { peer } => self.peer_down(&peer, now, &mut out),
            InEvent::Published { id, hold_back } => {
                if hold_back {
                    self.seen.insert(id);
                    self.pending.remove(&id);
                    self.held_back.insert(id);
                } else if self.seen.insert(id) {
                    self.forward_new(id, &mut out);
                }
            }
            InEvent::Released { id } => {
                if self.held_back.remove(&id) {
                    self.seen.insert(id);
                    self.forward_new(id, &mut out);
                }
            }
            InEvent::Received {
                from,
                id,
                age,
                verdict,
            } => self.received(from, id, age, verdict, &mut out),
            InEvent::Announced { from, id } => self.want(from, id, now, false, &mut out),
            InEvent::Requested { from, ids } => self.serve(from, ids, &mut out),
            InEvent::Reconciled { peer, have, need } => {
                self.reconciled(peer, have, need, now, &mut out)
            }
            InEvent::ReconcileEnded { peer } => {
                self.reconciling.remove(&peer);
            }
            InEvent::Tick => self.tick(now, &mut out),
        }
        let wakeup = self.poll_timeout();
        if wakeup != self.scheduled {
            self.scheduled = wakeup;
            if let Some(at) = wakeup {
                out.push(OutEvent::ScheduleTimer { at });
            }
        }
        out
    }

    fn peer_up(&mut self, peer: P, outbound: bool, now: Duration, out: &mut Vec<OutEvent<P>>) {
        if self.peers.contains_key(&peer) || self.peers.len() >= self.config.max_peers {
            return;
        }
        self.peers.insert(peer.clone(), PeerState::default());
        if self.next_reconcile.is_none() {
            self.next_reconcile = Some(now + self.jittered_interval());
        }
        if outbound && self.config.reconcile_on_connect {
            self.start_reconcile(peer, now, out);
        }
    }

    fn peer_down(&mut self, peer: &P, now: Duration, out: &mut Vec<OutEvent<P>>) {
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
            self.ask_next(id, now, out);
        }
        if self.peers.is_empty() {
            self.next_reconcile = None;
        }
    }

    fn received(
        &mut self,
        from: P,
        id: RecordId,
        age: Duration,
        verdict: Verdict,
        out: &mut Vec<OutEvent<P>>,
    ) {
        // Peers that announced it hold it already: no need to push it to them.
        let holders: Vec<P> = match self.pending.remove(&id) {
            Some(pending) => std::iter::once(pending.asked)
                .chain(pending.alternates)
                .chain(pending.tried)
                .chain(std::iter::once(from.clone()))
                .collect(),
            None => vec![from.clone()],
        };
        match verdict {
            Verdict::Stored => {
                if self.seen.insert(id)
                    && age <= self.config.relay_max_age
                    && !self.held_back.contains(&id)
                {
                    self.forward(id, &holders, self.config.eager_fanout, out);
                }
            }
            Verdict::Duplicate => {
                self.seen.insert(id);
            }
            Verdict::Refused => {
                self.refused.insert(id);
            }
            // A local failure: nothing is remembered (its request is over, above), so it is wanted again.
            Verdict::Unchecked => {}
            Verdict::Invalid => {
                self.refused.insert(id);
                let limit = self.config.max_bad_records;
                if let Some(state) = self.peers.get_mut(&from) {
                    state.bad_records = state.bad_records.saturating_add(1);
                    // Asked once, when the count first passes the limit; the driver closes the connection.
                    if state.bad_records == limit.saturating_add(1) {
                        out.push(OutEvent::Disconnect {
                            peer: from,
                            reason: Misbehaviour::InvalidRecords(state.bad_records),
                        });
                    }
                }
            }
        }
    }

    /// `from` holds `id` (it announced it, or reconciliation says so): request it unless it is known here,
    /// refused, or already on its way (then `from` becomes an alternate). When the request table is full, an
    /// announcement is left to the next reconciliation, while a reconciliation's need (`untracked_if_full`) is
    /// requested anyway, without a time-out: a node catching up on a large catalog is not throttled to
    /// `max_pending` records per session, and memory stays bounded.
    fn want(
        &mut self,
        from: P,
        id: RecordId,
        now: Duration,
        untracked_if_full: bool,
        out: &mut Vec<OutEvent<P>>,
    ) {
        if self.seen.contains(&id)
            || self.refused.contains(&id)
            || self.held_back.contains(&id)
            || !self.peers.contains_key(&from)
        {
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
            if untracked_if_full {
                out.push(OutEvent::Request { from, id });
            }
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
        out.push(OutEvent::Request { from, id });
    }

    fn serve(&mut self, from: P, ids: Vec<RecordId>, out: &mut Vec<OutEvent<P>>) {
        if !self.peers.contains_key(&from) {
            return;
        }
        let mut unique = BTreeSet::new();
        let ids: Vec<RecordId> = ids
            .into_iter()
            .filter(|id| !self.held_back.contains(id) && unique.insert(*id))
            .take(MAX_SERVE_IDS)
            .collect();
        if !ids.is_empty() {
            out.push(OutEvent::SendRecords { to: from, ids });
        }
    }

    fn reconciled(
        &mut self,
        peer: P,
        have: Vec<RecordId>,
        need: Vec<RecordId>,
        now: Duration,
        out: &mut Vec<OutEvent<P>>,
    ) {
        if !self.peers.contains_key(&peer) {
            return;
        }
        // What the peer lacks is offered by id rather than sent whole: it may be fetching some of it from
        // elsewhere already, and it asks for the rest.
        let mut unique = BTreeSet::new();
        for id in have
            .into_iter()
            .filter(|id| !self.held_back.contains(id) && unique.insert(*id))
        {
            out.push(OutEvent::Announce {
                to: peer.clone(),
                id,
            });
        }
        let mut unique = BTreeSet::new();
        for id in need.into_iter().filter(|id| unique.insert(*id)) {
            self.want(peer.clone(), id, now, true, out);
        }
    }

    /// Asks the next alternate for `id`, or forgets the request when none is left.
    fn ask_next(&mut self, id: RecordId, now: Duration, out: &mut Vec<OutEvent<P>>) {
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
        out.push(OutEvent::Request { from: next, id });
    }

    fn tick(&mut self, now: Duration, out: &mut Vec<OutEvent<P>>) {
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
            self.ask_next(id, now, out);
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
                self.start_reconcile(peer, now, out);
            }
        }
    }

    fn start_reconcile(&mut self, peer: P, now: Duration, out: &mut Vec<OutEvent<P>>) {
        if self.reconciling.len() >= self.config.max_reconciles
            || self.reconciling.contains_key(&peer)
        {
            return;
        }
        self.reconciling.insert(peer.clone(), now);
        out.push(OutEvent::StartReconcile { peer });
    }

    /// A record nobody can hold yet (published or released here): everyone chosen gets it whole.
    fn forward_new(&mut self, id: RecordId, out: &mut Vec<OutEvent<P>>) {
        let fanout = self.config.eager_fanout + self.config.announce_fanout;
        self.forward(id, &[], fanout, out);
    }

    /// Sends `id` whole to `eager` random peers and announces it to more, `eager_fanout + announce_fanout` in
    /// all, skipping `holders`.
    fn forward(&mut self, id: RecordId, holders: &[P], eager: usize, out: &mut Vec<OutEvent<P>>) {
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
                out.push(OutEvent::SendRecord { to, id });
            } else {
                out.push(OutEvent::Announce { to, id });
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
