use super::*;
use proptest::prelude::*;

const MIN: u64 = 60 * 1000;

fn host(name: &str) -> Host {
    Host::parse(name).unwrap()
}

fn detour() -> Detour {
    Detour::new(DetourConfig::default(), Rules::default())
}

fn detour_with(rules: &[&str]) -> Detour {
    let rules = rules.iter().map(|r| Rule::parse(r).unwrap()).collect();
    Detour::new(DetourConfig::default(), Rules::new(rules).unwrap())
}

/// Runs one attempt with the direct route failing in `failure` once connected (or before, for DNS/connect
/// failures), the bridge succeeding; returns the actions seen.
fn failing_direct(d: &mut Detour, name: &str, failure: Failure, now: u64) -> Vec<Action> {
    let (mut attempt, first) = d.begin(host(name), true, now);
    let mut actions = vec![first];
    if first == Action::ConnectDirect {
        if matches!(
            failure,
            Failure::BlockPage | Failure::NoFirstByte | Failure::Reset
        ) {
            actions.push(d.handle(&mut attempt, Event::DirectConnected, now).unwrap());
        }
        actions.push(
            d.handle(&mut attempt, Event::DirectFailed(failure), now)
                .unwrap(),
        );
    }
    actions.push(d.handle(&mut attempt, Event::BridgeOpened, now).unwrap());
    actions
}

#[test]
fn host_normalisation() {
    assert_eq!(host("Example.COM.").as_str(), "example.com");
    assert_eq!(host("[::1]").as_str(), "::1");
    assert_eq!(host("127.0.0.1").as_str(), "127.0.0.1");
    assert!(host("::1").is_ip());
    assert_eq!(Host::parse(""), Err(HostError::Empty));
    assert_eq!(Host::parse("."), Err(HostError::Empty));
    assert!(matches!(Host::parse("a..b"), Err(HostError::BadLabel(_))));
    assert!(matches!(
        Host::parse("a b"),
        Err(HostError::BadCharacter(_))
    ));
    assert!(matches!(
        Host::parse("é.com"),
        Err(HostError::BadCharacter(_))
    ));
    assert_eq!(Host::parse(&"a.".repeat(128)), Err(HostError::TooLong));
    assert!(matches!(
        Host::parse(&"a".repeat(64)),
        Err(HostError::BadLabel(_))
    ));
}

#[test]
fn suffix_matching_respects_label_boundaries() {
    let domain = host("example.com");
    assert!(host("example.com").is_within(&domain));
    assert!(host("www.example.com").is_within(&domain));
    assert!(host("a.b.example.com").is_within(&domain));
    assert!(!host("badexample.com").is_within(&domain));
    assert!(!host("example.com.evil").is_within(&domain));
    assert!(!host("com").is_within(&domain));
    assert!(!host("10.0.0.1").is_within(&host("0.0.1")));
}

#[test]
fn most_specific_rule_wins() {
    let rules = Rules::new(vec![
        Rule::parse("*=bridge").unwrap(),
        Rule::parse("example.com=direct").unwrap(),
        Rule::parse("*.news.example.com=bridge").unwrap(),
    ])
    .unwrap();
    assert_eq!(rules.route_for(&host("other.org")), Some(Route::Bridge));
    assert_eq!(
        rules.route_for(&host("www.example.com")),
        Some(Route::Direct)
    );
    assert_eq!(
        rules.route_for(&host("news.example.com")),
        Some(Route::Bridge)
    );
    assert_eq!(
        rules.route_for(&host("a.news.example.com")),
        Some(Route::Bridge)
    );
    assert_eq!(Rules::default().route_for(&host("x.org")), None);
}

#[test]
fn rule_parsing_and_conflicts() {
    assert_eq!(
        Rule::parse("x.org=bridge").unwrap().to_string(),
        "x.org=bridge"
    );
    assert!(matches!(Rule::parse("x.org"), Err(RuleError::BadSyntax(_))));
    assert!(matches!(
        Rule::parse("x.org=maybe"),
        Err(RuleError::BadSyntax(_))
    ));
    assert!(matches!(
        Rule::parse("x y=direct"),
        Err(RuleError::Pattern(_))
    ));
    let conflict = Rules::new(vec![
        Rule::parse("x.org=bridge").unwrap(),
        Rule::parse("X.org.=direct").unwrap(),
    ]);
    assert!(matches!(conflict, Err(RuleError::Conflict(_))));
    let same = Rules::new(vec![
        Rule::parse("x.org=bridge").unwrap(),
        Rule::parse("x.org=bridge").unwrap(),
    ]);
    assert_eq!(same.unwrap().rules().len(), 1);
}

