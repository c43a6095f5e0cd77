//! The LAN announce message: a fixed 56-byte layout, decoded strictly.
//!
//! ```text
//! offset size
//!  0      4   magic "KLKL"
//!  4      1   version, 1
//!  5      1   kind, 1 = announce (other values reserved)
//!  6      2   kolokol wire port, big-endian, not 0
//!  8     16   first 16 bytes of network_tag(network name)
//! 24     32   node id (Ed25519 public key of the node's wire identity)
//! ```
//!
//! The network is sent as a hash so that the announce does not spell out the network name; nodes of other
//! networks recognise and ignore it. The message is not signed: anyone on the LAN can send anything, and the
//! node id is only a hint (it lets a node ignore its own announces and skip nodes it is already connected to).
//! The wire handshake is what proves who a node is.

use kolokol_core::NodeId;

use crate::feed::network_tag;

/// Every announce is exactly this long.
pub const ANNOUNCE_LEN: usize = 56;
/// First four bytes of every announce.
pub const MAGIC: [u8; 4] = *b"KLKL";
/// The only version understood.
pub const VERSION: u8 = 1;
/// The only kind understood.
pub const KIND_ANNOUNCE: u8 = 1;

/// A decoded announce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Announce {
    /// The sender's kolokol wire port.
    pub wire_port: u16,
    /// The first 16 bytes of the sender's [`network_tag`].
    pub network: [u8; 16],
    /// The sender's node id, as claimed.
    pub node_id: NodeId,
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
    #[error("node id is not a valid Ed25519 public key")]
    NodeId,
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
    pub fn new(network: &str, node_id: NodeId, wire_port: u16) -> Announce {
        Announce {
            wire_port,
            network: network_hint(network),
            node_id,
        }
    }

    /// The 56 bytes sent.
    pub fn encode(&self) -> [u8; ANNOUNCE_LEN] {
        let mut out = [0u8; ANNOUNCE_LEN];
        out[0..4].copy_from_slice(&MAGIC);
        out[4] = VERSION;
        out[5] = KIND_ANNOUNCE;
        out[6..8].copy_from_slice(&self.wire_port.to_be_bytes());
        out[8..24].copy_from_slice(&self.network);
        out[24..56].copy_from_slice(self.node_id.as_bytes());
        out
    }

    /// Reads a datagram; anything but a well-formed version-1 announce is refused.
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
        let mut id = [0u8; 32];
        id.copy_from_slice(&bytes[24..56]);
        let node_id = NodeId::from_bytes(id);
        if !node_id.is_valid() {
            return Err(AnnounceError::NodeId);
        }
        Ok(Announce {
            wire_port,
            network,
            node_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kolokol_core::Keypair;
    use proptest::prelude::*;

    fn node() -> NodeId {
        Keypair::from_secret_bytes([5; 32]).public()
    }

    #[test]
    fn layout_is_pinned() {
        let a = Announce::new("kolokol", node(), 0x1f90);
        let bytes = a.encode();
        assert_eq!(&bytes[0..8], b"KLKL\x01\x01\x1f\x90");
        assert_eq!(&bytes[8..24], &network_tag("kolokol")[..16]);
        assert_eq!(&bytes[24..], node().as_bytes());
        assert_eq!(Announce::decode(&bytes), Ok(a));
    }

    #[test]
    fn malformed_datagrams_are_refused() {
        let good = Announce::new("kolokol", node(), 7000).encode();
        assert_eq!(
            Announce::decode(&good[..55]),
            Err(AnnounceError::Length(55))
        );
        let mut long = good.to_vec();
        long.push(0);
        assert_eq!(Announce::decode(&long), Err(AnnounceError::Length(57)));
        assert_eq!(Announce::decode(&[]), Err(AnnounceError::Length(0)));
        let change = |i: usize, v: u8| {
            let mut b = good;
            b[i] = v;
            Announce::decode(&b)
        };
        assert_eq!(change(0, b'X'), Err(AnnounceError::Magic));
        assert_eq!(change(4, 2), Err(AnnounceError::Version(2)));
        assert_eq!(change(5, 0), Err(AnnounceError::Kind(0)));
        let mut port0 = good;
        port0[6] = 0;
        port0[7] = 0;
        assert_eq!(Announce::decode(&port0), Err(AnnounceError::Port));
        // y = 2 is not on the curve.
        let mut bad_key = good;
        bad_key[24..56].copy_from_slice(&[0; 32]);
        bad_key[24] = 2;
        assert_eq!(Announce::decode(&bad_key), Err(AnnounceError::NodeId));
    }

    proptest! {
        #[test]
        fn round_trip(secret in any::<[u8; 32]>(), port in 1u16.., net in "[a-z]{1,20}") {
            let a = Announce::new(&net, Keypair::from_secret_bytes(secret).public(), port);
            prop_assert_eq!(Announce::decode(&a.encode()), Ok(a));
        }

        #[test]
        fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..80)) {
            let _ = Announce::decode(&bytes);
        }
    }
}
