//! Reading magnet links: the v1 info-hash, the display name and direct peers (`x.pe`).
//!
//! Trackers (`tr`), web seeds and every other parameter are ignored on purpose: this engine talks
//! only to peers it was given. Peers must be literal socket addresses; a host name would need a DNS
//! query, which could be observed or answered by the censor.

use std::net::SocketAddr;

/// Longest magnet link accepted.
pub const MAX_MAGNET_BYTES: usize = 16 * 1024;
/// Most `x.pe` peers taken from one magnet link.
pub const MAX_MAGNET_PEERS: usize = 200;

/// Why a string is not a usable magnet link.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MagnetError {
    #[error("magnet link is {0} bytes, more than the {MAX_MAGNET_BYTES} allowed")]
    TooLong(usize),
    #[error("not a magnet link (must start with `magnet:?`)")]
    NotMagnet,
    #[error("magnet link has no v1 info-hash (xt=urn:btih:...)")]
    NoInfoHash,
    #[error("magnet link has two different v1 info-hashes")]
    ConflictingInfoHash,
    #[error("bad info-hash {0:?} (need 40 hex or 32 base32 characters)")]
    BadInfoHash(String),
    #[error("bad percent-encoding in magnet link")]
    BadEncoding,
    #[error("bad peer address {0:?} (need IP:port)")]
    BadPeer(String),
}

/// The parts of a magnet link this engine uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Magnet {
    pub infohash: [u8; 20],
    /// `dn`, for display until the metadata arrives.
    pub name: Option<String>,
    /// `x.pe` peers, at most [`MAX_MAGNET_PEERS`].
    pub peers: Vec<SocketAddr>,
}

impl Magnet {
    /// Parses `magnet:?xt=urn:btih:<hex or base32>[&dn=...][&x.pe=ip:port]...`.
    pub fn parse(uri: &str) -> Result<Self, MagnetError> {
        if uri.len() > MAX_MAGNET_BYTES {
            return Err(MagnetError::TooLong(uri.len()));
        }
        let query = uri.strip_prefix("magnet:?").ok_or(MagnetError::NotMagnet)?;
        let mut infohash = None;
        let mut name = None;
        let mut peers = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "xt" => {
                    let value = percent_decode(value, false)?;
                    let Some(hash) = value
                        .strip_prefix("urn:btih:")
                        .or_else(|| value.strip_prefix("URN:BTIH:"))
                    else {
                        continue; // btmh (v2) and other URNs are not ours to use
                    };
                    let hash = parse_infohash(hash)?;
                    if infohash.is_some_and(|h| h != hash) {
                        return Err(MagnetError::ConflictingInfoHash);
                    }
                    infohash = Some(hash);
                }
                "dn" => name = Some(percent_decode(value, true)?),
                "x.pe" => {
                    let value = percent_decode(value, false)?;
                    let addr = value
                        .parse::<SocketAddr>()
                        .map_err(|_| MagnetError::BadPeer(value.clone()))?;
                    if peers.len() < MAX_MAGNET_PEERS && !peers.contains(&addr) {
                        peers.push(addr);
                    }
                }
                _ => {}
            }
        }
        Ok(Magnet {
            infohash: infohash.ok_or(MagnetError::NoInfoHash)?,
            name,
            peers,
        })
    }
}

fn parse_infohash(s: &str) -> Result<[u8; 20], MagnetError> {
    let bad = || MagnetError::BadInfoHash(s.chars().take(64).collect());
    let mut out = [0u8; 20];
    match s.len() {
        40 => {
            for (i, pair) in s.as_bytes().chunks_exact(2).enumerate() {
                let hi = hex_value(pair[0]).ok_or_else(bad)?;
                let lo = hex_value(pair[1]).ok_or_else(bad)?;
                out[i] = (hi << 4) | lo;
            }
        }
        32 => {
            // RFC 4648 base32, 32 characters = 160 bits exactly.
            let mut acc: u64 = 0;
            let mut bits = 0;
            let mut i = 0;
            for c in s.bytes() {
                let v = match c.to_ascii_uppercase() {
                    c @ b'A'..=b'Z' => c - b'A',
                    c @ b'2'..=b'7' => c - b'2' + 26,
                    _ => return Err(bad()),
                };
                acc = (acc << 5) | u64::from(v);
                bits += 5;
                if bits >= 8 {
                    bits -= 8;
                    out[i] = (acc >> bits) as u8;
                    i += 1;
                }
            }
        }
        _ => return Err(bad()),
    }
    Ok(out)
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` escapes (and `+` as a space where `plus_is_space`) into UTF-8 text.
fn percent_decode(s: &str, plus_is_space: bool) -> Result<String, MagnetError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex_value);
                let lo = bytes.get(i + 2).copied().and_then(hex_value);
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push((hi << 4) | lo),
                    _ => return Err(MagnetError::BadEncoding),
                }
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| MagnetError::BadEncoding)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn reads_hash_name_and_peers_and_ignores_trackers() {
        let uri = format!(
            "magnet:?xt=urn:btih:{HEX}&dn=My%20Video+2.mp4&tr=http%3A%2F%2Ftracker&x.pe=127.0.0.1:6881&x.pe=%5B%3A%3A1%5D%3A7000"
        );
        let m = Magnet::parse(&uri).unwrap();
        assert_eq!(hex::encode(m.infohash), HEX);
        assert_eq!(m.name.as_deref(), Some("My Video 2.mp4"));
        assert_eq!(
            m.peers,
            vec![
                "127.0.0.1:6881".parse().unwrap(),
                "[::1]:7000".parse().unwrap()
            ]
        );
    }

    #[test]
    fn base32_and_hex_forms_agree() {
        // base32 of 0x0123456789abcdef0123456789abcdef01234567
        let b32 = "AERUKZ4JVPG66AJDIVTYTK6N54ASGRLH";
        let m = Magnet::parse(&format!("magnet:?xt=urn:btih:{b32}")).unwrap();
        assert_eq!(hex::encode(m.infohash), HEX);
    }

    #[test]
    fn refuses_bad_links() {
        for bad in [
            "http://x".to_owned(),
            "magnet:?dn=x".to_owned(),
            "magnet:?xt=urn:btih:zz23456789abcdef0123456789abcdef01234567".to_owned(),
            "magnet:?xt=urn:btih:0123".to_owned(),
            format!("magnet:?xt=urn:btih:{HEX}&x.pe=example.org:80"),
            format!("magnet:?xt=urn:btih:{HEX}&dn=%zz"),
            format!("magnet:?xt=urn:btih:{HEX}&xt=urn:btih:{}", "f".repeat(40)),
            format!(
                "magnet:?xt=urn:btih:{HEX}&dn={}",
                "a".repeat(MAX_MAGNET_BYTES)
            ),
        ] {
            assert!(Magnet::parse(&bad).is_err(), "accepted {bad}");
        }
    }

    #[test]
    fn v2_only_magnet_has_no_usable_hash() {
        let uri = "magnet:?xt=urn:btmh:1220caf1e1c30e81cb361b9ee167c4aa64228a7fa4fa9f6105232b28ad099f3a302e";
        assert_eq!(Magnet::parse(uri), Err(MagnetError::NoInfoHash));
    }
}
