//! The Noise XX handshake that authenticates both node keys and sets up the encrypted transport.
//!
//! Noise authenticates X25519 static keys; kolokol nodes are known by Ed25519 keys. Each side makes a
//! fresh Noise static key for every connection and proves that its Ed25519 node key owns it: its
//! handshake payload is the node public key plus an Ed25519 signature over a domain prefix, the network
//! name and that Noise static key. The receiver checks the signature against the static key that Noise
//! itself authenticated, so a payload copied from another session is useless without that session's
//! X25519 secret.

use std::sync::Arc;

use kolokol_core::keys::{Keypair, NodeId, PublicKey};
use snow::{HandshakeState, StatelessTransportState};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};

use crate::config::WireConfig;
use crate::error::WireError;
use crate::frame::{WireReader, WireWriter};

/// The Noise protocol name; both ends must use exactly this.
pub const NOISE_PARAMS: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2s";

/// Protocol identifier at the start of the Noise prologue. A new wire protocol version gets a new
/// identifier, so incompatible versions fail the handshake instead of misreading each other.
pub const PROLOGUE_PREFIX: &[u8] = b"kolokol-wire/1";

/// Domain separation prefix of the identity signature, so it can never be confused with a signature
/// the node key makes for another purpose (records, DHT items).
pub const IDENTITY_SIGNATURE_PREFIX: &[u8] = b"kolokol-wire/1 noise static key";

/// Size of an identity payload: Ed25519 public key (32) then signature (64).
pub const IDENTITY_PAYLOAD_BYTES: usize = 32 + 64;

/// Largest handshake frame accepted. The XX messages are 32, 192 and 160 bytes with our payloads; the
/// margin costs nothing and the cap keeps a hostile length header from mattering.
pub const MAX_HANDSHAKE_FRAME: usize = 1024;

/// Length of an X25519 public key.
const DH_KEY_BYTES: usize = 32;

/// Which side of the connection we are. The side that opened the TCP connection is the initiator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We opened the connection and send the first handshake message.
    Initiator,
    /// We accepted the connection.
    Responder,
}

/// Runs the handshake on `stream` and returns the two halves of the encrypted connection plus the
/// remote node's id.
///
/// The whole handshake is bounded by `cfg.handshake_timeout`. If the returned id equals
/// `local.public()`, the connection is to ourselves (for example an advertised address that loops
/// back): the caller should close it.
pub async fn handshake<S>(
    mut stream: S,
    role: Role,
    local: &Keypair,
    cfg: &WireConfig,
) -> Result<(WireReader<ReadHalf<S>>, WireWriter<WriteHalf<S>>, NodeId), WireError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    cfg.validate()?;
    let (transport, remote) = tokio::time::timeout(
        cfg.handshake_timeout,
        run(&mut stream, role, local, &cfg.network),
    )
    .await
    .map_err(|_elapsed| WireError::HandshakeTimeout)??;
    let transport = Arc::new(transport);
    let (read_half, write_half) = tokio::io::split(stream);
    let reader = WireReader::new(read_half, Arc::clone(&transport), cfg);
    let writer = WireWriter::new(write_half, transport, cfg);
    Ok((reader, writer, remote))
}

/// The three XX messages, without the time limit.
async fn run<S>(
    stream: &mut S,
    role: Role,
    local: &Keypair,
    network: &str,
) -> Result<(StatelessTransportState, NodeId), WireError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let params: snow::params::NoiseParams = NOISE_PARAMS.parse().map_err(WireError::Noise)?;
    let builder = snow::Builder::new(params);
    let static_key = builder.generate_keypair().map_err(WireError::Noise)?;
    let prologue = prologue(network);
    let builder = builder
        .local_private_key(&static_key.private)
        .and_then(|b| b.prologue(&prologue))
        .map_err(WireError::Noise)?;
    let our_payload = identity_payload(local, network, &static_key.public)?;

    let mut state = match role {
        Role::Initiator => builder.build_initiator(),
        Role::Responder => builder.build_responder(),
    }
    .map_err(WireError::Noise)?;

    let remote = match role {
        Role::Initiator => {
            write_message(stream, &mut state, &[]).await?;
            let payload = read_message(stream, &mut state).await?;
            let remote = verify_identity(&state, &payload, network)?;
            write_message(stream, &mut state, &our_payload).await?;
            remote
        }
        Role::Responder => {
            let first = read_message(stream, &mut state).await?;
            if !first.is_empty() {
                // The first XX message is unencrypted: nothing may ride on it.
                return Err(WireError::HandshakePayload(
                    "first message must have no payload",
                ));
            }
            write_message(stream, &mut state, &our_payload).await?;
            let payload = read_message(stream, &mut state).await?;
            verify_identity(&state, &payload, network)?
        }
    };
    let transport = state
        .into_stateless_transport_mode()
        .map_err(WireError::Noise)?;
    Ok((transport, remote))
}

