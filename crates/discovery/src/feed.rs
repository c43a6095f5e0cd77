//! Author feeds as BEP 44 mutable items: the pure part (salt, value codec, signed bytes, sequence numbers).
//!
//! An author's feed head says "my latest record is X and I have published N records". It is a BEP 44 mutable
//! item signed by the author's Ed25519 key (the key that signs the records), stored under
//! `SHA-1(public key ‖ salt)` where the salt is derived from the network name, so each network has its own feed
//! per author. The item's value `v` is a BEP 44 byte string whose content is a small strict bencode dictionary:
//!
//! ```text
//! d 5:count i<N>e  6:latest 32:<record id>  3:net 32:<network tag>  1:v i1e e
//! ```
//!
//! - `count`: how many records the author has published, at least 1;
//! - `latest`: the [`RecordId`] of the newest one;
//! - `net`: [`network_tag`] of the network, so a value written for another network is recognised and refused
//!   even if it were stored under this network's salt;
//! - `v`: the format version, 1.
//!
//! Storing the dictionary inside a byte string (rather than as `v` itself) is what the `mainline` crate and
//! Debian's libtorrent Python binding both handle, so either can read and write kolokol feed heads.

use kolokol_core::RecordId;
use kolokol_core::bencode::{self, DecodeLimits, Dict, Value};
use sha2::{Digest, Sha256};

/// Version written in, and required of, every feed value.
pub const FEED_VALUE_VERSION: i64 = 1;
/// Longest feed value accepted. A valid value is about 100 bytes; BEP 44 itself allows 1000.
pub const MAX_FEED_VALUE_BYTES: usize = 256;
/// Prefix of the BEP 44 salt; followed by 32 hex digits of the network tag.
pub const FEED_SALT_PREFIX: &[u8] = b"kolokol/feed/1/";
/// Domain prefix of [`network_tag`].
const NETWORK_TAG_DOMAIN: &[u8] = b"kolokol/network\0";

/// What an author's feed names: their latest record and how many they have published.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FeedHead {
    /// The newest record of the author.
    pub latest: RecordId,
    /// How many records the author has published (at least 1).
    pub count: u64,
}

/// A feed head read from the DHT with its BEP 44 sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FeedEntry {
    /// The head.
    pub head: FeedHead,
    /// The BEP 44 sequence number it was signed with; a later head has a larger one.
    pub seq: i64,
}

/// Why bytes are not a feed value of this network.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FeedValueError {
    #[error("feed value is {len} bytes, more than {MAX_FEED_VALUE_BYTES}")]
    TooLarge { len: usize },
    #[error("feed value is not strict bencode: {0}")]
    Bencode(#[from] bencode::BencodeError),
    #[error("feed value is not a dictionary")]
    NotADict,
    #[error("feed value: {0}")]
    Field(#[from] bencode::FieldError),
    #[error("feed value has version {0}, only {FEED_VALUE_VERSION} is understood")]
    Version(i64),
    #[error("feed value field \"{field}\" must be {expected} bytes, got {actual}")]
    Length {
        field: &'static str,
        expected: usize,
        actual: usize,
    },
    #[error("feed value count must be between 1 and 2^63-1, got {0}")]
    Count(i64),
    #[error("feed value belongs to another network")]
    OtherNetwork,
}

/// Why a feed head cannot be written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FeedHeadError {
    #[error("feed count must be between 1 and 2^63-1, got {0}")]
    Count(u64),
}

/// A 32-byte tag naming a network without spelling it out: `SHA-256("kolokol/network\0" ‖ name)`.
pub fn network_tag(network: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(NETWORK_TAG_DOMAIN);
    hasher.update(network.as_bytes());
    hasher.finalize().into()
}

/// The BEP 44 salt of feeds in `network`: [`FEED_SALT_PREFIX`] and the first 16 bytes of [`network_tag`] in hex
/// (47 bytes, within BEP 44's 64-byte limit whatever the length of the network name).
pub fn feed_salt(network: &str) -> Vec<u8> {
    let tag = network_tag(network);
    let mut salt = FEED_SALT_PREFIX.to_vec();
    salt.extend_from_slice(hex::encode(&tag[..16]).as_bytes());
    salt
}

/// The feed value for `head` in `network`.
pub fn encode_feed_value(network: &str, head: &FeedHead) -> Result<Vec<u8>, FeedHeadError> {
    let count = i64::try_from(head.count)
        .ok()
        .filter(|c| *c >= 1)
        .ok_or(FeedHeadError::Count(head.count))?;
    let mut dict = Dict::new();
    dict.insert(b"count".to_vec(), Value::Int(count));
    dict.insert(b"latest".to_vec(), Value::Bytes(head.latest.0.to_vec()));
    dict.insert(b"net".to_vec(), Value::Bytes(network_tag(network).to_vec()));
    dict.insert(b"v".to_vec(), Value::Int(FEED_VALUE_VERSION));
    Ok(bencode::encode(&Value::Dict(dict)))
}

