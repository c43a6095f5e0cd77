//! The JSON shapes of the proxy and bridge API (and of the CLI's `--json`). Documented in docs/cli.md; keep in step.

use kolokol_core::detour::{BridgeMark, RouteReason, SiteRoute};
use kolokol_proxy::{BridgeStats, BridgeStatus};
use serde::{Deserialize, Serialize};

/// `proxy status`: where sites went, how the bridges are doing, and this node's own bridge if it runs one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProxyStatusView {
    /// The local SOCKS5/HTTP proxy's address; `null` when the node runs without a proxy.
    pub proxy_addr: Option<String>,
    pub connections_open: usize,
    /// The rules in force (`PATTERN=direct|bridge`): the saved ones and those given to `up` with `--proxy-rule`.
    pub rules: Vec<String>,
    /// Every site the proxy has seen since it started, plus every site a rule names, sorted by host.
    pub sites: Vec<SiteView>,
    /// The bridges this node uses as a client.
    pub bridges: Vec<BridgeView>,
    /// This node's own bridge (`up --bridge`), or `null`.
    pub bridge_server: Option<BridgeServerView>,
}

/// One site in `proxy status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SiteView {
    pub host: String,
    /// `direct` or `bridge`: where a new connection would start now.
    pub route: String,
    /// Why: `rule`, `remembered` (a recent direct failure), `remembered-permanently`, `default`, or `no-bridge`
    /// (the site needs one but none is configured).
    pub reason: String,
    /// How long the site goes through a bridge: `none`, `temporary` or `permanent`.
    pub bridge_mark: String,
    /// Seconds left of a temporary bridge period.
    pub bridge_secs_left: Option<u64>,
    /// Direct failures in a row (counted once per bridge period).
    pub failures: u32,
    /// The most recent reason the direct route failed: reset, connect timeout, DNS failure, bogus DNS answer,
    /// block page, no first byte.
    pub last_failure: Option<String>,
    /// Connections that went through directly.
    pub direct_ok: u64,
    /// Connections that went through a bridge.
    pub via_bridge: u64,
}

impl SiteView {
    pub(crate) fn from_site(site: &SiteRoute, now_ms: u64) -> SiteView {
        let reason = match site.reason {
            RouteReason::Rule => "rule",
            RouteReason::Remembered => "remembered",
            RouteReason::RememberedPermanently => "remembered-permanently",
            RouteReason::Default => "default",
            RouteReason::NoBridge => "no-bridge",
        };
        let memory = site.memory.as_ref();
        let (bridge_mark, bridge_secs_left) = match memory.map(|m| m.bridge) {
            Some(BridgeMark::Until(until)) if until > now_ms => {
                ("temporary", Some((until - now_ms).div_ceil(1000)))
            }
            Some(BridgeMark::Permanent) => ("permanent", None),
            _ => ("none", None),
        };
        SiteView {
            host: site.host.to_string(),
            route: site.route.to_string(),
            reason: reason.to_owned(),
            bridge_mark: bridge_mark.to_owned(),
            bridge_secs_left,
            failures: memory.map_or(0, |m| m.failures),
            last_failure: memory.and_then(|m| m.last_failure).map(|f| f.to_string()),
            direct_ok: memory.map_or(0, |m| m.direct_ok),
            via_bridge: memory.map_or(0, |m| m.via_bridge),
        }
    }
}

/// A bridge this node uses (`bridge list`, `bridge add`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BridgeView {
    /// The invitation's id (8 hex digits), for `bridge remove`.
    pub id: String,
    /// `host:port` of the bridge.
    pub address: String,
    /// Unix time it was added.
    pub added: u64,
    /// A tunnel to it is open now.
    pub connected: bool,
    /// Smoothed round-trip time of keep-alive pings.
    pub rtt_ms: Option<u64>,
    /// Considered dead right now (it is skipped for a while, and tried last).
    pub down: bool,
    pub failures: u64,
    pub streams_open: usize,
    pub streams_total: u64,
    pub last_error: Option<String>,
}

impl BridgeView {
    pub(crate) fn new(
        id: String,
        address: String,
        added: u64,
        live: Option<&BridgeStatus>,
    ) -> Self {
        BridgeView {
            id,
            address,
            added,
            connected: live.is_some_and(|s| s.connected),
            rtt_ms: live.and_then(|s| s.rtt_ms),
            down: live.is_some_and(|s| s.down),
            failures: live.map_or(0, |s| s.failures),
            streams_open: live.map_or(0, |s| s.streams_open),
            streams_total: live.map_or(0, |s| s.streams_total),
            last_error: live.and_then(|s| s.last_error.clone()),
        }
    }
}

/// This node's own bridge.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BridgeServerView {
    /// The address the bridge listens on.
    pub listen_addr: String,
    /// Invitations it accepts.
    pub invitations: usize,
    pub tunnels_open: usize,
    pub tunnels_total: u64,
    /// Streams its clients opened through it (sites it connected to for them).
    pub streams_total: u64,
    /// Connections that got silence: probes, wrong or revoked secrets, replays, junk.
    pub silenced_total: u64,
    /// Unrecognised connections closed early because their address had too many pending (a flood).
    #[serde(default)]
    pub evicted_total: u64,
}

impl BridgeServerView {
    pub(crate) fn new(listen_addr: String, invitations: usize, stats: BridgeStats) -> Self {
        BridgeServerView {
            listen_addr,
            invitations,
            tunnels_open: stats.tunnels_open,
            tunnels_total: stats.tunnels_total,
            streams_total: stats.streams_total,
            silenced_total: stats.silenced_total,
            evicted_total: stats.evicted_total,
        }
    }
}

/// A new invitation (`bridge invite`): hand `code` (or `qr`) to the person it is for, over a channel you trust.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InvitationView {
    /// Names the invitation for `bridge invitations` and `bridge revoke`; not secret.
    pub id: String,
    /// `kolokol-bridge:...`: the bridge's address, key and this invitation's secret.
    pub code: String,
    /// The code as a QR code drawn with Unicode blocks, for a terminal.
    pub qr: String,
    /// `host:port` clients will dial.
    pub address: String,
    pub created: u64,
}

/// An invitation this bridge accepts (`bridge invitations`): never its secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InvitationInfoView {
    pub id: String,
    pub address: String,
    pub created: u64,
}
