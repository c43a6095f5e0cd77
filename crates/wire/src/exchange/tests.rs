//! Two exchanges wired together in memory, plus hostile peers fed by hand.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::pack::pack_records;

const MAX_MESSAGE: usize = 1024 * 1024;

fn record(tag: u32) -> Vec<u8> {
    format!("record number {tag}").into_bytes()
}

fn id(tag: u32) -> RecordId {
    RecordId::of_signed_bytes(&record(tag))
}

fn started() -> Exchange {
    let mut exchange = Exchange::new();
    let opening = exchange.start();
    assert_eq!(opening.len(), 1);
    exchange
}

fn hello(protocol: u32) -> Message {
    Message::Hello {
        protocol,
        agent: "test".into(),
        bt_port: 0,
    }
}

/// Every message must survive the wire codec on its way.
fn through_the_wire(message: Message) -> Message {
    let bytes = message.encode().unwrap();
    assert!(bytes.len() <= MAX_MESSAGE);
    Message::decode(&bytes).unwrap()
}

#[test]
fn two_sides_open_with_hello_and_carry_the_bittorrent_port() {
    let mut a = Exchange::new().with_bt_port(6881);
    let mut b = Exchange::new();
    let a_hello = a.start();
    let b_hello = b.start();
    assert!(!a.is_open() && !b.is_open());
    for m in b_hello {
        assert_eq!(
            a.handle(through_the_wire(m)).unwrap(),
            vec![ExchangeAction::Opened]
        );
    }
    for m in a_hello {
        assert_eq!(
            b.handle(through_the_wire(m)).unwrap(),
            vec![ExchangeAction::Opened]
        );
    }
    assert!(a.is_open() && b.is_open());
    assert_eq!(b.peer_hello().unwrap().bt_port, 6881);
    assert_eq!(b.peer_hello().unwrap().protocol, PROTOCOL_VERSION);
    assert_eq!(a.peer_hello().unwrap().agent, AGENT);
    assert!(a.start().is_empty(), "a second start sends nothing");
}

#[test]
fn fetch_is_answered_with_the_records_held() {
    // B holds records 0..10; A fetches 5..15 and gets exactly the five B holds.
    let store: BTreeMap<RecordId, Vec<u8>> = (0..10).map(|t| (id(t), record(t))).collect();
    let mut a = started();
    let mut b = started();
    a.handle(hello(PROTOCOL_VERSION)).unwrap();
    b.handle(hello(PROTOCOL_VERSION)).unwrap();
    let wanted: Vec<RecordId> = (5..15).map(id).collect();
    let actions = b
        .handle(through_the_wire(Message::Fetch {
            ids: wanted.clone(),
        }))
        .unwrap();
    assert_eq!(actions, vec![ExchangeAction::ServeFetch(wanted.clone())]);
    let found = wanted.iter().filter_map(|i| store.get(i).cloned());
    let mut received = Vec::new();
    for message in pack_records(found, MAX_MESSAGE).unwrap() {
        for action in a.handle(through_the_wire(message)).unwrap() {
            let ExchangeAction::Received(records) = action else {
                panic!("unexpected {action:?}");
            };
            received.extend(records);
        }
    }
    let got: Vec<RecordId> = received
        .iter()
        .map(|r| RecordId::of_signed_bytes(r))
        .collect();
    assert_eq!(got, (5..10).map(id).collect::<Vec<_>>());
}

