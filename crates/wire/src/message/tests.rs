use proptest::prelude::*;

use super::*;

fn message_strategy() -> impl Strategy<Value = Message> {
    prop_oneof![
        (any::<u32>(), "\\PC{0,16}", any::<u16>())
            .prop_filter("agent within cap", |(_, agent, _)| agent.len()
                <= MAX_AGENT_BYTES)
            .prop_map(|(protocol, agent, bt_port)| Message::Hello {
                protocol,
                agent,
                bt_port,
            }),
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 1..8)
            .prop_map(|records| Message::Records { records }),
        prop::collection::vec(any::<[u8; 32]>(), 1..=MAX_FETCH_IDS).prop_map(|ids| {
            Message::Fetch {
                ids: ids.into_iter().map(RecordId).collect(),
            }
        }),
        prop::collection::vec(any::<[u8; 32]>(), 1..=MAX_FETCH_IDS).prop_map(|ids| {
            Message::Have {
                ids: ids.into_iter().map(RecordId).collect(),
            }
        }),
        any::<[u8; 32]>().prop_map(|author| Message::FetchAuthor {
            author: kolokol_core::keys::PublicKey::from_bytes(author)
        }),
        (any::<u64>(), prop::collection::vec(any::<u8>(), 1..200))
            .prop_map(|(session, frame)| Message::Reconcile { session, frame }),
        any::<u64>().prop_map(|nonce| Message::Ping { nonce }),
        any::<u64>().prop_map(|nonce| Message::Pong { nonce }),
        prop::collection::vec(any::<u8>(), 1..300).prop_map(|record| Message::Replicate { record }),
        any::<[u8; 20]>().prop_map(|infohash| Message::Decline { infohash }),
        prop::collection::vec(any::<[u8; 20]>(), 1..=MAX_HOLDING)
            .prop_map(|infohashes| Message::Holding { infohashes }),
        (
            any::<u64>(),
            any::<[u8; 20]>(),
            any::<[u8; 32]>(),
            prop::collection::vec((0u64..u64::MAX / 2, 1u32..=MAX_RANGE_LEN), 1..=MAX_RANGES)
        )
            .prop_map(|(id, infohash, nonce, ranges)| Message::Challenge {
                id,
                infohash,
                nonce,
                ranges: ranges
                    .into_iter()
                    .map(|(offset, len)| ByteRange { offset, len })
                    .collect(),
            }),
        (any::<u64>(), any::<[u8; 32]>()).prop_map(|(id, digest)| Message::Proof { id, digest }),
    ]
}

proptest! {
    #[test]
    fn round_trip(message in message_strategy()) {
        let bytes = message.encode().unwrap();
        prop_assert_eq!(Message::decode(&bytes).unwrap(), message);
    }

    #[test]
    fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Message::decode(&bytes);
    }

    /// Damaged encodings of real messages reach deeper into the decoder than random bytes; whatever
    /// decodes must be canonical (encode gives back the same bytes).
    #[test]
    fn damaged_messages_never_panic(
        message in message_strategy(),
        position in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = message.encode().unwrap();
        let at = position.index(bytes.len());
        bytes[at] = byte;
        bytes.truncate(cut.index(bytes.len() + 1).max(at));
        if let Ok(decoded) = Message::decode(&bytes) {
            prop_assert_eq!(decoded.encode().unwrap(), bytes);
        }
    }
}

fn dict(entries: &[(&str, Value)]) -> Vec<u8> {
    let dict: Dict = entries
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.clone()))
        .collect();
    bencode::encode(&Value::Dict(dict))
}

fn ids_value(count: usize, len: usize) -> Value {
    Value::List((0..count).map(|_| Value::Bytes(vec![1; len])).collect())
}

#[test]
fn refuses_unknown_type() {
    let bytes = dict(&[("t", Value::from("teleport"))]);
    assert_eq!(
        Message::decode(&bytes),
        Err(MessageError::UnknownType("teleport".into()))
    );
}

#[test]
fn refuses_the_retired_inventory_messages() {
    // Protocol 1's full inventory exchange is gone: its messages are unknown types now.
    for tag in [
        "inventory",
        "inventory_done",
        "want",
        "missing",
        "satisfied",
    ] {
        let bytes = dict(&[("ids", ids_value(1, 32)), ("t", tag.into())]);
        assert_eq!(
            Message::decode(&bytes),
            Err(MessageError::UnknownType(tag.into()))
        );
    }
}

