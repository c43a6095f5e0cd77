//! The tunnel handshake: Noise `NKpsk0` (the client knows the bridge's static key from the invitation, and the
//! pre-shared key derived from the invitation secret is mixed in before anything else), wrapped in an envelope that
//! makes every byte look random to anyone without the secret.
//!
//! ```text
//! client -> bridge:  R (32 random bytes) || check(secret, R) (16) || C2S[ noise_len u16 || pad_len u16 || noise msg 1 || padding ]
//! bridge -> client:  S2C[ noise_len u16 || pad_len u16 || noise msg 2 || padding ]
//! ```
//!
//! `C2S` and `S2C` are the ChaCha20 keystreams of [`super::obfs::Mask`]. Noise message 1 carries the client's
//! clock (unix seconds) as its encrypted payload, for the replay check. The bridge answers only a handshake whose
//! check value matches one of its invitations, whose Noise message decrypts (so the sender knows the secret), whose
//! clock is close to its own, and whose `R` it has not seen; anything else gets silence (see `bridge::server`).

use std::sync::Mutex;

use rand::Rng;
use snow::StatelessTransportState;
use snow::params::NoiseParams;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::obfs::{CHECK_LEN, Direction, Mask, NONCE_LEN, check_value, psk, same_bytes};
use super::replay::{ReplayCache, ReplayVerdict};
use crate::invitation::{Invitation, InviteSecret};

const PATTERN: &str = "Noise_NKpsk0_25519_ChaChaPoly_BLAKE2s";
const PROLOGUE: &[u8] = b"kolokol-bridge v1";
/// Most random padding added to each handshake message, so their sizes vary.
pub const MAX_HANDSHAKE_PADDING: usize = 600;
/// Bounds on the Noise handshake message sizes we accept (message 1 is 56 bytes, message 2 is 48).
const MIN_NOISE_MSG: usize = 48;
const MAX_NOISE_MSG: usize = 256;
const CLOCK_LEN: usize = 8;

/// The Noise parameters of the tunnel.
pub static NOISE_PARAMS: std::sync::LazyLock<NoiseParams> = std::sync::LazyLock::new(|| {
    #[allow(clippy::expect_used)]
    PATTERN
        .parse()
        .expect("the tunnel's Noise pattern is a valid constant")
});

/// Why a handshake did not complete. On the bridge all of these lead to the same silence.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("connection failed during the handshake: {0}")]
    Io(#[from] std::io::Error),
    #[error("noise: {0}")]
    Noise(#[from] snow::Error),
    #[error("the connection does not carry a known invitation")]
    UnknownInvitation,
    #[error("handshake message has an impossible size")]
    BadEnvelope,
    #[error("handshake clock is too far from ours, or the handshake was seen before")]
    Replay,
}

/// A completed handshake: the transport keys and the two length-masking keystreams.
pub struct Established {
    pub noise: StatelessTransportState,
    pub send_mask: Mask,
    pub recv_mask: Mask,
}

fn prologue(nonce: &[u8; NONCE_LEN]) -> Vec<u8> {
    [PROLOGUE, nonce.as_slice()].concat()
}

fn envelope(mask: &mut Mask, noise_msg: &[u8]) -> Vec<u8> {
    let mut rng = rand::rng();
    let pad_len = rng.random_range(0..=MAX_HANDSHAKE_PADDING);
    let mut out = Vec::with_capacity(4 + noise_msg.len() + pad_len);
    out.extend_from_slice(
        &u16::try_from(noise_msg.len())
            .unwrap_or(u16::MAX)
            .to_be_bytes(),
    );
    out.extend_from_slice(&u16::try_from(pad_len).unwrap_or(u16::MAX).to_be_bytes());
    out.extend_from_slice(noise_msg);
    let start = out.len();
    out.resize(start + pad_len, 0);
    rng.fill(&mut out[start..]);
    mask.apply(&mut out);
    out
}

async fn read_envelope<S: AsyncRead + Unpin>(
    io: &mut S,
    mask: &mut Mask,
) -> Result<Vec<u8>, HandshakeError> {
    let mut header = [0; 4];
    io.read_exact(&mut header).await?;
    mask.apply(&mut header);
    let noise_len = usize::from(u16::from_be_bytes([header[0], header[1]]));
    let pad_len = usize::from(u16::from_be_bytes([header[2], header[3]]));
    if !(MIN_NOISE_MSG..=MAX_NOISE_MSG).contains(&noise_len) || pad_len > MAX_HANDSHAKE_PADDING {
        return Err(HandshakeError::BadEnvelope);
    }
    let mut rest = vec![0; noise_len + pad_len];
    io.read_exact(&mut rest).await?;
    mask.apply(&mut rest);
    rest.truncate(noise_len);
    Ok(rest)
}

/// Runs the client side over `io` (already connected to the bridge). `now_secs` is the unix time.
pub async fn client<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    invitation: &Invitation,
    now_secs: u64,
) -> Result<Established, HandshakeError> {
    let mut nonce = [0; NONCE_LEN];
    rand::rng().fill(&mut nonce);
    let secret = &invitation.secret;
    let psk = psk(secret);
    let prologue = prologue(&nonce);
    let mut noise = snow::Builder::new(NOISE_PARAMS.clone())
        .remote_public_key(&invitation.bridge_key)?
        .psk(0, &psk)?
        .prologue(&prologue)?
        .build_initiator()?;
    let mut msg = [0; MAX_NOISE_MSG];
    let len = noise.write_message(&now_secs.to_be_bytes(), &mut msg)?;
    let mut send_mask = Mask::new(secret, &nonce, Direction::ClientToBridge);
    let mut recv_mask = Mask::new(secret, &nonce, Direction::BridgeToClient);
    let mut flight = Vec::with_capacity(NONCE_LEN + CHECK_LEN + 4 + len + MAX_HANDSHAKE_PADDING);
    flight.extend_from_slice(&nonce);
    flight.extend_from_slice(&check_value(secret, &nonce));
    flight.extend_from_slice(&envelope(&mut send_mask, &msg[..len]));
    io.write_all(&flight).await?;
    io.flush().await?;
    let reply = read_envelope(io, &mut recv_mask).await?;
    let mut payload = [0; MAX_NOISE_MSG];
    noise.read_message(&reply, &mut payload)?;
    Ok(Established {
        noise: noise.into_stateless_transport_mode()?,
        send_mask,
        recv_mask,
    })
}

