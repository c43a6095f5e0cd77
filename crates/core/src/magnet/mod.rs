//! BitTorrent magnet links (BEP 9): what the user pastes and what the node prints for a publication.
//!
//! Only v1 links are understood (kolokol's torrents are v1). Parsing accepts what common clients write (hex or
//! base32 infohash, `+` for space, numbered `xt.1` keys, unknown parameters) and refuses what is malformed, with a
//! message that says what is wrong. Input size and the number of trackers and peers are capped.

#[cfg(test)]
mod tests;

use std::fmt::Write as _;
use std::net::SocketAddr;

use crate::ids::InfoHash;

/// Longest magnet link accepted.
pub const MAX_MAGNET_BYTES: usize = 8 * 1024;
/// Most `tr` (tracker) parameters accepted.
pub const MAX_TRACKERS: usize = 32;
/// Most `x.pe` (peer address) parameters accepted.
pub const MAX_PEERS: usize = 64;

/// A parsed v1 magnet link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Magnet {
    /// The torrent's v1 infohash (`xt=urn:btih:`).
    pub infohash: InfoHash,
    /// Suggested display name (`dn`); `None` when absent or empty.
    pub name: Option<String>,
    /// Peers to try first (`x.pe`).
    pub peers: Vec<SocketAddr>,
    /// Tracker URLs (`tr`).
    pub trackers: Vec<String>,
}

/// Why a string is not an acceptable magnet link.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MagnetError {
    #[error("magnet link is {len} bytes, more than the {MAX_MAGNET_BYTES}-byte limit")]
    TooLong { len: usize },
    #[error("not a magnet link: it must start with \"magnet:?\"")]
    NotMagnet,
    #[error("magnet parameter {0:?} has no '='")]
    MissingEquals(String),
    #[error("magnet parameter {0:?} has a malformed %-escape")]
    BadPercentEncoding(String),
    #[error("magnet parameter {0:?} is not valid UTF-8")]
    NotUtf8(String),
    #[error("magnet parameter {0:?} contains a control character")]
    ControlCharacter(String),
    #[error("magnet link has no infohash (xt=urn:btih:...)")]
    NoInfohash,
    #[error("only v1 (btih) magnet links are supported")]
    V2Only,
    #[error("magnet link has more than one different btih infohash")]
    MultipleInfohashes,
    #[error("infohash {0:?} is neither 40 hex nor 32 base32 characters")]
    BadInfohash(String),
    #[error("magnet link has more than one name (dn)")]
    DuplicateName,
    #[error("magnet link has more than {MAX_TRACKERS} trackers")]
    TooManyTrackers,
    #[error("tracker {0:?} is not a URL of the form scheme://...")]
    BadTracker(String),
    #[error("magnet link has more than {MAX_PEERS} peers")]
    TooManyPeers,
    #[error(
        "peer {0:?} is not an address of the form IPv4:port or [IPv6]:port with a non-zero port"
    )]
    BadPeer(String),
}

impl Magnet {
    /// A magnet link with only an infohash.
    pub fn new(infohash: InfoHash) -> Magnet {
        Magnet {
            infohash,
            name: None,
            peers: Vec::new(),
            trackers: Vec::new(),
        }
    }

