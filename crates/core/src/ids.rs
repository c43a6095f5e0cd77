//! Fixed-size identifiers written as lowercase hex: infohashes, record ids, and (in `keys`) public keys.
//!
//! They all share one text form: `Display` writes lowercase hex, `FromStr` accepts exactly the right number of
//! hex digits in either case, and serde uses that same string, so JSON and the CLI show the same thing.

use sha1::Sha1;
use sha2::{Digest, Sha256};

/// Why a string is not the hex form of an identifier.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseIdError {
    #[error("{what} must be {expected} hex characters, got {actual}")]
    WrongLength {
        what: &'static str,
        expected: usize,
        actual: usize,
    },
    #[error("{what} has a character that is not a hex digit at position {position}")]
    NotHex { what: &'static str, position: usize },
}

/// Parses exactly `2 * N` hex digits (either case) into `N` bytes.
pub(crate) fn parse_hex<const N: usize>(
    s: &str,
    what: &'static str,
) -> Result<[u8; N], ParseIdError> {
    if s.len() != 2 * N {
        return Err(ParseIdError::WrongLength {
            what,
            expected: 2 * N,
            actual: s.chars().count(),
        });
    }
    if let Some(position) = s.bytes().position(|b| !b.is_ascii_hexdigit()) {
        return Err(ParseIdError::NotHex { what, position });
    }
    let mut out = [0u8; N];
    // Length and alphabet were checked above, so this cannot fail; map the error anyway rather than unwrap.
    hex::decode_to_slice(s, &mut out).map_err(|_| ParseIdError::NotHex { what, position: 0 })?;
    Ok(out)
}

/// Implements `Display`, `Debug`, `FromStr` and serde for a tuple struct around `[u8; N]`.
/// `$err` must implement `From<ParseIdError>`.
macro_rules! hex_id_impls {
    ($ty:ident, $n:expr, $what:expr, $err:ty) => {
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({})", stringify!($ty), self)
            }
        }

        impl std::str::FromStr for $ty {
            type Err = $err;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ok($ty($crate::ids::parse_hex::<{ $n }>(s, $what)?))
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.to_string())
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct HexVisitor;

                impl serde::de::Visitor<'_> for HexVisitor {
                    type Value = $ty;

                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        write!(f, "{} as {} hex characters", $what, 2 * $n)
                    }

                    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<$ty, E> {
                        s.parse::<$ty>().map_err(E::custom)
                    }
                }

                deserializer.deserialize_str(HexVisitor)
            }
        }
    };
}
pub(crate) use hex_id_impls;

/// A BitTorrent v1 infohash: the SHA-1 of a torrent's bencoded info dictionary.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InfoHash(pub [u8; 20]);

hex_id_impls!(InfoHash, 20, "infohash", ParseIdError);

/// Prefix of the rendezvous infohash preimage; followed by [`RENDEZVOUS_VERSION`] and the network name.
pub const RENDEZVOUS_PREFIX: &[u8] = b"kolokol/rendezvous\0";
/// Rendezvous protocol version byte; changing it moves every node to a new meeting point.
pub const RENDEZVOUS_VERSION: u8 = 1;

impl InfoHash {
    /// The 20 raw bytes.
    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// The DHT infohash on which nodes of `network` announce themselves to find each other:
    /// SHA-1 of [`RENDEZVOUS_PREFIX`], [`RENDEZVOUS_VERSION`] and the network name.
    pub fn rendezvous(network: &str) -> InfoHash {
        let mut hasher = Sha1::new();
        hasher.update(RENDEZVOUS_PREFIX);
        hasher.update([RENDEZVOUS_VERSION]);
        hasher.update(network.as_bytes());
        InfoHash(hasher.finalize().into())
    }
}

/// The id of a signed record: SHA-256 of its exact signed bytes, so two nodes name a record the same way.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordId(pub [u8; 32]);

hex_id_impls!(RecordId, 32, "record id", ParseIdError);

impl RecordId {
    /// The id of the given signed record bytes.
    pub fn of_signed_bytes(bytes: &[u8]) -> RecordId {
        RecordId(Sha256::digest(bytes).into())
    }

    /// The 32 raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_text_form() {
        let id = InfoHash([0xab; 20]);
        assert_eq!(id.to_string(), "ab".repeat(20));
        assert_eq!("AB".repeat(20).parse::<InfoHash>(), Ok(id));
        assert_eq!(format!("{id:?}"), format!("InfoHash({})", "ab".repeat(20)));
        assert_eq!(
            "ab".parse::<InfoHash>().unwrap_err().to_string(),
            "infohash must be 40 hex characters, got 2"
        );
        let mut bad = "0".repeat(64);
        bad.replace_range(5..6, "g");
        assert_eq!(
            bad.parse::<RecordId>().unwrap_err().to_string(),
            "record id has a character that is not a hex digit at position 5"
        );
        // Non-ASCII must be refused, even when its byte length happens to match.
        let sneaky = format!("{}é", "0".repeat(62));
        assert_eq!(sneaky.len(), 64);
        assert!(sneaky.parse::<RecordId>().is_err());
        assert!(format!(" {}", "0".repeat(39)).parse::<InfoHash>().is_err());
    }

    #[test]
    fn rendezvous_is_pinned() {
        // Computed independently: sha1(b"kolokol/rendezvous\x00" + bytes([1]) + b"kolokol").
        assert_eq!(
            InfoHash::rendezvous("kolokol").to_string(),
            "ea4ddd3bf55e45d25520652e27c19f078e1f4efd"
        );
        assert_ne!(
            InfoHash::rendezvous("kolokol"),
            InfoHash::rendezvous("kolokol-test")
        );
    }

    #[test]
    fn record_id_is_sha256() {
        // SHA-256 of the empty string.
        assert_eq!(
            RecordId::of_signed_bytes(b"").to_string(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
