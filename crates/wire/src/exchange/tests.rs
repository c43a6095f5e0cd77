//! Pair tests: two exchanges wired together in memory, plus hostile peers fed by hand.

use std::collections::{BTreeMap, VecDeque};

use proptest::prelude::*;

use super::*;
use crate::pack::{missing_messages, pack_records};

const MAX_MESSAGE: usize = 1024 * 1024;

/// A node's store for the test: record bytes by id. Record bytes are opaque to the exchange, so any
/// bytes do; their id is their hash as in the real catalog.
type Store = BTreeMap<RecordId, Vec<u8>>;

fn record(tag: u32) -> Vec<u8> {
    format!("record number {tag}").into_bytes()
}

fn store_of(tags: &BTreeSet<u32>) -> Store {
    tags.iter()
        .map(|&t| (RecordId::of_signed_bytes(&record(t)), record(t)))
        .collect()
}

/// One side: its machine, its store, and the records it lost after advertising them.
struct Side {
    exchange: Exchange,
    store: Store,
    outbox: VecDeque<Message>,
}

impl Side {
    fn new(store: Store) -> Self {
        let mut exchange = Exchange::new(store.keys().copied().collect());
        let outbox = exchange.start().into();
        Self {
            exchange,
            store,
            outbox,
        }
    }

    /// Plays the driver: runs the machine on `message` and carries out every action.
    fn deliver(&mut self, message: Message) -> Result<(), ExchangeError> {
        for action in self.exchange.handle(message)? {
            match action {
                ExchangeAction::Send(message) => self.outbox.push_back(message),
                ExchangeAction::SendRecords(ids) => {
                    let (found, gone): (Vec<RecordId>, Vec<RecordId>) =
                        ids.into_iter().partition(|id| self.store.contains_key(id));
                    let records = found.iter().filter_map(|id| self.store.get(id).cloned());
                    self.outbox
                        .extend(pack_records(records, MAX_MESSAGE).unwrap());
                    self.outbox.extend(missing_messages(&gone));
                }
                ExchangeAction::Received(records) => {
                    for bytes in records {
                        self.store.insert(RecordId::of_signed_bytes(&bytes), bytes);
                    }
                }
                ExchangeAction::ServeFetch(ids) => {
                    let records = ids.iter().filter_map(|id| self.store.get(id).cloned());
                    self.outbox
                        .extend(pack_records(records, MAX_MESSAGE).unwrap());
                }
                ExchangeAction::ServeAuthor(_)
                | ExchangeAction::Announced(_)
                | ExchangeAction::Reconcile { .. }
                | ExchangeAction::Replicate(_)
                | ExchangeAction::Declined(_)
                | ExchangeAction::Holding(_) => {}
                ExchangeAction::Done => {}
            }
        }
        Ok(())
    }
}

/// Runs both sides to quiescence; `schedule` picks which side's next message is delivered, so the
/// two directions interleave in many ways.
fn run_pair(a: &mut Side, b: &mut Side, schedule: &[bool]) {
    let mut turn = 0;
    loop {
        let a_first = schedule
            .get(turn % schedule.len().max(1))
            .copied()
            .unwrap_or(true);
        turn += 1;
        let order = if a_first {
            [true, false]
        } else {
            [false, true]
        };
        let mut moved = false;
        for from_a in order {
            let (from, to) = if from_a {
                (&mut *a, &mut *b)
            } else {
                (&mut *b, &mut *a)
            };
            if let Some(message) = from.outbox.pop_front() {
                // Every message must survive the wire codec too.
                let bytes = message.encode().unwrap();
                assert!(bytes.len() <= MAX_MESSAGE);
                to.deliver(Message::decode(&bytes).unwrap()).unwrap();
                moved = true;
                break;
            }
        }
        if !moved {
            return;
        }
    }
}

proptest! {
    #[test]
    fn converges_to_the_union(
        a_tags in prop::collection::btree_set(0u32..400, 0..120),
        b_tags in prop::collection::btree_set(0u32..400, 0..120),
        schedule in prop::collection::vec(any::<bool>(), 1..16),
    ) {
        let mut a = Side::new(store_of(&a_tags));
        let mut b = Side::new(store_of(&b_tags));
        run_pair(&mut a, &mut b, &schedule);
        let union = store_of(&a_tags.union(&b_tags).copied().collect());
        prop_assert!(a.exchange.is_done() && b.exchange.is_done());
        prop_assert_eq!(&a.store, &union);
        prop_assert_eq!(&b.store, &union);
        prop_assert_eq!(a.exchange.outstanding(), 0);
    }

    /// A side that loses records after advertising them answers with `Missing`; both still finish.
    #[test]
    fn completes_when_advertised_records_are_gone(
        a_tags in prop::collection::btree_set(0u32..200, 1..60),
        lost in prop::collection::vec(any::<prop::sample::Index>(), 1..10),
        schedule in prop::collection::vec(any::<bool>(), 1..16),
    ) {
        let mut a = Side::new(store_of(&a_tags));
        let mut b = Side::new(Store::new());
        let ids: Vec<RecordId> = a.store.keys().copied().collect();
        for index in &lost {
            a.store.remove(&ids[index.index(ids.len())]);
        }
        run_pair(&mut a, &mut b, &schedule);
        prop_assert!(a.exchange.is_done() && b.exchange.is_done());
        prop_assert_eq!(&b.store, &a.store);
    }
}

