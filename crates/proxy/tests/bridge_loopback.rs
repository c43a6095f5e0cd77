//! The bridge on loopback: probes get silence, invitation holders get a tunnel, and the client moves to another
//! bridge when the one in use dies.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use kolokol_proxy::tunnel::handshake;
use kolokol_proxy::{
    BridgeConfig, BridgeHandle, BridgeKey, BridgeServer, Host, Invitation, InviteSecret,
    ProxyConfig, ProxyServer, Rule, Rules,
};
use rand::RngCore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

async fn bridge() -> (BridgeHandle, Invitation) {
    let mut config = BridgeConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        BridgeKey::generate().unwrap(),
    );
    config.probe_silence = (Duration::from_millis(400), Duration::from_millis(800));
    config.allow_private_targets = true;
    let bridge = BridgeServer::start(config).await.unwrap();
    let invitation = bridge.invite(
        Host::parse("127.0.0.1").unwrap(),
        bridge.local_addr().port(),
    );
    (bridge, invitation)
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Sends `bytes`, then reads until the bridge closes; returns what came back and how long the bridge waited.
async fn probe(bridge: &BridgeHandle, bytes: &[u8]) -> (Vec<u8>, Duration) {
    let mut tcp = TcpStream::connect(bridge.local_addr()).await.unwrap();
    let started = Instant::now();
    tcp.write_all(bytes).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(STEP, tcp.read_to_end(&mut answer))
        .await
        .expect("the bridge closes by itself");
    assert!(read.is_ok(), "closed with a FIN, not a reset: {read:?}");
    (answer, started.elapsed())
}

/// A forwarder between a client and the bridge that records what the client sent.
async fn recording_forwarder(
    target: std::net::SocketAddr,
) -> (std::net::SocketAddr, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let recorded = Arc::new(Mutex::new(Vec::new()));
    let sink = recorded.clone();
    tokio::spawn(async move {
        let (mut client, _) = listener.accept().await.unwrap();
        let mut upstream = TcpStream::connect(target).await.unwrap();
        let (mut client_read, mut client_write) = client.split();
        let (mut up_read, mut up_write) = upstream.split();
        let up = async {
            let mut buf = vec![0; 4096];
            loop {
                let n = client_read.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
                if up_write.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        };
        let down = async {
            let _ = tokio::io::copy(&mut up_read, &mut client_write).await;
        };
        tokio::join!(up, down);
    });
    (addr, recorded)
}

#[tokio::test]
async fn probes_get_silence_and_a_fin() {
    let (bridge, invitation) = bridge().await;
    let silence = bridge.probe_silence();
    assert!(silence >= Duration::from_millis(400) && silence <= Duration::from_millis(800));

    // 1. No invitation at all: connect and say nothing.
    let (answer, waited) = probe(&bridge, b"").await;
    assert!(answer.is_empty());
    assert!(
        waited >= silence - Duration::from_millis(50),
        "held open like an idle service: {waited:?}"
    );

    // 2. Random bytes, short and long.
    for len in [10, 48, 300, 5000] {
        let mut junk = vec![0u8; len];
        rand::rng().fill_bytes(&mut junk);
        let (answer, _) = probe(&bridge, &junk).await;
        assert!(answer.is_empty(), "random {len} bytes got an answer");
    }

    // 3. Something that looks like an ordinary protocol.
    let (answer, _) = probe(&bridge, b"GET / HTTP/1.1\r\nHost: bridge\r\n\r\n").await;
    assert!(answer.is_empty());

    // 4. A real handshake with the wrong secret (right address and key).
    let mut wrong = invitation.clone();
    wrong.secret = InviteSecret::generate();
    let mut tcp = TcpStream::connect(bridge.local_addr()).await.unwrap();
    let result = tokio::time::timeout(STEP, handshake::client(&mut tcp, &wrong, now_secs()))
        .await
        .unwrap();
    assert!(
        result.is_err(),
        "wrong secret must not complete a handshake"
    );

    // 5. Replay of a recorded valid handshake.
    let (forwarder, recorded) = recording_forwarder(bridge.local_addr()).await;
    let mut tcp = TcpStream::connect(forwarder).await.unwrap();
    tokio::time::timeout(STEP, handshake::client(&mut tcp, &invitation, now_secs()))
        .await
        .unwrap()
        .unwrap();
    let recorded = recorded.lock().unwrap().clone();
    assert!(
        recorded.len() >= 48 + 4 + 56,
        "the client flight was recorded"
    );
    let (answer, _) = probe(&bridge, &recorded).await;
    assert!(
        answer.is_empty(),
        "a replayed handshake must get nothing back"
    );

    // 6. An old handshake (clock far off) with the right secret.
    let mut tcp = TcpStream::connect(bridge.local_addr()).await.unwrap();
    let result = tokio::time::timeout(
        STEP,
        handshake::client(&mut tcp, &invitation, now_secs() - 86_400),
    )
    .await
    .unwrap();
    assert!(result.is_err());

    // The control: the valid invitation does get a tunnel (so the checks above could have failed).
    let mut tcp = TcpStream::connect(bridge.local_addr()).await.unwrap();
    tokio::time::timeout(STEP, handshake::client(&mut tcp, &invitation, now_secs()))
        .await
        .unwrap()
        .unwrap();
    assert!(bridge.stats().silenced_total >= 9, "{:?}", bridge.stats());

    // A revoked invitation gets silence too.
    assert!(bridge.revoke_invitation(&invitation.secret.id()));
    let mut tcp = TcpStream::connect(bridge.local_addr()).await.unwrap();
    let result = tokio::time::timeout(STEP, handshake::client(&mut tcp, &invitation, now_secs()))
        .await
        .unwrap();
    assert!(result.is_err());
    bridge.shutdown().await;
}

#[tokio::test]
async fn failover_to_the_second_bridge() {
    let (site_addr, _site) = site("127.0.0.1:0".parse().unwrap(), "served").await;
    let (first, first_invitation) = bridge().await;
    let (second, second_invitation) = bridge().await;
    let mut config = ProxyConfig::new("127.0.0.1:0".parse().unwrap());
    config.rules = Rules::new(vec![Rule::parse("*=bridge").unwrap()]).unwrap();
    let proxy = ProxyServer::start(config, vec![first_invitation, second_invitation])
        .await
        .unwrap();
    let addr = proxy.addr();

    let answer = tokio::time::timeout(STEP, socks_get(addr, "127.0.0.1", site_addr.port()))
        .await
        .unwrap();
    assert!(answer.ends_with("served"), "{answer}");
    let first_streams = first.stats().streams_total;
    let second_streams = second.stats().streams_total;
    assert_eq!(first_streams + second_streams, 1);
    let (in_use, spare) = if first_streams == 1 {
        (first, second)
    } else {
        (second, first)
    };

    // Kill the bridge in use; new connections must still work, through the other one.
    in_use.shutdown().await;
    for _ in 0..3 {
        let answer = tokio::time::timeout(STEP, socks_get(addr, "127.0.0.1", site_addr.port()))
            .await
            .unwrap();
        assert!(answer.ends_with("served"), "{answer}");
    }
    assert_eq!(spare.stats().streams_total, 3);
    let status = proxy.status();
    assert_eq!(status.bridges.iter().filter(|b| b.connected).count(), 1);
    assert!(status.bridges.iter().any(|b| b.down && b.failures >= 1));
    proxy.shutdown().await;
    spare.shutdown().await;
}

#[tokio::test]
async fn a_bridge_that_never_answers_is_skipped() {
    let (site_addr, _site) = site("127.0.0.1:0".parse().unwrap(), "served").await;
    // Accepts connections and never answers: the handshake times out.
    let hole = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hole_addr = hole.local_addr().unwrap();
    let _hole = black_hole_listener(hole);
    let (good, good_invitation) = bridge().await;
    let dead = Invitation::generate(
        Host::parse("127.0.0.1").unwrap(),
        hole_addr.port(),
        good.public_key(),
    );
    let mut config = ProxyConfig::new("127.0.0.1:0".parse().unwrap());
    config.rules = Rules::new(vec![Rule::parse("*=bridge").unwrap()]).unwrap();
    config.pool.handshake_timeout = Duration::from_millis(500);
    let proxy = ProxyServer::start(config, vec![dead, good_invitation])
        .await
        .unwrap();
    for _ in 0..2 {
        let answer =
            tokio::time::timeout(STEP, socks_get(proxy.addr(), "127.0.0.1", site_addr.port()))
                .await
                .unwrap();
        assert!(answer.ends_with("served"));
    }
    assert_eq!(good.stats().streams_total, 2);
    proxy.shutdown().await;
    good.shutdown().await;
}

fn black_hole_listener(listener: TcpListener) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    })
}

