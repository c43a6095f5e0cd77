//! Signed publication records (design decision 3): what a publication is, who published it, and which torrent
//! carries its files, in a small canonical form signed by the author.
//!
//! [`validate_record`] is the single gate for records from outside (HTTP API, wire, bundle import): it caps the
//! size before decoding, decodes strict bencode, reads an exact schema, checks every bound, insists on canonical
//! bytes, verifies the signature and checks the network and the clock. [`sign_record`] applies the same bounds,
//! so a record this node makes is one every other node accepts.
//!
//! Every record carries a proof-of-work stamp (see [`work`]), found by [`sign_record_with_work`] and covered by
//! the signature. [`validate_record`] checks that the stamp is well formed and signed but does not judge its
//! strength: the node compares [`SignedRecord::work_bits`] with its network's setting.

mod batch;
mod bounds;
#[cfg(test)]
mod bounds_tests;
mod codec;
mod error;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
pub mod work;
#[cfg(test)]
mod work_tests;

pub use batch::validate_records;
pub use bounds::*;
pub use codec::SIGNATURE_DOMAIN;
pub use error::RecordError;
pub use work::{DEFAULT_WORK_BITS, MAX_WORK_BITS, WORK_DOMAIN, work_bits_of};

use crate::bencode::{self, DecodeLimits};
pub use crate::ids::{InfoHash, RecordId};
use crate::keys::{AuthorId, Keypair};

/// One file of the publication's torrent.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FileEntry {
    /// Path inside the torrent: relative, components separated by '/'.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// MIME type, `type/subtype`.
    pub mime: String,
}

/// A small preview image carried inside the record.
///
/// In JSON only `mime` appears: the image bytes are skipped to keep listings small; serve them separately.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Thumbnail {
    /// An `image/*` MIME type.
    pub mime: String,
    /// The encoded image, at most [`MAX_THUMBNAIL_BYTES`].
    #[serde(skip)]
    pub bytes: Vec<u8>,
}

/// What the author states about a publication. The `MAX_*` constants of this module bound every field.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RecordBody {
    /// Network name, e.g. "kolokol"; records of other networks are refused.
    pub network: String,
    /// The key that signs the record.
    pub author: AuthorId,
    /// Creation time in unix seconds, supplied by the caller.
    pub created: u64,
    /// Non-blank title.
    pub title: String,
    /// Free text; may be empty; may contain newlines and tabs.
    pub description: String,
    /// Up to [`MAX_TAGS`] tags.
    pub tags: Vec<String>,
    /// Language tag (BCP-47-ish, e.g. "ru", "pt-BR"), omitted when unknown.
    pub lang: Option<String>,
    /// The torrent's files, at least one.
    pub files: Vec<FileEntry>,
    /// The BitTorrent v1 infohash of the torrent holding the files.
    pub infohash: InfoHash,
    /// Optional preview image.
    pub thumbnail: Option<Thumbnail>,
}

impl RecordBody {
    /// Sum of the file sizes, saturating (each size fits in i64, so at most 1000 of them cannot really overflow
    /// u64, but saturating keeps that obviously true).
    pub fn total_size(&self) -> u64 {
        self.files
            .iter()
            .fold(0u64, |sum, f| sum.saturating_add(f.size))
    }
}

/// A record whose signature and bounds have been checked, with the exact bytes that were signed.
///
/// The only ways to get one are [`sign_record`], [`sign_record_with_work`] and [`validate_record`], so holding a
/// `SignedRecord` means holding a valid record (whose stamp may still be too weak for a given network).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedRecord {
    body: RecordBody,
    nonce: u64,
    work_bits: u32,
    signature: [u8; 64],
    bytes: Vec<u8>,
    id: RecordId,
}

impl SignedRecord {
    /// The record's content.
    pub fn body(&self) -> &RecordBody {
        &self.body
    }

    /// The proof-of-work nonce, from 0 to `i64::MAX`.
    pub fn nonce(&self) -> u64 {
        self.nonce
    }

    /// The strength of the record's proof-of-work stamp: leading zero bits of its work hash (see [`work_bits_of`]).
    pub fn work_bits(&self) -> u32 {
        self.work_bits
    }

    /// The author's Ed25519 signature over [`SIGNATURE_DOMAIN`], the canonical body bytes and the nonce as 8 bytes
    /// big-endian.
    pub fn signature(&self) -> &[u8; 64] {
        &self.signature
    }

    /// The exact canonical signed bytes: what is stored, sent and hashed.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// SHA-256 of [`Self::bytes`].
    pub fn id(&self) -> RecordId {
        self.id
    }

