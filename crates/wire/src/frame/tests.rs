//! Framing tests over a real handshake on loopback TCP, writing hostile bytes through the
//! test-only raw access of the writer.

use std::time::Duration;

use kolokol_core::keys::Keypair;
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::handshake::{Role, handshake};

type Reader = WireReader<ReadHalf<TcpStream>>;
type Writer = WireWriter<WriteHalf<TcpStream>>;

/// Two connected, handshaken ends: (initiator reader, initiator writer, responder reader, responder writer).
async fn pair(cfg: &WireConfig) -> (Reader, Writer, Reader, Writer) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let a_key = Keypair::from_secret_bytes([1; 32]);
    let b_key = Keypair::from_secret_bytes([2; 32]);
    let (a, b) = tokio::join!(
        async {
            let stream = TcpStream::connect(addr).await.unwrap();
            handshake(stream, Role::Initiator, &a_key, cfg)
                .await
                .unwrap()
        },
        async {
            let (stream, _) = listener.accept().await.unwrap();
            handshake(stream, Role::Responder, &b_key, cfg)
                .await
                .unwrap()
        }
    );
    (a.0, a.1, b.0, b.1)
}

fn quick_config() -> WireConfig {
    WireConfig {
        handshake_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_millis(300),
        ..WireConfig::for_network("test")
    }
}

#[tokio::test]
async fn messages_spanning_many_frames_arrive_intact_both_ways_at_once() {
    let cfg = WireConfig::for_network("test");
    let (mut a_read, mut a_write, mut b_read, mut b_write) = pair(&cfg).await;
    // Nearly 1 MiB: spans 16 frames.
    let big = Message::Records {
        records: (0..15u8).map(|i| vec![i; 65_000]).collect(),
    };
    let expected = big.clone();
    let rounds = 20u64;
    // Each direction has its own writer task and reader task, all four running concurrently.
    let a_sender = tokio::spawn(async move {
        for nonce in 0..rounds {
            a_write.send(&Message::Ping { nonce }).await.unwrap();
        }
        a_write.send(&big).await.unwrap();
        a_write
    });
    let b_sender = tokio::spawn(async move {
        for nonce in 0..rounds {
            b_write.send(&Message::Pong { nonce }).await.unwrap();
        }
        b_write
    });
    let b_receiver = tokio::spawn(async move {
        for nonce in 0..rounds {
            assert_eq!(b_read.recv().await.unwrap(), Message::Ping { nonce });
        }
        b_read.recv().await.unwrap()
    });
    for nonce in 0..rounds {
        assert_eq!(a_read.recv().await.unwrap(), Message::Pong { nonce });
    }
    assert_eq!(b_receiver.await.unwrap(), expected);
    let _ = (a_sender.await.unwrap(), b_sender.await.unwrap());
}

#[tokio::test]
async fn tampered_ciphertext_is_refused_and_poisons_the_reader() {
    let cfg = WireConfig::for_network("test");
    let (_a_read, mut a_write, mut b_read, _b_write) = pair(&cfg).await;
    let plaintext = [0, 0, 0, 3, b'a', b'b', b'c'];
    let mut frame = a_write.seal_frame(&plaintext).unwrap();
    frame[5] ^= 0x01;
    a_write.write_raw(&frame).await.unwrap();
    assert!(matches!(b_read.recv().await, Err(WireError::Noise(_))));
    assert!(matches!(b_read.recv().await, Err(WireError::Poisoned)));
}

#[tokio::test]
async fn replayed_frame_is_refused() {
    let cfg = WireConfig::for_network("test");
    let (_a_read, mut a_write, mut b_read, _b_write) = pair(&cfg).await;
    let ping = Message::Ping { nonce: 9 }.encode().unwrap();
    let mut plaintext = u32::try_from(ping.len()).unwrap().to_be_bytes().to_vec();
    plaintext.extend_from_slice(&ping);
    let frame = a_write.seal_frame(&plaintext).unwrap();
    a_write.write_raw(&frame).await.unwrap();
    a_write.write_raw(&frame).await.unwrap();
    assert_eq!(b_read.recv().await.unwrap(), Message::Ping { nonce: 9 });
    assert!(matches!(b_read.recv().await, Err(WireError::Noise(_))));
}

