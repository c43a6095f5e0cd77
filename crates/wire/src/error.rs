//! The error of a wire connection: handshake, framing and message decoding.

use kolokol_core::keys::KeyError;

use crate::config::ConfigError;
use crate::message::MessageError;

/// Why a handshake, a send or a receive failed.
///
/// After any error other than [`WireError::MessageTooLarge`] returned by a send (which is refused before
/// a byte is written), the connection is unusable: close it. Readers and writers remember a failure and
/// answer every later call with [`WireError::Poisoned`].
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The [`crate::WireConfig`] is invalid; nothing was sent.
    #[error("invalid wire configuration")]
    Config(#[from] ConfigError),
    /// The socket failed.
    #[error("I/O error on the wire")]
    Io(#[from] std::io::Error),
    /// The handshake did not finish within `handshake_timeout`.
    #[error("handshake timed out")]
    HandshakeTimeout,
    /// No complete frame arrived (or could be written) within `idle_timeout`.
    #[error("connection idle for longer than the idle timeout")]
    IdleTimeout,
    /// Noise refused a message: wrong network (prologue), tampered or replayed ciphertext, wrong key.
    #[error("Noise protocol error")]
    Noise(#[source] snow::Error),
    /// A handshake frame announced more bytes than any valid handshake message has.
    #[error("handshake frame of {len} bytes exceeds the limit of {max}")]
    HandshakeFrameTooLarge {
        /// Announced length.
        len: usize,
        /// Largest accepted length.
        max: usize,
    },
    /// A handshake message carried a payload of the wrong shape.
    #[error("malformed handshake payload: {0}")]
    HandshakePayload(&'static str),
    /// The peer's identity signature over its Noise static key does not verify.
    #[error("peer identity signature is invalid")]
    Identity(#[source] KeyError),
    /// A transport frame is shorter than its authentication tag plus one byte.
    #[error("transport frame of {0} bytes is too short")]
    FrameTooShort(usize),
    /// A message length header exceeds `max_message_bytes` (on receive), or an outgoing message does.
    #[error("message of {len} bytes exceeds the limit of {max}")]
    MessageTooLarge {
        /// Announced or attempted length.
        len: usize,
        /// The configured `max_message_bytes`.
        max: usize,
    },
    /// The peer closed the connection cleanly, between two messages.
    #[error("connection closed by peer")]
    Closed,
    /// The peer closed the connection in the middle of a frame or message.
    #[error("connection closed in the middle of a message")]
    UnexpectedEof,
    /// A received message could not be decoded, or an outgoing one could not be encoded.
    #[error("invalid message")]
    Message(#[from] MessageError),
    /// An earlier failure (or a cancelled send) left this half in an unknown state.
    #[error("connection already failed; it must be closed")]
    Poisoned,
}
