//! The [`Overlay`] state machine: candidates, dials in flight and open connections.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::{ConnectRefusal, Direction, OverlayConfig, OverlayConfigError, Refusal, Source};
use crate::keys::NodeId;

/// Most addresses remembered as "this is ourselves" (learned when a dial reached our own node).
const MAX_OWN_ADDRESSES: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Not being dialed, not connected.
    Idle,
    /// A dial was handed out at this time and not reported back yet.
    Dialing { since: Duration },
    /// An outbound connection to this address is open.
    Connected,
}

#[derive(Clone, Debug)]
struct Candidate {
    /// The best source this address was heard from.
    source: Source,
    phase: Phase,
    /// Failures in a row (dial failures, timeouts, connections shorter than `stable_after`).
    failures: u32,
    /// Not dialed before this time.
    retry_at: Duration,
    last_heard: Duration,
    /// The node at this address, once known (from a connection or a LAN announce).
    node: Option<NodeId>,
    /// Whether a connection to this address ever succeeded.
    ever_connected: bool,
}

#[derive(Clone, Copy, Debug)]
struct Connection {
    direction: Direction,
    /// The address we dialed (outbound only; an inbound peer's source port is not its listening port).
    addr: Option<SocketAddr>,
    since: Duration,
}

/// How many of each thing the overlay holds, for status reports and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct OverlayCounts {
    /// Open outbound connections.
    pub outbound: usize,
    /// Open inbound connections.
    pub inbound: usize,
    /// Dials handed out and not yet reported back.
    pub dialing: usize,
    /// Candidate addresses remembered (including those dialing or connected).
    pub candidates: usize,
}

/// The peer-set policy state machine; see the [module documentation](super).
#[derive(Clone, Debug)]
pub struct Overlay {
    config: OverlayConfig,
    seed: u64,
    own_node: NodeId,
    candidates: BTreeMap<SocketAddr, Candidate>,
    connections: BTreeMap<NodeId, Connection>,
    own_addresses: BTreeSet<SocketAddr>,
}

impl Overlay {
    /// A new, empty overlay for the node `own_node`. `seed` keys the tie-break between equally good candidates;
    /// pass random bytes so that different nodes do not all dial the same peers first.
    pub fn new(
        config: OverlayConfig,
        own_node: NodeId,
        seed: u64,
    ) -> Result<Self, OverlayConfigError> {
        config.validate()?;
        Ok(Overlay {
            config,
            seed,
            own_node,
            candidates: BTreeMap::new(),
            connections: BTreeMap::new(),
            own_addresses: BTreeSet::new(),
        })
    }

    /// This node's wire identity was renewed: from now on `own_node` is ourselves. Candidates, connections and the
    /// addresses known to be our own are kept (the connections made under the old identity are closed by the
    /// driver, which reports each with [`Overlay::disconnected`]).
    pub fn set_own_node(&mut self, own_node: NodeId) {
        self.own_node = own_node;
    }

    /// The parameters in force.
    pub fn config(&self) -> &OverlayConfig {
        &self.config
    }

    /// Current numbers of connections, dials and candidates.
    pub fn counts(&self) -> OverlayCounts {
        let outbound = self
            .connections
            .values()
            .filter(|c| c.direction == Direction::Outbound)
            .count();
        OverlayCounts {
            outbound,
            inbound: self.connections.len() - outbound,
            dialing: self.dialing_count(),
            candidates: self.candidates.len(),
        }
    }

