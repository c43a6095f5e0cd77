//! The [`Stem`] state machine: this epoch's relays, and per source its role and route, and the items on their way
//! through here.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand_core::RngCore;

use super::{FAILSAFE_DRAW_CAP, StemAction, StemConfig, StemConfigError, StemEvent};
use crate::policy::recent::RecentSet;

/// What a node does this epoch with the stems of one inbound peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Passes them on to a relay.
    Relay,
    /// Ends them: fluffs what it receives from that peer in stem. (Its own publications always go to a relay.)
    Diffuser,
}

/// Where an item came from: the routing key of one-to-one routing. This node's own publications are one
/// source among the others, routed exactly like an inbound peer.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Source<P> {
    Own,
    Peer(P),
}

#[derive(Clone, Debug)]
enum Phase<P> {
    /// Fetching the data from the previous hop (only items from a peer).
    Fetching,
    /// The data is complete here, but there is no relay to pass it to yet.
    Waiting,
    /// Passed to `to`; fluffed here at `deadline` unless seen in fluff first. `handed_over` once `to` has
    /// fetched every piece.
    Forwarded {
        to: P,
        deadline: Duration,
        handed_over: bool,
    },
}

#[derive(Clone, Debug)]
struct Item<P> {
    source: Source<P>,
    bytes: u64,
    phase: Phase<P>,
}

/// How much state the machine holds, for status reports and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StemCounts {
    /// Outbound peers known.
    pub peers: usize,
    /// Relays of this epoch.
    pub relays: usize,
    /// Items in progress.
    pub items: usize,
    /// Sources routed this epoch.
    pub routes: usize,
    /// Finished ids remembered.
    pub done: usize,
}

/// The stem-phase state machine of one node; see the [module documentation](super).
#[derive(Clone, Debug)]
pub struct Stem<P: Ord + Clone, I: Ord + Clone, R: RngCore> {
    config: StemConfig,
    rng: R,
    /// Outbound peers that may be picked as relays.
    peers: BTreeSet<P>,
    /// When this epoch ends; `None` before the first event.
    epoch_end: Option<Duration>,
    /// The role drawn for each source this epoch (its first stem draws it; our own is always `Relay`).
    roles: BTreeMap<Source<P>, Role>,
    relays: Vec<P>,
    routes: BTreeMap<Source<P>, P>,
    items: BTreeMap<I, Item<P>>,
    done: RecentSet<I>,
    /// The wake-up time last handed to the driver.
    scheduled: Option<Duration>,
}

impl<P: Ord + Clone, I: Ord + Clone, R: RngCore> Stem<P, I, R> {
    /// A node with no peers; its first epoch starts at the first event.
    pub fn new(config: StemConfig, rng: R) -> Result<Self, StemConfigError> {
        config.validate()?;
        Ok(Stem {
            done: RecentSet::new(config.done_capacity),
            config,
            rng,
            peers: BTreeSet::new(),
            epoch_end: None,
            roles: BTreeMap::new(),
            relays: Vec::new(),
            routes: BTreeMap::new(),
            items: BTreeMap::new(),
            scheduled: None,
        })
    }

    /// The parameters in force.
    pub fn config(&self) -> &StemConfig {
        &self.config
    }

    /// The role drawn this epoch for stems from `peer`, if it sent one.
    pub fn role_for(&self, peer: &P) -> Option<Role> {
        self.roles.get(&Source::Peer(peer.clone())).copied()
    }

    /// This epoch's relays.
    pub fn relays(&self) -> &[P] {
        &self.relays
    }

    /// When this epoch ends (`None` before the first event).
    pub fn epoch_end(&self) -> Option<Duration> {
        self.epoch_end
    }

    /// Whether `id` is in progress here.
    pub fn is_in_progress(&self, id: &I) -> bool {
        self.items.contains_key(id)
    }

    /// The relay `id` was passed to, while its stem is in progress here (the one peer that may fetch it from
    /// us before it is fluffed).
    pub fn forwarded_to(&self, id: &I) -> Option<&P> {
        match &self.items.get(id)?.phase {
            Phase::Forwarded { to, .. } => Some(to),
            _ => None,
        }
    }

    /// Sizes of the state.
    pub fn counts(&self) -> StemCounts {
        StemCounts {
            peers: self.peers.len(),
            relays: self.relays.len(),
            items: self.items.len(),
            routes: self.routes.len(),
            done: self.done.len(),
        }
    }

    /// When the machine next needs a [`StemEvent::Tick`]: the end of the epoch or the first fail-safe.
    pub fn poll_timeout(&self) -> Option<Duration> {
        let deadlines = self.items.values().filter_map(|item| match item.phase {
            Phase::Forwarded { deadline, .. } => Some(deadline),
            _ => None,
        });
        deadlines.chain(self.epoch_end).min()
    }