#[test]
fn unblocked_site_goes_direct_and_settles() {
    let mut d = detour();
    let (mut a, first) = d.begin(host("open.org"), true, 0);
    assert_eq!(first, Action::ConnectDirect);
    assert_eq!(
        d.handle(&mut a, Event::DirectConnected, 1),
        Some(Action::Relay {
            route: Route::Direct,
            watch: true
        })
    );
    assert!(a.is_watching());
    assert_eq!(
        d.handle(&mut a, Event::DirectFirstByte, 2),
        Some(Action::Settled(Route::Direct))
    );
    assert!(a.is_final());
    assert_eq!(
        d.handle(&mut a, Event::DirectFailed(Failure::Reset), 3),
        None
    );
    let site = &d.sites(true, 3)[0];
    assert_eq!(
        (site.route, site.reason),
        (Route::Direct, RouteReason::Default)
    );
    assert_eq!(site.memory.as_ref().unwrap().direct_ok, 1);
}

#[test]
fn reset_after_sending_switches_with_replay() {
    let mut d = detour();
    let actions = failing_direct(&mut d, "blocked.org", Failure::Reset, 0);
    assert_eq!(
        actions,
        vec![
            Action::ConnectDirect,
            Action::Relay {
                route: Route::Direct,
                watch: true
            },
            Action::ConnectBridge { replay: true },
            Action::Relay {
                route: Route::Bridge,
                watch: false
            },
        ]
    );
}

#[test]
fn failure_before_connect_switches_without_replay() {
    for failure in [
        Failure::ConnectTimeout,
        Failure::BogusDns,
        Failure::DnsFailed,
    ] {
        let mut d = detour();
        let actions = failing_direct(&mut d, "blocked.org", failure, 0);
        assert_eq!(
            actions[1],
            Action::ConnectBridge { replay: false },
            "{failure}"
        );
    }
}

#[test]
fn failure_is_remembered_temporarily_then_permanently() {
    let mut d = detour();
    let h = host("blocked.org");
    failing_direct(&mut d, "blocked.org", Failure::BlockPage, 0);
    assert_eq!(
        d.route_for(&h, true, 1),
        (Route::Bridge, RouteReason::Remembered)
    );
    // Within the period the next connection goes straight to the bridge.
    let actions = failing_direct(&mut d, "blocked.org", Failure::BlockPage, 5 * MIN);
    assert_eq!(actions[0], Action::ConnectBridge { replay: false });
    // After it, direct is tried again; two more failed periods make it permanent.
    assert_eq!(
        d.route_for(&h, true, 10 * MIN),
        (Route::Direct, RouteReason::Default)
    );
    failing_direct(&mut d, "blocked.org", Failure::Reset, 10 * MIN);
    assert_eq!(
        d.route_for(&h, true, 19 * MIN),
        (Route::Bridge, RouteReason::Remembered)
    );
    failing_direct(&mut d, "blocked.org", Failure::Reset, 21 * MIN);
    assert_eq!(
        d.route_for(&h, true, 1000 * MIN),
        (Route::Bridge, RouteReason::RememberedPermanently)
    );
    let site = d.sites(true, 1000 * MIN).remove(0);
    let memory = site.memory.unwrap();
    assert_eq!((memory.failures, memory.bridge), (3, BridgeMark::Permanent));
    assert_eq!(memory.last_failure, Some(Failure::Reset));
    assert_eq!(memory.via_bridge, 4);
    assert!(d.forget(&h));
    assert_eq!(
        d.route_for(&h, true, 1000 * MIN),
        (Route::Direct, RouteReason::Default)
    );
}

#[test]
fn parallel_failures_count_once() {
    let mut d = detour();
    let mut attempts: Vec<Attempt> = (0..20).map(|_| d.begin(host("b.org"), true, 0).0).collect();
    for a in &mut attempts {
        d.handle(a, Event::DirectFailed(Failure::Reset), 1).unwrap();
    }
    let memory = d.sites(true, 1).remove(0).memory.unwrap();
    assert_eq!(memory.failures, 1);
    assert!(matches!(memory.bridge, BridgeMark::Until(_)));
}

#[test]
fn direct_success_after_the_period_clears_the_failures() {
    let mut d = detour();
    failing_direct(&mut d, "b.org", Failure::Reset, 0);
    let (mut a, first) = d.begin(host("b.org"), true, 11 * MIN);
    assert_eq!(first, Action::ConnectDirect);
    d.handle(&mut a, Event::DirectConnected, 11 * MIN).unwrap();
    d.handle(&mut a, Event::DirectFirstByte, 11 * MIN).unwrap();
    let memory = d.sites(true, 11 * MIN).remove(0).memory.unwrap();
    assert_eq!((memory.failures, memory.bridge), (0, BridgeMark::None));
}

