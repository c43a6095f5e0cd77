//! The DHT node as a pure state machine: packets and time go in, packets and events come out.
//!
//! No sockets, no clock, no tokio: the driver ([`crate::net`]) passes the time and every datagram in
//! ([`Node::handle_packet`], [`Node::handle_timeout`]), sends what [`Node::poll_transmit`] returns, wakes the
//! node at [`Node::poll_timeout`], and takes results from [`Node::poll_event`]. Requests (lookups, announces,
//! puts) start with a method that returns a [`QueryId`] and end with one [`Event`] carrying that id. The RNG
//! is a type parameter, so tests and the simulator are deterministic.
//!
//! Answering queries is in [`crate::answer`]; the lookup bookkeeping in [`crate::lookup`].

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use rand::RngCore;

use crate::id::{Id, NodeInfo};
use crate::item::{MutableItem, check_immutable, immutable_target};
use crate::krpc::{Body, Message, PutItem, Query, QueryKind, Response};
use crate::lookup::{Lookup, LookupKind, Phase, Then};
use crate::routing::{K, RoutingTable};
use crate::storage::Storage;

/// Our queries in flight at most (all lookups and pings together).
pub const MAX_REQUESTS: usize = 512;
/// Lookups running at most; more are refused at once with an empty result.
pub const MAX_LOOKUPS: usize = 64;
/// Datagrams waiting to be sent at most (the driver drains them after every call).
pub const MAX_TRANSMITS: usize = 1024;
/// Events waiting to be taken at most.
pub const MAX_EVENTS: usize = 1024;
/// How often the node looks after its routing table and storage.
pub const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(60);
/// How often a full node refreshes its neighbourhood with a lookup of its own id.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(15 * 60);

/// Options of the protocol core.
#[derive(Clone, Debug)]
pub struct Config {
    /// How long to wait for one node's answer.
    pub request_timeout: Duration,
    /// How long a whole lookup (and its announce or put) may take before it ends with what it has.
    pub lookup_timeout: Duration,
    /// Tell other nodes not to put us in their routing tables (BEP 43 `ro`). We still answer queries that
    /// reach us: whoever sends one was given our address.
    pub read_only: bool,
    /// Accept loopback addresses as DHT nodes (only for a node that itself runs on loopback, as in tests):
    /// otherwise a remote node could point our queries at services on our own machine.
    pub allow_loopback: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            request_timeout: Duration::from_secs(2),
            lookup_timeout: Duration::from_secs(30),
            read_only: false,
            allow_loopback: false,
        }
    }
}

/// Names one request from start to its [`Event`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QueryId(pub u64);

/// A datagram to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    pub to: SocketAddrV4,
    pub bytes: Vec<u8>,
}

/// How a request ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `find_node`: the closest nodes that answered.
    Nodes(Vec<NodeInfo>),
    /// `get_peers`: every peer collected (deduplicated, at most [`crate::lookup::MAX_PEERS`]).
    Peers(Vec<SocketAddrV4>),
    /// BEP 44 `get` of a mutable item: every distinct item that verified, largest `seq` first.
    Mutable(Vec<MutableItem>),
    /// BEP 44 `get` of an immutable item.
    Immutable(Option<Vec<u8>>),
    /// `announce_peer` or `put`: how many nodes confirmed storing it (0 if no node gave a token).
    Stored { stored_at: u32 },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub query: QueryId,
    pub outcome: Outcome,
}

#[derive(Debug)]
enum Purpose {
    Lookup(QueryId),
    Store(QueryId),
    Ping,
}

#[derive(Debug)]
struct Request {
    to: SocketAddrV4,
    deadline: Instant,
    purpose: Purpose,
}

/// One DHT node.
#[derive(Debug)]
pub struct Node<R> {
    pub(crate) rng: R,
    pub(crate) config: Config,
    pub(crate) table: RoutingTable,
    pub(crate) storage: Storage,
    requests: BTreeMap<u32, Request>,
    lookups: BTreeMap<QueryId, Lookup>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    next_query: u64,
    bootstrap: Vec<SocketAddrV4>,
    next_maintenance: Option<Instant>,
    last_refresh: Option<Instant>,
    public_votes: BTreeMap<SocketAddrV4, u32>,
    /// Queries answered from nodes we had not sent to: evidence that we are reachable from outside.
    pub(crate) unsolicited: u64,
}

