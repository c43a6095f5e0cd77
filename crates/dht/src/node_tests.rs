//! The node in memory: many nodes wired through a simulated network with virtual time.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;
use crate::krpc::{Body, Message, Query, QueryKind, code};

fn addr(i: usize) -> SocketAddrV4 {
    SocketAddrV4::new(
        Ipv4Addr::new(10, 0, (i / 250) as u8, (i % 250) as u8 + 1),
        6881,
    )
}

fn config() -> Config {
    Config {
        request_timeout: Duration::from_millis(500),
        lookup_timeout: Duration::from_secs(20),
        ..Config::default()
    }
}

/// Nodes on a virtual network: every datagram is delivered in order, unless its destination is down.
struct Sim {
    now: Instant,
    nodes: BTreeMap<SocketAddrV4, Node<StdRng>>,
    down: Vec<SocketAddrV4>,
    /// Datagrams sent to addresses that are not simulated nodes.
    outside: Vec<(SocketAddrV4, Vec<u8>)>,
    events: Vec<(SocketAddrV4, Event)>,
}

impl Sim {
    fn new(count: usize) -> Sim {
        let now = Instant::now();
        let mut nodes = BTreeMap::new();
        for i in 0..count {
            let mut node = Node::new(StdRng::seed_from_u64(i as u64), config());
            if i > 0 {
                node.bootstrap(now, &[addr(0)]);
            }
            nodes.insert(addr(i), node);
        }
        Sim {
            now,
            nodes,
            down: Vec::new(),
            outside: Vec::new(),
            events: Vec::new(),
        }
    }

    fn node(&mut self, i: usize) -> &mut Node<StdRng> {
        self.nodes.get_mut(&addr(i)).unwrap()
    }

    /// Delivers datagrams until none is left; then jumps to the next timer. Stops after `limit` of virtual time.
    fn run_for(&mut self, limit: Duration) {
        let end = self.now + limit;
        loop {
            let mut moved = false;
            let froms: Vec<SocketAddrV4> = self.nodes.keys().copied().collect();
            for from in froms {
                let mut out = Vec::new();
                let node = self.nodes.get_mut(&from).unwrap();
                while let Some(t) = node.poll_transmit() {
                    out.push(t);
                }
                while let Some(e) = node.poll_event() {
                    self.events.push((from, e));
                }
                for t in out {
                    moved = true;
                    if self.down.contains(&t.to) || self.down.contains(&from) {
                        continue;
                    }
                    match self.nodes.get_mut(&t.to) {
                        Some(dest) => dest.handle_packet(self.now, from, &t.bytes),
                        None => self.outside.push((t.to, t.bytes)),
                    }
                }
            }
            if moved {
                continue;
            }
            let next = self.nodes.values().filter_map(Node::poll_timeout).min();
            match next {
                Some(at) if at <= end => {
                    self.now = self.now.max(at);
                    let now = self.now;
                    for node in self.nodes.values_mut() {
                        if node.poll_timeout().is_some_and(|t| t <= now) {
                            node.handle_timeout(now);
                        }
                    }
                }
                _ => {
                    self.now = end;
                    return;
                }
            }
        }
    }

    fn outcome(&mut self, at: usize, query: QueryId) -> Option<Outcome> {
        let pos = self
            .events
            .iter()
            .position(|(a, e)| *a == addr(at) && e.query == query)?;
        Some(self.events.remove(pos).1.outcome)
    }
}

#[test]
fn twenty_nodes_join_announce_and_find_peers() {
    let mut sim = Sim::new(20);
    // The first joiners find few others; the maintenance a minute later looks again, since they know < K.
    sim.run_for(MAINTENANCE_INTERVAL * 2 + Duration::from_secs(5));
    for (a, node) in &sim.nodes {
        assert!(
            node.routing_table().len() >= 8,
            "{a} knows only {} nodes",
            node.routing_table().len()
        );
    }
    let info_hash = Id([0x42; 20]);
    let now = sim.now;
    let q = sim.node(5).announce_peer(now, info_hash, Some(4000));
    sim.run_for(Duration::from_secs(10));
    let Some(Outcome::Stored { stored_at }) = sim.outcome(5, q) else {
        panic!("announce did not end")
    };
    assert!(stored_at >= 6, "stored at {stored_at} nodes");
    let q = sim.node(17).get_peers(now, info_hash);
    sim.run_for(Duration::from_secs(10));
    assert_eq!(
        sim.outcome(17, q),
        Some(Outcome::Peers(vec![SocketAddrV4::new(*addr(5).ip(), 4000)]))
    );
}

