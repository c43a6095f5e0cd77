//! One iterative lookup (Kademlia): ask the closest nodes known, learn closer ones from their answers, stop
//! when the K closest that are still alive have all answered.
//!
//! Bounded: at most [`MAX_CANDIDATES`] candidates are kept (the closest), at most [`ALPHA`] queries are in
//! flight, at most [`MAX_QUERIES`] are sent in all, and the node ends the lookup at its deadline whatever
//! happens.

use std::collections::BTreeSet;
use std::net::SocketAddrV4;
use std::time::Instant;

use crate::id::{Id, NodeInfo};
use crate::item::MutableItem;
use crate::krpc::PutItem;
use crate::routing::K;

/// Queries in flight per lookup.
pub const ALPHA: usize = 3;
/// Candidates kept per lookup.
pub const MAX_CANDIDATES: usize = 64;
/// Queries sent per lookup at most.
pub const MAX_QUERIES: usize = 128;
/// Peers collected per lookup at most.
pub const MAX_PEERS: usize = 512;
/// Distinct mutable items collected per lookup at most.
pub const MAX_ITEMS: usize = 16;

/// What a lookup asks each node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LookupKind {
    FindNode,
    GetPeers,
    GetImmutable,
    GetMutable { key: [u8; 32], salt: Vec<u8> },
}

/// What to do with the closest nodes once the lookup is done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Then {
    Report,
    Announce { port: u16, implied_port: bool },
    Put { item: PutItem },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CandidateState {
    Fresh,
    Asked,
    Answered { token: Option<Vec<u8>> },
    Failed,
}

#[derive(Clone, Debug)]
pub struct Candidate {
    /// Unknown for bootstrap addresses until they answer.
    pub id: Option<Id>,
    pub addr: SocketAddrV4,
    pub state: CandidateState,
}

#[derive(Debug)]
pub enum Phase {
    Lookup,
    /// Announcing or putting: how many answers are still awaited, how many stored.
    Storing {
        pending: usize,
        stored: u32,
    },
}

#[derive(Debug)]
pub struct Lookup {
    pub target: Id,
    pub kind: LookupKind,
    pub then: Then,
    /// Started by the node itself (bootstrap, refresh): no event at the end.
    pub internal: bool,
    pub deadline: Instant,
    pub candidates: Vec<Candidate>,
    pub in_flight: usize,
    pub sent: usize,
    pub peers: BTreeSet<SocketAddrV4>,
    pub items: Vec<MutableItem>,
    pub immutable: Option<Vec<u8>>,
    pub phase: Phase,
}

impl Lookup {
    pub fn new(
        target: Id,
        kind: LookupKind,
        then: Then,
        internal: bool,
        deadline: Instant,
    ) -> Self {
        Lookup {
            target,
            kind,
            then,
            internal,
            deadline,
            candidates: Vec::new(),
            in_flight: 0,
            sent: 0,
            peers: BTreeSet::new(),
            items: Vec::new(),
            immutable: None,
            phase: Phase::Lookup,
        }
    }

    fn sort_key(&self, c: &Candidate) -> ([u8; 20], bool) {
        // Unknown ids (bootstrap addresses) go after every known one.
        match &c.id {
            Some(id) => (id.distance(&self.target), false),
            None => ([0xff; 20], true),
        }
    }

    /// Adds a candidate unless its address or id is known already; keeps the closest [`MAX_CANDIDATES`].
    pub fn add_candidate(&mut self, id: Option<Id>, addr: SocketAddrV4) {
        if self
            .candidates
            .iter()
            .any(|c| c.addr == addr || (id.is_some() && c.id == id))
        {
            return;
        }
        self.candidates.push(Candidate {
            id,
            addr,
            state: CandidateState::Fresh,
        });
        self.resort();
    }

    fn resort(&mut self) {
        let mut candidates = std::mem::take(&mut self.candidates);
        candidates.sort_by_key(|c| self.sort_key(c));
        candidates.truncate(MAX_CANDIDATES);
        self.candidates = candidates;
    }

    /// The next addresses to ask (marked asked), within the parallelism and query budget.
    pub fn next_to_ask(&mut self, room: usize) -> Vec<SocketAddrV4> {
        let mut out = Vec::new();
        let mut live = 0;
        for c in &mut self.candidates {
            if live >= K {
                break;
            }
            match c.state {
                CandidateState::Failed => continue,
                CandidateState::Fresh => {
                    if self.in_flight + out.len() >= ALPHA
                        || out.len() >= room
                        || self.sent + out.len() >= MAX_QUERIES
                    {
                        break;
                    }
                    c.state = CandidateState::Asked;
                    out.push(c.addr);
                }
                _ => {}
            }
            live += 1;
        }
        self.in_flight += out.len();
        self.sent += out.len();
        out
    }

