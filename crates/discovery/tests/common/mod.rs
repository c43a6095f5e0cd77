//! Helpers shared by the integration tests: private DHT nodes on 127.0.0.1 only.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

use kolokol_discovery::{Dht, DhtConfig, ServerMode};

/// The network name the tests use.
pub const NETWORK: &str = "kolokol-test";

/// Logs go to the test output (shown for failing tests); `RUST_LOG` selects them.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "kolokol_discovery=info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// A DHT config on 127.0.0.1 that can never reach the public routers, with a short request timeout.
pub fn private_config(bootstrap: &[SocketAddrV4], state_file: Option<PathBuf>) -> DhtConfig {
    DhtConfig {
        network: NETWORK.to_owned(),
        bind: SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0),
        bootstrap: bootstrap.iter().map(|a| a.to_string()).collect(),
        no_default_bootstrap: true,
        state_file,
        server_mode: ServerMode::Auto, // a private network: every node answers from the start
        request_timeout: Duration::from_millis(300),
    }
}

/// A private DHT node bootstrapping from `bootstrap` only.
pub async fn private_node(bootstrap: &[SocketAddrV4]) -> Dht {
    Dht::start(private_config(bootstrap, None)).await.unwrap()
}

/// The first node of a private network (no bootstrap at all) and `n` nodes that bootstrap from it alone.
pub async fn private_network(n: usize) -> (Dht, Vec<Dht>) {
    let first = private_node(&[]).await;
    let boot = [first.local_addr()];
    let mut nodes = Vec::with_capacity(n);
    for _ in 0..n {
        nodes.push(private_node(&boot).await);
    }
    (first, nodes)
}

/// Polls `check` every 200 ms until it returns true or `limit` passes; returns whether it did.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
