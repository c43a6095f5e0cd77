use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use super::*;
use crate::keys::{Keypair, NodeId};

fn node(n: u8) -> NodeId {
    Keypair::from_secret_bytes([n; 32]).public()
}

fn addr(a: u8, b: u8, port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::new(10, 0, a, b), port))
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn overlay(config: OverlayConfig) -> Overlay {
    Overlay::new(config, node(0), 42).unwrap()
}

#[test]
fn config_validation() {
    assert_eq!(OverlayConfig::default().validate(), Ok(()));
    let bad = OverlayConfig {
        target_degree: 0,
        ..OverlayConfig::default()
    };
    assert_eq!(
        bad.validate(),
        Err(OverlayConfigError::Zero {
            field: "target_degree"
        })
    );
    let bad = OverlayConfig {
        min_outbound: 9,
        ..OverlayConfig::default()
    };
    assert!(matches!(
        bad.validate(),
        Err(OverlayConfigError::MinAboveMax { .. })
    ));
    let bad = OverlayConfig {
        backoff_base: secs(0),
        ..OverlayConfig::default()
    };
    assert!(matches!(
        bad.validate(),
        Err(OverlayConfigError::Backoff { .. })
    ));
    let bad = OverlayConfig {
        max_candidates: MAX_CANDIDATES_CEILING + 1,
        ..OverlayConfig::default()
    };
    assert!(matches!(
        bad.validate(),
        Err(OverlayConfigError::AboveCeiling { .. })
    ));
    assert!(Overlay::new(bad, node(0), 1).is_err());
}

#[test]
fn unusable_and_own_addresses_are_refused() {
    let mut o = overlay(OverlayConfig::default());
    let zero = secs(0);
    for bad in [
        "10.0.0.1:0",
        "0.0.0.0:7000",
        "224.0.0.1:7000",
        "255.255.255.255:7000",
        "[::]:7000",
        "[ff02::1]:7000",
    ] {
        let a: SocketAddr = bad.parse().unwrap();
        assert_eq!(
            o.heard_of(a, Source::Dht, None, zero),
            Err(Refusal::Unusable),
            "{bad}"
        );
    }
    assert_eq!(
        o.heard_of(addr(0, 1, 7000), Source::Lan, Some(node(0)), zero),
        Err(Refusal::OwnNode)
    );
    assert_eq!(o.counts().candidates, 0);
}

#[test]
fn dials_up_to_the_target_and_refills_when_peers_leave() {
    let mut o = overlay(OverlayConfig::default());
    for i in 0..20 {
        o.heard_of(addr(1, i, 7000), Source::Dht, None, secs(0))
            .unwrap();
    }
    // At most max_dials_in_flight at once.
    let first = o.dials(secs(0));
    assert_eq!(first.len(), 4);
    assert!(
        o.dials(secs(0)).is_empty(),
        "no more dials while 4 are in flight"
    );
    for (i, a) in first.iter().enumerate() {
        o.outbound_connected(*a, node(10 + i as u8), secs(1))
            .unwrap();
    }
    let second = o.dials(secs(1));
    assert_eq!(second.len(), 4);
    for (i, a) in second.iter().enumerate() {
        o.outbound_connected(*a, node(20 + i as u8), secs(2))
            .unwrap();
    }
    assert_eq!(o.counts().outbound, 8);
    assert!(o.dials(secs(2)).is_empty(), "target degree reached");

    // Two peers leave: two new dials, to other addresses.
    o.disconnected(&node(10), secs(100));
    o.disconnected(&node(11), secs(100));
    let refill = o.dials(secs(100));
    assert_eq!(refill.len(), 2);
    for a in &refill {
        assert!(!first.contains(a) && !second.contains(a));
    }
}

#[test]
fn inbound_counts_towards_the_target_but_min_outbound_is_kept() {
    let mut o = overlay(OverlayConfig::default());
    for i in 0..20 {
        o.heard_of(addr(2, i, 7000), Source::Dht, None, secs(0))
            .unwrap();
    }
    for i in 0..10 {
        o.inbound_connected(node(100 + i), secs(0)).unwrap();
    }
    // 10 inbound > target 8: only min_outbound (4) outbound dials are wanted.
    let dials = o.dials(secs(0));
    assert_eq!(dials.len(), 4);
    for (i, a) in dials.iter().enumerate() {
        o.outbound_connected(*a, node(30 + i as u8), secs(1))
            .unwrap();
    }
    assert!(o.dials(secs(1)).is_empty());
}

#[test]
fn inbound_cap_and_duplicates() {
    let config = OverlayConfig {
        max_inbound: 2,
        ..OverlayConfig::default()
    };
    let mut o = overlay(config);
    o.inbound_connected(node(1), secs(0)).unwrap();
    assert_eq!(
        o.inbound_connected(node(1), secs(0)),
        Err(ConnectRefusal::AlreadyConnected)
    );
    o.inbound_connected(node(2), secs(0)).unwrap();
    assert_eq!(
        o.inbound_connected(node(3), secs(0)),
        Err(ConnectRefusal::InboundFull)
    );
    assert_eq!(
        o.inbound_connected(node(0), secs(0)),
        Err(ConnectRefusal::OwnNode)
    );
    o.disconnected(&node(1), secs(1));
    o.inbound_connected(node(3), secs(1)).unwrap();
    assert_eq!(o.counts().inbound, 2);
}