/// What the bridge needs to answer handshakes.
pub struct ServerKeys<'a> {
    pub private_key: &'a [u8; 32],
    pub secrets: &'a [InviteSecret],
    pub replay: &'a Mutex<ReplayCache>,
    pub now_secs: u64,
}

/// Runs the bridge side. Returns the handshake and the index of the invitation used. Nothing is written unless
/// every check passed.
pub async fn server<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    keys: ServerKeys<'_>,
) -> Result<(Established, usize), HandshakeError> {
    let mut opening = [0; NONCE_LEN + CHECK_LEN];
    io.read_exact(&mut opening).await?;
    let mut nonce = [0; NONCE_LEN];
    nonce.copy_from_slice(&opening[..NONCE_LEN]);
    let check = &opening[NONCE_LEN..];
    // Every invitation is tried, without stopping early, so timing does not tell how many there are.
    let mut found = None;
    for (index, secret) in keys.secrets.iter().enumerate() {
        if same_bytes(&check_value(secret, &nonce), check) && found.is_none() {
            found = Some(index);
        }
    }
    let index = found.ok_or(HandshakeError::UnknownInvitation)?;
    let secret = &keys.secrets[index];
    let mut recv_mask = Mask::new(secret, &nonce, Direction::ClientToBridge);
    let mut send_mask = Mask::new(secret, &nonce, Direction::BridgeToClient);
    let msg = read_envelope(io, &mut recv_mask).await?;
    let psk = psk(secret);
    let prologue = prologue(&nonce);
    let mut noise = snow::Builder::new(NOISE_PARAMS.clone())
        .local_private_key(keys.private_key)?
        .psk(0, &psk)?
        .prologue(&prologue)?
        .build_responder()?;
    let mut payload = [0; MAX_NOISE_MSG];
    let len = noise.read_message(&msg, &mut payload)?;
    let clock: [u8; CLOCK_LEN] = payload[..len]
        .try_into()
        .map_err(|_| HandshakeError::BadEnvelope)?;
    let client_secs = u64::from_be_bytes(clock);
    let verdict = match keys.replay.lock() {
        Ok(mut cache) => cache.check(nonce, client_secs, keys.now_secs),
        Err(_) => ReplayVerdict::Replayed,
    };
    if verdict != ReplayVerdict::Fresh {
        return Err(HandshakeError::Replay);
    }
    let mut reply = [0; MAX_NOISE_MSG];
    let len = noise.write_message(&[], &mut reply)?;
    io.write_all(&envelope(&mut send_mask, &reply[..len]))
        .await?;
    io.flush().await?;
    Ok((
        Established {
            noise: noise.into_stateless_transport_mode()?,
            send_mask,
            recv_mask,
        },
        index,
    ))
}

/// Whether an X25519 private and public key belong together, checked by a handshake between them in memory.
pub fn key_halves_match(private: &[u8; 32], public: &[u8; 32]) -> bool {
    let run = || -> Result<(), snow::Error> {
        let psk = [0; 32];
        let mut initiator = snow::Builder::new(NOISE_PARAMS.clone())
            .remote_public_key(public)?
            .psk(0, &psk)?
            .build_initiator()?;
        let mut responder = snow::Builder::new(NOISE_PARAMS.clone())
            .local_private_key(private)?
            .psk(0, &psk)?
            .build_responder()?;
        let mut msg = [0; MAX_NOISE_MSG];
        let mut payload = [0; MAX_NOISE_MSG];
        let len = initiator.write_message(&[], &mut msg)?;
        responder.read_message(&msg[..len], &mut payload)?;
        Ok(())
    };
    run().is_ok()
}
