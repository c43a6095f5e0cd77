//! Publisher push: before a fresh publication is announced, a few connected peers are asked to replicate it,
//! so that the publisher is not the first and only seeder (design decision 5).
//!
//! One [`PublisherPush`] per publication. The node tells it which kolokol peers are connected, what they
//! answered and when time passes ([`PublisherPush::tick`]; [`PublisherPush::next_timeout`] says when the next
//! one is due), and carries out what [`PublisherPush::poll`] returns:
//!
//! 1. [`PushAction::AskReplicate`] to distinct peers, at most `replicas_wanted` outstanding. A peer that
//!    refuses, disconnects or says nothing for `ask_timeout_secs` is replaced by the next available one.
//! 2. [`PushAction::Announce`], once: as soon as one peer reports it holds every piece, or when
//!    `announce_timeout_secs` have passed since the machine was made, whichever is first. Announcing is the
//!    node's whole public step: push the record to every peer, put the feed head, announce in the DHT.
//! 3. After announcing, asking goes on until `replicas_wanted` replicas are confirmed or no peer is left to
//!    ask, then [`PushAction::Done`], and nothing more.
//!
//! Asks are bounded: no peer twice, [`ASKS_PER_REPLICA`] times `replicas_wanted` in all, and at most
//! [`MAX_WAITING_PEERS`] peers remembered as waiting to be asked.

use std::collections::{BTreeMap, VecDeque};

use crate::keys::NodeId;
use crate::record::InfoHash;

/// Default number of peers asked to hold a full replica.
pub const DEFAULT_REPLICAS_WANTED: usize = 3;
/// Largest `replicas_wanted` honoured; a bigger value is treated as this.
pub const MAX_REPLICAS_WANTED: usize = 32;
/// Asks made in all, per replica wanted.
pub const ASKS_PER_REPLICA: usize = 4;
/// Peers remembered as available but not asked yet.
pub const MAX_WAITING_PEERS: usize = 64;

/// Timing and size of the push.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushConfig {
    /// Full replicas wanted on peers: 3. Zero announces at once and asks nobody.
    pub replicas_wanted: usize,
    /// Announce anyway this long after publishing, even with no confirmed replica: 120 s.
    pub announce_timeout_secs: u64,
    /// Replace an asked peer that has not answered or reported progress for this long: 30 s.
    pub ask_timeout_secs: u64,
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            replicas_wanted: DEFAULT_REPLICAS_WANTED,
            announce_timeout_secs: 120,
            ask_timeout_secs: 30,
        }
    }
}

/// What the node should do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushAction {
    /// Send this peer the record and ask it to fetch every piece and report when it holds them.
    AskReplicate(NodeId),
    /// Announce the publication: push the record to everyone, put the feed head, announce in the DHT.
    Announce,
    /// Nothing more to do; the machine can be dropped.
    Done,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ask {
    /// Asked; last heard of at `since`.
    Outstanding { since: u64 },
    /// Holds every piece.
    Confirmed,
    /// Refused, vanished or went silent.
    Failed,
}

/// The push of one publication. See the module documentation.
#[derive(Clone, Debug)]
pub struct PublisherPush {
    config: PushConfig,
    infohash: InfoHash,
    started: u64,
    waiting: VecDeque<NodeId>,
    asks: BTreeMap<NodeId, Ask>,
    asks_made: usize,
    announced: bool,
    done: bool,
    actions: VecDeque<PushAction>,
}

impl PublisherPush {
    /// A push that starts now. With `replicas_wanted` zero it announces at once.
    pub fn new(config: PushConfig, infohash: InfoHash, now: u64) -> Self {
        Self::resumed(config, infohash, now, now)
    }

    /// A push begun at `started` by an earlier run of the node and taken up again now: the announce time-out
    /// still counts from `started`, so restarting the node cannot keep a publication unannounced for ever. A
    /// `started` in the future (the clock went back) counts as now.
    pub fn resumed(mut config: PushConfig, infohash: InfoHash, started: u64, now: u64) -> Self {
        config.replicas_wanted = config.replicas_wanted.min(MAX_REPLICAS_WANTED);
        let mut push = PublisherPush {
            config,
            infohash,
            started: started.min(now),
            waiting: VecDeque::new(),
            asks: BTreeMap::new(),
            asks_made: 0,
            announced: false,
            done: false,
            actions: VecDeque::new(),
        };
        push.step(now);
        push
    }

    /// The publication.
    pub fn infohash(&self) -> &InfoHash {
        &self.infohash
    }

