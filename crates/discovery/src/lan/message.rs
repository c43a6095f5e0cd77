//! The LAN announce message: a fixed 40-byte layout, decoded strictly.
//!
//! ```text
//! offset size
//!  0      4   magic "KLKL"
//!  4      1   version, 2
//!  5      1   kind, 1 = announce (other values reserved)
//!  6      2   kolokol wire port, big-endian, not 0
//!  8     16   first 16 bytes of network_tag(network name)
//! 24     16   instance: random bytes, new with every wire identity of the sender
//! ```
//!
//! The network is sent as a hash so that the announce does not spell out the network name; nodes of other
//! networks recognise and ignore it. The message is not signed: anyone on the LAN can send anything. The instance
//! only lets a node ignore its own announces and not yield the same node twice; it is never the node id (version 1
//! sent the node id, which never changed, so every LAN the device joined could recognise it; version 1 announces,
//! 56 bytes long, are refused). The wire handshake is what proves who a node is.

use crate::feed::network_tag;

/// Every announce is exactly this long.
pub const ANNOUNCE_LEN: usize = 40;
/// First four bytes of every announce.
pub const MAGIC: [u8; 4] = *b"KLKL";
/// The only version understood.
pub const VERSION: u8 = 2;
/// The only kind understood.
pub const KIND_ANNOUNCE: u8 = 1;

/// A decoded announce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Announce {
    /// The sender's kolokol wire port.
    pub wire_port: u16,
    /// The first 16 bytes of the sender's [`network_tag`].
    pub network: [u8; 16],
    /// The sender's instance: random, new with each of its wire identities.
    pub instance: [u8; 16],
}

/// Why a datagram is not an announce.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AnnounceError {
    #[error("datagram is {0} bytes, an announce is exactly {ANNOUNCE_LEN}")]
    Length(usize),
    #[error("wrong magic")]
    Magic,
    #[error("unsupported version {0}")]
    Version(u8),
    #[error("unknown kind {0}")]
    Kind(u8),
    #[error("wire port 0")]
    Port,
}

/// The network field for `network`.
pub fn network_hint(network: &str) -> [u8; 16] {
    let tag = network_tag(network);
    let mut hint = [0u8; 16];
    hint.copy_from_slice(&tag[..16]);
    hint
}

impl Announce {
    /// The announce of a node of `network`.
    pub fn new(network: &str, instance: [u8; 16], wire_port: u16) -> Announce {
        Announce {
            wire_port,
            network: network_hint(network),
            instance,
        }
    }

    /// The 40 bytes sent.
    pub fn encode(&self) -> [u8; ANNOUNCE_LEN] {
        let mut out = [0u8; ANNOUNCE_LEN];
        out[0..4].copy_from_slice(&MAGIC);
        out[4] = VERSION;
        out[5] = KIND_ANNOUNCE;
        out[6..8].copy_from_slice(&self.wire_port.to_be_bytes());
        out[8..24].copy_from_slice(&self.network);
        out[24..40].copy_from_slice(&self.instance);
        out
    }

    /// Reads a datagram; anything but a well-formed version-2 announce is refused.
    pub fn decode(bytes: &[u8]) -> Result<Announce, AnnounceError> {
        let bytes: &[u8; ANNOUNCE_LEN] = bytes
            .try_into()
            .map_err(|_| AnnounceError::Length(bytes.len()))?;
        if bytes[0..4] != MAGIC {
            return Err(AnnounceError::Magic);
        }
        if bytes[4] != VERSION {
            return Err(AnnounceError::Version(bytes[4]));
        }
        if bytes[5] != KIND_ANNOUNCE {
            return Err(AnnounceError::Kind(bytes[5]));
        }
        let wire_port = u16::from_be_bytes([bytes[6], bytes[7]]);
        if wire_port == 0 {
            return Err(AnnounceError::Port);
        }
        let mut network = [0u8; 16];
        network.copy_from_slice(&bytes[8..24]);
        let mut instance = [0u8; 16];
        instance.copy_from_slice(&bytes[24..40]);
        Ok(Announce {
            wire_port,
            network,
            instance,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const INSTANCE: [u8; 16] = [5; 16];

    #[test]
    fn layout_is_pinned() {
        let a = Announce::new("kolokol", INSTANCE, 0x1f90);
        let bytes = a.encode();
        assert_eq!(&bytes[0..8], b"KLKL\x02\x01\x1f\x90");
        assert_eq!(&bytes[8..24], &network_tag("kolokol")[..16]);
        assert_eq!(&bytes[24..], &INSTANCE);
        assert_eq!(Announce::decode(&bytes), Ok(a));
    }

    #[test]
    fn malformed_datagrams_are_refused() {
        let good = Announce::new("kolokol", INSTANCE, 7000).encode();
        assert_eq!(
            Announce::decode(&good[..39]),
            Err(AnnounceError::Length(39))
        );
        let mut long = good.to_vec();
        long.push(0);
        assert_eq!(Announce::decode(&long), Err(AnnounceError::Length(41)));
        assert_eq!(Announce::decode(&[]), Err(AnnounceError::Length(0)));
        // A version-1 announce (56 bytes, with a node id) is not read.
        assert_eq!(Announce::decode(&[0; 56]), Err(AnnounceError::Length(56)));
        let change = |i: usize, v: u8| {
            let mut b = good;
            b[i] = v;
            Announce::decode(&b)
        };
        assert_eq!(change(0, b'X'), Err(AnnounceError::Magic));
        assert_eq!(change(4, 1), Err(AnnounceError::Version(1)));
        assert_eq!(change(5, 0), Err(AnnounceError::Kind(0)));
        let mut port0 = good;
        port0[6] = 0;
        port0[7] = 0;
        assert_eq!(Announce::decode(&port0), Err(AnnounceError::Port));
    }

    proptest! {
        #[test]
        fn round_trip(instance in any::<[u8; 16]>(), port in 1u16.., net in "[a-z]{1,20}") {
            let a = Announce::new(&net, instance, port);
            prop_assert_eq!(Announce::decode(&a.encode()), Ok(a));
        }

        #[test]
        fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..80)) {
            let _ = Announce::decode(&bytes);
        }
    }
}
