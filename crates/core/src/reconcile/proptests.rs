//! Property tests: any two sets converge to their union in few rounds, under any allowed parameters; the
//! message codec has one byte form per message.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::tests::{assert_exact, id_of, run};
use super::*;

/// Sets drawn from a small universe so that they overlap, with timestamps from a few values so that many items
/// share one (bounds then need id prefixes).
fn set(max_len: usize) -> impl Strategy<Value = VecStorage> {
    // An id determines its record and so its timestamp: derive the timestamp from the id.
    proptest::collection::btree_set(0u64..4000, 0..max_len).prop_map(|numbers| {
        VecStorage::from_items(numbers.into_iter().map(|n| {
            let id = id_of(n);
            Item::new(u64::from(id.0[0] % 50) * 1000, id)
        }))
        .unwrap()
    })
}

fn config() -> impl Strategy<Value = ReconcileConfig> {
    (
        prop_oneof![
            Just(MIN_FRAME_SIZE_LIMIT),
            MIN_FRAME_SIZE_LIMIT..20_000,
            Just(ReconcileConfig::default().frame_size_limit)
        ],
        2usize..=MAX_BUCKETS,
        0usize..=MAX_ID_LIST_THRESHOLD,
    )
        .prop_map(|(frame_size_limit, buckets, threshold)| ReconcileConfig {
            frame_size_limit,
            buckets,
            id_list_threshold: threshold.clamp(buckets, MAX_ID_LIST_THRESHOLD),
            ..ReconcileConfig::default()
        })
}

/// Upper bound on the rounds of an honest session: the depth of the split tree (each side splits in turn,
/// so the initiator's messages are about half the levels) plus the frames needed for the id lists.
fn round_bound(a: &VecStorage, b: &VecStorage, config: &ReconcileConfig) -> u32 {
    let n = (a.len() + b.len()).max(1) as f64;
    let levels = (n / config.id_list_threshold as f64)
        .log(config.buckets as f64)
        .max(0.0)
        .ceil() as u32;
    let id_bytes = (n * 32.0 * 2.0) as u32;
    let frames = id_bytes / (config.frame_size_limit as u32 / 2) + 1;
    levels + 2 + 2 * frames
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn any_two_sets_converge_to_their_union(a in set(1500), b in set(1500), config in config()) {
        let outcome = run(&a, &b, &config);
        assert_exact(&a, &b, &outcome);
        let bound = round_bound(&a, &b, &config);
        prop_assert!(outcome.rounds <= bound, "{} rounds, bound {}", outcome.rounds, bound);
    }

    #[test]
    fn near_equal_sets_need_logarithmic_rounds(
        common in proptest::collection::btree_set(0u64..1_000_000, 0..3000),
        only_a in proptest::collection::btree_set(1_000_000u64..1_000_100, 0..5),
        only_b in proptest::collection::btree_set(1_000_100u64..1_000_200, 0..5),
    ) {
        let make = |extra: &BTreeSet<u64>| {
            VecStorage::from_items(common.iter().chain(extra).map(|n| super::tests::item_of(*n))).unwrap()
        };
        let (a, b) = (make(&only_a), make(&only_b));
        let outcome = run(&a, &b, &ReconcileConfig::default());
        assert_exact(&a, &b, &outcome);
        // 3000 items, 16 buckets, lists below 32: two levels of splitting, so at most 3 initiator messages.
        prop_assert!(outcome.rounds <= 3, "{} rounds", outcome.rounds);
    }

    #[test]
    fn messages_roundtrip_through_their_canonical_bytes(message in arbitrary_message()) {
        let bytes = message.encode();
        prop_assert_eq!(decode(&bytes), Ok(message));
    }

    #[test]
    fn decoding_accepts_only_canonical_bytes(message in arbitrary_message(), cut in any::<prop::sample::Index>(), flip in any::<prop::sample::Index>(), bit in 0u8..8) {
        let bytes = message.encode();
        // Any prefix and any single flipped bit either fails or decodes to a message with exactly those bytes.
        let prefix = &bytes[..cut.index(bytes.len() + 1)];
        if let Ok(m) = decode(prefix) {
            prop_assert_eq!(m.encode(), prefix);
        }
        let mut flipped = bytes.clone();
        let at = flip.index(flipped.len());
        flipped[at] ^= 1 << bit;
        if let Ok(m) = decode(&flipped) {
            prop_assert_eq!(m.encode(), flipped);
        }
    }
}

/// Random messages that follow the rules: bounds strictly ascending, canonical prefixes, unique ids.
fn arbitrary_message() -> impl Strategy<Value = Message> {
    let range = (
        0u64..3,
        0u64..1u64 << 40,
        proptest::collection::vec(1u8..=255, 0..4),
        0u8..3,
        any::<[u8; 16]>(),
        proptest::collection::vec(0u64..1_000_000, 0..4),
    );
    (proptest::collection::vec(range, 0..12), any::<bool>()).prop_map(|(raw, close)| {
        let mut ranges = Vec::new();
        let mut timestamp = 0u64;
        let mut used = BTreeSet::new();
        for (bump, step, prefix, mode, fingerprint, ids) in raw {
            // A bump of zero keeps the timestamp and needs a larger prefix to ascend; make it one byte longer
            // than any before by using the step as a distinct first byte sequence.
            timestamp += if bump == 0 { 1 } else { step };
            let upper = Bound::new(timestamp, &prefix).unwrap();
            let mode = match mode {
                0 => Mode::Skip,
                1 => Mode::Fingerprint(Fingerprint(fingerprint)),
                _ => Mode::IdList(
                    ids.into_iter()
                        .filter(|n| used.insert(*n))
                        .map(id_of)
                        .collect(),
                ),
            };
            ranges.push(Range { upper, mode });
        }
        if close {
            ranges.push(Range {
                upper: Bound::INFINITY,
                mode: Mode::Skip,
            });
        }
        Message { ranges }
    })
}
