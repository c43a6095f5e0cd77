//! Property tests: random sequences of events never break the caps, and the peer set refills.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::keys::{Keypair, NodeId};

#[derive(Clone, Debug)]
enum Op {
    Heard {
        host: u8,
        port: u8,
        source: Source,
        node: Option<u8>,
    },
    Dials,
    DialFailed {
        pick: usize,
    },
    Connected {
        pick: usize,
        node: u8,
    },
    Inbound {
        node: u8,
    },
    Disconnect {
        node: u8,
    },
    Advance {
        secs: u16,
    },
}

fn source() -> impl Strategy<Value = Source> {
    prop_oneof![
        Just(Source::User),
        Just(Source::Cache),
        Just(Source::Lan),
        Just(Source::Exchange),
        Just(Source::Dht),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<u8>(), 0u8..4, source(), proptest::option::of(0u8..40))
            .prop_map(|(host, port, source, node)| Op::Heard { host, port, source, node }),
        3 => Just(Op::Dials),
        2 => any::<usize>().prop_map(|pick| Op::DialFailed { pick }),
        3 => (any::<usize>(), 0u8..40).prop_map(|(pick, node)| Op::Connected { pick, node }),
        2 => (0u8..40).prop_map(|node| Op::Inbound { node }),
        2 => (0u8..40).prop_map(|node| Op::Disconnect { node }),
        1 => (0u16..120).prop_map(|secs| Op::Advance { secs }),
    ]
}

fn node(n: u8) -> NodeId {
    // Node 0 is the overlay's own id.
    Keypair::from_secret_bytes([n; 32]).public()
}

fn small_config() -> OverlayConfig {
    OverlayConfig {
        target_degree: 5,
        min_outbound: 2,
        max_outbound: 4,
        max_inbound: 3,
        max_dials_in_flight: 2,
        max_candidates: 24,
        max_candidates_per_ip: 2,
        backoff_base: Duration::from_secs(5),
        backoff_max: Duration::from_secs(60),
        max_failures: 3,
        dial_timeout: Duration::from_secs(30),
        stable_after: Duration::from_secs(20),
    }
}

fn check_invariants(o: &Overlay) -> Result<(), TestCaseError> {
    let c = o.counts();
    let cfg = o.config();
    prop_assert!(c.outbound + c.dialing <= cfg.max_outbound, "{c:?}");
    prop_assert!(c.inbound <= cfg.max_inbound, "{c:?}");
    prop_assert!(c.dialing <= cfg.max_dials_in_flight, "{c:?}");
    prop_assert!(c.candidates <= cfg.max_candidates, "{c:?}");
    prop_assert!(!o.is_connected(&node(0)));
    Ok(())
}

proptest! {
    #[test]
    fn random_events_never_break_the_caps(ops in prop::collection::vec(op(), 1..200)) {
        let mut o = Overlay::new(small_config(), node(0), 7).unwrap();
        let mut now = Duration::ZERO;
        let mut handed_out: Vec<SocketAddr> = Vec::new();
        for op in ops {
            match op {
                Op::Heard { host, port, source, node: n } => {
                    let addr = SocketAddr::from((Ipv4Addr::new(10, 1, 0, host), 7000 + u16::from(port)));
                    let _ = o.heard_of(addr, source, n.map(node), now);
                }
                Op::Dials => {
                    let d = o.dials(now);
                    let mut unique = d.clone();
                    unique.sort();
                    unique.dedup();
                    prop_assert_eq!(unique.len(), d.len(), "a dial was handed out twice");
                    handed_out.extend(d);
                }
                Op::DialFailed { pick } => {
                    if !handed_out.is_empty() {
                        let addr = handed_out.swap_remove(pick % handed_out.len());
                        o.dial_failed(&addr, now);
                    }
                }
                Op::Connected { pick, node: n } => {
                    if !handed_out.is_empty() {
                        let addr = handed_out.swap_remove(pick % handed_out.len());
                        let _ = o.outbound_connected(addr, node(n), now);
                    }
                }
                Op::Inbound { node: n } => {
                    let _ = o.inbound_connected(node(n), now);
                }
                Op::Disconnect { node: n } => o.disconnected(&node(n), now),
                Op::Advance { secs } => now += Duration::from_secs(u64::from(secs)),
            }
            check_invariants(&o)?;
            if let Some(at) = o.next_wakeup(now) {
                prop_assert!(at >= now);
            }
        }
    }

    #[test]
    fn refills_after_peers_leave(leave in 1usize..8, seed in any::<u64>()) {
        let config = OverlayConfig { max_dials_in_flight: 8, ..OverlayConfig::default() };
        let mut o = Overlay::new(config, node(0), seed).unwrap();
        let t0 = Duration::ZERO;
        for i in 0..40u8 {
            o.heard_of(SocketAddr::from((Ipv4Addr::new(10, 2, 0, i), 7000)), Source::Dht, None, t0).unwrap();
        }
        let mut connected = Vec::new();
        while connected.len() < 8 {
            let d = o.dials(t0);
            prop_assert!(!d.is_empty());
            for a in d {
                let n = node(connected.len() as u8 + 1);
                o.outbound_connected(a, n, t0).unwrap();
                connected.push(n);
            }
        }
        prop_assert_eq!(o.counts().outbound, 8);
        let later = Duration::from_secs(3600);
        for n in connected.iter().take(leave) {
            o.disconnected(n, later);
        }
        let refill = o.dials(later);
        prop_assert_eq!(refill.len(), leave);
    }

    #[test]
    fn memory_stays_bounded_under_a_flood(addrs in prop::collection::vec((any::<u32>(), 1u16..), 2000..4000)) {
        let config = OverlayConfig { max_candidates: 64, ..OverlayConfig::default() };
        let mut o = Overlay::new(config, node(0), 9).unwrap();
        for (i, (ip, port)) in addrs.into_iter().enumerate() {
            let _ = o.heard_of(SocketAddr::from((Ipv4Addr::from(ip), port)), Source::Dht, None, Duration::from_secs(i as u64));
            prop_assert!(o.counts().candidates <= 64);
        }
    }
}