    /// The connected nodes and which side opened each connection.
    pub fn connections(&self) -> impl Iterator<Item = (NodeId, Direction)> + '_ {
        self.connections
            .iter()
            .map(|(node, c)| (*node, c.direction))
    }

    /// Whether `node` is connected.
    pub fn is_connected(&self, node: &NodeId) -> bool {
        self.connections.contains_key(node)
    }

    /// Whether `addr` is a remembered candidate.
    pub fn knows(&self, addr: &SocketAddr) -> bool {
        self.candidates.contains_key(addr)
    }

    /// Records that `addr` was learned from `source` (with the node id behind it, when the source says so).
    /// Returns whether it is kept; a refusal changes nothing.
    pub fn heard_of(
        &mut self,
        addr: SocketAddr,
        source: Source,
        node: Option<NodeId>,
        now: Duration,
    ) -> Result<(), Refusal> {
        if !is_dialable(&addr) {
            return Err(Refusal::Unusable);
        }
        if node == Some(self.own_node) || self.own_addresses.contains(&addr) {
            return Err(Refusal::OwnNode);
        }
        if let Some(known) = self.candidates.get_mut(&addr) {
            known.last_heard = known.last_heard.max(now);
            known.source = known.source.min(source);
            if node.is_some() {
                known.node = node;
            }
            return Ok(());
        }
        if !addr.ip().is_loopback() {
            let same_ip = self
                .candidates
                .keys()
                .filter(|a| a.ip() == addr.ip())
                .count();
            if same_ip >= self.config.max_candidates_per_ip {
                return Err(Refusal::TooManyForIp);
            }
        }
        if self.candidates.len() >= self.config.max_candidates {
            let victim = self.eviction_victim(source).ok_or(Refusal::Full)?;
            self.candidates.remove(&victim);
        }
        self.candidates.insert(
            addr,
            Candidate {
                source,
                phase: Phase::Idle,
                failures: 0,
                retry_at: now,
                last_heard: now,
                node,
                ever_connected: false,
            },
        );
        Ok(())
    }

    /// Forgets a candidate that is not being dialed or connected (for example one the user removed).
    pub fn forget(&mut self, addr: &SocketAddr) {
        if self
            .candidates
            .get(addr)
            .is_some_and(|c| c.phase == Phase::Idle)
        {
            self.candidates.remove(addr);
        }
    }

    /// The candidates to dial now, best first; each is marked as being dialed until the driver reports
    /// [`Overlay::outbound_connected`] or [`Overlay::dial_failed`] (or [`OverlayConfig::dial_timeout`] passes).
    pub fn dials(&mut self, now: Duration) -> Vec<SocketAddr> {
        self.expire_dials(now);
        let counts = self.counts();
        let want_outbound = self
            .config
            .target_degree
            .saturating_sub(counts.inbound)
            .clamp(self.config.min_outbound, self.config.max_outbound);
        let slots = want_outbound
            .saturating_sub(counts.outbound + counts.dialing)
            .min(
                self.config
                    .max_dials_in_flight
                    .saturating_sub(counts.dialing),
            );
        if slots == 0 {
            return Vec::new();
        }
        // IPs we already talk to (or are dialing): spreading connections over hosts is preferred.
        let busy_ips: BTreeSet<IpAddr> = self
            .candidates
            .iter()
            .filter(|(_, c)| c.phase != Phase::Idle)
            .map(|(a, _)| a.ip())
            .collect();
        let mut eligible: Vec<(SocketAddr, (Source, bool, u32, u64))> = self
            .candidates
            .iter()
            .filter(|(_, c)| {
                c.phase == Phase::Idle
                    && c.retry_at <= now
                    && !c.node.is_some_and(|n| self.connections.contains_key(&n))
            })
            .map(|(addr, c)| {
                let key = (
                    c.source,
                    busy_ips.contains(&addr.ip()),
                    c.failures,
                    tie_break(self.seed, addr),
                );
                (*addr, key)
            })
            .collect();
        eligible.sort_by_key(|(_, key)| *key);
        let mut chosen = Vec::with_capacity(slots.min(eligible.len()));
        for (addr, _) in eligible.into_iter().take(slots) {
            if let Some(c) = self.candidates.get_mut(&addr) {
                c.phase = Phase::Dialing { since: now };
                chosen.push(addr);
            }
        }
        chosen
    }

    /// A dial of `addr` failed (refused, timed out, wrong network, not a kolokol node): back off, and forget the
    /// address after too many failures in a row.
    pub fn dial_failed(&mut self, addr: &SocketAddr, now: Duration) {
        if let Some(c) = self.candidates.get_mut(addr)
            && matches!(c.phase, Phase::Dialing { .. })
        {
            c.phase = Phase::Idle;
            self.record_failure(addr, now);
        }
    }

    /// A dial of `addr` reached `node` and completed the handshake. On a refusal the driver closes the
    /// connection; nothing else changes, except that an address that turned out to be our own is never dialed
    /// again.
    pub fn outbound_connected(
        &mut self,
        addr: SocketAddr,
        node: NodeId,
        now: Duration,
    ) -> Result<(), ConnectRefusal> {
        let was_dialing = self
            .candidates
            .get(&addr)
            .is_some_and(|c| matches!(c.phase, Phase::Dialing { .. }));
        let refusal = if node == self.own_node {
            Some(ConnectRefusal::OwnNode)
        } else if self.connections.contains_key(&node)
            || self
                .candidates
                .get(&addr)
                .is_some_and(|c| c.phase == Phase::Connected)
        {
            Some(ConnectRefusal::AlreadyConnected)
        } else {
            // A dial we handed out already holds its outbound slot; any other needs a free one.
            let counts = self.counts();
            let used = counts.outbound + counts.dialing - usize::from(was_dialing);
            (used >= self.config.max_outbound).then_some(ConnectRefusal::OutboundFull)
        };
        if let Some(refusal) = refusal {
            match refusal {
                ConnectRefusal::OwnNode => self.remember_own_address(addr),
                _ => {
                    if let Some(c) = self.candidates.get_mut(&addr) {
                        c.node = Some(node);
                        if was_dialing {
                            c.phase = Phase::Idle;
                            c.retry_at = now + self.config.backoff_base;
                        }
                    }
                }
            }
            return Err(refusal);
        }
        if let Some(c) = self.candidates.get_mut(&addr) {
            c.phase = Phase::Connected;
            c.node = Some(node);
            c.ever_connected = true;
        }
        self.connections.insert(
            node,
            Connection {
                direction: Direction::Outbound,
                addr: Some(addr),
                since: now,
            },
        );
        Ok(())
    }

    /// `node` dialed us and completed the handshake. On a refusal the driver closes the connection.
    pub fn inbound_connected(&mut self, node: NodeId, now: Duration) -> Result<(), ConnectRefusal> {
        if node == self.own_node {
            return Err(ConnectRefusal::OwnNode);
        }
        if self.connections.contains_key(&node) {
            return Err(ConnectRefusal::AlreadyConnected);
        }
        if self.counts().inbound >= self.config.max_inbound {
            return Err(ConnectRefusal::InboundFull);
        }
        self.connections.insert(
            node,
            Connection {
                direction: Direction::Inbound,
                addr: None,
                since: now,
            },
        );
        Ok(())
    }

    /// The connection to `node` closed. Its slot is free for the next [`Overlay::dials`]; a connection that
    /// lasted less than [`OverlayConfig::stable_after`] counts as a failure of its address.
    pub fn disconnected(&mut self, node: &NodeId, now: Duration) {
        let Some(conn) = self.connections.remove(node) else {
            return;
        };
        let Some(addr) = conn.addr else {
            return;
        };
        let short = now.saturating_sub(conn.since) < self.config.stable_after;
        if let Some(c) = self.candidates.get_mut(&addr) {
            c.phase = Phase::Idle;
            if short {
                self.record_failure(&addr, now);
            } else {
                c.failures = 0;
                // A short pause before dialing it again avoids a reconnect storm when a peer restarts.
                c.retry_at = now + self.config.backoff_base;
            }
        }
    }

    /// When to call [`Overlay::dials`] again at the latest: the earliest end of a backoff or of a dial timeout
    /// (`now` itself if a dial has already timed out unreported), or `None` if nothing is waiting.
    pub fn next_wakeup(&self, now: Duration) -> Option<Duration> {
        self.candidates
            .values()
            .filter_map(|c| match c.phase {
                Phase::Idle if c.retry_at > now => Some(c.retry_at),
                Phase::Dialing { since } => Some((since + self.config.dial_timeout).max(now)),
                _ => None,
            })
            .min()
    }

    /// Addresses worth saving in the peer cache: those that connected at some time, connected ones and those
    /// with the fewest failures first, at most `max`.
    pub fn cacheable(&self, max: usize) -> Vec<SocketAddr> {
        let mut good: Vec<(&SocketAddr, &Candidate)> = self
            .candidates
            .iter()
            .filter(|(_, c)| c.ever_connected)
            .collect();
        good.sort_by_key(|(addr, c)| (c.phase != Phase::Connected, c.failures, **addr));
        good.into_iter().take(max).map(|(addr, _)| *addr).collect()
    }

    fn dialing_count(&self) -> usize {
        self.candidates
            .values()
            .filter(|c| matches!(c.phase, Phase::Dialing { .. }))
            .count()
    }

    /// Turns dials that were never reported back into failures.
    fn expire_dials(&mut self, now: Duration) {
        let expired: Vec<SocketAddr> = self
            .candidates
            .iter()
            .filter(|(_, c)| {
                matches!(c.phase, Phase::Dialing { since } if since + self.config.dial_timeout <= now)
            })
            .map(|(addr, _)| *addr)
            .collect();
        for addr in expired {
            self.dial_failed(&addr, now);
        }
    }

    fn record_failure(&mut self, addr: &SocketAddr, now: Duration) {
        let Some(c) = self.candidates.get_mut(addr) else {
            return;
        };
        c.failures = c.failures.saturating_add(1);
        if c.failures >= self.config.max_failures && c.source != Source::User {
            self.candidates.remove(addr);
            return;
        }
        c.retry_at = now + backoff(&self.config, c.failures);
    }

    fn remember_own_address(&mut self, addr: SocketAddr) {
        self.candidates.remove(&addr);
        if self.own_addresses.len() >= MAX_OWN_ADDRESSES
            && let Some(first) = self.own_addresses.iter().next().copied()
        {
            self.own_addresses.remove(&first);
        }
        self.own_addresses.insert(addr);
    }

    /// The idle candidate a newcomer from `source` may push out of a full set, if any: the worst one by source,
    /// then never-connected before connected, then most failures, then least recently heard. Users' candidates
    /// are never pushed out, and one that ever connected only by a newcomer of a strictly better source.
    fn eviction_victim(&self, source: Source) -> Option<SocketAddr> {
        self.candidates
            .iter()
            .filter(|(_, c)| {
                c.phase == Phase::Idle
                    && c.source != Source::User
                    && (c.source > source || (c.source == source && !c.ever_connected))
            })
            .max_by_key(|(addr, c)| {
                (
                    c.source,
                    !c.ever_connected,
                    c.failures,
                    std::cmp::Reverse(c.last_heard),
                    **addr,
                )
            })
            .map(|(addr, _)| *addr)
    }
}