#[tokio::test]
async fn oversized_message_header_is_refused_on_the_header_alone() {
    // Only the 4-byte header is sent and the connection stays open: the reader must refuse without
    // waiting for (or reserving room for) the body.
    let cfg = WireConfig {
        idle_timeout: Duration::from_secs(30),
        ..WireConfig::for_network("t")
    };
    for announced in [cfg.max_message_bytes as u32 + 1, u32::MAX] {
        let (_a_read, mut a_write, mut b_read, _b_write) = pair(&cfg).await;
        a_write
            .write_plaintext(&announced.to_be_bytes())
            .await
            .unwrap();
        match b_read.recv().await {
            Err(WireError::MessageTooLarge { len, max }) => {
                assert_eq!(len, announced as usize);
                assert_eq!(max, cfg.max_message_bytes);
            }
            other => panic!("expected MessageTooLarge, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn header_split_across_frames_is_reassembled() {
    let cfg = WireConfig::for_network("test");
    let (_a_read, mut a_write, mut b_read, _b_write) = pair(&cfg).await;
    let ping = Message::Ping { nonce: 4 }.encode().unwrap();
    let mut plaintext = u32::try_from(ping.len()).unwrap().to_be_bytes().to_vec();
    plaintext.extend_from_slice(&ping);
    // One byte per frame: the header and the body both span frames.
    for byte in &plaintext {
        a_write
            .write_plaintext(std::slice::from_ref(byte))
            .await
            .unwrap();
    }
    assert_eq!(b_read.recv().await.unwrap(), Message::Ping { nonce: 4 });
}

#[tokio::test]
async fn frame_shorter_than_its_tag_is_refused() {
    let cfg = WireConfig::for_network("test");
    let (_a_read, mut a_write, mut b_read, _b_write) = pair(&cfg).await;
    a_write.write_raw(&[0, 16]).await.unwrap();
    assert!(matches!(
        b_read.recv().await,
        Err(WireError::FrameTooShort(16))
    ));
}

#[tokio::test]
async fn outgoing_message_over_the_cap_is_refused_before_writing() {
    let cfg = WireConfig::for_network("test");
    let (_a_read, mut a_write, mut b_read, _b_write) = pair(&cfg).await;
    let too_big = vec![0u8; cfg.max_message_bytes + 1];
    assert!(matches!(
        a_write.send_bytes(&too_big).await,
        Err(WireError::MessageTooLarge { .. })
    ));
    // The writer is still usable and the stream intact.
    a_write.send(&Message::Ping { nonce: 1 }).await.unwrap();
    assert_eq!(b_read.recv().await.unwrap(), Message::Ping { nonce: 1 });
}

#[tokio::test]
async fn silent_peer_hits_the_idle_timeout() {
    let (mut a_read, _a_write, _b_read, _b_write) = pair(&quick_config()).await;
    assert!(matches!(a_read.recv().await, Err(WireError::IdleTimeout)));
}

#[tokio::test]
async fn half_sent_frame_hits_the_idle_timeout() {
    let (_a_read, mut a_write, mut b_read, _b_write) = pair(&quick_config()).await;
    let frame = a_write.seal_frame(&[0, 0, 0, 1, b'x']).unwrap();
    a_write.write_raw(&frame[..frame.len() - 3]).await.unwrap();
    assert!(matches!(b_read.recv().await, Err(WireError::IdleTimeout)));
}

#[tokio::test]
async fn recv_is_cancel_safe() {
    let cfg = WireConfig::for_network("test");
    let (_a_read, mut a_write, mut b_read, _b_write) = pair(&cfg).await;
    let ping = Message::Ping { nonce: 5 }.encode().unwrap();
    let mut plaintext = u32::try_from(ping.len()).unwrap().to_be_bytes().to_vec();
    plaintext.extend_from_slice(&ping);
    let frame = a_write.seal_frame(&plaintext).unwrap();
    // Half a frame, then a recv that is cancelled while it waits for the rest.
    a_write.write_raw(&frame[..10]).await.unwrap();
    let cancelled = tokio::time::timeout(Duration::from_millis(50), b_read.recv()).await;
    assert!(cancelled.is_err());
    a_write.write_raw(&frame[10..]).await.unwrap();
    assert_eq!(b_read.recv().await.unwrap(), Message::Ping { nonce: 5 });
}

#[tokio::test]
async fn close_between_and_inside_messages() {
    let cfg = WireConfig::for_network("test");
    let (_a_read, mut a_write, mut b_read, _b_write) = pair(&cfg).await;
    a_write.send(&Message::Pong { nonce: 1 }).await.unwrap();
    a_write.shutdown().await.unwrap();
    assert_eq!(b_read.recv().await.unwrap(), Message::Pong { nonce: 1 });
    assert!(matches!(b_read.recv().await, Err(WireError::Closed)));

    let (_a_read, mut a_write, mut b_read, _b_write) = pair(&cfg).await;
    a_write.write_plaintext(&[0, 0, 0, 50, b'd']).await.unwrap();
    a_write.shutdown().await.unwrap();
    assert!(matches!(b_read.recv().await, Err(WireError::UnexpectedEof)));
}

#[tokio::test]
async fn undecodable_message_is_an_error() {
    let cfg = WireConfig::for_network("test");
    let (_a_read, mut a_write, mut b_read, _b_write) = pair(&cfg).await;
    a_write.send_bytes(b"d1:t8:teleporte").await.unwrap();
    assert!(matches!(b_read.recv().await, Err(WireError::Message(_))));
    assert!(matches!(b_read.recv().await, Err(WireError::Poisoned)));
}

#[tokio::test]
async fn message_buffer_never_exceeds_the_announced_length() {
    let cfg = WireConfig::for_network("test");
    let (_a_read, mut a_write, mut b_read, _b_write) = pair(&cfg).await;
    let payload = vec![7u8; 700_000];
    a_write.send_bytes(&payload).await.unwrap();
    let received = b_read.recv_bytes().await.unwrap();
    assert_eq!(received, payload);
    assert!(
        received.capacity() <= payload.len(),
        "capacity {}",
        received.capacity()
    );
}