#[test]
fn each_message_after_hello_becomes_its_action() {
    let mut exchange = started();
    exchange.handle(hello(PROTOCOL_VERSION)).unwrap();
    let author = kolokol_core::keys::PublicKey::from_bytes([3; 32]);
    let cases = vec![
        (
            Message::Ping { nonce: 9 },
            vec![ExchangeAction::Send(Message::Pong { nonce: 9 })],
        ),
        (Message::Pong { nonce: 9 }, vec![]),
        (
            Message::Have { ids: vec![id(1)] },
            vec![ExchangeAction::Announced(vec![id(1)])],
        ),
        (
            Message::FetchAuthor { author },
            vec![ExchangeAction::ServeAuthor(author)],
        ),
        (
            Message::Reconcile {
                session: 4,
                frame: vec![1, 2],
            },
            vec![ExchangeAction::Reconcile {
                session: 4,
                frame: vec![1, 2],
            }],
        ),
        (
            Message::Replicate { record: record(1) },
            vec![ExchangeAction::Replicate(record(1))],
        ),
        (
            Message::Decline { infohash: [7; 20] },
            vec![ExchangeAction::Declined([7; 20])],
        ),
        (
            Message::Holding {
                infohashes: vec![[8; 20]],
            },
            vec![ExchangeAction::Holding(vec![[8; 20]])],
        ),
        (
            Message::Challenge {
                id: 5,
                infohash: [8; 20],
                nonce: [9; 32],
                ranges: vec![kolokol_core::replication::ByteRange {
                    offset: 100,
                    len: 4096,
                }],
            },
            vec![ExchangeAction::Challenged(
                kolokol_core::replication::Challenge {
                    id: 5,
                    infohash: kolokol_core::record::InfoHash([8; 20]),
                    nonce: [9; 32],
                    ranges: vec![kolokol_core::replication::ByteRange {
                        offset: 100,
                        len: 4096,
                    }],
                },
            )],
        ),
        (
            Message::Proof {
                id: 5,
                digest: [1; 32],
            },
            vec![ExchangeAction::Proved {
                id: 5,
                digest: [1; 32],
            }],
        ),
        (
            Message::Records {
                records: vec![record(2)],
            },
            vec![ExchangeAction::Received(vec![record(2)])],
        ),
    ];
    for (message, expected) in cases {
        assert_eq!(
            exchange.handle(through_the_wire(message)).unwrap(),
            expected
        );
    }
}

#[test]
fn refuses_anything_before_hello_and_then_everything() {
    let mut exchange = started();
    assert_eq!(
        exchange.handle(Message::Records {
            records: vec![record(1)]
        }),
        Err(ExchangeError::HelloFirst("records"))
    );
    assert_eq!(
        exchange.handle(hello(PROTOCOL_VERSION)),
        Err(ExchangeError::Failed)
    );
}

#[test]
fn refuses_another_protocol_version() {
    let mut exchange = started();
    assert_eq!(
        exchange.handle(hello(1)),
        Err(ExchangeError::UnsupportedProtocol(1))
    );
    assert!(!exchange.is_open());
    assert_eq!(
        exchange.handle(Message::Ping { nonce: 1 }),
        Err(ExchangeError::Failed)
    );
}

#[test]
fn refuses_a_second_hello() {
    let mut exchange = started();
    exchange.handle(hello(PROTOCOL_VERSION)).unwrap();
    assert_eq!(
        exchange.handle(hello(PROTOCOL_VERSION)),
        Err(ExchangeError::Unexpected("second hello"))
    );
    assert_eq!(
        exchange.handle(Message::Ping { nonce: 1 }),
        Err(ExchangeError::Failed)
    );
}

#[test]
fn refuses_messages_before_start() {
    let mut exchange = Exchange::new();
    assert_eq!(
        exchange.handle(hello(PROTOCOL_VERSION)),
        Err(ExchangeError::NotStarted)
    );
}

proptest! {
    /// Whatever a peer sends, the machine answers with at most one action per message, opens at most once and
    /// never panics; after an error it refuses everything.
    #[test]
    fn any_sequence_is_handled_without_panic(tags in prop::collection::vec(0u8..8, 0..40)) {
        let mut exchange = started();
        let mut opened = 0;
        let mut failed = false;
        for tag in tags {
            let message = match tag {
                0 => hello(PROTOCOL_VERSION),
                1 => hello(7),
                2 => Message::Ping { nonce: 1 },
                3 => Message::Records { records: vec![record(1)] },
                4 => Message::Fetch { ids: vec![id(1)] },
                5 => Message::Have { ids: vec![id(2)] },
                6 => Message::Holding { infohashes: vec![[1; 20]] },
                _ => Message::Reconcile { session: 1, frame: vec![0] },
            };
            match exchange.handle(message) {
                Ok(actions) => {
                    prop_assert!(!failed);
                    prop_assert!(actions.len() <= 1);
                    opened += actions.iter().filter(|a| **a == ExchangeAction::Opened).count();
                }
                Err(_) => failed = true,
            }
        }
        prop_assert!(opened <= 1);
    }
}
