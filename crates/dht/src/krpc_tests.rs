use proptest::prelude::*;

use super::*;

fn id(b: u8) -> Id {
    Id([b; 20])
}

fn query(tid: &[u8], kind: QueryKind) -> Message {
    Message {
        tid: tid.to_vec(),
        ip: None,
        body: Body::Query(Query {
            id: id(1),
            read_only: false,
            kind,
        }),
    }
}

#[test]
fn reads_libtorrent_style_queries_with_short_tids() {
    // As libtorrent sends them: 2-byte tid, version key, keys we do not know.
    let ping = b"d1:ad2:id20:aaaaaaaaaaaaaaaaaaaae1:q4:ping1:t2:xy1:v4:LT\x01\x021:y1:qe";
    let m = Message::decode(ping).unwrap();
    assert_eq!(m.tid, b"xy");
    assert!(
        matches!(&m.body, Body::Query(q) if q.kind == QueryKind::Ping && q.id == Id([b'a'; 20]))
    );
    // 1-byte tid (aria2 style), unsorted keys.
    let get_peers = b"d1:y1:q1:t1:\x071:q9:get_peers1:ad9:info_hash20:bbbbbbbbbbbbbbbbbbbb2:id20:aaaaaaaaaaaaaaaaaaaaee";
    let m = Message::decode(get_peers).unwrap();
    assert_eq!(m.tid, [7]);
    assert!(
        matches!(&m.body, Body::Query(q) if q.kind == QueryKind::GetPeers { info_hash: Id([b'b'; 20]) })
    );
}

#[test]
fn tids_of_every_length_up_to_the_cap_are_echoed() {
    for len in [0usize, 1, 2, 4, 8, 16] {
        let tid: Vec<u8> = (0..len as u8).collect();
        let bytes = query(&tid, QueryKind::Ping).encode();
        let decoded = Message::decode(&bytes).unwrap();
        assert_eq!(decoded.tid, tid, "tid of {len} bytes");
    }
    let too_long = query(&[0; 17], QueryKind::Ping).encode();
    assert_eq!(Message::decode(&too_long), Err(KrpcError::Tid));
}

#[test]
fn broken_queries_keep_their_tid_for_the_error_answer() {
    let no_target = b"d1:ad2:id20:aaaaaaaaaaaaaaaaaaaae1:q9:find_node1:t2:ab1:y1:qe";
    assert!(
        matches!(Message::decode(no_target), Err(KrpcError::BadQuery { tid, .. }) if tid == b"ab")
    );
    let unknown = b"d1:ad2:id20:aaaaaaaaaaaaaaaaaaaae1:q5:vote!1:t1:z1:y1:qe";
    assert!(
        matches!(Message::decode(unknown), Err(KrpcError::UnknownMethod { tid, .. }) if tid == b"z")
    );
    let bad_port = query(b"t", QueryKind::Ping).encode();
    let bad_port = String::from_utf8_lossy(&bad_port).replace("4:ping", "13:announce_peer");
    assert!(Message::decode(bad_port.as_bytes()).is_err());
}

#[test]
fn announce_port_must_fit_u16() {
    let b = b"d1:ad2:id20:aaaaaaaaaaaaaaaaaaaa9:info_hash20:bbbbbbbbbbbbbbbbbbbb4:porti70000e5:token2:tke1:q13:announce_peer1:t2:ab1:y1:qe";
    assert!(matches!(
        Message::decode(b),
        Err(KrpcError::BadQuery { reason: "port", .. })
    ));
}

#[test]
fn responses_cap_their_lists() {
    let values: Vec<SocketAddrV4> = (0..200u16)
        .map(|p| SocketAddrV4::new([10, 0, 0, 1].into(), p + 1))
        .collect();
    let m = Message {
        tid: b"ab".to_vec(),
        ip: Some("9.8.7.6:5".parse().unwrap()),
        body: Body::Response(Response {
            id: Some(id(3)),
            values,
            ..Response::default()
        }),
    };
    let decoded = Message::decode(&m.encode()).unwrap();
    let Body::Response(r) = decoded.body else {
        panic!("not a response")
    };
    assert_eq!(r.values.len(), MAX_VALUES);
    assert_eq!(decoded.ip, Some("9.8.7.6:5".parse().unwrap()));
}

#[test]
fn signed_bytes_follow_bep44() {
    // The BEP 44 test vector layout.
    assert_eq!(
        mutable_signed_bytes(b"foobar", 1, b"12:Hello World!"),
        b"4:salt6:foobar3:seqi1e1:v12:Hello World!".to_vec()
    );
    assert_eq!(
        mutable_signed_bytes(b"", 1, b"12:Hello World!"),
        b"3:seqi1e1:v12:Hello World!".to_vec()
    );
}