/// Whether anything could be listening at `addr`.
fn is_dialable(addr: &SocketAddr) -> bool {
    if addr.port() == 0 {
        return false;
    }
    match addr.ip() {
        IpAddr::V4(ip) => !(ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast()),
        IpAddr::V6(ip) => !(ip.is_unspecified() || ip.is_multicast()),
    }
}

/// The retry delay after `failures` failures in a row: `backoff_base * 2^(failures - 1)`, at most `backoff_max`.
fn backoff(config: &OverlayConfig, failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(30);
    config
        .backoff_base
        .checked_mul(1u32 << doublings)
        .unwrap_or(config.backoff_max)
        .min(config.backoff_max)
}

/// A per-node pseudo-random order of addresses (splitmix64 over the seed and the address bytes).
fn tie_break(seed: u64, addr: &SocketAddr) -> u64 {
    let mut h = seed ^ 0x9e37_79b9_7f4a_7c15;
    let mut mix = |word: u64| {
        h = h.wrapping_add(word).wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = h;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        h = z ^ (z >> 31);
    };
    match addr.ip() {
        IpAddr::V4(ip) => mix(u64::from(u32::from(ip))),
        IpAddr::V6(ip) => {
            let bits = u128::from(ip);
            mix(bits as u64);
            mix((bits >> 64) as u64);
        }
    }
    mix(u64::from(addr.port()));
    h
}
