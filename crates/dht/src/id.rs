//! Node ids, infohashes and BEP 44 targets: 160-bit values compared by XOR distance.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};

/// A 160-bit DHT key: a node id, an infohash or an item target.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Id(pub [u8; 20]);

impl Id {
    pub fn from_slice(bytes: &[u8]) -> Option<Id> {
        bytes.try_into().ok().map(Id)
    }

    pub fn random<R: rand::RngCore + ?Sized>(rng: &mut R) -> Id {
        let mut b = [0; 20];
        rng.fill_bytes(&mut b);
        Id(b)
    }

    /// XOR distance, comparable as a big-endian number.
    pub fn distance(&self, other: &Id) -> [u8; 20] {
        let mut d = [0; 20];
        for (i, b) in d.iter_mut().enumerate() {
            *b = self.0[i] ^ other.0[i];
        }
        d
    }

    /// How many leading bits `self` and `other` share (160 when equal).
    pub fn common_prefix(&self, other: &Id) -> usize {
        let d = self.distance(other);
        for (i, b) in d.iter().enumerate() {
            if *b != 0 {
                return i * 8 + b.leading_zeros() as usize;
            }
        }
        160
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0[..4] {
            write!(f, "{b:02x}")?;
        }
        f.write_str("…")
    }
}

/// A DHT node as KRPC names it: id and IPv4 address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeInfo {
    pub id: Id,
    pub addr: SocketAddrV4,
}

/// Compact IPv4 address and port (BEP 5 "compact peer info").
pub fn compact_addr(addr: &SocketAddrV4) -> [u8; 6] {
    let mut b = [0; 6];
    b[..4].copy_from_slice(&addr.ip().octets());
    b[4..].copy_from_slice(&addr.port().to_be_bytes());
    b
}

pub fn parse_compact_addr(b: &[u8]) -> Option<SocketAddrV4> {
    let b: &[u8; 6] = b.try_into().ok()?;
    Some(SocketAddrV4::new(
        Ipv4Addr::new(b[0], b[1], b[2], b[3]),
        u16::from_be_bytes([b[4], b[5]]),
    ))
}

/// Compact node info: 20-byte id then compact address, 26 bytes per node.
pub fn compact_nodes(nodes: &[NodeInfo]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nodes.len() * 26);
    for n in nodes {
        out.extend_from_slice(&n.id.0);
        out.extend_from_slice(&compact_addr(&n.addr));
    }
    out
}

/// Reads compact node info; a trailing partial entry is ignored, at most `max` nodes are read.
pub fn parse_compact_nodes(b: &[u8], max: usize) -> Vec<NodeInfo> {
    b.chunks_exact(26)
        .take(max)
        .filter_map(|c| {
            Some(NodeInfo {
                id: Id::from_slice(&c[..20])?,
                addr: parse_compact_addr(&c[20..])?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_and_distance() {
        let a = Id([0; 20]);
        let mut b = [0; 20];
        b[1] = 0x10;
        assert_eq!(a.common_prefix(&Id(b)), 11);
        assert_eq!(a.common_prefix(&a), 160);
        assert!(a.distance(&Id(b)) < a.distance(&Id([0xff; 20])));
    }

    #[test]
    fn compact_round_trip() {
        let n = NodeInfo {
            id: Id([7; 20]),
            addr: "1.2.3.4:5678".parse().unwrap(),
        };
        let bytes = compact_nodes(&[n, n]);
        assert_eq!(bytes.len(), 52);
        assert_eq!(parse_compact_nodes(&bytes, 8), vec![n, n]);
        assert_eq!(parse_compact_nodes(&bytes, 1), vec![n]);
        assert_eq!(parse_compact_nodes(&bytes[..30], 8), vec![n]);
    }
}
