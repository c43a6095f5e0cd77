//! The node's side of "reach blocked sites" (design decision 9): it runs the local SOCKS5/HTTP proxy of
//! `kolokol-proxy` with the bridges and rules the user saved, runs this node's own bridge when asked (`up
//! --bridge`), and keeps what must survive a restart in the data directory (see [`saved`]).
//!
//! The proxy crate does the work; this module only starts it, feeds it what was saved, and turns the user's
//! commands into saved state plus calls on the running handles. A command that fails changes neither.
//!
//! What does not survive a restart: what the proxy learnt about sites (which needed a bridge). It is in the proxy's
//! memory only, so after a restart every site starts direct again unless a rule says otherwise.

mod api;
mod saved;
mod views;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use kolokol_core::detour::{Host, Rule, RuleError, Rules};
use kolokol_proxy::{
    BlockPageRules, BridgeConfig, BridgeError, BridgeHandle, BridgeServer, ProxyConfig, ProxyError,
    ProxyHandle, ProxyServer,
};
use kolokol_store::Catalog;

pub use api::ProxyApi;
pub use saved::{MAX_BRIDGES, MAX_INVITATIONS, SavedError, SavedFileDamage};
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
    /// Hosts that block pages redirect to: a plain-HTTP redirect to one (or a name under it) is a block page.
    pub block_hosts: Vec<Host>,
    /// Texts that appear in block pages (in the headers or the start of the body of a plain-HTTP answer). HTTP 451
    /// is always a block page.
    pub block_signatures: Vec<String>,
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
    /// A bridge-only node (`up --bridge-only`): the bridge and nothing of the kolokol network. Without it the node
    /// is a full node that lists itself nowhere. See the node's `presence` module for what each starts.
    pub only: bool,
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
                config.block_pages = BlockPageRules {
                    signatures: options
                        .block_signatures
                        .iter()
                        .map(|s| s.as_bytes().to_vec())
                        .collect(),
                    block_hosts: options.block_hosts.clone(),
                };
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
}