#[test]
fn refuses_missing_and_extra_fields() {
    let missing = dict(&[("t", Value::from("ping"))]);
    assert!(matches!(
        Message::decode(&missing),
        Err(MessageError::Field(FieldError::Missing { .. }))
    ));
    let extra = dict(&[
        ("nonce", Value::from(vec![0u8; 8])),
        ("t", Value::from("ping")),
        ("x", Value::Int(1)),
    ]);
    assert!(matches!(
        Message::decode(&extra),
        Err(MessageError::Field(FieldError::UnknownKey { .. }))
    ));
    let no_tag = dict(&[("nonce", Value::from(vec![0u8; 8]))]);
    assert!(matches!(
        Message::decode(&no_tag),
        Err(MessageError::Field(FieldError::Missing { .. }))
    ));
}

#[test]
fn refuses_bad_ids() {
    let too_many = dict(&[
        ("ids", ids_value(MAX_FETCH_IDS + 1, 32)),
        ("t", "fetch".into()),
    ]);
    assert!(matches!(
        Message::decode(&too_many),
        Err(MessageError::TooManyItems { .. })
    ));
    let short = dict(&[("ids", ids_value(1, 31)), ("t", "have".into())]);
    assert_eq!(Message::decode(&short), Err(MessageError::BadIdLength(31)));
    let empty = dict(&[("ids", ids_value(0, 32)), ("t", "fetch".into())]);
    assert_eq!(Message::decode(&empty), Err(MessageError::Empty("ids")));
    let not_bytes = dict(&[
        ("ids", Value::List(vec![Value::Int(3)])),
        ("t", "have".into()),
    ]);
    assert_eq!(
        Message::decode(&not_bytes),
        Err(MessageError::ItemNotBytes("ids"))
    );
    let full = dict(&[("ids", ids_value(MAX_FETCH_IDS, 32)), ("t", "fetch".into())]);
    assert!(
        matches!(Message::decode(&full), Ok(Message::Fetch { ids }) if ids.len() == MAX_FETCH_IDS)
    );
}

#[test]
fn refuses_bad_scalars() {
    let hello = |protocol: i64, agent: &str| {
        dict(&[
            ("agent", agent.into()),
            ("bt_port", Value::Int(6881)),
            ("protocol", Value::Int(protocol)),
            ("t", "hello".into()),
        ])
    };
    assert!(Message::decode(&hello(2, "kolokol")).is_ok());
    assert_eq!(
        Message::decode(&hello(-1, "a")),
        Err(MessageError::OutOfRange("protocol"))
    );
    assert_eq!(
        Message::decode(&hello(1 << 40, "a")),
        Err(MessageError::OutOfRange("protocol"))
    );
    // Protocol 1's hello carried `records`; it is refused as an unknown field.
    let old = dict(&[
        ("agent", "kolokol/0.1.0".into()),
        ("bt_port", Value::Int(0)),
        ("protocol", Value::Int(1)),
        ("records", Value::Int(0)),
        ("t", "hello".into()),
    ]);
    assert!(matches!(
        Message::decode(&old),
        Err(MessageError::Field(FieldError::UnknownKey { .. }))
    ));
    let port = |bt_port: i64| {
        dict(&[
            ("agent", "a".into()),
            ("bt_port", Value::Int(bt_port)),
            ("protocol", Value::Int(2)),
            ("t", "hello".into()),
        ])
    };
    assert!(matches!(
        Message::decode(&port(0)),
        Ok(Message::Hello { bt_port: 0, .. })
    ));
    assert_eq!(
        Message::decode(&port(65536)),
        Err(MessageError::OutOfRange("bt_port"))
    );
    assert_eq!(
        Message::decode(&port(-1)),
        Err(MessageError::OutOfRange("bt_port"))
    );
    assert_eq!(
        Message::decode(&hello(2, &"a".repeat(65))),
        Err(MessageError::AgentTooLong(65))
    );
    let nonce = dict(&[("nonce", Value::from(vec![0u8; 7])), ("t", "pong".into())]);
    assert_eq!(
        Message::decode(&nonce),
        Err(MessageError::BadNonceLength(7))
    );
}