    /// Takes one event at time `now` and returns what to do.
    pub fn handle(&mut self, event: StemEvent<P, I>, now: Duration) -> Vec<StemAction<P, I>> {
        let mut out = Vec::new();
        self.roll_epoch(now, &mut out);
        self.expire(now, &mut out);
        match event {
            StemEvent::PeerUp { peer } => self.peer_up(peer, now, &mut out),
            StemEvent::PeerDown { peer } => self.peer_down(&peer, now, &mut out),
            StemEvent::Originate { id, bytes } => {
                if !self.is_known(&id) {
                    let item = Item {
                        source: Source::Own,
                        bytes,
                        phase: Phase::Waiting,
                    };
                    self.items.insert(id.clone(), item);
                    self.ready(id, now, &mut out);
                }
            }
            StemEvent::StemReceived { from, id, bytes } => {
                // A duplicate (a cycle, or a spy probing) starts nothing: fluffing it at once would tell the
                // prober that this node is on the stem.
                if !self.is_known(&id) && self.items.len() < self.config.max_items {
                    let item = Item {
                        source: Source::Peer(from.clone()),
                        bytes,
                        phase: Phase::Fetching,
                    };
                    self.items.insert(id.clone(), item);
                    out.push(StemAction::Fetch { id, from });
                }
            }
            StemEvent::DataComplete { id } => {
                if let Some(item) = self.items.get_mut(&id)
                    && matches!(item.phase, Phase::Fetching)
                {
                    item.phase = Phase::Waiting;
                    self.ready(id, now, &mut out);
                }
            }
            StemEvent::FetchFailed { id } => {
                // We never held it: forget it, so that another sender may still bring it here.
                if self
                    .items
                    .get(&id)
                    .is_some_and(|item| matches!(item.phase, Phase::Fetching))
                {
                    self.items.remove(&id);
                }
            }
            StemEvent::Fetched { id, by } => {
                if let Some(item) = self.items.get_mut(&id)
                    && let Phase::Forwarded {
                        to, handed_over, ..
                    } = &mut item.phase
                    && *to == by
                {
                    *handed_over = true;
                }
            }
            StemEvent::SeenInFluff { id } => {
                self.items.remove(&id);
                self.done.insert(id);
            }
            StemEvent::Tick => {}
        }
        let wakeup = self.poll_timeout();
        if wakeup != self.scheduled {
            self.scheduled = wakeup;
            if let Some(at) = wakeup {
                out.push(StemAction::ScheduleTimer { at });
            }
        }
        out
    }

    fn is_known(&self, id: &I) -> bool {
        self.items.contains_key(id) || self.done.contains(id)
    }

    /// Starts a new epoch if the current one is over: fresh relays, no roles or routes.
    fn roll_epoch(&mut self, now: Duration, out: &mut Vec<StemAction<P, I>>) {
        if self.epoch_end.is_some_and(|end| now < end) {
            return;
        }
        self.epoch_end = Some(now.saturating_add(self.config.epoch));
        self.roles.clear();
        self.routes.clear();
        self.relays.clear();
        while self.relays.len() < self.config.relays && self.add_random_relay() {}
        self.forward_waiting(now, out);
    }

    /// Adds a random known peer that is not a relay yet; returns whether there was one.
    fn add_random_relay(&mut self) -> bool {
        let candidates: Vec<P> = self
            .peers
            .iter()
            .filter(|p| !self.relays.contains(p))
            .cloned()
            .collect();
        if candidates.is_empty() {
            return false;
        }
        let pick = self.random_below(candidates.len());
        self.relays.push(candidates[pick].clone());
        true
    }

    fn peer_up(&mut self, peer: P, now: Duration, out: &mut Vec<StemAction<P, I>>) {
        if self.peers.contains(&peer) || self.peers.len() >= self.config.max_peers {
            return;
        }
        self.peers.insert(peer.clone());
        // Short of relays (a node that just started, or lost one): take it now rather than wait for the epoch.
        if self.relays.len() < self.config.relays {
            self.relays.push(peer);
            self.forward_waiting(now, out);
        }
    }

    fn peer_down(&mut self, peer: &P, now: Duration, out: &mut Vec<StemAction<P, I>>) {
        self.peers.remove(peer);
        self.routes.remove(&Source::Peer(peer.clone()));
        self.roles.remove(&Source::Peer(peer.clone()));
        // What we were fetching from it will not come.
        self.items.retain(|_, item| {
            !(matches!(item.phase, Phase::Fetching) && item.source == Source::Peer(peer.clone()))
        });
        // What it had not fetched yet goes to another relay (the stem would be cut here otherwise).
        for item in self.items.values_mut() {
            if matches!(&item.phase, Phase::Forwarded { to, handed_over: false, .. } if to == peer)
            {
                item.phase = Phase::Waiting;
            }
        }
        if let Some(pos) = self.relays.iter().position(|r| r == peer) {
            self.relays.remove(pos);
            // Sources mapped to it are mapped afresh at their next item.
            self.routes.retain(|_, to| to != peer);
            self.add_random_relay();
        }
        self.forward_waiting(now, out);
    }

