//! The node's side of "reach blocked sites" (design decision 9): it runs the local SOCKS5/HTTP proxy of
//! `kolokol-proxy` with the bridges and rules the user saved, runs this node's own bridge when asked (`up
//! --bridge`), and keeps what must survive a restart in the data directory (see [`saved`]).
//!
//! The proxy crate does the work; this module only starts it, feeds it what was saved, and turns the user's
//! commands into saved state plus calls on the running handles. A command that fails changes neither.
//!
//! What does not survive a restart: what the proxy learnt about sites (which needed a bridge). It is in the proxy's
//! memory only, so after a restart every site starts direct again unless a rule says otherwise.

mod saved;
mod views;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use kolokol_core::detour::{Host, Pattern, Rule, RuleError, Rules};
use kolokol_proxy::{
    BridgeConfig, BridgeError, BridgeHandle, BridgeServer, Invitation, ProxyConfig, ProxyError,
    ProxyHandle, ProxyServer,
};
use kolokol_store::Catalog;

use crate::error::ApiError;
pub use saved::{MAX_BRIDGES, MAX_INVITATIONS, SavedError};
use saved::{SavedBridge, SavedInvitation};
pub use views::{
    BridgeServerView, BridgeView, InvitationInfoView, InvitationView, ProxyStatusView, SiteView,
};

/// Settings key of the bridge port chosen on first start (invitations carry it, so it must not change).
const BRIDGE_PORT_KEY: &str = "bridge_port";

/// What the node is told about the proxy and the bridge (`NodeConfig::proxy`).
#[derive(Debug, Clone, Default)]
pub struct ProxyOptions {
    /// Where the local SOCKS5/HTTP proxy listens; `None`: no proxy. (`NodeConfig::default()` has none, so that
    /// embedded nodes and tests never take a fixed port; `kolokol up` uses `127.0.0.1:7412` unless told otherwise.)
    /// Keep it on loopback: the proxy has no authentication.
    pub listen: Option<SocketAddr>,
    /// When `listen` is taken by another program, run without the proxy (with a warning) instead of refusing to
    /// start. For the default address, which the user did not ask for by name.
    pub skip_if_busy: bool,
    /// Rules for this run on top of the saved ones; one here replaces a saved rule for the same pattern.
    pub rules: Vec<Rule>,
    /// Addresses censoring resolvers hand out: a DNS answer containing one counts as tampering.
    pub bogus_dns: Vec<IpAddr>,
    /// Also run a bridge for invited clients.
    pub bridge: Option<BridgeOptions>,
}

/// How this node runs a bridge.
#[derive(Debug, Clone, Default)]
pub struct BridgeOptions {
    /// Where the bridge listens. `None`: all interfaces. With no address or port 0, the port is chosen on the
    /// first start and kept, since every invitation carries it.
    pub listen: Option<SocketAddr>,
    /// DANGEROUS: let invited clients reach this machine's loopback and private networks (its router, its LAN,
    /// local services). Only for tests on one machine and private deployments.
    pub allow_private_targets: bool,
}

