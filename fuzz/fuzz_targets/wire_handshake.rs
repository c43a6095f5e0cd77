//! The wire's Noise XX handshake and the encrypted frame reader, fed bytes from a peer.
//!
//! The first input byte picks who the fuzzer plays:
//! - 0: an unauthenticated peer sending raw bytes to our responder;
//! - 1: a peer answering our initiator with raw bytes;
//! - 2: an honest initiator (written here from `PROTOCOL.md`, with `snow`) that completes the handshake and then
//!   sends the rest of the input as transport frames: chunks whose first byte is odd are encrypted as one frame
//!   of plaintext (so the message reassembly and `Message::decode` behind the encryption are reached), others go
//!   on the socket as they are.
//!
//! In modes 0 and 1 the handshake must fail: completing it without our ephemeral key would be a broken
//! authentication. In mode 2 it must succeed, and the reader must end with an error, never a panic or a hang.
#![no_main]

use std::sync::LazyLock;

use kolokol_core::Keypair;
use kolokol_fuzz::chunks;
use kolokol_wire::config::MIN_MAX_MESSAGE_BYTES;
use kolokol_wire::handshake::{IDENTITY_SIGNATURE_PREFIX, NOISE_PARAMS, PROLOGUE_PREFIX};
use kolokol_wire::{Role, WireConfig, handshake};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::runtime::Runtime;

const NETWORK: &str = "kolokol";

static RUNTIME: LazyLock<Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime")
});

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    RUNTIME.block_on(async {
        match mode % 3 {
            0 => raw_peer(Role::Responder, rest).await,
            1 => raw_peer(Role::Initiator, rest).await,
            _ => honest_then_frames(rest).await,
        }
    });
});

fn config() -> WireConfig {
    WireConfig {
        max_message_bytes: MIN_MAX_MESSAGE_BYTES,
        ..WireConfig::for_network(NETWORK)
    }
}

async fn raw_peer(role: Role, bytes: &[u8]) {
    let (ours, mut theirs) = tokio::io::duplex(bytes.len() + 64 * 1024);
    theirs.write_all(bytes).await.expect("room in the pipe");
    theirs.shutdown().await.expect("in-memory shutdown");
    let local = Keypair::from_secret_bytes([1; 32]);
    let result = handshake(ours, role, &local, &config()).await;
    assert!(
        result.is_err(),
        "a peer without our ephemeral key completed the handshake"
    );
}

async fn honest_then_frames(rest: &[u8]) {
    let (ours, theirs) = tokio::io::duplex(256 * 1024);
    let local = Keypair::from_secret_bytes([1; 32]);
    let cfg = config();
    let reader_side = async {
        let (mut reader, writer, remote) = handshake(ours, Role::Responder, &local, &cfg)
            .await
            .expect("the honest initiator completes the handshake");
        assert_eq!(remote, peer_key().public());
        drop(writer);
        for _ in 0..256 {
            if reader.recv().await.is_err() {
                return;
            }
        }
    };
    tokio::join!(reader_side, initiator(theirs, rest));
}

fn peer_key() -> Keypair {
    Keypair::from_secret_bytes([2; 32])
}

/// The initiator side of the handshake, then `rest` as transport frames.
async fn initiator(mut io: DuplexStream, rest: &[u8]) {
    let params: snow::params::NoiseParams = NOISE_PARAMS.parse().expect("valid Noise parameters");
    let builder = snow::Builder::new(params);
    let static_key = builder.generate_keypair().expect("a Noise key");
    let mut prologue = PROLOGUE_PREFIX.to_vec();
    prologue.push(NETWORK.len() as u8);
    prologue.extend_from_slice(NETWORK.as_bytes());
    let mut state = builder
        .local_private_key(&static_key.private)
        .and_then(|b| b.prologue(&prologue))
        .and_then(|b| b.build_initiator())
        .expect("a Noise initiator");

    let mut buf = [0u8; 1024];
    let len = state.write_message(&[], &mut buf).expect("message 1");
    send_frame(&mut io, &buf[..len]).await;
    let mut header = [0u8; 2];
    io.read_exact(&mut header).await.expect("message 2 header");
    let mut message = vec![0u8; usize::from(u16::from_be_bytes(header))];
    io.read_exact(&mut message).await.expect("message 2");
    let mut payload = [0u8; 1024];
    state
        .read_message(&message, &mut payload)
        .expect("message 2 decrypts");

    let mut signed = IDENTITY_SIGNATURE_PREFIX.to_vec();
    signed.push(NETWORK.len() as u8);
    signed.extend_from_slice(NETWORK.as_bytes());
    signed.extend_from_slice(&static_key.public);
    let key = peer_key();
    let mut identity = key.public().as_bytes().to_vec();
    identity.extend_from_slice(&key.sign(&signed));
    let len = state.write_message(&identity, &mut buf).expect("message 3");
    send_frame(&mut io, &buf[..len]).await;
    let mut transport = state.into_transport_mode().expect("transport mode");

    let mut cipher = vec![0u8; 65535];
    for chunk in chunks(rest, 64) {
        let Some((&kind, body)) = chunk.split_first() else {
            continue;
        };
        if kind % 2 == 1 {
            let plain = &body[..body.len().min(65535 - 16)];
            let len = transport
                .write_message(plain, &mut cipher)
                .expect("encrypt");
            send_frame(&mut io, &cipher[..len]).await;
        } else if io.write_all(body).await.is_err() {
            return;
        }
    }
    let _ = io.shutdown().await;
}

async fn send_frame(io: &mut DuplexStream, bytes: &[u8]) {
    let len = u16::try_from(bytes.len()).expect("frames fit a u16 length");
    // The reader may already have stopped (a refused frame); then the rest goes nowhere.
    let _ = io.write_all(&len.to_be_bytes()).await;
    let _ = io.write_all(bytes).await;
}