#[test]
fn mutable_items_are_put_and_read_back_newest_first() {
    let mut sim = Sim::new(20);
    sim.run_for(MAINTENANCE_INTERVAL * 2 + Duration::from_secs(5));
    let key = SigningKey::from_bytes(&[7; 32]);
    let now = sim.now;
    let v1 = MutableItem::sign(&key, b"2:v1".to_vec(), 1, b"feed".to_vec()).unwrap();
    let q = sim.node(3).put_mutable(now, v1, None);
    sim.run_for(Duration::from_secs(10));
    assert!(matches!(sim.outcome(3, q), Some(Outcome::Stored { stored_at }) if stored_at >= 6));
    let v2 = MutableItem::sign(&key, b"2:v2".to_vec(), 2, b"feed".to_vec()).unwrap();
    let q = sim.node(4).put_mutable(now, v2.clone(), Some(1));
    sim.run_for(Duration::from_secs(10));
    assert!(matches!(sim.outcome(4, q), Some(Outcome::Stored { stored_at }) if stored_at >= 6));
    let q = sim
        .node(12)
        .get_mutable(now, key.verifying_key().to_bytes(), b"feed");
    sim.run_for(Duration::from_secs(10));
    let Some(Outcome::Mutable(items)) = sim.outcome(12, q) else {
        panic!("get did not end")
    };
    assert_eq!(items.first(), Some(&v2));
    // An older item cannot replace the newer one anywhere.
    let stale = MutableItem::sign(&key, b"2:v0".to_vec(), 0, b"feed".to_vec()).unwrap();
    let q = sim.node(9).put_mutable(now, stale, None);
    sim.run_for(Duration::from_secs(10));
    assert_eq!(sim.outcome(9, q), Some(Outcome::Stored { stored_at: 0 }));
    let q = sim.node(1).put_immutable(now, b"5:hello".to_vec());
    sim.run_for(Duration::from_secs(10));
    assert!(matches!(sim.outcome(1, q), Some(Outcome::Stored { stored_at }) if stored_at >= 6));
    let q = sim
        .node(19)
        .get_immutable(now, immutable_target(b"5:hello"));
    sim.run_for(Duration::from_secs(10));
    assert_eq!(
        sim.outcome(19, q),
        Some(Outcome::Immutable(Some(b"5:hello".to_vec())))
    );
}

#[test]
fn lookups_end_when_nodes_go_silent() {
    let mut sim = Sim::new(12);
    sim.run_for(Duration::from_secs(5));
    for i in 1..11 {
        sim.down.push(addr(i));
    }
    let now = sim.now;
    let q = sim.node(11).get_peers(now, Id([1; 20]));
    sim.run_for(Duration::from_secs(60));
    assert_eq!(sim.outcome(11, q), Some(Outcome::Peers(Vec::new())));
    let q = sim.node(11).announce_peer(now, Id([1; 20]), None);
    sim.run_for(Duration::from_secs(60));
    assert!(matches!(sim.outcome(11, q), Some(Outcome::Stored { .. })));
}

/// A bare node and a raw query from a client that uses `tid`.
fn ask(
    node: &mut Node<StdRng>,
    now: Instant,
    from: SocketAddrV4,
    tid: &[u8],
    kind: QueryKind,
) -> Option<Message> {
    let query = Message {
        tid: tid.to_vec(),
        ip: None,
        body: Body::Query(Query {
            id: Id([0x99; 20]),
            read_only: true,
            kind,
        }),
    };
    node.handle_packet(now, from, &query.encode());
    let mut answer = None;
    while let Some(t) = node.poll_transmit() {
        assert_eq!(t.to, from);
        answer = Some(Message::decode(&t.bytes).unwrap());
    }
    answer
}

#[test]
fn queries_are_answered_whatever_the_tid_length_and_it_is_echoed() {
    let now = Instant::now();
    let mut node = Node::new(StdRng::seed_from_u64(1), config());
    let client = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 6881);
    for tid in [
        &b""[..],
        b"\x01",
        b"ab",
        b"abcd",
        b"12345678",
        b"0123456789abcdef",
    ] {
        let answer = ask(&mut node, now, client, tid, QueryKind::Ping).expect("answered");
        assert_eq!(answer.tid, tid);
        assert_eq!(
            answer.ip,
            Some(client),
            "BEP 42: the answer tells the client its address"
        );
        assert!(matches!(answer.body, Body::Response(r) if r.id == Some(node.id())));
    }
    assert!(
        ask(&mut node, now, client, &[0; 17], QueryKind::Ping).is_none(),
        "over the cap: dropped"
    );
    // Unknown methods and broken queries get KRPC errors with the same tid.
    node.handle_packet(
        now,
        client,
        b"d1:ad2:id20:aaaaaaaaaaaaaaaaaaaae1:q4:vote1:t2:xy1:y1:qe",
    );
    let t = node.poll_transmit().unwrap();
    let m = Message::decode(&t.bytes).unwrap();
    assert_eq!(m.tid, b"xy");
    assert!(matches!(
        m.body,
        Body::Error {
            code: code::METHOD_UNKNOWN,
            ..
        }
    ));
}