#[tokio::test]
async fn many_streams_and_large_transfers_share_one_tunnel() {
    // An echo site: every byte sent comes back.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let echo = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = tcp.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    let (bridge, invitation) = bridge().await;
    let mut config = ProxyConfig::new("127.0.0.1:0".parse().unwrap());
    config.rules = Rules::new(vec![Rule::parse("*=bridge").unwrap()]).unwrap();
    let proxy = ProxyServer::start(config, vec![invitation]).await.unwrap();
    let addr = proxy.addr();
    let mut clients = Vec::new();
    for i in 0..8u8 {
        clients.push(tokio::spawn(async move {
            let (code, mut tcp) = socks_connect(addr, "127.0.0.1", echo.port()).await;
            assert_eq!(code, 0);
            // More than the flow-control window, so credit must flow back for the transfer to finish.
            let data: Vec<u8> = (0..1_500_000u32).map(|n| (n as u8) ^ i).collect();
            let (mut r, mut w) = tcp.split();
            let send = async {
                w.write_all(&data).await.unwrap();
                w.shutdown().await.unwrap();
            };
            let mut back = Vec::new();
            let receive = async {
                r.read_to_end(&mut back).await.unwrap();
            };
            tokio::join!(send, receive);
            assert!(
                back == data,
                "stream {i} echoed {} bytes correctly",
                back.len()
            );
        }));
    }
    for client in clients {
        tokio::time::timeout(STEP, client).await.unwrap().unwrap();
    }
    assert_eq!(bridge.stats().tunnels_total, 1);
    assert_eq!(bridge.stats().streams_total, 8);
    proxy.shutdown().await;
    bridge.shutdown().await;
}