#[test]
fn a_node_connected_inbound_is_not_dialed() {
    let mut o = overlay(OverlayConfig::default());
    o.heard_of(addr(3, 1, 7000), Source::Lan, Some(node(5)), secs(0))
        .unwrap();
    o.inbound_connected(node(5), secs(0)).unwrap();
    assert!(o.dials(secs(0)).is_empty());
    // Without knowing the node id in advance, the duplicate is detected after the handshake.
    o.heard_of(addr(3, 2, 7000), Source::Dht, None, secs(0))
        .unwrap();
    let d = o.dials(secs(0));
    assert_eq!(d, vec![addr(3, 2, 7000)]);
    assert_eq!(
        o.outbound_connected(d[0], node(5), secs(1)),
        Err(ConnectRefusal::AlreadyConnected)
    );
    assert_eq!(o.counts().dialing, 0);
    assert!(
        o.dials(secs(1)).is_empty(),
        "now known to be node 5, which is connected"
    );
}

#[test]
fn dialing_ourselves_is_remembered() {
    let mut o = overlay(OverlayConfig::default());
    let own = addr(4, 1, 7000);
    o.heard_of(own, Source::Dht, None, secs(0)).unwrap();
    assert_eq!(o.dials(secs(0)), vec![own]);
    assert_eq!(
        o.outbound_connected(own, node(0), secs(0)),
        Err(ConnectRefusal::OwnNode)
    );
    assert!(!o.knows(&own));
    assert_eq!(
        o.heard_of(own, Source::Dht, None, secs(1)),
        Err(Refusal::OwnNode)
    );
    assert!(o.dials(secs(10)).is_empty());
}

#[test]
fn failures_back_off_exponentially_then_forget() {
    let config = OverlayConfig {
        backoff_base: secs(10),
        backoff_max: secs(60),
        max_failures: 5,
        ..OverlayConfig::default()
    };
    let mut o = overlay(config);
    let a = addr(5, 1, 7000);
    o.heard_of(a, Source::Dht, None, secs(0)).unwrap();
    let mut now = secs(0);
    let expected_delays = [10, 20, 40, 60];
    for delay in expected_delays {
        assert_eq!(o.dials(now), vec![a]);
        o.dial_failed(&a, now);
        assert!(
            o.dials(now + secs(delay) - Duration::from_millis(1))
                .is_empty()
        );
        assert_eq!(o.next_wakeup(now), Some(now + secs(delay)));
        now += secs(delay);
    }
    assert_eq!(o.dials(now), vec![a]);
    o.dial_failed(&a, now);
    assert!(!o.knows(&a), "forgotten after max_failures");
    assert_eq!(o.next_wakeup(now), None);
}

#[test]
fn user_candidates_are_never_forgotten() {
    let config = OverlayConfig {
        max_failures: 2,
        ..OverlayConfig::default()
    };
    let mut o = overlay(config);
    let a = addr(6, 1, 7000);
    o.heard_of(a, Source::User, None, secs(0)).unwrap();
    let mut now = secs(0);
    for _ in 0..10 {
        now += secs(3600);
        assert_eq!(o.dials(now), vec![a]);
        o.dial_failed(&a, now);
    }
    assert!(o.knows(&a));
}

#[test]
fn unreported_dials_time_out() {
    let mut o = overlay(OverlayConfig::default());
    let a = addr(7, 1, 7000);
    o.heard_of(a, Source::Dht, None, secs(0)).unwrap();
    assert_eq!(o.dials(secs(0)), vec![a]);
    assert_eq!(o.next_wakeup(secs(0)), Some(secs(60)));
    assert!(o.dials(secs(59)).is_empty());
    // At 60 s the dial counts as failed and the candidate waits out its first backoff.
    assert!(o.dials(secs(60)).is_empty());
    assert_eq!(o.counts().dialing, 0);
    assert_eq!(o.dials(secs(70)), vec![a]);
}

#[test]
fn short_connections_count_as_failures() {
    let mut o = overlay(OverlayConfig::default());
    let a = addr(8, 1, 7000);
    o.heard_of(a, Source::Dht, None, secs(0)).unwrap();
    assert_eq!(o.dials(secs(0)), vec![a]);
    o.outbound_connected(a, node(1), secs(0)).unwrap();
    o.disconnected(&node(1), secs(1));
    // One failure: 10 s backoff.
    assert!(o.dials(secs(10)).is_empty());
    assert_eq!(o.dials(secs(11)), vec![a]);
    o.outbound_connected(a, node(1), secs(11)).unwrap();
    o.disconnected(&node(1), secs(12));
    // Two failures in a row: 20 s.
    assert!(o.dials(secs(31)).is_empty());
    assert_eq!(o.dials(secs(32)), vec![a]);
    o.outbound_connected(a, node(1), secs(32)).unwrap();
    // A long connection resets the count: only the base pause.
    o.disconnected(&node(1), secs(1000));
    assert_eq!(o.dials(secs(1010)), vec![a]);
}