#[test]
fn refuses_oversized_records() {
    let big = dict(&[
        (
            "records",
            Value::List(vec![Value::Bytes(vec![0; MAX_RECORD_BYTES + 1])]),
        ),
        ("t", "records".into()),
    ]);
    assert!(matches!(
        Message::decode(&big),
        Err(MessageError::RecordTooLarge { .. })
    ));
    let message = Message::Records {
        records: vec![vec![0; MAX_RECORD_BYTES + 1]],
    };
    assert!(matches!(
        message.encode(),
        Err(MessageError::RecordTooLarge { .. })
    ));
}

#[test]
fn refuses_to_encode_out_of_bounds() {
    assert_eq!(
        Message::Fetch { ids: vec![] }.encode(),
        Err(MessageError::Empty("ids"))
    );
    let long = Message::Hello {
        protocol: 2,
        agent: "é".repeat(33),
        bt_port: 0,
    };
    assert_eq!(long.encode(), Err(MessageError::AgentTooLong(66)));
}

#[test]
fn refuses_non_canonical_and_non_dict() {
    // Keys out of order.
    assert!(matches!(
        Message::decode(b"d5:nonce8:\0\0\0\0\0\0\0\x011:t4:pinge"),
        Ok(Message::Ping { nonce: 1 })
    ));
    assert!(matches!(
        Message::decode(b"d1:t4:ping5:nonce8:\0\0\0\0\0\0\0\x01e"),
        Err(MessageError::Bencode(_))
    ));
    assert_eq!(
        Message::decode(b"i3e"),
        Err(MessageError::NotADict("integer"))
    );
    assert!(matches!(
        Message::decode(b""),
        Err(MessageError::Bencode(_))
    ));
}

#[test]
fn fetch_is_capped_and_fetch_author_needs_a_32_byte_key() {
    let too_many = Message::Fetch {
        ids: vec![RecordId([1; 32]); MAX_FETCH_IDS + 1],
    };
    assert!(too_many.encode().is_err());
    let mut dict = kolokol_core::bencode::Dict::new();
    dict.insert(
        b"t".to_vec(),
        kolokol_core::bencode::Value::from("fetch_author"),
    );
    dict.insert(
        b"author".to_vec(),
        kolokol_core::bencode::Value::from(&[1u8; 31][..]),
    );
    let bytes = kolokol_core::bencode::encode(&kolokol_core::bencode::Value::Dict(dict));
    assert!(Message::decode(&bytes).is_err());
    let ids = vec![RecordId([7; 32]); MAX_FETCH_IDS + 1];
    let mut dict = kolokol_core::bencode::Dict::new();
    dict.insert(b"t".to_vec(), kolokol_core::bencode::Value::from("fetch"));
    dict.insert(
        b"ids".to_vec(),
        kolokol_core::bencode::Value::List(
            ids.iter()
                .map(|id| kolokol_core::bencode::Value::from(&id.0[..]))
                .collect(),
        ),
    );
    let bytes = kolokol_core::bencode::encode(&kolokol_core::bencode::Value::Dict(dict));
    assert!(
        Message::decode(&bytes).is_err(),
        "a fetch of more than MAX_FETCH_IDS is refused"
    );
}

#[test]
fn replication_messages_refuse_bad_shapes() {
    let short = dict(&[
        ("t", Value::from("decline")),
        ("infohash", Value::Bytes(vec![1; 19])),
    ]);
    assert_eq!(
        Message::decode(&short),
        Err(MessageError::BadInfohashLength(19))
    );
    let empty = dict(&[
        ("t", Value::from("holding")),
        ("infohashes", Value::List(vec![])),
    ]);
    assert_eq!(
        Message::decode(&empty),
        Err(MessageError::Empty("infohashes"))
    );
    let many = dict(&[
        ("t", Value::from("holding")),
        (
            "infohashes",
            Value::List(
                (0..=MAX_HOLDING)
                    .map(|_| Value::Bytes(vec![1; 20]))
                    .collect(),
            ),
        ),
    ]);
    assert!(matches!(
        Message::decode(&many),
        Err(MessageError::TooManyItems {
            field: "infohashes",
            ..
        })
    ));
    let no_record = dict(&[
        ("t", Value::from("replicate")),
        ("record", Value::Bytes(vec![])),
    ]);
    assert_eq!(
        Message::decode(&no_record),
        Err(MessageError::Empty("record"))
    );
    let huge = dict(&[
        ("t", Value::from("replicate")),
        ("record", Value::Bytes(vec![0; MAX_RECORD_BYTES + 1])),
    ]);
    assert!(matches!(
        Message::decode(&huge),
        Err(MessageError::RecordTooLarge { .. })
    ));
}

