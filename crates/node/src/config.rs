//! What a node is told at start.

use std::net::SocketAddr;

/// Default network name: nodes of different networks never exchange records.
pub const DEFAULT_NETWORK: &str = "kolokol";
/// Default HTTP API address.
pub const DEFAULT_API_ADDR: &str = "127.0.0.1:7411";

/// Options of a node. The data directory is passed separately, already locked (see [`crate::DataDir`]).
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Network name; records of another network are refused.
    pub network: String,
    /// BitTorrent listen address. `None`: all interfaces, on the port chosen on first start and kept.
    pub bt_listen: Option<SocketAddr>,
    /// kolokol wire protocol listen address. `None`: all interfaces, on the port chosen on first start and kept.
    pub wire_listen: Option<SocketAddr>,
    /// Address the HTTP API was bound to by the caller; reported by `status`.
    pub api_addr: SocketAddr,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            network: DEFAULT_NETWORK.to_owned(),
            bt_listen: None,
            wire_listen: None,
            api_addr: SocketAddr::from(([127, 0, 0, 1], 7411)),
        }
    }
}