/// The Noise prologue: protocol identifier, then the network name with a length byte.
pub(crate) fn prologue(network: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(PROLOGUE_PREFIX.len() + 1 + network.len());
    out.extend_from_slice(PROLOGUE_PREFIX);
    push_network(&mut out, network);
    out
}

/// The bytes an identity signature covers: domain prefix, network name with a length byte, Noise
/// static public key.
fn signed_identity(network: &str, noise_static: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        IDENTITY_SIGNATURE_PREFIX.len() + 1 + network.len() + noise_static.len(),
    );
    out.extend_from_slice(IDENTITY_SIGNATURE_PREFIX);
    push_network(&mut out, network);
    out.extend_from_slice(noise_static);
    out
}

fn push_network(out: &mut Vec<u8>, network: &str) {
    // `WireConfig::validate` keeps the name within one length byte; saturating keeps this total anyway.
    out.push(u8::try_from(network.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(network.as_bytes());
}

fn identity_payload(
    local: &Keypair,
    network: &str,
    noise_static: &[u8],
) -> Result<[u8; IDENTITY_PAYLOAD_BYTES], WireError> {
    if noise_static.len() != DH_KEY_BYTES {
        return Err(WireError::HandshakePayload(
            "local Noise static key has an unexpected length",
        ));
    }
    let signature = local.sign(&signed_identity(network, noise_static));
    let mut payload = [0u8; IDENTITY_PAYLOAD_BYTES];
    payload[..32].copy_from_slice(local.public().as_bytes());
    payload[32..].copy_from_slice(&signature);
    Ok(payload)
}

/// Checks the peer's identity payload against the static key Noise authenticated.
fn verify_identity(
    state: &HandshakeState,
    payload: &[u8],
    network: &str,
) -> Result<NodeId, WireError> {
    let payload: &[u8; IDENTITY_PAYLOAD_BYTES] = payload
        .try_into()
        .map_err(|_| WireError::HandshakePayload("identity payload must be 96 bytes"))?;
    let remote_static = state
        .get_remote_static()
        .filter(|key| key.len() == DH_KEY_BYTES)
        .ok_or(WireError::HandshakePayload("peer sent no Noise static key"))?;
    let mut key = [0u8; 32];
    key.copy_from_slice(&payload[..32]);
    let mut signature = [0u8; 64];
    signature.copy_from_slice(&payload[32..]);
    let node_key = PublicKey::from_bytes(key);
    node_key
        .verify(&signed_identity(network, remote_static), &signature)
        .map_err(WireError::Identity)?;
    Ok(node_key)
}

async fn write_message<S>(
    stream: &mut S,
    state: &mut HandshakeState,
    payload: &[u8],
) -> Result<(), WireError>
where
    S: AsyncWrite + Unpin,
{
    let mut frame = [0u8; 2 + MAX_HANDSHAKE_FRAME];
    let len = state
        .write_message(payload, &mut frame[2..])
        .map_err(WireError::Noise)?;
    let header = u16::try_from(len).map_err(|_| WireError::HandshakeFrameTooLarge {
        len,
        max: MAX_HANDSHAKE_FRAME,
    })?;
    frame[..2].copy_from_slice(&header.to_be_bytes());
    stream.write_all(&frame[..2 + len]).await?;
    stream.flush().await?;
    Ok(())
}

async fn read_message<S>(stream: &mut S, state: &mut HandshakeState) -> Result<Vec<u8>, WireError>
where
    S: AsyncRead + Unpin,
{
    let mut header = [0u8; 2];
    stream.read_exact(&mut header).await?;
    let len = usize::from(u16::from_be_bytes(header));
    if len > MAX_HANDSHAKE_FRAME {
        return Err(WireError::HandshakeFrameTooLarge {
            len,
            max: MAX_HANDSHAKE_FRAME,
        });
    }
    let mut message = [0u8; MAX_HANDSHAKE_FRAME];
    stream.read_exact(&mut message[..len]).await?;
    let mut payload = [0u8; MAX_HANDSHAKE_FRAME];
    let payload_len = state
        .read_message(&message[..len], &mut payload)
        .map_err(WireError::Noise)?;
    Ok(payload[..payload_len].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plays an initiator by hand, sending `payload` as its identity in the third message, and returns
    /// what the honest responder concludes.
    async fn responder_verdict(
        payload: impl FnOnce(&[u8]) -> Vec<u8>,
    ) -> Result<NodeId, WireError> {
        let cfg = WireConfig::for_network("test");
        let responder_key = Keypair::from_secret_bytes([2; 32]);
        let (mut evil, honest) = tokio::io::duplex(4096);
        let responder = handshake(honest, Role::Responder, &responder_key, &cfg);
        let attacker = async {
            let params: snow::params::NoiseParams = NOISE_PARAMS.parse().unwrap();
            let builder = snow::Builder::new(params);
            let static_key = builder.generate_keypair().unwrap();
            let prologue = prologue(&cfg.network);
            let mut state = builder
                .local_private_key(&static_key.private)
                .unwrap()
                .prologue(&prologue)
                .unwrap()
                .build_initiator()
                .unwrap();
            write_message(&mut evil, &mut state, &[]).await.unwrap();
            read_message(&mut evil, &mut state).await.unwrap();
            write_message(&mut evil, &mut state, &payload(&static_key.public))
                .await
                .unwrap();
            evil
        };
        let (result, _evil) = tokio::join!(responder, attacker);
        result.map(|(_, _, id)| id)
    }

    #[tokio::test]
    async fn honest_payload_is_accepted() {
        let key = Keypair::from_secret_bytes([7; 32]);
        let result =
            responder_verdict(|noise| identity_payload(&key, "test", noise).unwrap().to_vec())
                .await;
        assert_eq!(result.unwrap(), key.public());
    }

    #[tokio::test]
    async fn signature_over_another_static_key_is_refused() {
        // A payload lifted from another session signs that session's Noise key, not ours.
        let key = Keypair::from_secret_bytes([7; 32]);
        let result =
            responder_verdict(|_| identity_payload(&key, "test", &[9; 32]).unwrap().to_vec()).await;
        assert!(matches!(result, Err(WireError::Identity(_))), "{result:?}");
    }

    #[tokio::test]
    async fn signature_for_another_network_is_refused() {
        let key = Keypair::from_secret_bytes([7; 32]);
        let result =
            responder_verdict(|noise| identity_payload(&key, "other", noise).unwrap().to_vec())
                .await;
        assert!(matches!(result, Err(WireError::Identity(_))), "{result:?}");
    }

    #[tokio::test]
    async fn someone_elses_key_is_refused() {
        let key = Keypair::from_secret_bytes([7; 32]);
        let victim = Keypair::from_secret_bytes([8; 32]);
        let result = responder_verdict(|noise| {
            let mut payload = identity_payload(&key, "test", noise).unwrap();
            payload[..32].copy_from_slice(victim.public().as_bytes());
            payload.to_vec()
        })
        .await;
        assert!(matches!(result, Err(WireError::Identity(_))), "{result:?}");
    }

    #[tokio::test]
    async fn payload_of_wrong_length_is_refused() {
        let result = responder_verdict(|_| vec![0; 95]).await;
        assert!(
            matches!(result, Err(WireError::HandshakePayload(_))),
            "{result:?}"
        );
    }
}