/// Reads a feed value, refusing anything that is not exactly a version-1 value of `network`.
pub fn decode_feed_value(bytes: &[u8], network: &str) -> Result<FeedHead, FeedValueError> {
    if bytes.len() > MAX_FEED_VALUE_BYTES {
        return Err(FeedValueError::TooLarge { len: bytes.len() });
    }
    let limits = DecodeLimits {
        max_depth: 2,
        max_items: 16,
        max_input_bytes: MAX_FEED_VALUE_BYTES,
    };
    let value = bencode::decode(bytes, &limits)?;
    let dict = value.as_dict().ok_or(FeedValueError::NotADict)?;
    bencode::reject_unknown_keys(dict, &["count", "latest", "net", "v"])?;
    let version = bencode::required_int(dict, "v")?;
    if version != FEED_VALUE_VERSION {
        return Err(FeedValueError::Version(version));
    }
    let latest = fixed::<32>(bencode::required_bytes(dict, "latest")?, "latest")?;
    let net = fixed::<32>(bencode::required_bytes(dict, "net")?, "net")?;
    let count = bencode::required_int(dict, "count")?;
    let count = u64::try_from(count)
        .ok()
        .filter(|c| *c >= 1)
        .ok_or(FeedValueError::Count(count))?;
    if net != network_tag(network) {
        return Err(FeedValueError::OtherNetwork);
    }
    Ok(FeedHead {
        latest: RecordId(latest),
        count,
    })
}

fn fixed<const N: usize>(bytes: &[u8], field: &'static str) -> Result<[u8; N], FeedValueError> {
    bytes.try_into().map_err(|_| FeedValueError::Length {
        field,
        expected: N,
        actual: bytes.len(),
    })
}

/// The bytes a BEP 44 mutable item's signature covers: `[4:salt<len>:<salt>]3:seqi<seq>e1:v<bencoded v>`, where
/// `v` is the value as a bencode byte string. Used to re-check items with strict Ed25519 verification.
pub fn bep44_signed_bytes(salt: &[u8], seq: i64, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(salt.len() + value.len() + 48);
    if !salt.is_empty() {
        out.extend_from_slice(format!("4:salt{}:", salt.len()).as_bytes());
        out.extend_from_slice(salt);
    }
    out.extend_from_slice(format!("3:seqi{seq}e1:v{}:", value.len()).as_bytes());
    out.extend_from_slice(value);
    out
}