#[test]
fn have_is_capped_like_fetch_and_never_empty() {
    let too_many = Message::Have {
        ids: vec![RecordId([1; 32]); MAX_FETCH_IDS + 1],
    };
    assert!(too_many.encode().is_err());
    assert!(Message::Have { ids: Vec::new() }.encode().is_err());
    let ids = vec![RecordId([7; 32]); MAX_FETCH_IDS + 1];
    let mut dict = kolokol_core::bencode::Dict::new();
    dict.insert(b"t".to_vec(), kolokol_core::bencode::Value::from("have"));
    dict.insert(
        b"ids".to_vec(),
        kolokol_core::bencode::Value::List(
            ids.iter()
                .map(|id| kolokol_core::bencode::Value::from(id.as_bytes().as_slice()))
                .collect(),
        ),
    );
    let bytes = kolokol_core::bencode::encode(&kolokol_core::bencode::Value::Dict(dict));
    assert!(Message::decode(&bytes).is_err());
    let one = Message::Have {
        ids: vec![RecordId([7; 32])],
    };
    assert_eq!(Message::decode(&one.encode().unwrap()).unwrap(), one);
}

#[test]
fn challenge_and_proof_refuse_bad_shapes() {
    let range = |offset: u64, len: u32| {
        let mut bytes = offset.to_be_bytes().to_vec();
        bytes.extend_from_slice(&len.to_be_bytes());
        Value::Bytes(bytes)
    };
    let challenge = |ranges: Vec<Value>, nonce_len: usize| {
        dict(&[
            ("t", Value::from("challenge")),
            ("id", Value::Bytes(vec![0; 8])),
            ("infohash", Value::Bytes(vec![1; 20])),
            ("nonce", Value::Bytes(vec![2; nonce_len])),
            ("ranges", Value::List(ranges)),
        ])
    };
    let good = challenge(vec![range(5, 10)], 32);
    assert_eq!(
        Message::decode(&good).unwrap(),
        Message::Challenge {
            id: 0,
            infohash: [1; 20],
            nonce: [2; 32],
            ranges: vec![ByteRange { offset: 5, len: 10 }],
        }
    );
    assert_eq!(
        Message::decode(&challenge(vec![range(5, 10)], 31)),
        Err(MessageError::BadLength("nonce"))
    );
    assert_eq!(
        Message::decode(&challenge(vec![], 32)),
        Err(MessageError::Empty("ranges"))
    );
    assert!(matches!(
        Message::decode(&challenge(vec![range(0, 1); MAX_RANGES + 1], 32)),
        Err(MessageError::TooManyItems {
            field: "ranges",
            ..
        })
    ));
    for bad in [
        range(0, 0),
        range(0, MAX_RANGE_LEN + 1),
        range(u64::MAX, 1),
        Value::Bytes(vec![0; 11]),
    ] {
        assert_eq!(
            Message::decode(&challenge(vec![bad], 32)),
            Err(MessageError::BadRange)
        );
    }
    let too_long = Message::Challenge {
        id: 1,
        infohash: [0; 20],
        nonce: [0; 32],
        ranges: vec![ByteRange {
            offset: 0,
            len: MAX_RANGE_LEN + 1,
        }],
    };
    assert_eq!(too_long.encode(), Err(MessageError::BadRange));
    let proof = |digest_len: usize, extra: bool| {
        let mut entries = vec![
            ("t", Value::from("proof")),
            ("id", Value::Bytes(vec![0; 8])),
            ("digest", Value::Bytes(vec![3; digest_len])),
        ];
        if extra {
            entries.push(("more", Value::Int(1)));
        }
        dict(&entries)
    };
    assert_eq!(
        Message::decode(&proof(32, false)).unwrap(),
        Message::Proof {
            id: 0,
            digest: [3; 32]
        }
    );
    assert_eq!(
        Message::decode(&proof(33, false)),
        Err(MessageError::BadLength("digest"))
    );
    assert!(matches!(
        Message::decode(&proof(32, true)),
        Err(MessageError::Field(_))
    ));
}