    /// Parses a magnet link.
    pub fn parse(input: &str) -> Result<Magnet, MagnetError> {
        if input.len() > MAX_MAGNET_BYTES {
            return Err(MagnetError::TooLong { len: input.len() });
        }
        let query = match input.get(..8) {
            Some(scheme) if scheme.eq_ignore_ascii_case("magnet:?") => &input[8..],
            _ => return Err(MagnetError::NotMagnet),
        };
        let mut infohash = None;
        let mut saw_v2 = false;
        let mut name = None;
        let mut peers = Vec::new();
        let mut trackers = Vec::new();
        // Empty segments ("a=1&&b=2") carry nothing and are skipped, as clients do.
        for param in query.split('&').filter(|p| !p.is_empty()) {
            let (key, raw) = param
                .split_once('=')
                .ok_or_else(|| MagnetError::MissingEquals(param.to_owned()))?;
            let is_xt = key == "xt"
                || key
                    .strip_prefix("xt.")
                    .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()));
            if is_xt {
                let value = decode_text(key, raw)?;
                if let Some(hash) = strip_prefix_ignore_case(&value, "urn:btih:") {
                    let hash = parse_btih(hash)?;
                    if infohash.is_some_and(|seen| seen != hash) {
                        return Err(MagnetError::MultipleInfohashes);
                    }
                    infohash = Some(hash);
                } else if strip_prefix_ignore_case(&value, "urn:btmh:").is_some() {
                    saw_v2 = true;
                }
                continue;
            }
            match key {
                "dn" => {
                    if name.is_some() {
                        return Err(MagnetError::DuplicateName);
                    }
                    name = Some(decode_text(key, raw)?);
                }
                "tr" => {
                    if trackers.len() == MAX_TRACKERS {
                        return Err(MagnetError::TooManyTrackers);
                    }
                    let tracker = decode_text(key, raw)?;
                    if !looks_like_url(&tracker) {
                        return Err(MagnetError::BadTracker(tracker));
                    }
                    trackers.push(tracker);
                }
                "x.pe" => {
                    if peers.len() == MAX_PEERS {
                        return Err(MagnetError::TooManyPeers);
                    }
                    let text = decode_text(key, raw)?;
                    match text.parse::<SocketAddr>() {
                        Ok(addr) if addr.port() != 0 => peers.push(addr),
                        _ => return Err(MagnetError::BadPeer(text)),
                    }
                }
                _ => {} // Unknown parameters (xl, ws, as, so, ...) are ignored, as BEP 9 expects.
            }
        }
        let infohash = match (infohash, saw_v2) {
            (Some(hash), _) => hash,
            (None, true) => return Err(MagnetError::V2Only),
            (None, false) => return Err(MagnetError::NoInfohash),
        };
        Ok(Magnet {
            infohash,
            name: name.filter(|n| !n.is_empty()),
            peers,
            trackers,
        })
    }

    /// The link as text: lowercase hex infohash, then `dn`, `tr` and `x.pe`, every value percent-encoded.
    pub fn to_uri(&self) -> String {
        let mut uri = format!("magnet:?xt=urn:btih:{}", self.infohash);
        if let Some(name) = self.name.as_deref().filter(|n| !n.is_empty()) {
            push_param(&mut uri, "dn", name);
        }
        for tracker in &self.trackers {
            push_param(&mut uri, "tr", tracker);
        }
        for peer in &self.peers {
            push_param(&mut uri, "x.pe", &peer.to_string());
        }
        uri
    }
}

impl std::fmt::Display for Magnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_uri())
    }
}

impl std::str::FromStr for Magnet {
    type Err = MagnetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Magnet::parse(s)
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    match s.get(..prefix.len()) {
        Some(head) if head.eq_ignore_ascii_case(prefix) => Some(&s[prefix.len()..]),
        _ => None,
    }
}

/// `scheme://rest`, with a scheme of letters, digits, '+', '-', '.' starting with a letter, and a non-empty rest.
fn looks_like_url(s: &str) -> bool {
    match s.split_once("://") {
        Some((scheme, rest)) => {
            scheme
                .as_bytes()
                .first()
                .is_some_and(u8::is_ascii_alphabetic)
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
                && !rest.is_empty()
        }
        None => false,
    }
}

/// 40 hex digits or 32 base32 (RFC 4648) characters, either case.
fn parse_btih(text: &str) -> Result<InfoHash, MagnetError> {
    let bad = || MagnetError::BadInfohash(text.to_owned());
    match text.len() {
        40 => text.parse::<InfoHash>().map_err(|_| bad()),
        32 => {
            let mut out = [0u8; 20];
            let (mut acc, mut bits, mut n) = (0u64, 0u32, 0usize);
            for c in text.bytes() {
                let v = match c.to_ascii_uppercase() {
                    c @ b'A'..=b'Z' => c - b'A',
                    c @ b'2'..=b'7' => c - b'2' + 26,
                    _ => return Err(bad()),
                };
                acc = (acc << 5) | u64::from(v);
                bits += 5;
                if bits >= 8 {
                    bits -= 8;
                    // 32 characters are exactly 160 bits, so n never passes 19.
                    out[n] = (acc >> bits) as u8;
                    n += 1;
                }
            }
            Ok(InfoHash(out))
        }
        _ => Err(bad()),
    }
}

/// Percent-decodes a value (`+` is a space, as form encoding and most clients have it), then requires UTF-8
/// without control characters.
fn decode_text(key: &str, raw: &str) -> Result<String, MagnetError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'%' => {
                let hi = bytes.next().and_then(|c| (c as char).to_digit(16));
                let lo = bytes.next().and_then(|c| (c as char).to_digit(16));
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push((hi * 16 + lo) as u8),
                    _ => return Err(MagnetError::BadPercentEncoding(key.to_owned())),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
    }
    let text = String::from_utf8(out).map_err(|_| MagnetError::NotUtf8(key.to_owned()))?;
    if text.chars().any(char::is_control) {
        return Err(MagnetError::ControlCharacter(key.to_owned()));
    }
    Ok(text)
}

/// Appends `&key=value`, keeping only RFC 3986 unreserved characters literal.
fn push_param(uri: &mut String, key: &str, value: &str) {
    uri.push('&');
    uri.push_str(key);
    uri.push('=');
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            uri.push(b as char);
        } else {
            // Writing to a String cannot fail.
            let _ = write!(uri, "%{b:02X}");
        }
    }
}