    /// An item whose data is complete here: fluff it (a diffuser, for others' items) or pass it on.
    fn ready(&mut self, id: I, now: Duration, out: &mut Vec<StemAction<P, I>>) {
        let Some(item) = self.items.get(&id) else {
            return;
        };
        let (source, bytes) = (item.source.clone(), item.bytes);
        if self.role_of(&source) == Role::Diffuser {
            self.items.remove(&id);
            self.done.insert(id.clone());
            out.push(StemAction::Fluff { id });
            return;
        }
        let Some(to) = self.route(&source) else {
            // No relay now: it waits (a publication with no peer waits; nothing goes out directly).
            return;
        };
        let deadline = now.saturating_add(self.failsafe_delay(bytes));
        if let Some(item) = self.items.get_mut(&id) {
            item.phase = Phase::Forwarded {
                to: to.clone(),
                deadline,
                handed_over: false,
            };
        }
        out.push(StemAction::SendStem { to, id });
    }

    /// The role for `source` this epoch, drawn at its first item. Our own publications are always relayed, but
    /// draw too, so that the random draws, and with them everything after, are the same as for a peer's item.
    fn role_of(&mut self, source: &Source<P>) -> Role {
        if let Some(role) = self.roles.get(source) {
            return *role;
        }
        let diffuse = self.random_below(1000) < usize::from(self.config.diffuse_per_mille);
        let role = if diffuse && *source != Source::Own {
            Role::Diffuser
        } else {
            Role::Relay
        };
        // Past the cap (ever new identities) the role is drawn for each item without being remembered.
        if self.roles.len() <= self.config.max_peers {
            self.roles.insert(source.clone(), role);
        }
        role
    }

    /// Passes on every item that was waiting for a relay.
    fn forward_waiting(&mut self, now: Duration, out: &mut Vec<StemAction<P, I>>) {
        let waiting: Vec<I> = self
            .items
            .iter()
            .filter(|(_, item)| matches!(item.phase, Phase::Waiting))
            .map(|(id, _)| id.clone())
            .collect();
        for id in waiting {
            self.ready(id, now, out);
        }
    }

    /// The relay `source` maps to this epoch, chosen at its first item: one of the relays with the fewest
    /// sources so far (so sources spread evenly: one-to-one as far as the counts allow), at random among
    /// those, never the peer the item came from while another relay exists.
    fn route(&mut self, source: &Source<P>) -> Option<P> {
        if let Some(to) = self.routes.get(source)
            && self.relays.contains(to)
        {
            return Some(to.clone());
        }
        let usable: Vec<P> = self
            .relays
            .iter()
            .filter(|r| self.relays.len() == 1 || *source != Source::Peer((*r).clone()))
            .cloned()
            .collect();
        let load = |r: &P| self.routes.values().filter(|to| *to == r).count();
        let least = usable.iter().map(load).min()?;
        let candidates: Vec<P> = usable
            .iter()
            .filter(|r| load(r) == least)
            .cloned()
            .collect();
        let to = candidates[self.random_below(candidates.len())].clone();
        // Past the cap (peers sending from ever new identities) a source is routed without being remembered.
        if self.routes.len() <= self.config.max_peers {
            self.routes.insert(source.clone(), to.clone());
        }
        Some(to)
    }

    /// Fluffs every forwarded item whose fail-safe is due.
    fn expire(&mut self, now: Duration, out: &mut Vec<StemAction<P, I>>) {
        let due: Vec<I> = self
            .items
            .iter()
            .filter(|(_, item)| matches!(item.phase, Phase::Forwarded { deadline, .. } if deadline <= now))
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            self.items.remove(&id);
            self.done.insert(id.clone());
            out.push(StemAction::Fluff { id });
        }
    }

    /// The fail-safe delay for a publication of `bytes`: the allowance for the rest of the stem plus an
    /// exponential draw with a mean that grows with the size too (capped at [`FAILSAFE_DRAW_CAP`] means).
    fn failsafe_delay(&mut self, bytes: u64) -> Duration {
        // A uniform draw in (0, 1], so the logarithm is finite.
        let unit = ((self.rng.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        let factor = (-unit.ln()).min(FAILSAFE_DRAW_CAP);
        let mean = self.config.failsafe_draw_mean(bytes).as_secs_f64();
        let draw = Duration::try_from_secs_f64(mean * factor).unwrap_or(Duration::MAX);
        self.config.failsafe_floor(bytes).saturating_add(draw)
    }

    /// A uniform draw from `0..n` (`n > 0`), by the multiply-shift method.
    fn random_below(&mut self, n: usize) -> usize {
        ((u128::from(self.rng.next_u64()) * n as u128) >> 64) as usize
    }
}
