//! The detour on loopback: the proxy's resolver sends each blocked site to a different loopback address where a
//! stand-in censor waits (one resets, one never answers, one serves a block page, one address is a known bogus
//! DNS answer), while the bridge's resolver sends every name to the real site on 127.0.0.1. Every page must arrive
//! through both proxy front doors; only the blocked sites may use the bridge.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use kolokol_proxy::{
    BlockPageRules, BridgeConfig, BridgeKey, BridgeServer, Host, ProxyConfig, ProxyServer, Route,
    StaticResolver,
};

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

struct World {
    port: u16,
    bridge: kolokol_proxy::BridgeHandle,
    proxy: kolokol_proxy::ProxyHandle,
    _tasks: Vec<tokio::task::JoinHandle<()>>,
}

async fn world() -> World {
    let (real, site_task) = site("127.0.0.1:0".parse().unwrap(), "the real page").await;
    let port = real.port();
    let mut tasks = vec![site_task];
    tasks.push(resetter(SocketAddr::new(ip("127.0.0.3"), port)).await);
    tasks.push(black_hole(SocketAddr::new(ip("127.0.0.4"), port)).await);
    tasks.push(
        block_page(
            SocketAddr::new(ip("127.0.0.6"), port),
            "HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\nAccess to this resource is restricted.\r\n",
        )
        .await,
    );
    tasks.push(
        block_page(
            SocketAddr::new(ip("127.0.0.7"), port),
            "HTTP/1.1 302 Found\r\nLocation: http://warning.censor.test/blocked\r\nContent-Length: 0\r\n\r\n",
        )
        .await,
    );

    let mut outside = StaticResolver::new();
    let mut inside = StaticResolver::new();
    for (name, censored) in [
        ("open.test", "127.0.0.1"),
        ("reset.test", "127.0.0.3"),
        ("silent.test", "127.0.0.4"),
        ("poisoned.test", "127.0.0.5"),
        ("blockpage.test", "127.0.0.6"),
        ("redirect.test", "127.0.0.7"),
    ] {
        outside.insert(name, vec![ip("127.0.0.1")]);
        inside.insert(name, vec![ip(censored)]);
    }

    let mut bridge_config = BridgeConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        BridgeKey::generate().unwrap(),
    );
    bridge_config.allow_private_targets = true;
    bridge_config.resolver = Arc::new(outside);
    let bridge = BridgeServer::start(bridge_config).await.unwrap();
    let invitation = bridge.invite(
        Host::parse("127.0.0.1").unwrap(),
        bridge.local_addr().port(),
    );

    let mut config = ProxyConfig::new("127.0.0.1:0".parse().unwrap());
    config.resolver = Arc::new(inside);
    config.bogus_dns = vec![ip("127.0.0.5")];
    config.first_byte_timeout = Duration::from_millis(1500);
    config.block_pages = BlockPageRules {
        signatures: vec![b"Access to this resource is restricted".to_vec()],
        block_hosts: vec![Host::parse("censor.test").unwrap()],
    };
    let proxy = ProxyServer::start(config, vec![invitation]).await.unwrap();
    World {
        port,
        bridge,
        proxy,
        _tasks: tasks,
    }
}

const BLOCKED: [&str; 5] = [
    "reset.test",
    "silent.test",
    "poisoned.test",
    "blockpage.test",
    "redirect.test",
];