fn arb_id() -> impl Strategy<Value = Id> {
    any::<[u8; 20]>().prop_map(Id)
}

fn arb_addr() -> impl Strategy<Value = SocketAddrV4> {
    (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddrV4::new(ip.into(), port))
}

fn arb_bvalue() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..100).prop_map(|b| Bencode::Bytes(b).encode()),
        any::<i64>()
            .prop_filter("min", |i| *i != i64::MIN)
            .prop_map(|i| Bencode::Int(i).encode()),
    ]
}

fn arb_kind() -> impl Strategy<Value = QueryKind> {
    let token = proptest::collection::vec(any::<u8>(), 0..=MAX_TOKEN);
    prop_oneof![
        Just(QueryKind::Ping),
        arb_id().prop_map(|target| QueryKind::FindNode { target }),
        arb_id().prop_map(|info_hash| QueryKind::GetPeers { info_hash }),
        (arb_id(), 1..=u16::MAX, any::<bool>(), token.clone()).prop_map(
            |(info_hash, port, implied_port, token)| QueryKind::AnnouncePeer {
                info_hash,
                port,
                implied_port,
                token
            }
        ),
        (
            arb_id(),
            proptest::option::of(any::<i64>().prop_filter("min", |i| *i != i64::MIN))
        )
            .prop_map(|(target, seq)| QueryKind::Get { target, seq }),
        (token.clone(), arb_bvalue()).prop_map(|(token, value)| QueryKind::Put {
            token,
            item: PutItem::Immutable { value }
        }),
        (
            token,
            any::<[u8; 32]>(),
            proptest::collection::vec(any::<u8>(), 64..=64),
            0..i64::MAX,
            proptest::collection::vec(any::<u8>(), 0..=MAX_SALT),
            arb_bvalue(),
            proptest::option::of(0..i64::MAX)
        )
            .prop_map(|(token, key, sig, seq, salt, value, cas)| QueryKind::Put {
                token,
                item: PutItem::Mutable {
                    key,
                    signature: sig.try_into().unwrap(),
                    seq,
                    salt,
                    value,
                    cas
                }
            }),
    ]
}

fn arb_tid() -> impl Strategy<Value = Vec<u8>> {
    // 1, 2, 4 and 8 bytes are what clients use; any length up to the cap must work.
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 1..=1),
        proptest::collection::vec(any::<u8>(), 2..=2),
        proptest::collection::vec(any::<u8>(), 8..=8),
        proptest::collection::vec(any::<u8>(), 0..=MAX_TID),
    ]
}

proptest! {
    #[test]
    fn queries_round_trip(tid in arb_tid(), qid in arb_id(), ro in any::<bool>(), kind in arb_kind()) {
        let m = Message { tid, ip: None, body: Body::Query(Query { id: qid, read_only: ro, kind }) };
        prop_assert_eq!(Message::decode(&m.encode()).unwrap(), m);
    }

    #[test]
    fn responses_round_trip(
        tid in arb_tid(),
        rid in proptest::option::of(arb_id()),
        nodes in proptest::collection::vec((arb_id(), arb_addr()).prop_map(|(id, addr)| NodeInfo { id, addr }), 0..=MAX_NODES),
        values in proptest::collection::vec(arb_addr(), 0..20),
        token in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..=MAX_TOKEN)),
        value in proptest::option::of(arb_bvalue()),
        seq in proptest::option::of(any::<i64>().prop_filter("min", |i| *i != i64::MIN)),
    ) {
        let m = Message { tid, ip: None, body: Body::Response(Response {
            id: rid, nodes, values, token, value, key: Some([5; 32]), signature: Some([6; 64]), seq,
        })};
        prop_assert_eq!(Message::decode(&m.encode()).unwrap(), m);
    }

    #[test]
    fn errors_round_trip(tid in arb_tid(), code in 0i64..1000, message in proptest::collection::vec(any::<u8>(), 0..100)) {
        let m = Message { tid, ip: None, body: Body::Error { code, message } };
        prop_assert_eq!(Message::decode(&m.encode()).unwrap(), m);
    }

    #[test]
    fn any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = Message::decode(&bytes);
    }

    #[test]
    fn mutated_messages_never_panic(kind in arb_kind(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6)) {
        let mut bytes = query(b"ab", kind).encode();
        for (at, b) in flips {
            let len = bytes.len();
            bytes[at % len] = b;
        }
        let _ = Message::decode(&bytes);
    }
}
