//! What the loopback tests of kolokol-dht share: a node configuration for 127.0.0.1 and a small testnet.

#![allow(clippy::unwrap_used, dead_code)]

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use kolokol_dht::{Config, Dht};

/// A node that may talk to loopback addresses, with the given request time-out.
pub fn loopback_config(request_timeout: Duration) -> Config {
    Config {
        request_timeout,
        lookup_timeout: Duration::from_secs(20),
        allow_loopback: true,
        ..Config::default()
    }
}

/// `count` nodes on 127.0.0.1, all bootstrapped from the first.
pub async fn loopback_net(count: usize, config: &Config) -> Vec<Dht> {
    let any = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0);
    let first = Dht::bind(any, config.clone(), &[]).await.unwrap();
    let boot = [first.local_addr()];
    let mut nodes = vec![first];
    for _ in 1..count {
        nodes.push(Dht::bind(any, config.clone(), &boot).await.unwrap());
    }
    // Every node looks itself up once more, now that all have joined, so the tables fill.
    for node in &nodes {
        let id = node.info().await.unwrap().id;
        node.find_node(id).await.unwrap();
    }
    nodes
}
