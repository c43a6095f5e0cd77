//! A real node (real SQLite file, real engine on loopback, private DHT) for driving the router in memory.

#![allow(dead_code)] // each test file uses a part

use kolokol_node::{DataDir, DiscoveryConfig, Node, NodeConfig};

/// The API address the node believes it serves (requests must name it in `Host`).
pub const HOST: &str = "127.0.0.1:7411";

/// Starts a node on a fresh data directory, with a cheap proof of work.
pub async fn node(dir: &std::path::Path) -> Node {
    node_with(dir, |_| {}).await
}

/// [`node`] with settings of the caller's.
pub async fn node_with(dir: &std::path::Path, adjust: impl FnOnce(&mut NodeConfig)) -> Node {
    let mut config = NodeConfig {
        bt_listen: Some("127.0.0.1:0".parse().unwrap()),
        wire_listen: Some("127.0.0.1:0".parse().unwrap()),
        api_addr: HOST.parse().unwrap(),
        discovery: DiscoveryConfig::private_loopback(),
        work_bits: 8,
        ..NodeConfig::default()
    };
    adjust(&mut config);
    Node::start(DataDir::lock(dir).unwrap(), config)
        .await
        .unwrap()
}