#[test]
fn large_inventory_is_chunked_and_converges() {
    let a_tags: BTreeSet<u32> = (0..10_000).collect();
    let b_tags: BTreeSet<u32> = (5_000..5_100).collect();
    let mut a = Side::new(store_of(&a_tags));
    let inventories = a
        .outbox
        .iter()
        .filter(|m| matches!(m, Message::Inventory { .. }))
        .count();
    assert_eq!(inventories, 3);
    let mut b = Side::new(store_of(&b_tags));
    run_pair(&mut a, &mut b, &[true, false]);
    assert!(a.exchange.is_done() && b.exchange.is_done());
    assert_eq!(b.store.len(), 10_000);
}

#[test]
fn hello_carries_the_bittorrent_port() {
    let mut a = Exchange::new(BTreeSet::new()).with_bt_port(6881);
    let mut b = Exchange::new(BTreeSet::new());
    let hello = a.start().remove(0);
    b.start();
    b.handle(hello).unwrap();
    let seen = b.peer_hello().unwrap();
    assert_eq!(
        (seen.bt_port, seen.protocol, seen.agent.as_str()),
        (6881, PROTOCOL_VERSION, AGENT)
    );
}

#[test]
fn records_pushed_after_done_are_received() {
    let mut a = Side::new(store_of(&[1, 2].into()));
    let mut b = Side::new(store_of(&[3].into()));
    run_pair(&mut a, &mut b, &[true]);
    assert!(a.exchange.may_push() && b.exchange.is_done());
    let fresh = record(99);
    let actions = b
        .exchange
        .handle(Message::Records {
            records: vec![fresh.clone()],
        })
        .unwrap();
    assert_eq!(actions, vec![ExchangeAction::Received(vec![fresh])]);
    let ping = b.exchange.handle(Message::Ping { nonce: 7 }).unwrap();
    assert_eq!(ping, vec![ExchangeAction::Send(Message::Pong { nonce: 7 })]);
}

// Hostile peers. `peer` builds the messages an honest peer would have sent so far.

fn started(local: &[u32]) -> Exchange {
    let ids = local
        .iter()
        .map(|&t| RecordId::of_signed_bytes(&record(t)))
        .collect();
    let mut exchange = Exchange::with_max_inventory(ids, 1000);
    exchange.start();
    exchange
}

fn hello(records: u64) -> Message {
    Message::Hello {
        protocol: PROTOCOL_VERSION,
        agent: "test".into(),
        records,
        bt_port: 0,
    }
}

fn id(tag: u32) -> RecordId {
    RecordId::of_signed_bytes(&record(tag))
}

#[test]
fn refuses_want_for_unadvertised_id() {
    let mut ours = started(&[1, 2]);
    ours.handle(hello(0)).unwrap();
    assert_eq!(
        ours.handle(Message::Want { ids: vec![id(1)] }).unwrap(),
        vec![ExchangeAction::SendRecords(vec![id(1)])]
    );
    assert_eq!(
        ours.handle(Message::Want { ids: vec![id(1)] }),
        Err(ExchangeError::DuplicateWant(id(1)))
    );
    let mut ours = started(&[1, 2]);
    ours.handle(hello(0)).unwrap();
    assert_eq!(
        ours.handle(Message::Want { ids: vec![id(3)] }),
        Err(ExchangeError::UnadvertisedWant(id(3)))
    );
    // Once failed, the machine stays failed.
    assert_eq!(
        ours.handle(Message::Ping { nonce: 1 }),
        Err(ExchangeError::Failed)
    );
}

#[test]
fn refuses_unrequested_records() {
    // Records before we asked for anything.
    let mut ours = started(&[]);
    ours.handle(hello(1)).unwrap();
    let error = ours
        .handle(Message::Records {
            records: vec![record(5)],
        })
        .unwrap_err();
    assert_eq!(error, ExchangeError::UnrequestedRecord(id(5)));

    // A different record than the one asked for, and the same record twice.
    let mut ours = started(&[]);
    ours.handle(hello(1)).unwrap();
    let want = ours
        .handle(Message::Inventory { ids: vec![id(5)] })
        .unwrap();
    assert_eq!(
        want,
        vec![ExchangeAction::Send(Message::Want { ids: vec![id(5)] })]
    );
    let error = ours
        .handle(Message::Records {
            records: vec![record(6)],
        })
        .unwrap_err();
    assert_eq!(error, ExchangeError::UnrequestedRecord(id(6)));

    let mut ours = started(&[]);
    ours.handle(hello(1)).unwrap();
    ours.handle(Message::Inventory { ids: vec![id(5)] })
        .unwrap();
    let error = ours
        .handle(Message::Records {
            records: vec![record(5), record(5)],
        })
        .unwrap_err();
    assert_eq!(error, ExchangeError::UnrequestedRecord(id(5)));

    // Missing for an id never requested.
    let mut ours = started(&[]);
    ours.handle(hello(0)).unwrap();
    assert_eq!(
        ours.handle(Message::Missing { ids: vec![id(8)] }),
        Err(ExchangeError::UnrequestedMissing(id(8)))
    );
}