/// Why the proxy or the bridge could not start. (`Proxy` and `Bridge` carry their error in the message rather than
/// as a source: its message already ends with the operating system's reason, which the CLI would print twice.)
#[derive(Debug, thiserror::Error)]
pub enum ProxyStartError {
    #[error(transparent)]
    Saved(#[from] SavedError),
    #[error("proxy rules: {0}")]
    Rules(#[from] RuleError),
    #[error(
        "cannot start the local proxy (choose another address with --proxy, or --no-proxy): {0}"
    )]
    Proxy(ProxyError),
    #[error("cannot start the bridge: {0}")]
    Bridge(BridgeError),
    #[error(transparent)]
    Store(#[from] kolokol_store::StoreError),
}

/// The running proxy and bridge, and what is saved for them.
pub(crate) struct ProxyService {
    root: PathBuf,
    flag_rules: Vec<Rule>,
    proxy_addr: Option<SocketAddr>,
    bridge_addr: Option<SocketAddr>,
    state: Mutex<State>,
}

/// Changed only under the lock, file first: a command whose file write fails leaves the running state alone.
struct State {
    proxy: Option<ProxyHandle>,
    bridge: Option<BridgeHandle>,
    /// Client side: the bridges the user added.
    bridges: Vec<SavedBridge>,
    /// Bridge side: the invitations handed out.
    invitations: Vec<SavedInvitation>,
    /// The user's saved rules.
    rules: Vec<Rule>,
}

impl ProxyService {
    /// Loads what was saved and starts the proxy and the bridge as `options` say. `catalog` keeps the bridge port.
    pub async fn start(
        root: &Path,
        catalog: &mut Catalog,
        options: &ProxyOptions,
    ) -> Result<ProxyService, ProxyStartError> {
        let file = |name| root.join(name);
        let bridges = saved::load_bridges(&file(saved::BRIDGES_FILE))?;
        let rules = saved::load_rules(&file(saved::RULES_FILE))?;
        let effective = effective_rules(&rules, &options.rules)?;

        let proxy = match options.listen {
            None => None,
            Some(listen) => {
                if !listen.ip().is_loopback() {
                    tracing::warn!(
                        %listen,
                        "the local proxy asks no password and listens beyond this machine: anyone who reaches \
                         it can use it and its bridges"
                    );
                }
                let mut config = ProxyConfig::new(listen);
                config.bogus_dns = options.bogus_dns.clone();
                config.rules = effective;
                let invitations = bridges.iter().map(|b| b.invitation.clone()).collect();
                match ProxyServer::start(config, invitations).await {
                    Ok(proxy) => Some(proxy),
                    Err(error) if options.skip_if_busy => {
                        tracing::warn!(%error, "running without the local proxy");
                        None
                    }
                    Err(error) => return Err(ProxyStartError::Proxy(error)),
                }
            }
        };

        let (bridge, invitations) = match &options.bridge {
            None => (None, Vec::new()),
            Some(bridge_options) => {
                let key = saved::load_or_create_bridge_key(&file(saved::BRIDGE_KEY_FILE))?;
                let invitations = saved::load_invitations(&file(saved::INVITATIONS_FILE))?;
                let (listen, remember) = bridge_listen_addr(catalog, bridge_options.listen)?;
                let mut config = BridgeConfig::new(listen, key);
                config.invitations = invitations.iter().map(|i| i.secret.clone()).collect();
                config.allow_private_targets = bridge_options.allow_private_targets;
                if config.allow_private_targets {
                    tracing::warn!(
                        "the bridge lets invited clients reach this machine's loopback and private networks"
                    );
                }
                let bridge = BridgeServer::start(config)
                    .await
                    .map_err(ProxyStartError::Bridge)?;
                if remember {
                    catalog
                        .set_setting(BRIDGE_PORT_KEY, &bridge.local_addr().port().to_string())?;
                }
                (Some(bridge), invitations)
            }
        };

        let proxy_addr = proxy.as_ref().map(ProxyHandle::addr);
        let bridge_addr = bridge.as_ref().map(BridgeHandle::local_addr);
        if let Some(addr) = proxy_addr {
            tracing::info!(%addr, bridges = bridges.len(), "local proxy started");
        }
        if let Some(addr) = bridge_addr {
            tracing::info!(%addr, invitations = invitations.len(), "bridge started");
        }
        Ok(ProxyService {
            root: root.to_path_buf(),
            flag_rules: options.rules.clone(),
            proxy_addr,
            bridge_addr,
            state: Mutex::new(State {
                proxy,
                bridge,
                bridges,
                invitations,
                rules,
            }),
        })
    }

    /// The proxy's bound address, if it runs.
    pub fn proxy_addr(&self) -> Option<SocketAddr> {
        self.proxy_addr
    }