    /// The content, dropping the signature and bytes.
    pub fn into_body(self) -> RecordBody {
        self.body
    }
}

/// What the receiving node knows that a record does not: which network it is on and what time it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidationContext {
    /// This node's network name; records for any other network are refused.
    pub network: String,
    /// Current unix time in seconds; records dated more than [`MAX_CLOCK_SKEW_SECS`] later are refused.
    pub now_unix: u64,
}

/// Signs `body` with `key` and the stamp of nonce 0 (strength whatever that nonce happens to give), after checking
/// that `key` is the body's author and that every bound holds. The same as [`sign_record_with_work`] with 0 bits.
pub fn sign_record(body: RecordBody, key: &Keypair) -> Result<SignedRecord, RecordError> {
    sign_record_with_work(body, key, 0)
}

/// Checks `body` as [`sign_record`] does, searches for the smallest nonce whose stamp has at least `min_bits` bits,
/// then signs body and nonce with `key`.
///
/// Deterministic and pure, but CPU-bound: expect 2^`min_bits` SHA-256 blocks (about a second at
/// [`DEFAULT_WORK_BITS`]), so async callers should run it on a blocking thread. `min_bits` above
/// [`MAX_WORK_BITS`] is refused before any work. A body within about 20 bytes of [`MAX_RECORD_BYTES`] can fit
/// with nonce 0 and not with the longer nonce the search finds; it is then refused as too large after the search.
pub fn sign_record_with_work(
    body: RecordBody,
    key: &Keypair,
    min_bits: u8,
) -> Result<SignedRecord, RecordError> {
    if body.author != key.public() {
        return Err(RecordError::AuthorMismatch {
            author: body.author,
            key: key.public(),
        });
    }
    check_body(&body)?;
    let body_bytes = bencode::encode(&codec::body_to_value(&body));
    // Refuse a body that cannot fit even with the shortest nonce before spending any work on it.
    let shortest = codec::envelope(&body_bytes, 0, &[0; 64]).len();
    if shortest > MAX_RECORD_BYTES {
        return Err(RecordError::TooLarge { len: shortest });
    }
    let nonce = work::find_nonce(&body_bytes, min_bits)?;
    let signature = key.sign(&codec::signed_message(&body_bytes, nonce));
    let bytes = codec::envelope(&body_bytes, nonce, &signature);
    if bytes.len() > MAX_RECORD_BYTES {
        return Err(RecordError::TooLarge { len: bytes.len() });
    }
    Ok(SignedRecord {
        body,
        nonce,
        work_bits: work_bits_of(&body_bytes, nonce),
        signature,
        id: RecordId::of_signed_bytes(&bytes),
        bytes,
    })
}

/// Nesting of a record: envelope > body > files > file > field.
const RECORD_DECODE_LIMITS: DecodeLimits = DecodeLimits {
    max_depth: 5,
    max_items: 8192,
    max_input_bytes: MAX_RECORD_BYTES,
};

/// Checks untrusted bytes and returns the record they hold. The one validation function every entry point uses.
pub fn validate_record(bytes: &[u8], ctx: &ValidationContext) -> Result<SignedRecord, RecordError> {
    if bytes.len() > MAX_RECORD_BYTES {
        return Err(RecordError::TooLarge { len: bytes.len() });
    }
    let top = bencode::decode(bytes, &RECORD_DECODE_LIMITS)?;
    let codec::Envelope {
        body: body_dict,
        nonce,
        signature,
    } = codec::split_envelope(&top)?;
    let body = codec::body_from_dict(body_dict)?;
    check_body(&body)?;
    // Strict decoding already refuses most non-canonical input; re-encoding from the parsed body also catches
    // anything the schema could read in two ways, so the bytes signed are the only bytes accepted.
    let body_bytes = bencode::encode(&codec::body_to_value(&body));
    if codec::envelope(&body_bytes, nonce, &signature) != bytes {
        return Err(RecordError::NonCanonical);
    }
    body.author
        .verify(&codec::signed_message(&body_bytes, nonce), &signature)
        .map_err(RecordError::BadSignature)?;
    if body.network != ctx.network {
        return Err(RecordError::WrongNetwork {
            record: body.network,
            expected: ctx.network.clone(),
        });
    }
    if body.created > ctx.now_unix.saturating_add(MAX_CLOCK_SKEW_SECS) {
        return Err(RecordError::CreatedInFuture {
            created: body.created,
            now: ctx.now_unix,
        });
    }
    Ok(SignedRecord {
        work_bits: work_bits_of(&body_bytes, nonce),
        body,
        nonce,
        signature,
        bytes: bytes.to_vec(),
        id: RecordId::of_signed_bytes(bytes),
    })
}