#[test]
fn refuses_endless_inventory() {
    // Announcing more than the cap fails at once.
    let mut ours = started(&[]);
    assert_eq!(
        ours.handle(hello(1001)),
        Err(ExchangeError::InventoryTooLarge {
            count: 1001,
            max: 1000
        })
    );
    // Listing past what was announced fails as soon as it happens.
    let mut ours = started(&[]);
    ours.handle(hello(1000)).unwrap();
    let mut tags: Vec<RecordId> = (0..2000).map(id).collect();
    tags.sort();
    let mut result = Ok(Vec::new());
    for chunk in tags.chunks(300) {
        result = ours.handle(Message::Inventory {
            ids: chunk.to_vec(),
        });
        if result.is_err() {
            break;
        }
    }
    assert_eq!(
        result,
        Err(ExchangeError::InventoryMismatch {
            announced: 1000,
            listed: 1200
        })
    );
    // And stopping short of it is refused too.
    let mut ours = started(&[]);
    ours.handle(hello(2)).unwrap();
    ours.handle(Message::Inventory { ids: vec![id(1)] })
        .unwrap();
    assert_eq!(
        ours.handle(Message::InventoryDone),
        Err(ExchangeError::InventoryMismatch {
            announced: 2,
            listed: 1
        })
    );
}

#[test]
fn refuses_out_of_order_messages() {
    let mut ours = started(&[]);
    assert_eq!(
        ours.handle(Message::Ping { nonce: 1 }),
        Err(ExchangeError::HelloFirst("ping"))
    );

    let mut ours = started(&[]);
    let bad_version = Message::Hello {
        protocol: 2,
        agent: String::new(),
        records: 0,
        bt_port: 0,
    };
    assert_eq!(
        ours.handle(bad_version),
        Err(ExchangeError::UnsupportedProtocol(2))
    );

    let mut ours = started(&[]);
    ours.handle(hello(2)).unwrap();
    ours.handle(Message::Inventory { ids: vec![id(1)] })
        .unwrap();
    assert_eq!(
        ours.handle(Message::Inventory { ids: vec![id(1)] }),
        Err(ExchangeError::InventoryNotAscending(id(1)))
    );

    let mut ours = started(&[]);
    ours.handle(hello(0)).unwrap();
    ours.handle(Message::InventoryDone).unwrap();
    assert!(ours.handle(Message::InventoryDone).is_err());

    let mut ours = started(&[1]);
    ours.handle(hello(0)).unwrap();
    ours.handle(Message::Satisfied).unwrap();
    assert_eq!(
        ours.handle(Message::Want { ids: vec![id(1)] }),
        Err(ExchangeError::Unexpected("want after satisfied"))
    );

    let mut fresh = Exchange::new(BTreeSet::new());
    assert_eq!(fresh.handle(hello(0)), Err(ExchangeError::NotStarted));
}

#[test]
fn done_exactly_once() {
    let mut ours = started(&[]);
    ours.handle(hello(0)).unwrap();
    assert_eq!(
        ours.handle(Message::InventoryDone).unwrap(),
        vec![ExchangeAction::Send(Message::Satisfied)]
    );
    assert_eq!(
        ours.handle(Message::Satisfied).unwrap(),
        vec![ExchangeAction::Done]
    );
    assert!(ours.is_done());
    assert!(ours.handle(Message::Satisfied).is_err());
}

#[test]
fn fetch_after_the_exchange_gets_records_that_were_never_advertised() {
    let id = RecordId::of_signed_bytes(b"late");
    let mut a = Side::new(Store::new());
    let mut b = Side::new(Store::new());
    run_pair(&mut a, &mut b, &[true, false]);
    assert!(a.exchange.is_done() && b.exchange.is_done());
    // B learned of a record after the exchange (it advertised nothing); A fetches it by id.
    b.store.insert(id, b"late".to_vec());
    b.deliver(Message::Fetch { ids: vec![id] }).unwrap();
    let answer = b.outbox.pop_front().expect("B answers the fetch");
    a.deliver(answer).unwrap();
    assert_eq!(a.store.get(&id).map(Vec::as_slice), Some(&b"late"[..]));
    let author = kolokol_core::keys::Keypair::from_secret_bytes([3; 32]).public();
    assert_eq!(
        b.exchange.handle(Message::FetchAuthor { author }).unwrap(),
        vec![ExchangeAction::ServeAuthor(author)]
    );
}
