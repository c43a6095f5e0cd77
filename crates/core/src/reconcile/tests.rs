//! Unit tests: honest sessions over chosen sets, frame limits, and the byte cost of small differences.

use std::collections::BTreeSet;

use super::*;
use crate::record::RecordId;

/// A deterministic id from a number (SHA-256 of it, like real record ids).
pub(super) fn id_of(n: u64) -> RecordId {
    RecordId::of_signed_bytes(&n.to_le_bytes())
}

/// An item from a number, with a timestamp spread over a year and some collisions (several items per second).
pub(super) fn item_of(n: u64) -> Item {
    Item::new(1_700_000_000 + (n * 7919) % 31_536_000 / 4, id_of(n))
}

pub(super) fn storage(numbers: impl IntoIterator<Item = u64>) -> VecStorage {
    VecStorage::from_items(numbers.into_iter().map(item_of)).unwrap()
}

/// What an honest session between two storages produced.
#[derive(Debug)]
pub(super) struct Outcome {
    pub have: BTreeSet<RecordId>,
    pub need: BTreeSet<RecordId>,
    pub rounds: u32,
    /// Bytes both ways.
    pub bytes: u64,
    pub status: InitiatorStatus,
}

pub(super) fn run(ours: &VecStorage, theirs: &VecStorage, config: &ReconcileConfig) -> Outcome {
    let mut initiator = Initiator::new(config.clone()).unwrap();
    let mut responder = Responder::new(config.clone()).unwrap();
    let mut message = initiator.initiate(ours).unwrap();
    let mut bytes = message.len() as u64;
    loop {
        assert!(message.len() <= MAX_FRAME_BYTES);
        let answer = responder.handle(theirs, &message).unwrap();
        assert!(answer.len() <= MAX_FRAME_BYTES);
        bytes += answer.len() as u64;
        let step = initiator.handle(ours, &answer).unwrap();
        match step.reply {
            Some(next) => {
                bytes += next.len() as u64;
                message = next;
            }
            None => break,
        }
    }
    assert_eq!(initiator.bytes_sent() + initiator.bytes_received(), bytes);
    Outcome {
        have: initiator.have().clone(),
        need: initiator.need().clone(),
        rounds: initiator.rounds(),
        bytes,
        status: initiator.status(),
    }
}

pub(super) fn ids(storage: &VecStorage) -> BTreeSet<RecordId> {
    storage.items().iter().map(|i| i.id).collect()
}

pub(super) fn assert_exact(ours: &VecStorage, theirs: &VecStorage, outcome: &Outcome) {
    let a = ids(ours);
    let b = ids(theirs);
    assert_eq!(outcome.status, InitiatorStatus::Complete);
    assert_eq!(
        outcome.have,
        a.difference(&b).copied().collect::<BTreeSet<_>>()
    );
    assert_eq!(
        outcome.need,
        b.difference(&a).copied().collect::<BTreeSet<_>>()
    );
}

#[test]
fn equal_sets_settle_in_one_round_trip() {
    let a = storage(0..5000);
    let outcome = run(&a, &a.clone(), &ReconcileConfig::default());
    assert_exact(&a, &a, &outcome);
    assert_eq!(outcome.rounds, 1);
    // 16 fingerprints out, an empty answer back.
    assert!(outcome.bytes < 16 * 40 + 10, "{}", outcome.bytes);
}

#[test]
fn empty_sides() {
    let empty = VecStorage::new();
    let some = storage(0..100);
    let config = ReconcileConfig::default();
    assert_exact(&empty, &empty, &run(&empty, &empty, &config));
    assert_exact(&empty, &some, &run(&empty, &some, &config));
    assert_exact(&some, &empty, &run(&some, &empty, &config));
}

#[test]
fn small_sets_are_listed() {
    let a = storage([1, 2, 3]);
    let b = storage([3, 4]);
    let outcome = run(&a, &b, &ReconcileConfig::default());
    assert_exact(&a, &b, &outcome);
    assert_eq!(outcome.rounds, 1);
}

#[test]
fn disjoint_large_sets_converge_under_the_smallest_frame() {
    let a = storage(0..3000);
    let b = storage(3000..7000);
    let config = ReconcileConfig {
        frame_size_limit: MIN_FRAME_SIZE_LIMIT,
        ..ReconcileConfig::default()
    };
    let outcome = run(&a, &b, &config);
    assert_exact(&a, &b, &outcome);
    // 7000 ids of 32 bytes in frames of 4 KiB: at least 7000 * 32 / 4096 = 55 messages in all.
    assert!(outcome.rounds >= 27, "{}", outcome.rounds);
}

