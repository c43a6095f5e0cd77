use std::net::IpAddr;

use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::proof::*;
use crate::record::InfoHash;

fn ih(n: u8) -> InfoHash {
    InfoHash([n; 20])
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The piece stream of publication `n`: `total` bytes derived from `n`.
fn data(n: u8, total: u64) -> Vec<u8> {
    (0..total)
        .map(|i| (i as u8).wrapping_mul(31) ^ n.wrapping_add((i >> 8) as u8))
        .collect()
}

/// What an honest holder of `bytes` answers.
fn answer(challenge: &Challenge, bytes: &[u8]) -> [u8; DIGEST_BYTES] {
    let parts: Vec<Vec<u8>> = challenge
        .ranges
        .iter()
        .map(|r| bytes[r.offset as usize..r.offset as usize + r.len as usize].to_vec())
        .collect();
    proof_digest(
        &challenge.nonce,
        &challenge.infohash,
        &challenge.ranges,
        &parts,
    )
    .unwrap()
}

/// Poll one challenge and arm it from `ours`.
fn challenge(
    proofs: &mut HolderProofs<u32>,
    now: u64,
    rng: &mut StdRng,
    ours: &[u8],
) -> (u32, Challenge) {
    match proofs.poll(now, rng) {
        Some(ProofEvent::Challenge { peer, challenge }) => {
            proofs.armed(challenge.id, answer(&challenge, ours));
            (peer, challenge)
        }
        other => panic!("expected a challenge, got {other:?}"),
    }
}

#[test]
fn an_honest_proof_counts_and_a_wrong_one_fails_and_discredits() {
    let mut rng = StdRng::seed_from_u64(1);
    let mut proofs = HolderProofs::new(ProofConfig::default());
    let ours = data(1, 100_000);
    proofs.peer_connected(7, ip("198.51.100.7"));
    proofs.peer_connected(8, ip("203.0.113.8"));
    proofs.claim(&7, ih(1), ours.len() as u64);
    let (peer, c) = challenge(&mut proofs, 10, &mut rng, &ours);
    assert_eq!(peer, 7);
    assert_eq!(c.ranges.len(), 4);
    assert!(ranges_fit(&c.ranges, ours.len() as u64));
    assert!(
        proofs.holders(&ih(1)).is_empty(),
        "a claim alone counts for nothing"
    );
    proofs.proof(&7, c.id, answer(&c, &ours), 11);
    assert_eq!(
        proofs.poll(11, &mut rng),
        Some(ProofEvent::Proven {
            peer: 7,
            infohash: ih(1),
            counted: true
        })
    );
    assert_eq!(proofs.holders(&ih(1)), vec![7]);

    // Peer 8 claims publication 1 and answers from other bytes (it holds something else of the same size).
    proofs.claim(&8, ih(1), ours.len() as u64);
    let (_, c) = challenge(&mut proofs, 12, &mut rng, &ours);
    proofs.proof(&8, c.id, answer(&c, &data(2, 100_000)), 12);
    assert_eq!(
        proofs.poll(12, &mut rng),
        Some(ProofEvent::Failed {
            peer: 8,
            infohash: ih(1),
            failure: ProofFailure::Wrong
        })
    );
    assert_eq!(proofs.holders(&ih(1)), vec![7]);
}

#[test]
fn a_liar_loses_what_it_proved_before() {
    let mut rng = StdRng::seed_from_u64(2);
    let mut proofs = HolderProofs::new(ProofConfig::default());
    let one = data(1, 5000);
    let two = data(2, 5000);
    proofs.peer_connected(3, ip("198.51.100.3"));
    proofs.claim(&3, ih(1), 5000);
    let (_, c) = challenge(&mut proofs, 0, &mut rng, &one);
    proofs.proof(&3, c.id, answer(&c, &one), 1);
    assert!(matches!(
        proofs.poll(1, &mut rng),
        Some(ProofEvent::Proven { .. })
    ));
    proofs.claim(&3, ih(2), 5000);
    let (_, c) = challenge(&mut proofs, 2, &mut rng, &two);
    proofs.proof(&3, c.id, [0; 32], 2);
    assert!(matches!(
        proofs.poll(2, &mut rng),
        Some(ProofEvent::Failed { .. })
    ));
    assert!(proofs.holders(&ih(1)).is_empty());
}

#[test]
fn no_proof_before_the_deadline_fails_and_a_late_one_is_ignored() {
    let mut rng = StdRng::seed_from_u64(3);
    let mut proofs = HolderProofs::new(ProofConfig::default());
    let ours = data(1, 50_000);
    proofs.peer_connected(1, ip("198.51.100.1"));
    proofs.claim(&1, ih(1), 50_000);
    let (_, c) = challenge(&mut proofs, 100, &mut rng, &ours);
    assert_eq!(proofs.next_timeout(), Some(161));
    proofs.tick(160);
    assert_eq!(proofs.poll(160, &mut rng), None);
    proofs.tick(161);
    assert_eq!(
        proofs.poll(161, &mut rng),
        Some(ProofEvent::Failed {
            peer: 1,
            infohash: ih(1),
            failure: ProofFailure::Late
        })
    );
    // The right answer, too late: ignored, never counted.
    proofs.proof(&1, c.id, answer(&c, &ours), 162);
    assert_eq!(proofs.poll(162, &mut rng), None);
    assert!(proofs.holders(&ih(1)).is_empty());
}

#[test]
fn one_holder_per_prefix_is_counted() {
    let mut rng = StdRng::seed_from_u64(4);
    let mut proofs = HolderProofs::new(ProofConfig::default());
    let ours = data(1, 10_000);
    let peers = [
        (1, "198.51.100.1"),
        (2, "198.51.100.200"),      // same /24 as 1
        (3, "198.51.101.1"),        // another /24
        (4, "2001:db8:1:2::1"),     // a /48
        (5, "2001:db8:1:ffff::9"),  // the same /48
        (6, "::ffff:198.51.100.9"), // IPv4-mapped, same /24 as 1
        (7, "192.168.1.10"),        // private: each address counts
        (8, "192.168.1.11"),
        (9, "192.168.1.11"), // the same private address
        (10, "127.0.0.1"),   // loopback: this machine, not limited
        (11, "127.0.0.1"),
    ];
    for (peer, addr) in peers {
        proofs.peer_connected(peer, ip(addr));
        proofs.claim(&peer, ih(1), 10_000);
    }
    let mut counted = Vec::new();
    for round in 0..peers.len() {
        let (peer, c) = challenge(&mut proofs, round as u64, &mut rng, &ours);
        proofs.proof(&peer, c.id, answer(&c, &ours), round as u64);
        match proofs.poll(round as u64, &mut rng) {
            Some(ProofEvent::Proven {
                peer,
                counted: true,
                ..
            }) => counted.push(peer),
            Some(ProofEvent::Proven { counted: false, .. }) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(counted, vec![1, 3, 4, 7, 8, 10, 11]);
    assert_eq!(proofs.holders(&ih(1)).len(), 7);
}

#[test]
fn prefixes() {
    assert_eq!(
        holder_prefix(ip("203.0.113.77")),
        Some(HolderPrefix::V4([203, 0, 113]))
    );
    assert_eq!(
        holder_prefix(ip("::ffff:203.0.113.1")),
        Some(HolderPrefix::V4([203, 0, 113]))
    );
    for loopback in ["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"] {
        assert_eq!(holder_prefix(ip(loopback)), None, "{loopback}");
    }
    for local in [
        "10.1.2.3",
        "172.16.0.1",
        "192.168.0.1",
        "169.254.1.1",
        "100.64.0.1",
        "fd00::1",
        "fe80::1",
    ] {
        assert_eq!(
            holder_prefix(ip(local)),
            Some(HolderPrefix::Local(ip(local))),
            "{local}"
        );
    }
    assert_eq!(
        holder_prefix(ip("2001:db8:aa:bb::1")),
        Some(HolderPrefix::V6([0x20, 0x01, 0x0d, 0xb8, 0x00, 0xaa]))
    );
}

#[test]
fn a_decline_drops_the_claim_without_penalty_and_claims_are_bounded() {
    let mut rng = StdRng::seed_from_u64(5);
    let config = ProofConfig {
        backlog_per_peer: 3,
        ..ProofConfig::default()
    };
    let mut proofs = HolderProofs::new(config);
    proofs.peer_connected(1, ip("198.51.100.1"));
    for n in 0..10 {
        proofs.claim(&1, ih(n), 1000);
    }
    // Unknown peers' claims are ignored.
    proofs.claim(&9, ih(1), 1000);
    let ours = data(0, 1000);
    let (_, first) = challenge(&mut proofs, 0, &mut rng, &ours);
    let (_, second) = challenge(&mut proofs, 0, &mut rng, &ours);
    // Two outstanding per peer: no third before one ends.
    assert_eq!(proofs.poll(0, &mut rng), None);
    // A decline frees the slot for the next claim; it is no failure (the next event is a challenge).
    proofs.declined(&1, &first.infohash);
    let (_, third) = challenge(&mut proofs, 1, &mut rng, &ours);
    assert_eq!(
        [first.infohash, second.infohash, third.infohash],
        [ih(0), ih(1), ih(2)]
    );
    proofs.peer_gone(&1);
    assert_eq!(proofs.pending_count(), 0);
    assert_eq!(proofs.poll(2, &mut rng), None);
}

#[test]
fn a_claim_we_could_not_check_is_challenged_once_we_hold_the_data() {
    let mut rng = StdRng::seed_from_u64(7);
    let mut proofs = HolderProofs::new(ProofConfig::default());
    let ours = data(3, 20_000);
    proofs.peer_connected(1, ip("198.51.100.1"));
    proofs.claim_unchecked(&1, ih(3));
    assert_eq!(
        proofs.poll(0, &mut rng),
        None,
        "nothing to check it against yet"
    );
    assert!(proofs.holders(&ih(3)).is_empty());
    proofs.now_held(ih(3), 20_000);
    let (peer, c) = challenge(&mut proofs, 1, &mut rng, &ours);
    assert_eq!((peer, c.infohash), (1, ih(3)));
    proofs.proof(&1, c.id, answer(&c, &ours), 2);
    assert!(matches!(
        proofs.poll(2, &mut rng),
        Some(ProofEvent::Proven { counted: true, .. })
    ));
    assert_eq!(proofs.holders(&ih(3)), vec![1]);
    // Once checked it is not challenged again.
    proofs.now_held(ih(3), 20_000);
    assert_eq!(proofs.poll(3, &mut rng), None);
}

#[test]
fn locate_splits_a_range_over_files() {
    let lengths = [10, 0, 5, 20];
    assert_eq!(
        locate(&lengths, ByteRange { offset: 8, len: 10 }),
        vec![(0, 8, 2), (2, 0, 5), (3, 0, 3)]
    );
    assert_eq!(
        locate(&lengths, ByteRange { offset: 34, len: 1 }),
        vec![(3, 19, 1)]
    );
    assert!(locate(&lengths, ByteRange { offset: 34, len: 2 }).is_empty());
    assert!(!ranges_fit(&[ByteRange { offset: 34, len: 2 }], 35));
    assert!(!ranges_fit(&[], 35));
    assert!(!ranges_fit(&[ByteRange { offset: 0, len: 0 }], 35));
    assert!(!ranges_fit(
        &[ByteRange {
            offset: u64::MAX,
            len: 1
        }],
        u64::MAX
    ));
}

#[test]
fn a_small_publication_is_challenged_whole() {
    let mut rng = StdRng::seed_from_u64(6);
    let mut proofs = HolderProofs::new(ProofConfig::default());
    proofs.peer_connected(1, ip("198.51.100.1"));
    proofs.claim(&1, ih(1), 10);
    proofs.claim(&1, ih(2), 0);
    let (_, c) = challenge(&mut proofs, 0, &mut rng, &data(1, 10));
    assert!(c.ranges.iter().all(|r| r.offset == 0 && r.len == 10));
    assert_eq!(
        proofs.poll(0, &mut rng),
        None,
        "an empty publication is never challenged"
    );
}

#[derive(Clone, Debug)]
enum Op {
    Connect(u8),
    Gone(u8),
    Claim(u8, u8),
    /// Answer the oldest open challenge of this peer: honestly, wrongly, or decline it.
    Answer(u8, u8),
    Tick(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..6).prop_map(Op::Connect),
        (0u8..6).prop_map(Op::Gone),
        (0u8..6, 0u8..5).prop_map(|(p, h)| Op::Claim(p, h)),
        (0u8..6, 0u8..3).prop_map(|(p, how)| Op::Answer(p, how)),
        (0u8..80).prop_map(Op::Tick),
    ]
}

proptest! {
    /// Over random claims and answers from honest, lying, silent and vanishing peers: only a peer that answered
    /// with a digest of the real bytes ever counts, never after it failed once, at most one per prefix; every
    /// failure is a wrong or late proof; open challenges stay within the per-peer cap.
    #[test]
    fn only_proven_claims_count(ops in proptest::collection::vec(op(), 1..200), seed in any::<u64>()) {
        let mut rng = StdRng::seed_from_u64(seed);
        let config = ProofConfig::default();
        let mut proofs = HolderProofs::new(config.clone());
        // Peer p always comes from addrs[p]: two share a /24, one is loopback.
        let addrs = ["198.51.100.1", "198.51.100.2", "203.0.113.1", "10.0.0.1", "127.0.0.1", "198.51.100.3"];
        let stream = |h: u8| data(h, 3000 + u64::from(h) * 5000);
        let mut now = 0u64;
        let mut open: Vec<(u32, Challenge)> = Vec::new();
        let mut honest_proofs: std::collections::BTreeSet<(u32, InfoHash)> = Default::default();
        let mut prefix_of: std::collections::BTreeMap<u32, Option<HolderPrefix>> = Default::default();
        for op in ops {
            match op {
                Op::Connect(p) => {
                    let addr = ip(addrs[usize::from(p)]);
                    proofs.peer_connected(u32::from(p), addr);
                    prefix_of.insert(u32::from(p), holder_prefix(addr));
                }
                Op::Gone(p) => {
                    proofs.peer_gone(&u32::from(p));
                    open.retain(|(q, _)| *q != u32::from(p));
                }
                Op::Claim(p, h) => proofs.claim(&u32::from(p), ih(h), stream(h).len() as u64),
                Op::Answer(p, how) => {
                    if let Some(i) = open.iter().position(|(q, _)| *q == u32::from(p)) {
                        let (peer, c) = open.remove(i);
                        let real = stream(c.infohash.0[0]);
                        match how {
                            0 => {
                                honest_proofs.insert((peer, c.infohash));
                                proofs.proof(&peer, c.id, answer(&c, &real), now);
                            }
                            1 => proofs.proof(&peer, c.id, answer(&c, &data(99, real.len() as u64)), now),
                            _ => proofs.declined(&peer, &c.infohash),
                        }
                    }
                }
                Op::Tick(dt) => {
                    now += u64::from(dt);
                    proofs.tick(now);
                }
            }
            while let Some(event) = proofs.poll(now, &mut rng) {
                match event {
                    ProofEvent::Challenge { peer, challenge } => {
                        let real = stream(challenge.infohash.0[0]);
                        prop_assert!(ranges_fit(&challenge.ranges, real.len() as u64));
                        proofs.armed(challenge.id, answer(&challenge, &real));
                        open.push((peer, challenge));
                    }
                    ProofEvent::Proven { peer, infohash, .. } => {
                        prop_assert!(honest_proofs.contains(&(peer, infohash)));
                    }
                    ProofEvent::Failed { peer, .. } => {
                        // A liar once is believed nowhere.
                        for h in 0..5 {
                            prop_assert!(!proofs.holders(&ih(h)).contains(&peer));
                        }
                        open.retain(|(q, _)| *q != peer);
                    }
                }
            }
            prop_assert!(proofs.pending_count() <= 6 * config.pending_per_peer);
            for h in 0..5 {
                let holders = proofs.holders(&ih(h));
                let mut prefixes: Vec<_> = holders.iter().filter_map(|p| prefix_of[p]).collect();
                prefixes.sort();
                prefixes.dedup();
                let limited = holders.iter().filter(|p| prefix_of[p].is_some()).count();
                prop_assert_eq!(prefixes.len(), limited);
                for holder in holders {
                    prop_assert!(honest_proofs.contains(&(holder, ih(h))));
                }
            }
        }
    }
}