#[test]
fn forced_routes_never_switch() {
    let mut d = detour_with(&["direct.org=direct", "bridge.org=bridge"]);
    let (mut a, first) = d.begin(host("www.direct.org"), true, 0);
    assert_eq!(first, Action::ConnectDirect);
    assert_eq!(
        d.handle(&mut a, Event::DirectConnected, 0),
        Some(Action::Relay {
            route: Route::Direct,
            watch: false
        })
    );
    assert_eq!(
        d.handle(&mut a, Event::DirectFailed(Failure::Reset), 0),
        None,
        "a settled direct route ignores later failures"
    );
    let (mut a, _) = d.begin(host("direct.org"), true, 0);
    assert_eq!(
        d.handle(&mut a, Event::DirectFailed(Failure::BogusDns), 0),
        Some(Action::Fail {
            direct: Some(Failure::BogusDns),
            bridge_failed: false
        })
    );
    let (mut a, first) = d.begin(host("bridge.org"), true, 0);
    assert_eq!(first, Action::ConnectBridge { replay: false });
    assert_eq!(
        d.handle(&mut a, Event::BridgeFailed, 0),
        Some(Action::Fail {
            direct: None,
            bridge_failed: true
        })
    );
}

#[test]
fn remembered_bridge_falls_back_to_direct_when_bridges_fail() {
    let mut d = detour();
    failing_direct(&mut d, "b.org", Failure::Reset, 0);
    let (mut a, first) = d.begin(host("b.org"), true, 1);
    assert_eq!(first, Action::ConnectBridge { replay: false });
    assert_eq!(
        d.handle(&mut a, Event::BridgeFailed, 1),
        Some(Action::ConnectDirect)
    );
    assert_eq!(
        d.handle(&mut a, Event::DirectConnected, 1),
        Some(Action::Relay {
            route: Route::Direct,
            watch: false
        })
    );
}

#[test]
fn without_bridges_direct_is_final() {
    let mut d = detour();
    let (mut a, first) = d.begin(host("b.org"), false, 0);
    assert_eq!(first, Action::ConnectDirect);
    assert_eq!(a.reason(), RouteReason::NoBridge);
    assert_eq!(
        d.handle(&mut a, Event::DirectFailed(Failure::ConnectTimeout), 0),
        Some(Action::Fail {
            direct: Some(Failure::ConnectTimeout),
            bridge_failed: false
        })
    );
}

#[test]
fn replay_buffer_full_settles_direct() {
    let mut d = detour();
    let (mut a, _) = d.begin(host("big.org"), true, 0);
    d.handle(&mut a, Event::DirectConnected, 0).unwrap();
    assert_eq!(
        d.handle(&mut a, Event::ReplayBufferFull, 0),
        Some(Action::Settled(Route::Direct))
    );
    assert_eq!(
        d.handle(&mut a, Event::DirectFailed(Failure::Reset), 0),
        None
    );
}

#[test]
fn status_lists_rule_sites_and_learnt_sites() {
    let mut d = detour_with(&["ruled.org=bridge", "*=direct"]);
    failing_direct(&mut d, "ruled.org", Failure::Reset, 0);
    let (mut a, _) = d.begin(host("x.org"), true, 0);
    d.handle(&mut a, Event::DirectConnected, 0);
    d.handle(&mut a, Event::DirectFirstByte, 0);
    d.set_rules(Rules::new(vec![Rule::parse("other.org=bridge").unwrap()]).unwrap());
    let sites = d.sites(true, 0);
    let hosts: Vec<String> = sites.iter().map(|s| s.host.to_string()).collect();
    assert_eq!(hosts, vec!["other.org", "ruled.org", "x.org"]);
    assert!(sites[0].memory.is_none(), "named by a rule only");
    assert_eq!(sites[1].memory.as_ref().unwrap().via_bridge, 1);
    assert_eq!(
        (sites[1].route, sites[1].reason),
        (Route::Direct, RouteReason::Default)
    );
    let x = sites[2].memory.as_ref().unwrap();
    assert_eq!(
        x.direct_ok, 1,
        "a forced direct connection is counted when it opens"
    );
}

#[test]
fn memory_evicts_direct_sites_before_bridged_ones() {
    let config = DetourConfig {
        max_sites: 3,
        ..DetourConfig::default()
    };
    let mut d = Detour::new(config, Rules::default());
    failing_direct(&mut d, "blocked.org", Failure::Reset, 0);
    for (i, name) in ["a.org", "b.org", "c.org"].iter().enumerate() {
        let (mut a, _) = d.begin(host(name), true, i as u64 + 1);
        d.handle(&mut a, Event::DirectConnected, i as u64 + 1);
        d.handle(&mut a, Event::DirectFirstByte, i as u64 + 1);
    }
    let hosts: Vec<String> = d
        .sites(true, 9)
        .iter()
        .map(|s| s.host.to_string())
        .collect();
    assert_eq!(hosts, vec!["b.org", "blocked.org", "c.org"]);
    d.memory.check_invariants();
}

