//! Detour decisions: which route a proxied connection takes, and when it switches from the direct route to a bridge.
//!
//! This is the pure half of the local proxy (design decision 9). The proxy crate does the sockets and feeds what
//! happened into an [`Attempt`] through [`Detour::handle`]; the answer is an [`Action`]. Time is a `u64` of
//! milliseconds on any monotonic clock the caller picks; nothing here reads a clock.
//!
//! One connection goes like this:
//! 1. [`Detour::begin`] looks at the user's [`Rules`] and at what was learnt about the site and answers
//!    [`Action::ConnectDirect`] or [`Action::ConnectBridge`].
//! 2. On the direct route the proxy reports [`Event::DirectConnected`]; the answer is
//!    [`Action::Relay`] with `watch: true`: tell the client it is connected, relay, but keep a copy of what the client
//!    sends, and watch the first answer. A first byte that is not a block page is [`Event::DirectFirstByte`] and
//!    settles the route ([`Action::Settled`]); a reset, a time-out, a poisoned DNS answer, a block page or a silent
//!    server is [`Event::DirectFailed`], answered by [`Action::ConnectBridge`] with `replay` set when the client's
//!    bytes have to be sent again through the bridge.
//! 3. The bridge outcome ([`Event::BridgeOpened`] / [`Event::BridgeFailed`]) ends in [`Action::Relay`] or
//!    [`Action::Fail`].
//!
//! Every direct failure is remembered: the site goes through a bridge for [`DetourConfig::temporary_bridge_ms`],
//! and after [`DetourConfig::permanent_after`] failure periods in a row, for good. [`Detour::sites`] shows it all
//! for `kolokol proxy status`.

mod attempt;
mod host;
mod memory;
mod rules;
#[cfg(test)]
mod tests;

pub use attempt::{Action, Attempt, Event};
pub use host::{Host, HostError, MAX_HOST_BYTES};
pub use memory::{BridgeMark, SiteMemory};
pub use rules::{MAX_RULES, Pattern, Rule, RuleError, Rules};

use memory::Memory;

/// The two ways out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Route {
    /// Straight to the site from this machine.
    Direct,
    /// Through an invitation-only bridge outside the filter.
    Bridge,
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Route::Direct => "direct",
            Route::Bridge => "bridge",
        })
    }
}

/// How the direct route failed: the signs of a filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Failure {
    /// The connection was refused or reset (a filter's forged TCP reset looks like this).
    Reset,
    /// Connecting took too long (packets silently dropped).
    ConnectTimeout,
    /// The name did not resolve at all.
    DnsFailed,
    /// The name resolved to an address known to be handed out by censoring resolvers.
    BogusDns,
    /// The first answer was a block page.
    BlockPage,
    /// The connection opened but the site sent nothing for too long after the client spoke.
    NoFirstByte,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Failure::Reset => "reset",
            Failure::ConnectTimeout => "connect timeout",
            Failure::DnsFailed => "DNS failure",
            Failure::BogusDns => "bogus DNS answer",
            Failure::BlockPage => "block page",
            Failure::NoFirstByte => "no first byte",
        })
    }
}

/// Why a connection started on the route it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RouteReason {
    /// A user rule forces the route.
    Rule,
    /// The direct route failed recently; direct is tried again later.
    Remembered,
    /// The direct route failed repeatedly.
    RememberedPermanently,
    /// Nothing known against the direct route.
    Default,
    /// There is no bridge to use.
    NoBridge,
}

/// Tuning for the detour memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetourConfig {
    /// How long a site goes through a bridge after one direct failure.
    pub temporary_bridge_ms: u64,
    /// After this many failure periods in a row the site goes through a bridge until the user clears it.
    pub permanent_after: u32,
    /// The most sites remembered; the oldest are forgotten first.
    pub max_sites: usize,
}

impl Default for DetourConfig {
    fn default() -> DetourConfig {
        DetourConfig {
            temporary_bridge_ms: 10 * 60 * 1000,
            permanent_after: 3,
            max_sites: 4096,
        }
    }
}

/// One line of `kolokol proxy status`: a site and where its connections go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteRoute {
    pub host: Host,
    /// The route a new connection would start on now.
    pub route: Route,
    pub reason: RouteReason,
    /// What was learnt about the site (absent for a site only a rule covers).
    pub memory: Option<SiteMemory>,
}

