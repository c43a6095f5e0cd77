//! Connection parameters: the network name, the time limits and the message size cap.

use std::time::Duration;

/// Largest application message a kolokol peer may send (1 MiB). Receivers accept at least this much
/// by default; [`WireConfig::max_message_bytes`] is the local limit.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// Smallest accepted [`WireConfig::max_message_bytes`]: a full `Inventory` (4096 ids) and a `Records`
/// message carrying one record of the largest allowed size must both fit.
pub const MIN_MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// Largest accepted [`WireConfig::max_message_bytes`]. Every connection may hold one message of this
/// size in memory, so the cap keeps a configuration mistake from becoming a memory hazard.
pub const MAX_MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Longest accepted network name, in bytes (it travels as one length byte in signed data).
pub const MAX_NETWORK_NAME_BYTES: usize = 255;

/// Network name used when none is configured.
pub const DEFAULT_NETWORK: &str = "kolokol";

/// Parameters of one kolokol wire connection.
///
/// Both ends must use the same `network`; the other fields are local limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireConfig {
    /// Name of the network this node belongs to. It is bound into the Noise prologue and into the
    /// identity signature, so nodes of different networks cannot complete a handshake.
    /// 1 to [`MAX_NETWORK_NAME_BYTES`] bytes.
    pub network: String,
    /// Upper bound on the whole handshake, from the first byte written to the last byte read.
    pub handshake_timeout: Duration,
    /// A read fails when one transport frame does not arrive completely within this time after the
    /// reader started waiting for it. A silent peer therefore times out: keep connections alive by
    /// sending a `Ping` every [`WireConfig::keepalive_interval`]. Writes are bounded the same way,
    /// per frame, so a peer that stops reading cannot block a writer forever.
    pub idle_timeout: Duration,
    /// Largest application message accepted or sent, in bytes, checked against the length header
    /// before anything is allocated. Between [`MIN_MAX_MESSAGE_BYTES`] and [`MAX_MAX_MESSAGE_BYTES`].
    /// The protocol lets every peer send up to [`DEFAULT_MAX_MESSAGE_BYTES`]; use another value only
    /// where all nodes agree on it (tests, private networks).
    pub max_message_bytes: usize,
}

impl Default for WireConfig {
    fn default() -> Self {
        Self {
            network: DEFAULT_NETWORK.to_owned(),
            handshake_timeout: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(120),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        }
    }
}

/// Why a [`WireConfig`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The network name is empty or longer than [`MAX_NETWORK_NAME_BYTES`].
    #[error("network name must be 1 to {MAX_NETWORK_NAME_BYTES} bytes, got {0}")]
    NetworkName(usize),
    /// A timeout is zero.
    #[error("{0} must be greater than zero")]
    ZeroTimeout(&'static str),
    /// `max_message_bytes` is outside the accepted range.
    #[error(
        "max_message_bytes must be between {MIN_MAX_MESSAGE_BYTES} and {MAX_MAX_MESSAGE_BYTES}, got {0}"
    )]
    MaxMessageBytes(usize),
}

impl WireConfig {
    /// A configuration for `network` with default limits.
    pub fn for_network(network: impl Into<String>) -> Self {
        Self {
            network: network.into(),
            ..Self::default()
        }
    }

    /// Checks every field; [`crate::handshake()`] calls this before touching the stream.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let name_len = self.network.len();
        if name_len == 0 || name_len > MAX_NETWORK_NAME_BYTES {
            return Err(ConfigError::NetworkName(name_len));
        }
        if self.handshake_timeout.is_zero() {
            return Err(ConfigError::ZeroTimeout("handshake_timeout"));
        }
        if self.idle_timeout.is_zero() {
            return Err(ConfigError::ZeroTimeout("idle_timeout"));
        }
        if !(MIN_MAX_MESSAGE_BYTES..=MAX_MAX_MESSAGE_BYTES).contains(&self.max_message_bytes) {
            return Err(ConfigError::MaxMessageBytes(self.max_message_bytes));
        }
        Ok(())
    }

    /// How often a connection should send something (a `Ping` when idle) so that the peer's idle
    /// timeout, assumed equal to ours, never fires on a healthy link: a third of `idle_timeout`.
    pub fn keepalive_interval(&self) -> Duration {
        self.idle_timeout / 3
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        assert_eq!(WireConfig::default().validate(), Ok(()));
    }

    #[test]
    fn refuses_bad_values() {
        let empty = WireConfig::for_network("");
        assert_eq!(empty.validate(), Err(ConfigError::NetworkName(0)));
        let long = WireConfig::for_network("x".repeat(256));
        assert_eq!(long.validate(), Err(ConfigError::NetworkName(256)));
        let zero = WireConfig {
            idle_timeout: Duration::ZERO,
            ..WireConfig::default()
        };
        assert_eq!(
            zero.validate(),
            Err(ConfigError::ZeroTimeout("idle_timeout"))
        );
        let small = WireConfig {
            max_message_bytes: 1000,
            ..WireConfig::default()
        };
        assert_eq!(small.validate(), Err(ConfigError::MaxMessageBytes(1000)));
        let big = WireConfig {
            max_message_bytes: usize::MAX,
            ..WireConfig::default()
        };
        assert_eq!(
            big.validate(),
            Err(ConfigError::MaxMessageBytes(usize::MAX))
        );
    }
}