#[test]
fn preference_by_source_and_spread_over_hosts() {
    let config = OverlayConfig {
        max_dials_in_flight: 1,
        ..OverlayConfig::default()
    };
    let mut o = overlay(config);
    o.heard_of(addr(9, 1, 7000), Source::Dht, None, secs(0))
        .unwrap();
    o.heard_of(addr(9, 2, 7000), Source::Lan, None, secs(0))
        .unwrap();
    o.heard_of(addr(9, 3, 7000), Source::User, None, secs(0))
        .unwrap();
    o.heard_of(addr(9, 3, 7001), Source::User, None, secs(0))
        .unwrap();
    let first = o.dials(secs(0));
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].ip(), addr(9, 3, 0).ip());
    o.outbound_connected(first[0], node(1), secs(0)).unwrap();
    // The other user candidate shares the IP, but user still ranks before LAN.
    let second = o.dials(secs(0));
    assert_eq!(second[0].ip(), addr(9, 3, 0).ip());
    o.outbound_connected(second[0], node(2), secs(0)).unwrap();
    assert_eq!(o.dials(secs(0)), vec![addr(9, 2, 7000)]);
}

#[test]
fn per_ip_cap_except_loopback() {
    let mut o = overlay(OverlayConfig::default());
    for port in 1..=4 {
        o.heard_of(addr(10, 1, port), Source::Dht, None, secs(0))
            .unwrap();
    }
    assert_eq!(
        o.heard_of(addr(10, 1, 5), Source::Dht, None, secs(0)),
        Err(Refusal::TooManyForIp)
    );
    for port in 1..=40 {
        let lo = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        o.heard_of(lo, Source::Dht, None, secs(0)).unwrap();
    }
}

#[test]
fn full_set_keeps_the_better_candidates() {
    let config = OverlayConfig {
        max_candidates: 3,
        ..OverlayConfig::default()
    };
    let mut o = overlay(config);
    o.heard_of(addr(11, 1, 7000), Source::User, None, secs(0))
        .unwrap();
    o.heard_of(addr(11, 2, 7000), Source::Cache, None, secs(0))
        .unwrap();
    o.heard_of(addr(11, 3, 7000), Source::Dht, None, secs(0))
        .unwrap();
    // A DHT newcomer pushes out the never-connected DHT candidate, never the user's or the cache's.
    o.heard_of(addr(11, 4, 7000), Source::Dht, None, secs(1))
        .unwrap();
    assert!(!o.knows(&addr(11, 3, 7000)));
    // A LAN newcomer pushes out the DHT one.
    o.heard_of(addr(11, 5, 7000), Source::Lan, None, secs(2))
        .unwrap();
    assert!(!o.knows(&addr(11, 4, 7000)));
    // A DHT newcomer cannot push out better sources.
    assert_eq!(
        o.heard_of(addr(11, 6, 7000), Source::Dht, None, secs(3)),
        Err(Refusal::Full)
    );
    assert_eq!(o.counts().candidates, 3);
}

#[test]
fn cacheable_lists_addresses_that_worked() {
    let mut o = overlay(OverlayConfig::default());
    let a = addr(12, 1, 7000);
    let b = addr(12, 2, 7000);
    o.heard_of(a, Source::Dht, None, secs(0)).unwrap();
    o.heard_of(b, Source::Dht, None, secs(0)).unwrap();
    assert!(o.cacheable(10).is_empty());
    let d = o.dials(secs(0));
    assert_eq!(d.len(), 2);
    o.outbound_connected(a, node(1), secs(0)).unwrap();
    o.dial_failed(&b, secs(0));
    assert_eq!(o.cacheable(10), vec![a]);
    assert!(o.cacheable(0).is_empty());
}

#[test]
fn different_seeds_spread_dials() {
    let config = OverlayConfig {
        max_dials_in_flight: 1,
        ..OverlayConfig::default()
    };
    let firsts: std::collections::BTreeSet<SocketAddr> = (0..16u64)
        .map(|seed| {
            let mut o = Overlay::new(config.clone(), node(0), seed).unwrap();
            for i in 0..32 {
                o.heard_of(addr(13, i, 7000), Source::Dht, None, secs(0))
                    .unwrap();
            }
            o.dials(secs(0))[0]
        })
        .collect();
    assert!(
        firsts.len() > 4,
        "16 seeds chose only {} distinct first dials",
        firsts.len()
    );
}

#[test]
fn a_renewed_identity_is_ourselves_and_the_old_one_a_stranger() {
    let mut o = overlay(OverlayConfig::default());
    o.set_own_node(node(9));
    assert_eq!(
        o.inbound_connected(node(9), secs(0)),
        Err(ConnectRefusal::OwnNode)
    );
    assert_eq!(
        o.heard_of(addr(4, 2, 7000), Source::Lan, Some(node(9)), secs(0)),
        Err(Refusal::OwnNode)
    );
    // The identity before is nobody special any more (no peer can hold it: it was never saved).
    assert_eq!(o.inbound_connected(node(0), secs(0)), Ok(()));
}