impl<R: RngCore> Node<R> {
    pub fn new(mut rng: R, config: Config) -> Self {
        let id = Id::random(&mut rng);
        let mut secret = [0; 16];
        rng.fill_bytes(&mut secret);
        Node {
            rng,
            config,
            table: RoutingTable::new(id),
            storage: Storage::new(secret),
            requests: BTreeMap::new(),
            lookups: BTreeMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            next_query: 0,
            bootstrap: Vec::new(),
            next_maintenance: None,
            last_refresh: None,
            public_votes: BTreeMap::new(),
            unsolicited: 0,
        }
    }

    pub fn id(&self) -> Id {
        self.table.own_id()
    }

    pub fn routing_table(&self) -> &RoutingTable {
        &self.table
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Our address as most nodes that answered see it (BEP 42 `ip`), once two agree.
    pub fn public_addr(&self) -> Option<SocketAddrV4> {
        self.public_votes
            .iter()
            .filter(|(_, votes)| **votes >= 2)
            .max_by_key(|(_, votes)| **votes)
            .map(|(addr, _)| *addr)
    }

    /// Whether nodes we never wrote to have queried us (we are reachable from outside).
    pub fn has_been_reached(&self) -> bool {
        self.unsolicited > 0
    }

    /// Addresses to bootstrap from (and fall back on whenever the routing table runs low). Starts joining.
    pub fn bootstrap(&mut self, now: Instant, nodes: &[SocketAddrV4]) {
        self.bootstrap = nodes
            .iter()
            .filter(|a| self.usable_addr(a))
            .take(64)
            .copied()
            .collect();
        self.join(now);
    }

    fn join(&mut self, now: Instant) {
        let own = self.id();
        self.start(now, own, LookupKind::FindNode, Then::Report, true);
        self.last_refresh = Some(now);
    }

    /// Whether an address from the network may be sent to.
    pub(crate) fn usable_addr(&self, addr: &SocketAddrV4) -> bool {
        let ip = addr.ip();
        addr.port() != 0
            && !ip.is_unspecified()
            && !ip.is_multicast()
            && !ip.is_broadcast()
            && (self.config.allow_loopback || !ip.is_loopback())
    }

    /// Looks up the nodes closest to `target`.
    pub fn find_node(&mut self, now: Instant, target: Id) -> QueryId {
        self.start(now, target, LookupKind::FindNode, Then::Report, false)
    }

    /// Looks up the peers announced for `info_hash`.
    pub fn get_peers(&mut self, now: Instant, info_hash: Id) -> QueryId {
        self.start(now, info_hash, LookupKind::GetPeers, Then::Report, false)
    }

    /// Announces that we (at `port`, or at the port our packets come from if `None`) have `info_hash`.
    pub fn announce_peer(&mut self, now: Instant, info_hash: Id, port: Option<u16>) -> QueryId {
        let then = Then::Announce {
            port: port.unwrap_or(0),
            implied_port: port.is_none(),
        };
        self.start(now, info_hash, LookupKind::GetPeers, then, false)
    }

    /// Reads the mutable items of `key` with `salt`.
    pub fn get_mutable(&mut self, now: Instant, key: [u8; 32], salt: &[u8]) -> QueryId {
        let target = crate::item::mutable_target(&key, salt);
        let kind = LookupKind::GetMutable {
            key,
            salt: salt.to_vec(),
        };
        self.start(now, target, kind, Then::Report, false)
    }

    /// Stores a signed mutable item (`cas`: only where the stored `seq` is this one).
    pub fn put_mutable(&mut self, now: Instant, item: MutableItem, cas: Option<i64>) -> QueryId {
        let kind = LookupKind::GetMutable {
            key: item.key,
            salt: item.salt.clone(),
        };
        let put = PutItem::Mutable {
            key: item.key,
            signature: item.signature,
            seq: item.seq,
            salt: item.salt.clone(),
            value: item.value.clone(),
            cas,
        };
        self.start(now, item.target(), kind, Then::Put { item: put }, false)
    }

    /// Reads the immutable item with `target` (the SHA-1 of its bencoded value).
    pub fn get_immutable(&mut self, now: Instant, target: Id) -> QueryId {
        self.start(now, target, LookupKind::GetImmutable, Then::Report, false)
    }

    /// Stores an immutable item (`value` is bencoded); its target is `immutable_target(value)`.
    pub fn put_immutable(&mut self, now: Instant, value: Vec<u8>) -> QueryId {
        let target = immutable_target(&value);
        let then = Then::Put {
            item: PutItem::Immutable { value },
        };
        self.start(now, target, LookupKind::GetImmutable, then, false)
    }

    fn start(
        &mut self,
        now: Instant,
        target: Id,
        kind: LookupKind,
        then: Then,
        internal: bool,
    ) -> QueryId {
        let query = QueryId(self.next_query);
        self.next_query += 1;
        let user_lookups = self.lookups.values().filter(|l| !l.internal).count();
        if internal && self.lookups.values().any(|l| l.internal) {
            return query;
        }
        if user_lookups >= MAX_LOOKUPS {
            let outcome = empty_outcome(&kind, &then);
            self.emit(Event { query, outcome });
            return query;
        }
        let deadline = now + self.config.lookup_timeout;
        let mut lookup = Lookup::new(target, kind, then, internal, deadline);
        for node in self.table.closest(&target, K * 2) {
            lookup.add_candidate(Some(node.id), node.addr);
        }
        if lookup.candidates.len() < K {
            for addr in &self.bootstrap {
                lookup.add_candidate(None, *addr);
            }
        }
        self.lookups.insert(query, lookup);
        self.step(now, query);
        query
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next finished request.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Node::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let requests = self.requests.values().map(|r| r.deadline).min();
        let lookups = self.lookups.values().map(|l| l.deadline).min();
        [
            requests,
            lookups,
            self.next_maintenance,
            self.storage.next_rotation(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub(crate) fn send(&mut self, to: SocketAddrV4, bytes: Vec<u8>) {
        if self.transmits.len() < MAX_TRANSMITS {
            self.transmits.push_back(Transmit { to, bytes });
        }
    }

    fn emit(&mut self, event: Event) {
        if self.events.len() < MAX_EVENTS {
            self.events.push_back(event);
        }
    }

    /// Sends a query; returns false if there is no room for another request.
    fn send_query(
        &mut self,
        now: Instant,
        to: SocketAddrV4,
        kind: QueryKind,
        purpose: Purpose,
    ) -> bool {
        if self.requests.len() >= MAX_REQUESTS {
            return false;
        }
        let mut tid = self.rng.next_u32();
        while self.requests.contains_key(&tid) {
            tid = self.rng.next_u32();
        }
        let message = Message {
            tid: tid.to_be_bytes().to_vec(),
            ip: None,
            body: Body::Query(Query {
                id: self.id(),
                read_only: self.config.read_only,
                kind,
            }),
        };
        self.send(to, message.encode());
        let deadline = now + self.config.request_timeout;
        self.requests.insert(
            tid,
            Request {
                to,
                deadline,
                purpose,
            },
        );
        true
    }

    fn lookup_query(lookup: &Lookup) -> QueryKind {
        match &lookup.kind {
            LookupKind::FindNode => QueryKind::FindNode {
                target: lookup.target,
            },
            LookupKind::GetPeers => QueryKind::GetPeers {
                info_hash: lookup.target,
            },
            LookupKind::GetImmutable | LookupKind::GetMutable { .. } => QueryKind::Get {
                target: lookup.target,
                seq: None,
            },
        }
    }

    /// Moves a lookup on: asks more nodes, or finishes it.
    fn step(&mut self, now: Instant, query: QueryId) {
        let Some(lookup) = self.lookups.get_mut(&query) else {
            return;
        };
        if !matches!(lookup.phase, Phase::Lookup) {
            if let Phase::Storing { pending: 0, stored } = lookup.phase {
                self.finish(query, Outcome::Stored { stored_at: stored });
            }
            return;
        }
        let done_early = lookup.kind == LookupKind::GetImmutable
            && lookup.immutable.is_some()
            && lookup.then == Then::Report;
        if !done_early {
            let room = MAX_REQUESTS.saturating_sub(self.requests.len());
            let to_ask = lookup.next_to_ask(room);
            let kind = Self::lookup_query(lookup);
            for addr in to_ask {
                if !self.send_query(now, addr, kind.clone(), Purpose::Lookup(query))
                    && let Some(l) = self.lookups.get_mut(&query)
                {
                    l.request_done();
                    l.on_failure(addr);
                }
            }
        }
        let Some(lookup) = self.lookups.get_mut(&query) else {
            return;
        };
        if !(done_early || lookup.is_converged()) {
            return;
        }
        match lookup.then.clone() {
            Then::Report => {
                let outcome = report(lookup);
                let outcome = self.with_local(lookup_target(&self.lookups, query), outcome);
                self.finish(query, outcome);
            }
            Then::Announce { port, implied_port } => {
                let info_hash = lookup.target;
                let targets = lookup.closest_answered();
                self.store_phase(now, query, targets, |token| QueryKind::AnnouncePeer {
                    info_hash,
                    port,
                    implied_port,
                    token,
                });
            }
            Then::Put { item } => {
                let targets = lookup.closest_answered();
                self.store_phase(now, query, targets, |token| QueryKind::Put {
                    token,
                    item: item.clone(),
                });
            }
        }
    }

    /// Adds what this node itself stores for `target`: a lookup asks only other nodes, and in a small network
    /// the announcement or item may be held here (another node stored it with us).
    fn with_local(&self, target: Option<Id>, outcome: Outcome) -> Outcome {
        use crate::storage::StoredItem;
        let Some(target) = target else {
            return outcome;
        };
        match outcome {
            Outcome::Peers(mut peers) => {
                for p in self.storage.peers(&target) {
                    if peers.len() < crate::lookup::MAX_PEERS && !peers.contains(&p) {
                        peers.push(p);
                    }
                }
                Outcome::Peers(peers)
            }
            Outcome::Mutable(mut items) => {
                if let Some(StoredItem::Mutable(item)) = self.storage.item(&target)
                    && !items.contains(item)
                    && items.len() < crate::lookup::MAX_ITEMS
                {
                    items.push(item.clone());
                    items.sort_by_key(|i| std::cmp::Reverse(i.seq));
                }
                Outcome::Mutable(items)
            }
            Outcome::Immutable(None) => match self.storage.item(&target) {
                Some(StoredItem::Immutable(value)) => Outcome::Immutable(Some(value.clone())),
                _ => Outcome::Immutable(None),
            },
            other => other,
        }
    }

    fn store_phase(
        &mut self,
        now: Instant,
        query: QueryId,
        targets: Vec<(SocketAddrV4, Option<Vec<u8>>)>,
        make: impl Fn(Vec<u8>) -> QueryKind,
    ) {
        let mut pending = 0;
        for (addr, token) in targets {
            let Some(token) = token else { continue };
            if self.send_query(now, addr, make(token), Purpose::Store(query)) {
                pending += 1;
            }
        }
        if let Some(lookup) = self.lookups.get_mut(&query) {
            lookup.phase = Phase::Storing { pending, stored: 0 };
        }
        if pending == 0 {
            self.finish(query, Outcome::Stored { stored_at: 0 });
        }
    }

    fn finish(&mut self, query: QueryId, outcome: Outcome) {
        if let Some(lookup) = self.lookups.remove(&query)
            && !lookup.internal
        {
            self.emit(Event { query, outcome });
        }
        // Requests of a finished lookup may still be answered: they then only feed the routing table.
    }

    /// Handles one datagram from `from`. Anything that is not a valid KRPC message is dropped.
    pub fn handle_packet(&mut self, now: Instant, from: SocketAddrV4, bytes: &[u8]) {
        if from.port() == 0 {
            return;
        }
        self.ensure_maintenance(now);
        match Message::decode(bytes) {
            Ok(Message {
                tid,
                body: Body::Query(q),
                ..
            }) => self.answer(now, from, &tid, q),
            Ok(Message {
                tid,
                ip,
                body: Body::Response(r),
            }) => self.on_response(now, from, &tid, ip, r),
            Ok(Message {
                tid,
                body: Body::Error { .. },
                ..
            }) => self.on_error(now, from, &tid),
            Err(error) => self.answer_malformed(from, error),
        }
    }

    fn take_request(&mut self, from: SocketAddrV4, tid: &[u8]) -> Option<Request> {
        let tid = u32::from_be_bytes(tid.try_into().ok()?);
        // An answer must come from the address we asked: a spoofed one does not end the request.
        if self.requests.get(&tid)?.to != from {
            return None;
        }
        self.requests.remove(&tid)
    }

    fn on_response(
        &mut self,
        now: Instant,
        from: SocketAddrV4,
        tid: &[u8],
        ip: Option<SocketAddrV4>,
        r: Response,
    ) {
        let Some(request) = self.take_request(from, tid) else {
            return;
        };
        if let Some(id) = r.id {
            self.table.record_answer(NodeInfo { id, addr: from }, now);
        }
        if let Some(ip) = ip {
            self.vote_public_addr(ip);
        }
        match request.purpose {
            Purpose::Ping => {}
            Purpose::Store(query) => {
                if let Some(lookup) = self.lookups.get_mut(&query)
                    && let Phase::Storing { pending, stored } = &mut lookup.phase
                {
                    *pending = pending.saturating_sub(1);
                    *stored += 1;
                }
                self.step(now, query);
            }
            Purpose::Lookup(query) => {
                let usable: Vec<NodeInfo> = r
                    .nodes
                    .iter()
                    .filter(|n| self.usable_addr(&n.addr) && n.id != self.id())
                    .copied()
                    .collect();
                let Some(lookup) = self.lookups.get_mut(&query) else {
                    return;
                };
                lookup.request_done();
                if !matches!(lookup.phase, Phase::Lookup) {
                    return;
                }
                lookup.on_answer(from, r.id, r.token.clone(), &usable);
                match lookup.kind.clone() {
                    LookupKind::GetPeers => lookup.add_peers(&r.values),
                    LookupKind::GetImmutable => {
                        if let Some(v) = &r.value
                            && check_immutable(&lookup.target, v).is_ok()
                        {
                            lookup.immutable = Some(v.clone());
                        }
                    }
                    LookupKind::GetMutable { key, salt } => {
                        if let (Some(value), Some(k), Some(signature), Some(seq)) =
                            (r.value, r.key, r.signature, r.seq)
                            && k == key
                        {
                            let item = MutableItem {
                                key,
                                signature,
                                seq,
                                salt,
                                value,
                            };
                            if item.verify().is_ok() {
                                lookup.add_item(item);
                            }
                        }
                    }
                    LookupKind::FindNode => {}
                }
                self.step(now, query);
            }
        }
    }

    fn on_error(&mut self, now: Instant, from: SocketAddrV4, tid: &[u8]) {
        let Some(request) = self.take_request(from, tid) else {
            return;
        };
        // The node is alive, but it refused: it gives no token, no nodes, and does not count as storing.
        match request.purpose {
            Purpose::Ping => {}
            Purpose::Store(query) => {
                if let Some(lookup) = self.lookups.get_mut(&query)
                    && let Phase::Storing { pending, .. } = &mut lookup.phase
                {
                    *pending = pending.saturating_sub(1);
                }
                self.step(now, query);
            }
            Purpose::Lookup(query) => {
                if let Some(lookup) = self.lookups.get_mut(&query) {
                    lookup.request_done();
                    lookup.on_failure(from);
                }
                self.step(now, query);
            }
        }
    }

    fn vote_public_addr(&mut self, addr: SocketAddrV4) {
        if !self.public_votes.contains_key(&addr) && self.public_votes.len() >= 16 {
            self.public_votes.clear();
        }
        let votes = self.public_votes.entry(addr).or_default();
        *votes = votes.saturating_add(1);
    }

    /// Pings a node that queried us if it could join our routing table: its answer proves the address.
    pub(crate) fn consider_querier(&mut self, now: Instant, id: Id, from: SocketAddrV4) {
        if !self.usable_addr(&from)
            || !self.table.has_room_for(&id)
            || self.table.contains_addr(&from)
            || self.requests.len() >= MAX_REQUESTS / 2
            || self.requests.values().any(|r| r.to == from)
        {
            return;
        }
        self.send_query(now, from, QueryKind::Ping, Purpose::Ping);
    }

    pub(crate) fn saw_unsolicited_query(&mut self, from: SocketAddrV4) {
        if !self.table.contains_addr(&from) && !self.bootstrap.contains(&from) {
            self.unsolicited = self.unsolicited.saturating_add(1);
        }
    }

    /// Ends requests and lookups whose time is up; looks after the routing table and storage when due.
    pub fn handle_timeout(&mut self, now: Instant) {
        let expired: Vec<u32> = self
            .requests
            .iter()
            .filter(|(_, r)| r.deadline <= now)
            .map(|(tid, _)| *tid)
            .collect();
        let mut touched = Vec::new();
        for tid in expired {
            let Some(request) = self.requests.remove(&tid) else {
                continue;
            };
            self.table.record_failure(&request.to);
            match request.purpose {
                Purpose::Ping => {}
                Purpose::Lookup(query) => {
                    if let Some(lookup) = self.lookups.get_mut(&query) {
                        lookup.request_done();
                        if matches!(lookup.phase, Phase::Lookup) {
                            lookup.on_failure(request.to);
                        }
                    }
                    touched.push(query);
                }
                Purpose::Store(query) => {
                    if let Some(lookup) = self.lookups.get_mut(&query)
                        && let Phase::Storing { pending, .. } = &mut lookup.phase
                    {
                        *pending = pending.saturating_sub(1);
                    }
                    touched.push(query);
                }
            }
        }
        // Lookups past their deadline end with what they have.
        let late: Vec<QueryId> = self
            .lookups
            .iter()
            .filter(|(_, l)| l.deadline <= now)
            .map(|(q, _)| *q)
            .collect();
        for query in late {
            if let Some(lookup) = self.lookups.get(&query) {
                let outcome = match lookup.phase {
                    Phase::Storing { stored, .. } => Outcome::Stored { stored_at: stored },
                    Phase::Lookup => match lookup.then {
                        Then::Report => report(lookup),
                        _ => Outcome::Stored { stored_at: 0 },
                    },
                };
                let outcome = self.with_local(Some(lookup.target), outcome);
                self.finish(query, outcome);
            }
        }
        for query in touched {
            self.step(now, query);
        }
        // Requests that could not be sent for lack of room: try again.
        let waiting: Vec<QueryId> = self.lookups.keys().copied().collect();
        for query in waiting {
            self.step(now, query);
        }
        self.maintain(now);
    }

    fn ensure_maintenance(&mut self, now: Instant) {
        if self.next_maintenance.is_none() {
            self.next_maintenance = Some(now + MAINTENANCE_INTERVAL);
            let mut fresh = [0; 16];
            self.rng.fill_bytes(&mut fresh);
            self.storage.rotate(now, fresh);
        }
    }

    fn maintain(&mut self, now: Instant) {
        self.ensure_maintenance(now);
        let mut fresh = [0; 16];
        self.rng.fill_bytes(&mut fresh);
        self.storage.rotate(now, fresh);
        if self.next_maintenance.is_some_and(|at| at > now) {
            return;
        }
        self.next_maintenance = Some(now + MAINTENANCE_INTERVAL);
        self.storage.expire(now);
        for addr in self.table.questionable(now, 3) {
            if !self.requests.values().any(|r| r.to == addr) {
                self.send_query(now, addr, QueryKind::Ping, Purpose::Ping);
            }
        }
        let refresh_due = self
            .last_refresh
            .is_none_or(|at| now.saturating_duration_since(at) >= REFRESH_INTERVAL);
        if self.table.good_count(now) < K || refresh_due {
            self.join(now);
        }
    }
}

fn lookup_target(lookups: &BTreeMap<QueryId, Lookup>, query: QueryId) -> Option<Id> {
    lookups.get(&query).map(|l| l.target)
}

fn empty_outcome(kind: &LookupKind, then: &Then) -> Outcome {
    match (then, kind) {
        (Then::Announce { .. } | Then::Put { .. }, _) => Outcome::Stored { stored_at: 0 },
        (Then::Report, LookupKind::FindNode) => Outcome::Nodes(Vec::new()),
        (Then::Report, LookupKind::GetPeers) => Outcome::Peers(Vec::new()),
        (Then::Report, LookupKind::GetImmutable) => Outcome::Immutable(None),
        (Then::Report, LookupKind::GetMutable { .. }) => Outcome::Mutable(Vec::new()),
    }
}

fn report(lookup: &Lookup) -> Outcome {
    match &lookup.kind {
        LookupKind::FindNode => Outcome::Nodes(
            lookup
                .candidates
                .iter()
                .filter(|c| matches!(c.state, crate::lookup::CandidateState::Answered { .. }))
                .filter_map(|c| c.id.map(|id| NodeInfo { id, addr: c.addr }))
                .take(K)
                .collect(),
        ),
        LookupKind::GetPeers => Outcome::Peers(lookup.peers.iter().copied().collect()),
        LookupKind::GetImmutable => Outcome::Immutable(lookup.immutable.clone()),
        LookupKind::GetMutable { .. } => {
            let mut items = lookup.items.clone();
            items.sort_by_key(|i| std::cmp::Reverse(i.seq));
            Outcome::Mutable(items)
        }
    }
}

#[cfg(test)]
#[path = "node_tests.rs"]
mod tests;
