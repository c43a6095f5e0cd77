//! How much of itself a node shows on the kolokol network, decided by its bridge options (issue 16, part 4): a
//! bridge that announces itself is listed, and a listed bridge is a blocked bridge.
//!
//! - [`Presence::Listed`] (no bridge): the ordinary node.
//! - [`Presence::Hidden`] (`up --bridge`): a full node that runs a bridge and lists itself nowhere. It does not
//!   announce on the rendezvous (it only looks the others up), does not announce torrents or put its feed head in
//!   the DHT, does not announce on the LAN, is not a full DHT node (`--dht-server` is refused), and its wire
//!   listener is on loopback, so it accepts no kolokol connection from outside (a non-loopback `--wire` is
//!   refused). It still dials the peers it finds: they, and the DHT nodes that see its lookups, learn that its
//!   address runs kolokol (SECURITY.md).
//! - [`Presence::BridgeOnly`] (`up --bridge-only`): only the bridge (and the local API). No catalog exchange, no
//!   wire listener, no dialling, no DHT traffic (its DHT node is bound to loopback with no bootstrap node, so it
//!   contacts nobody), no LAN, the BitTorrent engine on loopback; nothing is resumed or mirrored. The catalog
//!   database is opened for the node's settings (the bridge port), and receives no records.
//!
//! [`apply`] turns the user's configuration into the one the node runs, refusing what would expose the bridge.

use std::net::{Ipv4Addr, SocketAddr};

use crate::config::{DiscoveryConfig, NodeConfig};

/// How much a node shows of itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Listed,
    Hidden,
    BridgeOnly,
}

impl Presence {
    /// The presence a configuration asks for.
    pub fn of(config: &NodeConfig) -> Presence {
        match &config.proxy.bridge {
            None => Presence::Listed,
            Some(bridge) if bridge.only => Presence::BridgeOnly,
            Some(_) => Presence::Hidden,
        }
    }

    /// Whether the node announces itself anywhere (rendezvous, torrents, feed heads, LAN).
    pub fn announces(self) -> bool {
        self == Presence::Listed
    }
}

/// A setting that would list a bridge.
#[derive(Debug, thiserror::Error)]
pub enum PresenceError {
    #[error(
        "--wire {0}: a bridge accepts no kolokol connection from outside; give a loopback address or leave --wire out"
    )]
    WireOutside(SocketAddr),
    #[error(
        "--dht-server would put the bridge's address in other DHT nodes' routing tables; leave it out"
    )]
    DhtServer,
}

fn loopback_any() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

/// The configuration the node runs with for its presence.
pub fn apply(mut config: NodeConfig) -> Result<NodeConfig, PresenceError> {
    let presence = Presence::of(&config);
    if presence == Presence::Listed {
        return Ok(config);
    }
    match config.wire_listen {
        Some(addr) if !addr.ip().is_loopback() => return Err(PresenceError::WireOutside(addr)),
        Some(_) => {}
        None => config.wire_listen = Some(loopback_any()),
    }
    if config.discovery.dht_server {
        return Err(PresenceError::DhtServer);
    }
    config.discovery.lan = false;
    if presence == Presence::BridgeOnly {
        config.bt_listen = Some(loopback_any());
        config.discovery = DiscoveryConfig {
            dht_listen: Some(loopback_any()),
            bootstrap: Vec::new(),
            no_default_bootstrap: true,
            dht_server: false,
            lan: false,
            lan_interfaces: Vec::new(),
            ..config.discovery
        };
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::proxy::BridgeOptions;

    fn with_bridge(only: bool) -> NodeConfig {
        let mut config = NodeConfig::default();
        config.proxy.bridge = Some(BridgeOptions {
            only,
            ..BridgeOptions::default()
        });
        config
    }

    #[test]
    fn an_ordinary_node_is_unchanged() {
        let config = apply(NodeConfig::default()).unwrap();
        assert_eq!(Presence::of(&config), Presence::Listed);
        assert!(config.wire_listen.is_none() && config.discovery.lan);
    }

    #[test]
    fn a_bridge_listens_on_loopback_and_refuses_what_would_list_it() {
        let config = apply(with_bridge(false)).unwrap();
        assert_eq!(Presence::of(&config), Presence::Hidden);
        assert!(config.wire_listen.unwrap().ip().is_loopback());
        assert!(!config.discovery.lan);
        // The DHT still bootstraps as configured: a hidden full node looks the network up.
        assert!(!config.discovery.no_default_bootstrap);

        let mut outside = with_bridge(false);
        outside.wire_listen = Some("0.0.0.0:4000".parse().unwrap());
        assert!(matches!(apply(outside), Err(PresenceError::WireOutside(_))));
        let mut local = with_bridge(false);
        local.wire_listen = Some("127.0.0.1:4000".parse().unwrap());
        assert_eq!(
            apply(local).unwrap().wire_listen,
            Some("127.0.0.1:4000".parse().unwrap())
        );
        let mut server = with_bridge(true);
        server.discovery.dht_server = true;
        assert!(matches!(apply(server), Err(PresenceError::DhtServer)));
    }

    #[test]
    fn a_bridge_only_node_reaches_nobody_on_the_kolokol_network() {
        let mut config = with_bridge(true);
        config.discovery.bootstrap = vec!["198.18.0.1:6881".into()];
        let config = apply(config).unwrap();
        assert_eq!(Presence::of(&config), Presence::BridgeOnly);
        assert!(config.bt_listen.unwrap().ip().is_loopback());
        assert!(config.discovery.dht_listen.unwrap().ip().is_loopback());
        assert!(config.discovery.bootstrap.is_empty());
        assert!(config.discovery.no_default_bootstrap);
        assert!(!config.discovery.lan);
    }
}
