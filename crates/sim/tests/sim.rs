//! Small simulated networks, run as tests: the figures the large runs print are asserted here on a scale that
//! runs in seconds.

use std::time::Duration;

use kolokol_core::policy::PolicyConfig;
use kolokol_sim::records::RecordKind;
use kolokol_sim::{PartitionScenario, ReachScenario, SimConfig, run_partition, run_reach};

fn small() -> SimConfig {
    SimConfig {
        nodes: 60,
        initial_records: 200,
        ..SimConfig::default()
    }
}

fn short_reach() -> ReachScenario {
    ReachScenario {
        warmup: Duration::from_secs(90),
        probes: 8,
        probe_interval: Duration::from_secs(10),
        tail: Duration::from_secs(120),
    }
}

#[test]
fn new_records_reach_every_online_node_quickly_and_cheaply() {
    let config = small();
    let record_bytes = f64::from(config.record_bytes);
    let (world, report) = run_reach(config, &short_reach()).unwrap();
    println!("{report}");
    assert_eq!(report.probe_times.len(), 8);
    assert!(report.cohort > 30.0, "cohort {}", report.cohort);
    for times in &report.probe_times {
        // 100% of the cohort, within a few seconds: push alone gets there.
        let all = times[2].expect("every probe reaches its whole cohort");
        assert!(all < Duration::from_secs(10), "{all:?}");
        assert!(times[0] <= times[1] && times[1] <= times[2]);
    }
    // Each node receives each record about once (plus announcements and requests of 34 bytes to 8 peers).
    assert!(
        report.gossip_bytes_per_node_per_record < 2.0 * record_bytes,
        "{}",
        report.gossip_bytes_per_node_per_record
    );
    assert!(report.gossip_bytes_per_node_per_record > record_bytes * 0.8);
    // Rarely a record arrives whole twice: a publisher's direct peer on a slow link can hear of it by id over a
    // faster two-hop path and fetch it before the publisher's own push arrives. At most one per probe.
    assert!(
        report.duplicate_records <= 8,
        "{} records received twice",
        report.duplicate_records
    );
    let (started, completed, errors, _, max_rounds) = report.sessions;
    assert!(started > 100 && completed > 100, "{started} {completed}");
    assert_eq!(errors, 0);
    assert!(max_rounds <= 4, "{max_rounds}");
    // Nodes that came back online caught up with what they missed.
    let (caught_up, _, _, _, max) = report.catchups;
    assert!(caught_up > 0);
    assert!(max.expect("some catch-up") < Duration::from_secs(60));
    // Everything an online node should hold, it holds: all probes and all initial records.
    let probes = world.published(|k| k == RecordKind::Probe);
    let online_complete = world
        .nodes()
        .iter()
        .filter(|n| n.online)
        .filter(|n| n.held.len() == 200 + probes)
        .count();
    assert!(online_complete as f64 >= world.online_count() as f64 * 0.9);
}

#[test]
fn reconciliation_alone_delivers_what_push_does_not() {
    // No push at all: records spread only by periodic reconciliation with random peers.
    let config = SimConfig {
        churn: 0.0,
        policy: PolicyConfig {
            eager_fanout: 0,
            announce_fanout: 0,
            reconcile_interval: Duration::from_secs(10),
            ..PolicyConfig::default()
        },
        ..small()
    };
    let scenario = ReachScenario {
        probes: 3,
        tail: Duration::from_secs(300),
        ..short_reach()
    };
    let (_, report) = run_reach(config, &scenario).unwrap();
    println!("{report}");
    for times in &report.probe_times {
        // A publisher does push to its direct peers (nobody else can hold the record), and from there
        // anti-entropy doubles the holders about every interval: log2(60) ~ 6 intervals of 10 s.
        let all = times[2].expect("reconciliation reaches everyone");
        assert!(all < Duration::from_secs(150), "{all:?}");
        assert!(
            all > Duration::from_secs(5),
            "push was off, so it cannot be that fast: {all:?}"
        );
    }
}

#[test]
fn halves_of_a_partition_converge_after_the_heal() {
    let scenario = PartitionScenario {
        warmup: Duration::from_secs(60),
        per_half: 40,
        publish_over: Duration::from_secs(30),
        cut_for: Duration::from_secs(90),
        observe: Duration::from_secs(300),
    };
    let (world, report) = run_partition(small(), &scenario).unwrap();
    println!("{report}");
    assert_eq!(report.published, 80);
    assert!(report.cohort > 30, "{}", report.cohort);
    let all = report.times[2].expect("every node of the cohort converges");
    assert!(all < Duration::from_secs(120), "{all:?}");
    // While cut off, no record crossed: checked by a node of each half holding only its half's records at the
    // heal is implied by the timing above being positive.
    assert!(report.times[0].is_some_and(|t| t > Duration::ZERO));
    let partition_records = world.published(|k| matches!(k, RecordKind::Partition(_)));
    assert_eq!(partition_records, 80);
}

#[test]
fn spam_is_counted_against_the_rate_limit() {
    let config = SimConfig {
        spammers: 2,
        spam_per_minute: 30,
        rate_limit_per_hour: 20,
        ..small()
    };
    let (_, report) = run_reach(config, &short_reach()).unwrap();
    let spam = report.spam.clone().expect("spam report");
    println!("{report}");
    // Two spammers at 30 per minute for about 4 minutes while online.
    assert!(spam.published > 50, "{}", spam.published);
    // Each author may publish 20 in the hour; the rest would be refused.
    assert!(spam.over_limit + 40 >= spam.published, "{spam:?}");
    assert!(spam.over_limit > 0);
    assert!(spam.bytes_per_node > 0.0);
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let run = |seed| {
        let config = SimConfig { seed, ..small() };
        let (world, report) = run_reach(config, &short_reach()).unwrap();
        (format!("{report:?}"), world.metrics.messages)
    };
    let first = run(5);
    assert_eq!(first, run(5));
    assert_ne!(first, run(6));
}