#[test]
fn every_message_respects_the_frame_limit() {
    let a = storage((0..6000).filter(|n| n % 3 != 0));
    let b = storage((0..6000).filter(|n| n % 5 != 0));
    let config = ReconcileConfig {
        frame_size_limit: MIN_FRAME_SIZE_LIMIT,
        ..ReconcileConfig::default()
    };
    let mut initiator = Initiator::new(config.clone()).unwrap();
    let mut responder = Responder::new(config.clone()).unwrap();
    let mut message = initiator.initiate(&a).unwrap();
    loop {
        assert!(
            message.len() <= config.frame_size_limit,
            "{}",
            message.len()
        );
        let answer = responder.handle(&b, &message).unwrap();
        assert!(answer.len() <= config.frame_size_limit, "{}", answer.len());
        match initiator.handle(&a, &answer).unwrap().reply {
            Some(next) => message = next,
            None => break,
        }
    }
    assert_eq!(initiator.status(), InitiatorStatus::Complete);
    assert_eq!(
        initiator.have().len() + initiator.need().len(),
        ids(&a).symmetric_difference(&ids(&b)).count()
    );
}

#[test]
fn ids_are_reported_once_per_session() {
    let a = storage(0..4000);
    let b = storage(2000..6000);
    let config = ReconcileConfig {
        frame_size_limit: MIN_FRAME_SIZE_LIMIT,
        ..ReconcileConfig::default()
    };
    let mut initiator = Initiator::new(config.clone()).unwrap();
    let mut responder = Responder::new(config).unwrap();
    let mut message = initiator.initiate(&a).unwrap();
    let (mut have, mut need) = (Vec::new(), Vec::new());
    loop {
        let answer = responder.handle(&b, &message).unwrap();
        let step = initiator.handle(&a, &answer).unwrap();
        have.extend(step.have);
        need.extend(step.need);
        match step.reply {
            Some(next) => message = next,
            None => break,
        }
    }
    assert_eq!(have.len(), 2000);
    assert_eq!(need.len(), 2000);
    assert_eq!(have.iter().collect::<BTreeSet<_>>().len(), 2000);
}

#[test]
fn max_need_stops_the_session_early() {
    let a = VecStorage::new();
    let b = storage(0..500);
    let config = ReconcileConfig {
        max_need: 100,
        ..ReconcileConfig::default()
    };
    let outcome = run(&a, &b, &config);
    assert_eq!(outcome.status, InitiatorStatus::Truncated);
    assert_eq!(outcome.need.len(), 100);
    assert!(outcome.need.is_subset(&ids(&b)));
}

#[test]
fn items_sharing_a_timestamp_are_told_apart_by_id_prefix() {
    // Every item at the same second: bounds must carry id prefixes.
    let a = VecStorage::from_items((0..2000).map(|n| Item::new(42, id_of(n)))).unwrap();
    let b = VecStorage::from_items((5..2003).map(|n| Item::new(42, id_of(n)))).unwrap();
    let outcome = run(&a, &b, &ReconcileConfig::default());
    assert_exact(&a, &b, &outcome);
}

#[test]
fn sets_may_grow_between_messages() {
    // The session keeps bounds, not indices, so records arriving mid-session do no harm.
    let mut a = storage(0..3000);
    let b = storage(100..3100);
    let config = ReconcileConfig::default();
    let mut initiator = Initiator::new(config.clone()).unwrap();
    let mut responder = Responder::new(config).unwrap();
    let mut message = initiator.initiate(&a).unwrap();
    let mut extra = 10_000;
    loop {
        let answer = responder.handle(&b, &message).unwrap();
        a.insert(item_of(extra)).unwrap();
        extra += 1;
        match initiator.handle(&a, &answer).unwrap().reply {
            Some(next) => message = next,
            None => break,
        }
    }
    let b_ids = ids(&b);
    let want_need: BTreeSet<_> = (3000..3100).map(id_of).collect();
    assert_eq!(initiator.need(), &want_need);
    assert!((0..100).map(id_of).all(|id| initiator.have().contains(&id)));
    assert!(initiator.have().iter().all(|id| !b_ids.contains(id)));
}

#[test]
fn small_difference_in_a_large_set_costs_order_d_log_n_bytes() {
    // n = 10,000 on each side, d = 10 differences (5 on each side, anywhere in time).
    let shared = 0..9995u64;
    let a = storage(shared.clone().chain(20_000..20_005));
    let b = storage(shared.chain(30_000..30_005));
    let outcome = run(&a, &b, &ReconcileConfig::default());
    assert_exact(&a, &b, &outcome);
    let full_id_list = 10_000 * 32;
    // Each difference costs about one path down the tree: log16(10,000 / 32) ~ 2 levels of 16 fingerprints
    // (16 * ~20 bytes) plus a final id list of up to 32 ids (~1 KB) each way. d * log n * 1.5 KB is a
    // generous bound; it is still far below listing the ids.
    let bound = 10 * 2 * 1500;
    assert!(outcome.bytes < bound, "{} bytes", outcome.bytes);
    assert!(outcome.bytes * 8 < full_id_list, "{} bytes", outcome.bytes);
    assert!(outcome.rounds <= 4, "{} rounds", outcome.rounds);
}