#[tokio::test]
async fn socks_reaches_every_site_and_only_blocked_ones_use_the_bridge() {
    let w = world().await;
    let addr = w.proxy.addr();
    let answer = tokio::time::timeout(STEP, socks_get(addr, "open.test", w.port))
        .await
        .unwrap();
    assert!(answer.ends_with("the real page"), "{answer}");
    assert_eq!(
        w.bridge.stats().streams_total,
        0,
        "the unblocked site must not touch the bridge"
    );
    for (i, name) in BLOCKED.iter().enumerate() {
        let answer = tokio::time::timeout(STEP, socks_get(addr, name, w.port))
            .await
            .unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 200 OK") && answer.ends_with("the real page"),
            "{name}: {answer}"
        );
        assert_eq!(
            w.bridge.stats().streams_total,
            i as u64 + 1,
            "{name} went through the bridge once"
        );
    }
    // What was learnt: blocked sites now start on the bridge; the open one stays direct.
    let status = w.proxy.status();
    for site in &status.sites {
        let expected = if site.host.as_str() == "open.test" {
            Route::Direct
        } else {
            Route::Bridge
        };
        assert_eq!(site.route, expected, "{}", site.host);
    }
    assert_eq!(status.sites.len(), 6);
    assert_eq!(status.bridges.len(), 1);
    assert!(status.bridges[0].connected);
    assert_eq!(status.bridges[0].streams_total, 5);
    // A second visit to a remembered site goes straight to the bridge and works.
    let answer = tokio::time::timeout(STEP, socks_get(addr, "reset.test", w.port))
        .await
        .unwrap();
    assert!(answer.ends_with("the real page"));
    assert_eq!(w.bridge.stats().streams_total, 6);
    w.proxy.shutdown().await;
    w.bridge.shutdown().await;
}

#[tokio::test]
async fn http_proxy_reaches_every_site_in_plain_and_connect_mode() {
    let w = world().await;
    let addr = w.proxy.addr();
    let answer = tokio::time::timeout(STEP, http_proxy_get(addr, "open.test", w.port))
        .await
        .unwrap();
    assert!(answer.ends_with("the real page"), "{answer}");
    let answer = tokio::time::timeout(STEP, http_connect_get(addr, "open.test", w.port))
        .await
        .unwrap();
    assert!(answer.ends_with("the real page"), "{answer}");
    assert_eq!(w.bridge.stats().streams_total, 0);
    for name in BLOCKED {
        let answer = tokio::time::timeout(STEP, http_proxy_get(addr, name, w.port))
            .await
            .unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 200 OK") && answer.ends_with("the real page"),
            "{name}: {answer}"
        );
    }
    assert_eq!(w.bridge.stats().streams_total, BLOCKED.len() as u64);
    for name in BLOCKED {
        assert!(w.proxy.forget(&Host::parse(name).unwrap()));
        let answer = tokio::time::timeout(STEP, http_connect_get(addr, name, w.port))
            .await
            .unwrap();
        assert!(answer.ends_with("the real page"), "{name}: {answer}");
    }
    assert_eq!(w.bridge.stats().streams_total, 2 * BLOCKED.len() as u64);
    w.proxy.shutdown().await;
    w.bridge.shutdown().await;
}

#[tokio::test]
async fn errors_are_reported_cleanly_to_the_client() {
    let w = world().await;
    let addr = w.proxy.addr();
    // A name neither side can resolve: SOCKS host unreachable, HTTP 502.
    let (code, _) = tokio::time::timeout(STEP, socks_connect(addr, "nowhere.test", w.port))
        .await
        .unwrap();
    assert_eq!(code, 4);
    let answer = tokio::time::timeout(STEP, http_proxy_get(addr, "nowhere.test", w.port))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 502"), "{answer}");
    // Junk instead of a request: the connection is closed without an answer (a reset is fine: the junk is unread).
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut tcp, b"\x00\x01\x02")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(
        STEP,
        tokio::io::AsyncReadExt::read_to_end(&mut tcp, &mut rest),
    )
    .await
    .unwrap();
    assert!(rest.is_empty(), "{read:?}");
    // A relative URI is not a proxy request.
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut tcp, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut rest = String::new();
    tokio::time::timeout(
        STEP,
        tokio::io::AsyncReadExt::read_to_string(&mut tcp, &mut rest),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(rest.starts_with("HTTP/1.1 501"), "{rest}");
    w.proxy.shutdown().await;
    w.bridge.shutdown().await;
}