/// A sequence number for the next feed put: larger than `previous`, and at least the current unix time in
/// seconds, so that a node restored from an old backup (which lost its last sequence number) still writes a
/// larger one than it wrote before, as long as its clock is right.
pub fn next_feed_seq(previous: Option<i64>, now_unix_secs: u64) -> i64 {
    let by_clock = i64::try_from(now_unix_secs).unwrap_or(i64::MAX);
    match previous {
        Some(p) => by_clock.max(p.saturating_add(1)),
        None => by_clock.max(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn head(count: u64) -> FeedHead {
        FeedHead {
            latest: RecordId([7; 32]),
            count,
        }
    }

    #[test]
    fn salt_is_pinned_and_bounded() {
        let salt = feed_salt("kolokol");
        assert_eq!(salt.len(), 47);
        assert!(salt.starts_with(FEED_SALT_PREFIX));
        assert_eq!(feed_salt(&"x".repeat(255)).len(), 47);
        assert_ne!(feed_salt("kolokol"), feed_salt("kolokol-test"));
        // Computed independently with Python's hashlib: sha256(b"kolokol/network\x00kolokol").
        assert_eq!(
            hex::encode(network_tag("kolokol")),
            "99ea2b7409d9de082773c151f5c6bf4ad5ee1398b31bed8d93045317d172995f"
        );
        assert_eq!(
            salt,
            b"kolokol/feed/1/99ea2b7409d9de082773c151f5c6bf4a".to_vec()
        );
    }

    #[test]
    fn value_round_trip_and_layout() {
        let bytes = encode_feed_value("kolokol", &head(3)).unwrap();
        let expected_prefix = b"d5:counti3e6:latest32:";
        assert!(bytes.starts_with(expected_prefix));
        assert!(bytes.ends_with(b"1:vi1ee"));
        assert!(bytes.len() < 120);
        assert_eq!(decode_feed_value(&bytes, "kolokol"), Ok(head(3)));
        assert_eq!(
            decode_feed_value(&bytes, "other"),
            Err(FeedValueError::OtherNetwork)
        );
    }

    #[test]
    fn bad_heads_cannot_be_written() {
        assert_eq!(
            encode_feed_value("k", &head(0)),
            Err(FeedHeadError::Count(0))
        );
        assert_eq!(
            encode_feed_value("k", &head(u64::MAX)),
            Err(FeedHeadError::Count(u64::MAX))
        );
    }

    #[test]
    fn malformed_values_are_refused() {
        let tag = network_tag("n");
        let build = |entries: Vec<(&str, Value)>| {
            let mut d = Dict::new();
            for (k, v) in entries {
                d.insert(k.as_bytes().to_vec(), v);
            }
            bencode::encode(&Value::Dict(d))
        };
        let good = || {
            vec![
                ("count", Value::Int(1)),
                ("latest", Value::Bytes(vec![1; 32])),
                ("net", Value::Bytes(tag.to_vec())),
                ("v", Value::Int(1)),
            ]
        };
        assert!(decode_feed_value(&build(good()), "n").is_ok());

        let mut v2 = good();
        v2[3].1 = Value::Int(2);
        assert_eq!(
            decode_feed_value(&build(v2), "n"),
            Err(FeedValueError::Version(2))
        );
        let mut zero = good();
        zero[0].1 = Value::Int(0);
        assert_eq!(
            decode_feed_value(&build(zero), "n"),
            Err(FeedValueError::Count(0))
        );
        let mut neg = good();
        neg[0].1 = Value::Int(-5);
        assert_eq!(
            decode_feed_value(&build(neg), "n"),
            Err(FeedValueError::Count(-5))
        );
        let mut short = good();
        short[1].1 = Value::Bytes(vec![1; 31]);
        assert!(matches!(
            decode_feed_value(&build(short), "n"),
            Err(FeedValueError::Length {
                field: "latest",
                ..
            })
        ));
        let mut extra = good();
        extra.push(("x", Value::Int(0)));
        assert!(matches!(
            decode_feed_value(&build(extra), "n"),
            Err(FeedValueError::Field(_))
        ));
        let mut missing = good();
        missing.remove(0);
        assert!(matches!(
            decode_feed_value(&build(missing), "n"),
            Err(FeedValueError::Field(_))
        ));
        assert_eq!(
            decode_feed_value(b"i1e", "n"),
            Err(FeedValueError::NotADict)
        );
        assert!(matches!(
            decode_feed_value(b"d1:vi1e", "n"),
            Err(FeedValueError::Bencode(_))
        ));
        // Non-canonical: keys out of order.
        assert!(matches!(
            decode_feed_value(b"d1:vi1e5:counti1ee", "n"),
            Err(FeedValueError::Bencode(_))
        ));
        assert!(matches!(
            decode_feed_value(&vec![b'x'; 300], "n"),
            Err(FeedValueError::TooLarge { len: 300 })
        ));
    }

    #[test]
    fn signed_bytes_match_bep44() {
        // BEP 44's example: salt "foobar", seq 4, v "Hello World!".
        assert_eq!(
            bep44_signed_bytes(b"foobar", 4, b"Hello World!"),
            b"4:salt6:foobar3:seqi4e1:v12:Hello World!".to_vec()
        );
        assert_eq!(
            bep44_signed_bytes(b"", 1, b"Hello World!"),
            b"3:seqi1e1:v12:Hello World!".to_vec()
        );
    }

    #[test]
    fn sequence_numbers_grow() {
        assert_eq!(next_feed_seq(None, 1_700_000_000), 1_700_000_000);
        assert_eq!(
            next_feed_seq(Some(1_700_000_000), 1_700_000_000),
            1_700_000_001
        );
        assert_eq!(next_feed_seq(Some(5), 1_700_000_000), 1_700_000_000);
        assert_eq!(next_feed_seq(None, 0), 1);
        assert_eq!(next_feed_seq(Some(i64::MAX), 0), i64::MAX);
    }

    proptest! {
        #[test]
        fn round_trip(latest in any::<[u8; 32]>(), count in 1u64..=i64::MAX as u64, net in "[a-z0-9-]{1,40}") {
            let h = FeedHead { latest: RecordId(latest), count };
            let bytes = encode_feed_value(&net, &h).unwrap();
            prop_assert!(bytes.len() <= MAX_FEED_VALUE_BYTES);
            prop_assert_eq!(decode_feed_value(&bytes, &net), Ok(h));
        }

        #[test]
        fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            let _ = decode_feed_value(&bytes, "kolokol");
        }

        #[test]
        fn any_change_of_a_valid_value_is_refused_or_different(
            latest in any::<[u8; 32]>(), count in 1u64..1000, flip in any::<prop::sample::Index>(), bit in 0u8..8
        ) {
            let h = FeedHead { latest: RecordId(latest), count };
            let mut bytes = encode_feed_value("kolokol", &h).unwrap();
            let i = flip.index(bytes.len());
            bytes[i] ^= 1 << bit;
            if let Ok(other) = decode_feed_value(&bytes, "kolokol") {
                prop_assert_ne!(other, h);
            }
        }
    }
}