/// The detour state of one proxy: user rules plus bounded per-site memory.
#[derive(Clone, Debug)]
pub struct Detour {
    config: DetourConfig,
    rules: Rules,
    memory: Memory,
}

impl Detour {
    /// A detour with nothing learnt yet.
    pub fn new(config: DetourConfig, rules: Rules) -> Detour {
        let memory = Memory::new(config.max_sites);
        Detour {
            config,
            rules,
            memory,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &DetourConfig {
        &self.config
    }

    /// The user's rules.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// Replaces the user's rules; what was learnt stays.
    pub fn set_rules(&mut self, rules: Rules) {
        self.rules = rules;
    }

    /// Forgets what was learnt about `host`; returns whether anything was remembered.
    pub fn forget(&mut self, host: &Host) -> bool {
        self.memory.forget(host)
    }

    /// The route a new connection to `host` starts on, and why.
    pub fn route_for(
        &self,
        host: &Host,
        bridge_available: bool,
        now_ms: u64,
    ) -> (Route, RouteReason) {
        if let Some(route) = self.rules.route_for(host) {
            return (route, RouteReason::Rule);
        }
        if !bridge_available {
            return (Route::Direct, RouteReason::NoBridge);
        }
        match self.memory.get(host) {
            Some(site) if site.wants_bridge(now_ms) => match site.bridge {
                BridgeMark::Permanent => (Route::Bridge, RouteReason::RememberedPermanently),
                _ => (Route::Bridge, RouteReason::Remembered),
            },
            _ => (Route::Direct, RouteReason::Default),
        }
    }

    /// Starts a connection to `host`. `bridge_available` says whether any bridge is configured (and not known to
    /// be down); without one the direct route is final.
    pub fn begin(&mut self, host: Host, bridge_available: bool, now_ms: u64) -> (Attempt, Action) {
        let (route, reason) = self.route_for(&host, bridge_available, now_ms);
        let may_fall_back = match reason {
            RouteReason::Rule | RouteReason::NoBridge => false,
            RouteReason::Remembered | RouteReason::RememberedPermanently | RouteReason::Default => {
                true
            }
        };
        Attempt::start(host, route, reason, may_fall_back)
    }

    /// Feeds what happened on `attempt`'s connection, remembers what it says about the site, and returns what to
    /// do next (`None`: the event does not fit the attempt's state and was ignored).
    pub fn handle(&mut self, attempt: &mut Attempt, event: Event, now_ms: u64) -> Option<Action> {
        let action = attempt.handle(event)?;
        let host = attempt.host();
        match event {
            Event::DirectFailed(failure) => {
                self.memory
                    .record_failure(host, failure, now_ms, &self.config)
            }
            Event::DirectFirstByte => self.memory.record_direct_ok(host, now_ms, true),
            Event::BridgeOpened => self.memory.record_bridged(host, now_ms),
            Event::DirectConnected | Event::ReplayBufferFull | Event::BridgeFailed => {}
        }
        if matches!(event, Event::DirectConnected | Event::ReplayBufferFull)
            && matches!(
                action,
                Action::Relay {
                    route: Route::Direct,
                    watch: false
                } | Action::Settled(Route::Direct)
            )
        {
            // The direct route is final without proof that it works (forced, no bridge left, or too much to
            // replay): counted for status, but it does not clear earlier failures.
            self.memory.record_direct_ok(host, now_ms, false);
        }
        Some(action)
    }

    /// Every remembered site plus every site a user rule names, sorted by host, for `proxy status`.
    pub fn sites(&self, bridge_available: bool, now_ms: u64) -> Vec<SiteRoute> {
        let mut out: Vec<SiteRoute> = self
            .memory
            .iter()
            .map(|(host, site)| {
                let (route, reason) = self.route_for(host, bridge_available, now_ms);
                SiteRoute {
                    host: host.clone(),
                    route,
                    reason,
                    memory: Some(site.clone()),
                }
            })
            .collect();
        for rule in self.rules.rules() {
            if let Pattern::Domain(host) = &rule.pattern
                && self.memory.get(host).is_none()
            {
                out.push(SiteRoute {
                    host: host.clone(),
                    route: rule.route,
                    reason: RouteReason::Rule,
                    memory: None,
                });
            }
        }
        out.sort_by(|a, b| a.host.cmp(&b.host));
        out
    }

    /// How many sites are remembered.
    pub fn remembered(&self) -> usize {
        self.memory.len()
    }
}
