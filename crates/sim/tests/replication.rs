//! The replication scenario on a small network (runs in about a second): the policy's effect must show, and a
//! seed must give one exact run.

use kolokol_sim::replication::{ReplicationConfig, Variant, run_replication, run_variants};

fn small() -> ReplicationConfig {
    ReplicationConfig {
        nodes: 300,
        publications: 30,
        mirror_quota: 300_000_000,
        ..ReplicationConfig::default()
    }
}

#[test]
fn push_and_mirrors_keep_publications_available_after_the_publisher_leaves() {
    let reports = run_variants(&small()).unwrap();
    for report in &reports {
        println!("{report}");
        assert_eq!(report.publications, 30);
    }
    let [full, no_push, no_mirrors, neither] = [0, 1, 2, 3].map(|i| &reports[i]);
    assert_eq!(full.variant, Variant::ALL[0]);
    assert_eq!(neither.variant, Variant::ALL[3]);
    // Every publication is announced, after a confirmed replica or at the time-out (which comes before the
    // publisher leaves); without push, at once.
    assert_eq!(full.announced[0] + full.announced[3], 0);
    assert_eq!(full.announced[1] + full.announced[2], 30);
    assert!(full.announced[1] > 20, "{:?}", full.announced);
    assert_eq!(neither.announced[0], 30);
    // Publishers that announce and leave, with nobody fetching on their own: most publications die at once.
    for report in [full, no_push, no_mirrors] {
        for check in 0..2 {
            assert!(report.available[check] >= 0.8, "{report}");
            assert!(
                report.available[check] >= neither.available[check] + 0.4,
                "{report}"
            );
        }
    }
    // Mirrors hold more copies than viewers alone, within their quota (they had to evict).
    assert!(
        full.copies[1] > no_mirrors.copies[1] * 1.3,
        "{full}{no_mirrors}"
    );
    assert!(full.policy.1 > 0, "mirrors evicted under their quota");
    assert_eq!(no_mirrors.policy.0, 0);
}

#[test]
fn a_seed_gives_one_exact_run() {
    let config = ReplicationConfig {
        nodes: 150,
        publications: 10,
        ..small()
    };
    let a = run_replication(config.clone()).unwrap();
    let b = run_replication(config).unwrap();
    assert_eq!(format!("{a}"), format!("{b}"));
    assert_eq!(a.bytes, b.bytes);
}