#[test]
fn announces_need_a_token_given_to_the_same_ip() {
    let now = Instant::now();
    let mut node = Node::new(StdRng::seed_from_u64(2), config());
    let client = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 6881);
    let other = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 6881);
    let info_hash = Id([5; 20]);
    let Some(Message {
        body: Body::Response(r),
        ..
    }) = ask(
        &mut node,
        now,
        client,
        b"ab",
        QueryKind::GetPeers { info_hash },
    )
    else {
        panic!("no answer")
    };
    let token = r.token.unwrap();
    let announce = |token: Vec<u8>| QueryKind::AnnouncePeer {
        info_hash,
        port: 7000,
        implied_port: false,
        token,
    };
    let refused = ask(&mut node, now, other, b"cd", announce(token.clone())).unwrap();
    assert!(matches!(
        refused.body,
        Body::Error {
            code: code::PROTOCOL,
            ..
        }
    ));
    let refused = ask(&mut node, now, client, b"cd", announce(b"made up".to_vec())).unwrap();
    assert!(matches!(
        refused.body,
        Body::Error {
            code: code::PROTOCOL,
            ..
        }
    ));
    assert_eq!(
        node.storage().infohash_count(),
        0,
        "a refused announce stores nothing"
    );
    let ok = ask(&mut node, now, client, b"cd", announce(token)).unwrap();
    assert!(matches!(ok.body, Body::Response(_)));
    let Some(Message {
        body: Body::Response(r),
        ..
    }) = ask(
        &mut node,
        now,
        other,
        b"x",
        QueryKind::GetPeers { info_hash },
    )
    else {
        panic!("no answer")
    };
    assert_eq!(r.values, vec![SocketAddrV4::new(*client.ip(), 7000)]);
}

#[test]
fn answers_from_another_address_or_unknown_tids_change_nothing() {
    let now = Instant::now();
    let mut node = Node::new(StdRng::seed_from_u64(3), config());
    let real = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 6881);
    let spoofer = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 66), 6881);
    node.bootstrap(now, &[real]);
    let sent = node.poll_transmit().unwrap();
    let query = Message::decode(&sent.bytes).unwrap();
    let answer = Message {
        tid: query.tid.clone(),
        ip: None,
        body: Body::Response(crate::krpc::Response {
            id: Some(Id([0x80; 20])),
            ..Default::default()
        }),
    };
    node.handle_packet(now, spoofer, &answer.encode());
    assert!(node.routing_table().is_empty());
    let wrong_tid = Message {
        tid: b"zz".to_vec(),
        ..answer.clone()
    };
    node.handle_packet(now, real, &wrong_tid.encode());
    assert!(node.routing_table().is_empty());
    node.handle_packet(now, real, &answer.encode());
    assert_eq!(node.routing_table().len(), 1);
}

#[test]
fn loopback_nodes_named_by_others_are_not_contacted_unless_allowed() {
    let now = Instant::now();
    let mut node = Node::new(StdRng::seed_from_u64(4), config());
    let real = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 6881);
    node.bootstrap(now, &[real, SocketAddrV4::new(Ipv4Addr::LOCALHOST, 22)]);
    let sent = node.poll_transmit().unwrap();
    assert!(
        node.poll_transmit().is_none(),
        "the loopback bootstrap entry is skipped"
    );
    let query = Message::decode(&sent.bytes).unwrap();
    let answer = Message {
        tid: query.tid,
        ip: None,
        body: Body::Response(crate::krpc::Response {
            id: Some(Id([0x80; 20])),
            nodes: vec![NodeInfo {
                id: Id([0x81; 20]),
                addr: SocketAddrV4::new(Ipv4Addr::LOCALHOST, 631),
            }],
            ..Default::default()
        }),
    };
    node.handle_packet(now, real, &answer.encode());
    while let Some(t) = node.poll_transmit() {
        assert!(!t.to.ip().is_loopback(), "sent to {}", t.to);
    }
}

#[test]
fn a_lookup_also_returns_what_this_node_stores_itself() {
    // Two nodes: what node 1 announces is stored on node 0, whose own lookup asks only node 1.
    let mut sim = Sim::new(2);
    sim.run_for(Duration::from_secs(5));
    let now = sim.now;
    let q = sim.node(1).announce_peer(now, Id([3; 20]), Some(5000));
    sim.run_for(Duration::from_secs(10));
    assert_eq!(sim.outcome(1, q), Some(Outcome::Stored { stored_at: 1 }));
    let q = sim.node(0).get_peers(now, Id([3; 20]));
    sim.run_for(Duration::from_secs(10));
    assert_eq!(
        sim.outcome(0, q),
        Some(Outcome::Peers(vec![SocketAddrV4::new(*addr(1).ip(), 5000)]))
    );
}