fn arb_failure() -> impl Strategy<Value = Failure> {
    prop_oneof![
        Just(Failure::Reset),
        Just(Failure::ConnectTimeout),
        Just(Failure::DnsFailed),
        Just(Failure::BogusDns),
        Just(Failure::BlockPage),
        Just(Failure::NoFirstByte),
    ]
}

fn arb_event() -> impl Strategy<Value = Event> {
    prop_oneof![
        Just(Event::DirectConnected),
        Just(Event::DirectFirstByte),
        arb_failure().prop_map(Event::DirectFailed),
        Just(Event::ReplayBufferFull),
        Just(Event::BridgeOpened),
        Just(Event::BridgeFailed),
    ]
}

fn arb_rule() -> impl Strategy<Value = Option<&'static str>> {
    prop_oneof![
        Just(None),
        Just(Some("s0.org=direct")),
        Just(Some("s1.org=bridge")),
        Just(Some("*=bridge"))
    ]
}

proptest! {
    #[test]
    fn attempts_follow_the_rules(
        rule in arb_rule(),
        bridge_available in any::<bool>(),
        site in 0..4u8,
        events in prop::collection::vec(arb_event(), 0..12),
        history in prop::collection::vec((0..4u8, arb_failure(), 0..30u64), 0..20),
    ) {
        let mut d = detour_with(&rule.into_iter().collect::<Vec<_>>());
        // Some learnt history first, so the attempt may start on the bridge.
        for (s, failure, minute) in history {
            let (mut a, _) = d.begin(host(&format!("s{s}.org")), true, minute * MIN);
            d.handle(&mut a, Event::DirectFailed(failure), minute * MIN);
        }
        let h = host(&format!("s{site}.org"));
        let forced = d.rules().route_for(&h);
        let (mut attempt, first) = d.begin(h, bridge_available, 40 * MIN);
        let mut actions = vec![first];
        for event in events {
            let was_final = attempt.is_final();
            let action = d.handle(&mut attempt, event, 40 * MIN);
            if was_final {
                prop_assert_eq!(action, None, "a final attempt changed");
            }
            actions.extend(action);
        }
        let connects_direct = actions.iter().filter(|a| **a == Action::ConnectDirect).count();
        let connects_bridge = actions.iter().filter(|a| matches!(a, Action::ConnectBridge { .. })).count();
        prop_assert!(connects_direct <= 1 && connects_bridge <= 1);
        if forced == Some(Route::Direct) || (forced.is_none() && !bridge_available) {
            prop_assert_eq!(connects_bridge, 0);
        }
        if forced == Some(Route::Bridge) {
            prop_assert_eq!(connects_direct, 0);
        }
        for pair in actions.windows(2) {
            if let Action::ConnectBridge { replay: true } = pair[1] {
                prop_assert_eq!(pair[0], Action::Relay { route: Route::Direct, watch: true });
            }
        }
    }

    #[test]
    fn memory_stays_bounded(
        max_sites in 1..8usize,
        ops in prop::collection::vec((0..32u8, arb_event(), 0..1000u64), 0..200),
    ) {
        let config = DetourConfig { max_sites, ..DetourConfig::default() };
        let mut d = Detour::new(config, Rules::default());
        let mut now = 0;
        for (site, event, step) in ops {
            now += step;
            let (mut a, _) = d.begin(host(&format!("s{site}.org")), true, now);
            d.handle(&mut a, Event::DirectConnected, now);
            d.handle(&mut a, event, now);
            prop_assert!(d.remembered() <= max_sites);
            d.memory.check_invariants();
        }
    }

    #[test]
    fn host_parse_never_panics_and_is_idempotent(text in "\\PC{0,80}") {
        if let Ok(h) = Host::parse(&text) {
            prop_assert_eq!(Host::parse(h.as_str()), Ok(h.clone()));
            prop_assert!(h.as_str().len() <= MAX_HOST_BYTES.max(45));
        }
    }

    #[test]
    fn subdomains_match_their_parent(labels in prop::collection::vec("[a-z0-9]{1,10}", 1..5), parent in "[a-z]{1,10}\\.org") {
        let child = host(&format!("{}.{parent}", labels.join(".")));
        let parent = host(&parent);
        prop_assert!(child.is_within(&parent));
        prop_assert!(!parent.is_within(&child));
    }
}