#[test]
fn config_validation() {
    assert!(ReconcileConfig::default().validate().is_ok());
    let bad = [
        ReconcileConfig {
            frame_size_limit: 100,
            ..ReconcileConfig::default()
        },
        ReconcileConfig {
            frame_size_limit: MAX_FRAME_BYTES,
            ..ReconcileConfig::default()
        },
        ReconcileConfig {
            buckets: 1,
            ..ReconcileConfig::default()
        },
        ReconcileConfig {
            buckets: 20,
            id_list_threshold: 10,
            ..ReconcileConfig::default()
        },
        ReconcileConfig {
            max_rounds: 0,
            ..ReconcileConfig::default()
        },
    ];
    for config in bad {
        assert!(Initiator::new(config.clone()).is_err(), "{config:?}");
        assert!(Responder::new(config).is_err());
    }
}

#[test]
fn storage_refuses_the_reserved_timestamp_and_keeps_order() {
    let mut s = VecStorage::new();
    assert_eq!(
        s.insert(Item::new(INFINITY_TIMESTAMP, id_of(1))),
        Err(StorageError::ReservedTimestamp)
    );
    assert!(VecStorage::from_items([Item::new(INFINITY_TIMESTAMP, id_of(1))]).is_err());
    for n in [5, 1, 9, 3, 1] {
        s.insert(item_of(n)).unwrap();
    }
    assert_eq!(s.len(), 4);
    assert!(s.items().windows(2).all(|w| w[0] < w[1]));
    assert!(s.remove(&item_of(9)));
    assert!(!s.remove(&item_of(9)));
    assert!(!s.contains(&item_of(9)));
    s.insert(item_of(9)).unwrap();
    let rebuilt = VecStorage::from_items(s.items().iter().copied()).unwrap();
    for from in 0..=4 {
        for to in from..=4 {
            assert_eq!(
                s.fingerprint(from, to).unwrap(),
                fingerprint_of(&s.items()[from..to])
            );
            assert_eq!(
                rebuilt.fingerprint(from, to).unwrap(),
                s.fingerprint(from, to).unwrap()
            );
        }
    }
}

#[test]
fn session_state_errors() {
    let a = storage(0..10);
    let mut initiator = Initiator::new(ReconcileConfig::default()).unwrap();
    assert!(matches!(
        initiator.handle(&a, &[PROTOCOL_VERSION]),
        Err(ReconcileError::NotStarted)
    ));
    initiator.initiate(&a).unwrap();
    assert!(matches!(
        initiator.initiate(&a),
        Err(ReconcileError::AlreadyStarted)
    ));
    // An empty answer settles everything.
    let step = initiator.handle(&a, &[PROTOCOL_VERSION]).unwrap();
    assert_eq!(step.reply, None);
    assert!(matches!(
        initiator.handle(&a, &[PROTOCOL_VERSION]),
        Err(ReconcileError::Finished)
    ));
}

#[test]
fn a_responder_with_far_more_items_lists_them_over_several_frames() {
    // The initiator holds 5 items, so its first message is one id list over everything; the responder holds
    // 20,000 and must list them in pieces, each piece followed by a fingerprint of the rest.
    let a = storage(0..5);
    let b = storage(3..20_003);
    let config = ReconcileConfig {
        frame_size_limit: MIN_FRAME_SIZE_LIMIT,
        ..ReconcileConfig::default()
    };
    let mut initiator = Initiator::new(config.clone()).unwrap();
    let mut responder = Responder::new(config.clone()).unwrap();
    let mut message = initiator.initiate(&a).unwrap();
    let mut answers = 0;
    loop {
        let answer = responder.handle(&b, &message).unwrap();
        assert!(answer.len() <= config.frame_size_limit, "{}", answer.len());
        answers += 1;
        match initiator.handle(&a, &answer).unwrap().reply {
            Some(next) => message = next,
            None => break,
        }
    }
    assert_eq!(initiator.status(), InitiatorStatus::Complete);
    assert_eq!(initiator.need().len(), 19_998);
    assert_eq!(initiator.have(), &(0..3).map(id_of).collect());
    // 20,000 ids of 32 bytes in frames of 4 KiB: at least 160 answers, and not wildly more.
    assert!((160..400).contains(&answers), "{answers} answers");
}