    /// Whether the lookup phase is over: nothing in flight and nothing more worth asking.
    pub fn is_converged(&self) -> bool {
        if self.in_flight > 0 {
            return false;
        }
        if self.sent >= MAX_QUERIES {
            return true;
        }
        !self
            .candidates
            .iter()
            .filter(|c| c.state != CandidateState::Failed)
            .take(K)
            .any(|c| c.state == CandidateState::Fresh)
    }

    /// Records an answer from `addr` (with its id), and the nodes it named.
    pub fn on_answer(
        &mut self,
        addr: SocketAddrV4,
        id: Option<Id>,
        token: Option<Vec<u8>>,
        nodes: &[NodeInfo],
    ) {
        if let Some(c) = self.candidates.iter_mut().find(|c| c.addr == addr) {
            c.state = CandidateState::Answered { token };
            if c.id.is_none() {
                c.id = id;
            }
        }
        // A bootstrap node that turned out to share an id with a known candidate: keep one of them.
        if let Some(id) = id {
            let mut seen = false;
            self.candidates.retain(|c| {
                if c.id != Some(id) {
                    return true;
                }
                let keep = !seen;
                seen = true;
                keep
            });
        }
        for n in nodes {
            self.add_candidate(Some(n.id), n.addr);
        }
        self.resort();
    }

    /// Records that `addr` did not answer (or answered with an error).
    pub fn on_failure(&mut self, addr: SocketAddrV4) {
        if let Some(c) = self.candidates.iter_mut().find(|c| c.addr == addr)
            && c.state == CandidateState::Asked
        {
            c.state = CandidateState::Failed;
        }
    }

    /// One of our queries ended (answer, error or timeout). Counted per request rather than per candidate, so
    /// that a candidate dropped from the list while asked still releases its slot.
    pub fn request_done(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// The closest nodes that answered, with their tokens, at most K.
    pub fn closest_answered(&self) -> Vec<(SocketAddrV4, Option<Vec<u8>>)> {
        self.candidates
            .iter()
            .filter_map(|c| match &c.state {
                CandidateState::Answered { token } if c.id.is_some() => {
                    Some((c.addr, token.clone()))
                }
                _ => None,
            })
            .take(K)
            .collect()
    }

    pub fn add_peers(&mut self, peers: &[SocketAddrV4]) {
        for p in peers {
            if self.peers.len() >= MAX_PEERS {
                return;
            }
            self.peers.insert(*p);
        }
    }

    pub fn add_item(&mut self, item: MutableItem) {
        if self.items.len() < MAX_ITEMS && !self.items.contains(&item) {
            self.items.push(item);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(b: u8) -> NodeInfo {
        let mut id = [0; 20];
        id[0] = b;
        NodeInfo {
            id: Id(id),
            addr: SocketAddrV4::new([10, 0, 0, b].into(), 1),
        }
    }

    #[test]
    fn asks_alpha_at_a_time_closest_first_and_converges() {
        let now = Instant::now();
        let mut l = Lookup::new(Id([0; 20]), LookupKind::FindNode, Then::Report, false, now);
        for b in [9u8, 1, 5, 3, 7] {
            l.add_candidate(Some(node(b).id), node(b).addr);
        }
        let first = l.next_to_ask(100);
        assert_eq!(first, vec![node(1).addr, node(3).addr, node(5).addr]);
        assert!(l.next_to_ask(100).is_empty(), "alpha in flight");
        l.on_answer(node(1).addr, Some(node(1).id), None, &[node(2)]);
        l.request_done();
        assert_eq!(
            l.next_to_ask(100),
            vec![node(2).addr],
            "a closer node learned is asked next"
        );
        l.on_failure(node(3).addr);
        l.request_done();
        l.on_answer(node(5).addr, Some(node(5).id), Some(b"t".to_vec()), &[]);
        l.request_done();
        l.on_answer(node(2).addr, Some(node(2).id), None, &[]);
        l.request_done();
        assert!(!l.is_converged());
        let rest = l.next_to_ask(100);
        assert_eq!(rest, vec![node(7).addr, node(9).addr]);
        l.on_answer(node(7).addr, Some(node(7).id), None, &[]);
        l.request_done();
        l.on_answer(node(9).addr, Some(node(9).id), None, &[]);
        l.request_done();
        assert!(l.is_converged());
        let answered: Vec<_> = l.closest_answered().into_iter().map(|(a, _)| a).collect();
        assert_eq!(
            answered,
            vec![
                node(1).addr,
                node(2).addr,
                node(5).addr,
                node(7).addr,
                node(9).addr
            ]
        );
    }

    #[test]
    fn candidates_are_bounded_and_deduplicated() {
        let mut l = Lookup::new(
            Id([0; 20]),
            LookupKind::FindNode,
            Then::Report,
            false,
            Instant::now(),
        );
        for i in 0..200u8 {
            l.add_candidate(Some(node(i).id), node(i).addr);
            l.add_candidate(Some(node(i).id), node(i).addr);
        }
        assert_eq!(l.candidates.len(), MAX_CANDIDATES);
        assert_eq!(l.candidates[0].id, Some(node(0).id));
    }
}
