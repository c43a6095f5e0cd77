//! Hostile messages: every broken rule ends the session with an error and changes nothing; a peer that never
//! lets a session end is cut off after the round limit.

use super::tests::{item_of, storage};
use super::*;
use crate::record::RecordId;

/// The varint of `u64::MAX`.
const MAX_CODE: [u8; 10] = [0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];

fn bytes(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = vec![PROTOCOL_VERSION];
    for part in parts {
        out.extend_from_slice(part);
    }
    out
}

/// Messages that each break one rule, with the error they must give.
/// A named message and the check its error must pass.
type Broken = (&'static str, Vec<u8>, fn(&DecodeError) -> bool);

fn broken_messages() -> Vec<Broken> {
    let id = [7u8; 32];
    let mut duplicate = vec![PROTOCOL_VERSION, 0, 0, 2, 2];
    duplicate.extend_from_slice(&id);
    duplicate.extend_from_slice(&id);
    let mut huge_count = vec![PROTOCOL_VERSION, 0, 0, 2];
    // A count of 2^56 ids followed by a few bytes: refused before any allocation.
    huge_count.extend_from_slice(&[0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]);
    huge_count.extend_from_slice(&[1; 40]);
    vec![
        ("empty", vec![], |e| matches!(e, DecodeError::Empty)),
        ("wrong version", vec![0x62], |e| {
            matches!(e, DecodeError::Version(0x62))
        }),
        (
            "oversized",
            vec![PROTOCOL_VERSION; MAX_FRAME_BYTES + 1],
            |e| matches!(e, DecodeError::Oversized { .. }),
        ),
        // Bound (ts 5) then bound (ts 5 - impossible: deltas are non-negative, so use an equal bound).
        (
            "equal bounds (empty/overlapping range)",
            bytes(&[&[6, 0, 0], &[1, 0, 0]]),
            |e| matches!(e, DecodeError::NotAscending { .. }),
        ),
        (
            "prefix going backwards (unsorted)",
            bytes(&[&[6, 1, 9, 0], &[1, 1, 3, 0]]),
            |e| matches!(e, DecodeError::NotAscending { .. }),
        ),
        ("first bound at zero", bytes(&[&[1, 0, 0]]), |e| {
            matches!(e, DecodeError::NotAscending { .. })
        }),
        (
            "range after infinity",
            bytes(&[&[0, 0, 0], &[0, 0, 0]]),
            |e| matches!(e, DecodeError::AfterInfinity { .. }),
        ),
        ("prefix too long", bytes(&[&[2, 33], &[1; 33], &[0]]), |e| {
            matches!(e, DecodeError::PrefixTooLong { .. })
        }),
        ("prefix ending in zero", bytes(&[&[2, 2, 5, 0, 0]]), |e| {
            matches!(e, DecodeError::NonCanonicalBound { .. })
        }),
        ("infinity with a prefix", bytes(&[&[0, 1, 5, 0]]), |e| {
            matches!(e, DecodeError::NonCanonicalBound { .. })
        }),
        // The first bound is at u64::MAX - 1 (code u64::MAX); the next adds 2 and overflows.
        (
            "timestamp overflow",
            bytes(&[&MAX_CODE, &[0, 0], &[3, 0, 0]]),
            |e| matches!(e, DecodeError::Timestamp { .. }),
        ),
        // Adding 1 instead reaches the reserved value, which only the code 0 may stand for.
        (
            "reserved timestamp as a difference",
            bytes(&[&MAX_CODE, &[0, 0], &[2, 0, 0]]),
            |e| matches!(e, DecodeError::Timestamp { .. }),
        ),
        ("unknown mode 3", bytes(&[&[2, 0, 3]]), |e| {
            matches!(e, DecodeError::Mode { mode: 3, .. })
        }),
        ("unknown mode 4", bytes(&[&[2, 0, 4]]), |e| {
            matches!(e, DecodeError::Mode { mode: 4, .. })
        }),
        ("non-minimal varint", bytes(&[&[0x80, 2, 0, 0]]), |e| {
            matches!(
                e,
                DecodeError::Varint {
                    source: VarintError::NotMinimal,
                    ..
                }
            )
        }),
        (
            "truncated fingerprint",
            bytes(&[&[2, 0, 1], &[9; 15]]),
            |e| {
                matches!(
                    e,
                    DecodeError::Truncated {
                        what: "fingerprint",
                        ..
                    }
                )
            },
        ),
        ("truncated id", bytes(&[&[2, 0, 2, 1], &[9; 31]]), |e| {
            matches!(e, DecodeError::TooManyIds { .. })
        }),
        ("truncated prefix", bytes(&[&[2, 3, 1]]), |e| {
            matches!(
                e,
                DecodeError::Truncated {
                    what: "id prefix",
                    ..
                }
            )
        }),
        ("truncated varint", bytes(&[&[0x81]]), |e| {
            matches!(
                e,
                DecodeError::Varint {
                    source: VarintError::Truncated,
                    ..
                }
            )
        }),
        ("huge id count", huge_count, |e| {
            matches!(e, DecodeError::TooManyIds { .. })
        }),
        ("duplicate id", duplicate, |e| {
            matches!(e, DecodeError::DuplicateId(_))
        }),
    ]
}

#[test]
fn each_broken_rule_is_refused_with_its_error() {
    for (name, message, check) in broken_messages() {
        match decode(&message) {
            Err(e) => assert!(check(&e), "{name}: wrong error {e:?}"),
            Ok(m) => panic!("{name}: accepted as {m:?}"),
        }
    }
}

#[test]
fn a_broken_message_ends_the_initiator_session_and_changes_nothing() {
    let ours = storage(0..3000);
    let theirs = storage(1500..4500);
    for (name, broken, _) in broken_messages() {
        let config = ReconcileConfig {
            frame_size_limit: MIN_FRAME_SIZE_LIMIT,
            ..ReconcileConfig::default()
        };
        let mut initiator = Initiator::new(config.clone()).unwrap();
        let mut responder = Responder::new(config).unwrap();
        // Honest rounds first, until some ids were found, so that there is state to keep.
        let mut message = initiator.initiate(&ours).unwrap();
        while initiator.have().is_empty() {
            let answer = responder.handle(&theirs, &message).unwrap();
            message = initiator.handle(&ours, &answer).unwrap().reply.unwrap();
        }
        assert_eq!(initiator.status(), InitiatorStatus::Waiting);
        let (have, need) = (initiator.have().clone(), initiator.need().clone());
        let (sent, received, rounds) = (
            initiator.bytes_sent(),
            initiator.bytes_received(),
            initiator.rounds(),
        );
        assert!(initiator.handle(&ours, &broken).is_err(), "{name}");
        assert_eq!(initiator.status(), InitiatorStatus::Failed, "{name}");
        assert_eq!(initiator.have(), &have, "{name}");
        assert_eq!(initiator.need(), &need, "{name}");
        assert_eq!(
            (
                initiator.bytes_sent(),
                initiator.bytes_received(),
                initiator.rounds()
            ),
            (sent, received, rounds),
            "{name}"
        );
        // The session is over: even a good message is refused now.
        let good = responder.handle(&theirs, &message).unwrap();
        assert!(
            matches!(
                initiator.handle(&ours, &good),
                Err(ReconcileError::Finished)
            ),
            "{name}"
        );
    }
}

#[test]
fn a_broken_message_ends_the_responder_session() {
    let theirs = storage(0..100);
    for (name, broken, _) in broken_messages() {
        let mut responder = Responder::new(ReconcileConfig::default()).unwrap();
        assert!(responder.handle(&theirs, &broken).is_err(), "{name}");
        assert!(responder.is_failed());
        assert_eq!(responder.rounds(), 0);
        let mut honest = Initiator::new(ReconcileConfig::default()).unwrap();
        let first = honest.initiate(&theirs).unwrap();
        assert!(matches!(
            responder.handle(&theirs, &first),
            Err(ReconcileError::Finished)
        ));
    }
}

#[test]
fn an_initiator_facing_a_peer_that_never_settles_stops_at_the_round_limit() {
    // The peer answers everything with one fingerprint over the whole range that never matches.
    let ours = storage(0..5000);
    let config = ReconcileConfig {
        max_rounds: 20,
        ..ReconcileConfig::default()
    };
    let mut initiator = Initiator::new(config).unwrap();
    initiator.initiate(&ours).unwrap();
    let stubborn = Message {
        ranges: vec![Range {
            upper: Bound::INFINITY,
            mode: Mode::Fingerprint(Fingerprint([0xee; 16])),
        }],
    }
    .encode();
    let mut answers = 0;
    let error = loop {
        match initiator.handle(&ours, &stubborn) {
            Ok(step) => {
                assert!(step.reply.is_some());
                answers += 1;
            }
            Err(e) => break e,
        }
    };
    assert!(matches!(error, ReconcileError::TooManyRounds { max: 20 }));
    assert_eq!(answers, 19);
    assert_eq!(initiator.status(), InitiatorStatus::Failed);
}

#[test]
fn a_responder_facing_an_endless_initiator_stops_at_the_round_limit() {
    let theirs = storage(0..5000);
    let config = ReconcileConfig {
        max_rounds: 10,
        ..ReconcileConfig::default()
    };
    let mut responder = Responder::new(config).unwrap();
    let stubborn = Message {
        ranges: vec![Range {
            upper: Bound::INFINITY,
            mode: Mode::Fingerprint(Fingerprint([0xee; 16])),
        }],
    }
    .encode();
    for _ in 0..10 {
        responder.handle(&theirs, &stubborn).unwrap();
    }
    assert!(matches!(
        responder.handle(&theirs, &stubborn),
        Err(ReconcileError::TooManyRounds { max: 10 })
    ));
}

#[test]
fn lies_about_fingerprints_or_ids_only_reveal_our_own_ids_as_have() {
    // A responder that answers with random fingerprints and invented id lists: the session still ends within
    // the round limit, and everything reported as "have" is ours.
    let ours = storage(0..2000);
    let config = ReconcileConfig {
        max_rounds: 30,
        ..ReconcileConfig::default()
    };
    let mut initiator = Initiator::new(config).unwrap();
    initiator.initiate(&ours).unwrap();
    let mut round = 0u64;
    let mut answer = Message {
        ranges: vec![
            Range {
                upper: Bound::new(item_of(500).timestamp, &[]).unwrap(),
                mode: Mode::Fingerprint(Fingerprint([1; 16])),
            },
            Range {
                upper: Bound::INFINITY,
                mode: Mode::IdList((0..5).map(|n| RecordId([n as u8 + 1; 32])).collect()),
            },
        ],
    };
    loop {
        round += 1;
        match initiator.handle(&ours, &answer.encode()) {
            Ok(step) if step.reply.is_some() => {
                if let Some(Range {
                    mode: Mode::Fingerprint(f),
                    ..
                }) = answer.ranges.first_mut()
                {
                    f.0[0] = round as u8;
                }
            }
            Ok(_) => break,
            Err(e) => {
                assert!(matches!(e, ReconcileError::TooManyRounds { .. }), "{e:?}");
                break;
            }
        }
        assert!(round < 100);
    }
    let our_ids = super::tests::ids(&ours);
    assert!(initiator.have().iter().all(|id| our_ids.contains(id)));
    assert!(initiator.need().len() <= 5);
}