    /// Connected kolokol peers that could be asked (any order; known ones are ignored).
    pub fn peers_available(&mut self, peers: &[NodeId], now: u64) {
        for peer in peers {
            if self.waiting.len() >= MAX_WAITING_PEERS {
                break;
            }
            if !self.asks.contains_key(peer) && !self.waiting.contains(peer) {
                self.waiting.push_back(*peer);
            }
        }
        self.step(now);
    }

    /// The connection to `peer` closed: it is no longer waiting, and an outstanding ask to it failed. A
    /// confirmed replica stays counted (the data is on its disk).
    pub fn peer_gone(&mut self, peer: &NodeId, now: u64) {
        self.waiting.retain(|p| p != peer);
        self.fail(peer);
        self.step(now);
    }

    /// `peer` reports progress on the replica; `complete` means it holds every piece. Progress keeps an ask
    /// alive. A complete report counts even from a peer whose ask timed out, or that was never asked (it
    /// fetched the publication after the announcement).
    pub fn replica_progress(&mut self, peer: &NodeId, complete: bool, now: u64) {
        match self.asks.get_mut(peer) {
            Some(ask @ Ask::Outstanding { .. }) => {
                *ask = if complete {
                    Ask::Confirmed
                } else {
                    Ask::Outstanding { since: now }
                };
            }
            Some(ask @ Ask::Failed) if complete => *ask = Ask::Confirmed,
            None if complete => {
                self.waiting.retain(|p| p != peer);
                self.asks.insert(*peer, Ask::Confirmed);
            }
            _ => {}
        }
        self.step(now);
    }

    /// `peer` declined to replicate.
    pub fn refused(&mut self, peer: &NodeId, now: u64) {
        self.fail(peer);
        self.step(now);
    }

    /// Time passed.
    pub fn tick(&mut self, now: u64) {
        self.step(now);
    }

    /// The next action to carry out, if any.
    pub fn poll(&mut self) -> Option<PushAction> {
        self.actions.pop_front()
    }

    /// Peers that confirmed a full replica.
    pub fn full_replicas(&self) -> usize {
        self.asks.values().filter(|a| **a == Ask::Confirmed).count()
    }

    /// Whether the announcement was made.
    pub fn announced(&self) -> bool {
        self.announced
    }

    /// Whether the push is over.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// When [`PublisherPush::tick`] next has something to do (an ask or the announcement timing out).
    pub fn next_timeout(&self) -> Option<u64> {
        if self.done {
            return None;
        }
        let asks = self.asks.values().filter_map(|a| match a {
            Ask::Outstanding { since } => Some(since.saturating_add(self.config.ask_timeout_secs)),
            _ => None,
        });
        let announce = (!self.announced).then(|| self.announce_deadline());
        asks.chain(announce).min()
    }

    fn announce_deadline(&self) -> u64 {
        self.started
            .saturating_add(self.config.announce_timeout_secs)
    }

    fn fail(&mut self, peer: &NodeId) {
        if let Some(ask @ Ask::Outstanding { .. }) = self.asks.get_mut(peer) {
            *ask = Ask::Failed;
        }
    }

    fn step(&mut self, now: u64) {
        if self.done {
            return;
        }
        let ask_timeout = self.config.ask_timeout_secs;
        for ask in self.asks.values_mut() {
            if let Ask::Outstanding { since } = *ask
                && now >= since.saturating_add(ask_timeout)
            {
                *ask = Ask::Failed;
            }
        }
        let wanted = self.config.replicas_wanted;
        let confirmed = self.full_replicas();
        if !self.announced && (confirmed >= 1 || wanted == 0 || now >= self.announce_deadline()) {
            self.announced = true;
            self.actions.push_back(PushAction::Announce);
        }
        let max_asks = wanted * ASKS_PER_REPLICA;
        let mut outstanding = self
            .asks
            .values()
            .filter(|a| matches!(a, Ask::Outstanding { .. }))
            .count();
        while confirmed + outstanding < wanted && self.asks_made < max_asks {
            let Some(peer) = self.waiting.pop_front() else {
                break;
            };
            self.asks.insert(peer, Ask::Outstanding { since: now });
            self.asks_made += 1;
            outstanding += 1;
            self.actions.push_back(PushAction::AskReplicate(peer));
        }
        let nobody_left =
            outstanding == 0 && (self.waiting.is_empty() || self.asks_made >= max_asks);
        if self.announced && (confirmed >= wanted || nobody_left) {
            self.done = true;
            self.actions.push_back(PushAction::Done);
        }
    }
}