    /// Stops the proxy and the bridge, closing their connections.
    pub async fn shutdown(&self) {
        let (proxy, bridge) = {
            let mut state = self.state();
            (state.proxy.take(), state.bridge.take())
        };
        if let Some(proxy) = proxy {
            proxy.shutdown().await;
        }
        if let Some(bridge) = bridge {
            bridge.shutdown().await;
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while the lock was held must not take the proxy commands down; the files are the truth.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn file(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
}

/// The proxy and bridge part of the node's API (see [`crate::Api::proxy`]). Cheap to clone.
#[derive(Clone)]
pub struct ProxyApi {
    service: Arc<ProxyService>,
}

impl ProxyApi {
    pub(crate) fn new(service: Arc<ProxyService>) -> ProxyApi {
        ProxyApi { service }
    }

    /// Which sites went where, the bridges' health, and this node's own bridge.
    pub fn status(&self) -> ProxyStatusView {
        let state = self.service.state();
        let live = state.proxy.as_ref().map(ProxyHandle::status);
        let sites = live.as_ref().map_or_else(Vec::new, |status| {
            status
                .sites
                .iter()
                .map(|site| SiteView::from_site(site, status.now_ms))
                .collect()
        });
        let rules = effective_rules(&state.rules, &self.service.flag_rules)
            .map(|r| r.rules().iter().map(Rule::to_string).collect())
            .unwrap_or_default();
        let bridge_server = match (&state.bridge, self.service.bridge_addr) {
            (Some(bridge), Some(addr)) => Some(BridgeServerView::new(
                addr.to_string(),
                bridge.invitation_ids().len(),
                bridge.stats(),
            )),
            _ => None,
        };
        ProxyStatusView {
            proxy_addr: self.service.proxy_addr.map(|a| a.to_string()),
            connections_open: live.as_ref().map_or(0, |s| s.connections_open),
            rules,
            sites,
            bridges: bridge_views(&state),
            bridge_server,
        }
    }

    /// The bridges this node uses as a client.
    pub fn bridges(&self) -> Vec<BridgeView> {
        bridge_views(&self.service.state())
    }

    /// Adds a bridge from an invitation code (`bridge add`), saves it and hands it to the running proxy. Adding a
    /// code that is already there changes nothing and answers the bridge as it is.
    pub fn add_bridge(&self, code: &str) -> Result<BridgeView, ApiError> {
        let invitation = Invitation::parse(code).map_err(|e| ApiError::Invalid(e.to_string()))?;
        let id = invitation.secret.id();
        let mut state = self.service.state();
        if !state
            .bridges
            .iter()
            .any(|b| b.invitation.secret == invitation.secret)
        {
            if state.bridges.len() >= MAX_BRIDGES {
                return Err(ApiError::Invalid(format!(
                    "this node already has {MAX_BRIDGES} bridges; remove one first"
                )));
            }
            let mut next = state.bridges.clone();
            next.push(SavedBridge {
                invitation: invitation.clone(),
                added: crate::node::unix_now(),
            });
            saved::save_bridges(&self.service.file(saved::BRIDGES_FILE), &next)
                .map_err(|e| ApiError::internal("saving the bridge", e))?;
            state.bridges = next;
            if let Some(proxy) = &state.proxy {
                proxy.add_bridge(invitation);
            }
        }
        bridge_views(&state)
            .into_iter()
            .find(|b| b.id == id)
            .ok_or_else(|| ApiError::Internal("the bridge was not stored".into()))
    }

    /// Removes a bridge (by invitation id) from the saved list and from the running proxy.
    pub fn remove_bridge(&self, id: &str) -> Result<(), ApiError> {
        let id = parse_id(id)?;
        let mut state = self.service.state();
        let mut next = state.bridges.clone();
        next.retain(|b| b.invitation.secret.id() != id);
        if next.len() == state.bridges.len() {
            return Err(ApiError::NotFound(format!("no bridge with id {id}")));
        }
        saved::save_bridges(&self.service.file(saved::BRIDGES_FILE), &next)
            .map_err(|e| ApiError::internal("saving the bridges", e))?;
        state.bridges = next;
        if let Some(proxy) = &state.proxy {
            proxy.remove_bridge(&id);
        }
        Ok(())
    }

    /// Makes a new invitation to this node's bridge (`bridge invite`) for clients that will dial `host:port`
    /// (default: the address the bridge listens on, when it is a specific one), saves it, and starts accepting it.
    pub fn invite(
        &self,
        host: Option<&str>,
        port: Option<u16>,
    ) -> Result<InvitationView, ApiError> {
        let mut state = self.service.state();
        let (Some(bridge), Some(listen)) = (&state.bridge, self.service.bridge_addr) else {
            return Err(ApiError::Invalid(
                "this node runs no bridge: start it with `kolokol up --bridge`".into(),
            ));
        };
        let host = match host.map(str::trim).filter(|h| !h.is_empty()) {
            Some(host) => {
                Host::parse(host).map_err(|e| ApiError::Invalid(format!("--host: {e}")))?
            }
            None if listen.ip().is_unspecified() => {
                return Err(ApiError::Invalid(
                    "the bridge listens on every interface, so it cannot tell which address clients reach it \
                     at: pass --host with its public IP address or DNS name"
                        .into(),
                ));
            }
            None => Host::from_ip(listen.ip()),
        };
        let port = match port {
            Some(0) => return Err(ApiError::Invalid("--port must not be 0".into())),
            Some(port) => port,
            None => listen.port(),
        };
        if state.invitations.len() >= MAX_INVITATIONS {
            return Err(ApiError::Invalid(format!(
                "this bridge already has {MAX_INVITATIONS} invitations; revoke some first"
            )));
        }
        let invitation = Invitation::generate(host.clone(), port, bridge.public_key());
        let qr = invitation
            .qr_terminal_string()
            .map_err(|e| ApiError::internal("drawing the QR code", e))?;
        let saved = SavedInvitation {
            secret: invitation.secret.clone(),
            host,
            port,
            created: crate::node::unix_now(),
        };
        let mut next = state.invitations.clone();
        next.push(saved.clone());
        saved::save_invitations(&self.service.file(saved::INVITATIONS_FILE), &next)
            .map_err(|e| ApiError::internal("saving the invitation", e))?;
        bridge.add_invitation(invitation.secret.clone());
        state.invitations = next;
        Ok(InvitationView {
            id: invitation.secret.id(),
            code: invitation.to_code(),
            qr,
            address: invitation.address(),
            created: saved.created,
        })
    }

    /// The invitations this node's bridge accepts (their ids and addresses, never their secrets).
    pub fn invitations(&self) -> Result<Vec<InvitationInfoView>, ApiError> {
        let state = self.service.state();
        if state.bridge.is_none() {
            return Err(ApiError::Invalid(
                "this node runs no bridge: start it with `kolokol up --bridge`".into(),
            ));
        }
        Ok(state
            .invitations
            .iter()
            .map(|i| InvitationInfoView {
                id: i.secret.id(),
                address: i.address(),
                created: i.created,
            })
            .collect())
    }

    /// Stops accepting an invitation and forgets it (tunnels already open stay up until they close).
    pub fn revoke(&self, id: &str) -> Result<(), ApiError> {
        let id = parse_id(id)?;
        let mut state = self.service.state();
        let mut next = state.invitations.clone();
        next.retain(|i| i.secret.id() != id);
        if next.len() == state.invitations.len() {
            return Err(ApiError::NotFound(format!("no invitation with id {id}")));
        }
        saved::save_invitations(&self.service.file(saved::INVITATIONS_FILE), &next)
            .map_err(|e| ApiError::internal("saving the invitations", e))?;
        state.invitations = next;
        if let Some(bridge) = &state.bridge {
            bridge.revoke_invitation(&id);
        }
        Ok(())
    }

    /// Saves a rule `PATTERN=direct|bridge` (replacing a saved rule for the same pattern) and applies it at once.
    /// Returns the rules in force.
    pub fn add_rule(&self, text: &str) -> Result<Vec<String>, ApiError> {
        let rule = Rule::parse(text).map_err(|e| ApiError::Invalid(e.to_string()))?;
        let mut state = self.service.state();
        let mut next = state.rules.clone();
        next.retain(|r| r.pattern != rule.pattern);
        next.push(rule);
        self.replace_rules(&mut state, next)
    }

    /// Removes the saved rule for a pattern. Returns the rules in force.
    pub fn remove_rule(&self, pattern: &str) -> Result<Vec<String>, ApiError> {
        let pattern = Pattern::parse(pattern).map_err(|e| ApiError::Invalid(e.to_string()))?;
        let mut state = self.service.state();
        let mut next = state.rules.clone();
        next.retain(|r| r.pattern != pattern);
        if next.len() == state.rules.len() {
            return Err(ApiError::NotFound(format!("no saved rule for {pattern}")));
        }
        self.replace_rules(&mut state, next)
    }

    /// Forgets what the proxy learnt about a site (so it is tried direct again). Returns whether anything was known.
    pub fn forget(&self, host: &str) -> Result<bool, ApiError> {
        let host = Host::parse(host.trim()).map_err(|e| ApiError::Invalid(e.to_string()))?;
        let state = self.service.state();
        Ok(state.proxy.as_ref().is_some_and(|p| p.forget(&host)))
    }

    fn replace_rules(&self, state: &mut State, next: Vec<Rule>) -> Result<Vec<String>, ApiError> {
        // Checked as a whole (count, conflicts) before anything is written.
        Rules::new(next.clone()).map_err(|e| ApiError::Invalid(e.to_string()))?;
        let effective = effective_rules(&next, &self.service.flag_rules)
            .map_err(|e| ApiError::Invalid(e.to_string()))?;
        saved::save_rules(&self.service.file(saved::RULES_FILE), &next)
            .map_err(|e| ApiError::internal("saving the rules", e))?;
        state.rules = next;
        if let Some(proxy) = &state.proxy {
            proxy.set_rules(effective.clone());
        }
        Ok(effective.rules().iter().map(Rule::to_string).collect())
    }
}

/// The saved rules with this run's flag rules on top (a flag rule replaces a saved one for the same pattern).
fn effective_rules(saved: &[Rule], flags: &[Rule]) -> Result<Rules, RuleError> {
    let mut all: Vec<Rule> = saved
        .iter()
        .filter(|r| !flags.iter().any(|f| f.pattern == r.pattern))
        .cloned()
        .collect();
    all.extend(flags.iter().cloned());
    Rules::new(all)
}

fn bridge_views(state: &State) -> Vec<BridgeView> {
    let live = state
        .proxy
        .as_ref()
        .map(|p| p.status().bridges)
        .unwrap_or_default();
    state
        .bridges
        .iter()
        .map(|b| {
            let id = b.invitation.secret.id();
            let status = live.iter().find(|s| s.id == id);
            BridgeView::new(id, b.invitation.address(), b.added, status)
        })
        .collect()
}

/// An invitation id: 8 hex digits.
fn parse_id(id: &str) -> Result<String, ApiError> {
    let id = id.trim().to_ascii_lowercase();
    if id.len() == 8 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(id)
    } else {
        Err(ApiError::Invalid(format!(
            "{id:?} is not an invitation id (8 hex digits, as `bridge list` shows)"
        )))
    }
}

/// Where the bridge listens, and whether its port was chosen now (and must be kept for the next start).
fn bridge_listen_addr(
    catalog: &Catalog,
    requested: Option<SocketAddr>,
) -> Result<(SocketAddr, bool), ProxyStartError> {
    let requested = requested.unwrap_or(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
    if requested.port() != 0 {
        return Ok((requested, false));
    }
    let kept = catalog
        .get_setting(BRIDGE_PORT_KEY)?
        .and_then(|port| port.parse::<u16>().ok())
        .filter(|port| *port != 0);
    Ok(match kept {
        Some(port) => (SocketAddr::new(requested.ip(), port), false),
        None => (requested, true),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_rules_replace_saved_rules_for_the_same_pattern() {
        let saved = vec![
            Rule::parse("a.org=bridge").unwrap(),
            Rule::parse("b.org=direct").unwrap(),
        ];
        let flags = vec![Rule::parse("a.org=direct").unwrap()];
        let rules = effective_rules(&saved, &flags).unwrap();
        let host = Host::parse("www.a.org").unwrap();
        assert_eq!(
            rules.route_for(&host),
            Some(kolokol_core::detour::Route::Direct)
        );
        assert_eq!(rules.rules().len(), 2);
    }

    #[test]
    fn invitation_ids_are_checked() {
        assert_eq!(parse_id(" 0A1b2C3d ").unwrap(), "0a1b2c3d");
        assert!(parse_id("0a1b2c3").is_err());
        assert!(parse_id("0a1b2c3g").is_err());
        assert!(parse_id("../../etc").is_err());
    }
}
