//! Handshake tests over loopback TCP, through the public API only.

// Helpers outside `#[test]` functions unwrap too: in a test binary a panic is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use kolokol_core::keys::Keypair;
use kolokol_wire::{Message, Role, WireConfig, WireError, handshake};
use tokio::net::{TcpListener, TcpStream};

/// Runs both sides of a handshake over loopback TCP; each side has its own key and config.
async fn connect(
    a: (&Keypair, &WireConfig),
    b: (&Keypair, &WireConfig),
) -> (
    Result<kolokol_core::keys::NodeId, WireError>,
    Result<kolokol_core::keys::NodeId, WireError>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::join!(
        async {
            let stream = TcpStream::connect(addr).await.unwrap();
            // Keep the halves alive until both sides are done, then drop them.
            handshake(stream, Role::Initiator, a.0, a.1)
                .await
                .map(|(_r, _w, id)| id)
        },
        async {
            let (stream, _) = listener.accept().await.unwrap();
            handshake(stream, Role::Responder, b.0, b.1)
                .await
                .map(|(_r, _w, id)| id)
        }
    )
}

#[tokio::test]
async fn each_side_learns_the_others_id() {
    let a = Keypair::from_secret_bytes([1; 32]);
    let b = Keypair::from_secret_bytes([2; 32]);
    let cfg = WireConfig::for_network("kolokol-test");
    let (at_a, at_b) = connect((&a, &cfg), (&b, &cfg)).await;
    assert_eq!(at_a.unwrap(), b.public());
    assert_eq!(at_b.unwrap(), a.public());
}

#[tokio::test]
async fn connection_to_oneself_is_visible() {
    let a = Keypair::from_secret_bytes([3; 32]);
    let cfg = WireConfig::for_network("kolokol-test");
    let (at_initiator, at_responder) = connect((&a, &cfg), (&a, &cfg)).await;
    assert_eq!(at_initiator.unwrap(), a.public());
    assert_eq!(at_responder.unwrap(), a.public());
}

#[tokio::test]
async fn different_networks_cannot_connect() {
    let a = Keypair::from_secret_bytes([1; 32]);
    let b = Keypair::from_secret_bytes([2; 32]);
    let (at_a, at_b) = connect(
        (&a, &WireConfig::for_network("kolokol")),
        (&b, &WireConfig::for_network("kolokol-private")),
    )
    .await;
    // The initiator cannot decrypt the responder's message (the prologues differ); the responder then
    // sees the initiator give up.
    assert!(matches!(at_a, Err(WireError::Noise(_))), "{at_a:?}");
    assert!(at_b.is_err());
}

#[tokio::test]
async fn silent_responder_hits_the_handshake_timeout() {
    let a = Keypair::from_secret_bytes([1; 32]);
    let cfg = WireConfig {
        handshake_timeout: Duration::from_millis(200),
        ..WireConfig::for_network("kolokol-test")
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stream = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (_silent, _) = listener.accept().await.unwrap();
    let result = handshake(stream, Role::Initiator, &a, &cfg).await;
    assert!(
        matches!(result, Err(WireError::HandshakeTimeout)),
        "{result:?}"
    );
}

#[tokio::test]
async fn invalid_config_is_refused_before_any_io() {
    let a = Keypair::from_secret_bytes([1; 32]);
    let cfg = WireConfig::for_network("");
    let (stream, _other) = tokio::io::duplex(64);
    let result = handshake(stream, Role::Initiator, &a, &cfg).await;
    assert!(matches!(result, Err(WireError::Config(_))), "{result:?}");
}

#[tokio::test]
async fn garbage_instead_of_a_handshake_is_refused() {
    use tokio::io::AsyncWriteExt;
    let a = Keypair::from_secret_bytes([1; 32]);
    let cfg = WireConfig::for_network("kolokol-test");
    let (stream, mut other) = tokio::io::duplex(4096);
    // A length header far above any handshake message.
    other.write_all(&[0xff, 0xff, 1, 2, 3]).await.unwrap();
    let result = handshake(stream, Role::Responder, &a, &cfg).await;
    assert!(
        matches!(result, Err(WireError::HandshakeFrameTooLarge { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn works_over_any_stream() {
    let a = Keypair::from_secret_bytes([5; 32]);
    let b = Keypair::from_secret_bytes([6; 32]);
    let cfg = WireConfig::for_network("kolokol-test");
    let (left, right) = tokio::io::duplex(1 << 16);
    let (ra, rb) = tokio::join!(
        handshake(left, Role::Initiator, &a, &cfg),
        handshake(right, Role::Responder, &b, &cfg)
    );
    let (_a_read, mut a_write, a_sees) = ra.unwrap();
    let (mut b_read, _b_write, b_sees) = rb.unwrap();
    assert_eq!((a_sees, b_sees), (b.public(), a.public()));
    a_write
        .send(&Message::Ping { nonce: u64::MAX })
        .await
        .unwrap();
    assert_eq!(
        b_read.recv().await.unwrap(),
        Message::Ping { nonce: u64::MAX }
    );
}
