//! The messages of the kolokol wire protocol and their strict bencode form.
//!
//! Every message is one canonical bencode dictionary with a type tag under `"t"` and exactly the fields
//! of that type; see `PROTOCOL.md` for the table. Decoding refuses unknown types, missing or extra
//! fields, wrong types, over-long lists and malformed ids. Record bytes are carried opaquely: the node
//! validates them with `kolokol_core`, this crate never interprets them.

use kolokol_core::bencode::{
    self, BencodeError, DecodeLimits, Dict, FieldError, Value, reject_unknown_keys, required_bytes,
    required_int, required_list, required_str,
};
use kolokol_core::keys::PublicKey;
use kolokol_core::record::{MAX_RECORD_BYTES, RecordId};
use kolokol_core::replication::proof::{
    ByteRange, DIGEST_BYTES, MAX_RANGE_LEN, MAX_RANGES, NONCE_BYTES as CHALLENGE_NONCE_BYTES,
};

use crate::config::MAX_MAX_MESSAGE_BYTES;

/// Version of the message set, sent in [`Message::Hello`]. Version 2 retired the full inventory exchange of
/// version 1 (`inventory`, `inventory_done`, `want`, `missing`, `satisfied` and `hello`'s `records`). Version 3
/// added `challenge` and `proof`: a `holding` claim counts only once proven (a version-2 node would close the
/// connection at the first challenge, an unknown type to it).
pub const PROTOCOL_VERSION: u32 = 3;
/// Longest agent string in [`Message::Hello`], in bytes.
pub const MAX_AGENT_BYTES: usize = 64;
/// Most records in one `Records` message (the byte size is bounded separately by the message cap).
pub const MAX_RECORDS_PER_MESSAGE: usize = 4096;
/// Length of a record id on the wire.
pub const RECORD_ID_BYTES: usize = 32;
/// Largest reconciliation frame carried by one `Reconcile` message.
pub const MAX_RECONCILE_FRAME: usize = kolokol_core::reconcile::MAX_FRAME_BYTES;
/// Most ids in one `Fetch`.
pub const MAX_FETCH_IDS: usize = 256;
/// Most records one `FetchAuthor` is answered with (the newest ones).
pub const MAX_AUTHOR_RECORDS: usize = 1000;
/// Most infohashes in one `Holding` message.
pub const MAX_HOLDING: usize = 256;
/// Length of an infohash on the wire.
pub const INFOHASH_BYTES: usize = 20;
/// Length of a ping nonce on the wire (big-endian).
const NONCE_BYTES: usize = 8;
/// Length of one range of a `Challenge` on the wire: offset (u64) and length (u32), big-endian.
pub const RANGE_BYTES: usize = 12;

/// The key of the type tag in every message dictionary.
const TYPE_KEY: &str = "t";

/// One message of the wire protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// First message of each side after the handshake.
    Hello {
        /// The sender's [`PROTOCOL_VERSION`].
        protocol: u32,
        /// Free-form software name and version, at most [`MAX_AGENT_BYTES`] bytes of UTF-8.
        agent: String,
        /// TCP port of the sender's BitTorrent listener on the same address as this connection, so
        /// the receiver can fetch publication data from it; 0 if it has none.
        bt_port: u16,
    },
    /// Raw signed record bytes (answers to `Fetch` and `FetchAuthor`, or pushes): 1 to
    /// [`MAX_RECORDS_PER_MESSAGE`] records, each at most `MAX_RECORD_BYTES`, the whole message within the
    /// connection's message cap.
    Records {
        /// The records, exactly as signed.
        records: Vec<Vec<u8>>,
    },
    /// Once the connection is open: asks for these records (ids announced with `Have`, found by reconciliation
    /// or named by an author's feed head). Answered with `Records` holding those the receiver has; 1 to
    /// [`MAX_FETCH_IDS`] ids.
    Fetch {
        /// Ids of the wanted records.
        ids: Vec<RecordId>,
    },
    /// Once the connection is open: the sender holds these records (a relay announcement, or what a reconciliation found
    /// the receiver lacks). The receiver asks with `Fetch` for those it lacks and wants; 1 to
    /// [`MAX_FETCH_IDS`] ids.
    Have {
        /// Ids of records the sender holds.
        ids: Vec<RecordId>,
    },
    /// Once the connection is open: asks for the records of one author. Answered with `Records` holding at most
    /// [`MAX_AUTHOR_RECORDS`] of the newest ones the receiver has (nothing if it has none).
    FetchAuthor {
        /// The author's public key.
        author: PublicKey,
    },
    /// Once the connection is open: one message of a range-based reconciliation session (`kolokol_core::reconcile`). The
    /// side that starts a session picks its id; the other answers with the same id.
    Reconcile {
        /// Session id.
        session: u64,
        /// The reconciliation frame, 1 to [`MAX_RECONCILE_FRAME`] bytes.
        frame: Vec<u8>,
    },
    /// Liveness check; answered with a `Pong` carrying the same nonce.
    Ping {
        /// Opaque value echoed in the `Pong`.
        nonce: u64,
    },
    /// Answer to a `Ping`.
    Pong {
        /// The nonce of the `Ping`.
        nonce: u64,
    },
    /// A publisher asks the receiver to fetch and seed a fresh publication before it is announced to anyone else
    /// (so the publisher is not its first and only seeder). The receiver answers with `Holding` once it has every
    /// piece, or `Decline`.
    Replicate {
        /// The publication's signed record, exactly as signed.
        record: Vec<u8>,
    },
    /// The receiver will not replicate this publication (no room, refused record, fetch failed).
    Decline {
        /// The publication's BitTorrent v1 infohash.
        infohash: [u8; INFOHASH_BYTES],
    },
    /// The sender holds every piece of these publications and seeds them: 1 to [`MAX_HOLDING`] infohashes.
    Holding {
        /// BitTorrent v1 infohashes.
        infohashes: Vec<[u8; INFOHASH_BYTES]>,
    },
    /// Prove a `Holding` claim: answer with `Proof` (the digest of these byte ranges of the publication's piece
    /// stream, keyed by the nonce; `kolokol_core::replication::proof::proof_digest`) or `Decline`.
    Challenge {
        /// Echoed in the `Proof`.
        id: u64,
        /// The publication claimed.
        infohash: [u8; INFOHASH_BYTES],
        /// Fresh random bytes, so that no answer can be computed ahead or replayed.
        nonce: [u8; CHALLENGE_NONCE_BYTES],
        /// 1 to `MAX_RANGES` ranges, each 1 to `MAX_RANGE_LEN` bytes.
        ranges: Vec<ByteRange>,
    },
    /// The answer to a `Challenge`.
    Proof {
        /// The challenge's id.
        id: u64,
        /// The digest over the challenged bytes.
        digest: [u8; DIGEST_BYTES],
    },
}

/// Why bytes are not a valid message, or a message cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// The bytes are not one canonical bencode value within the limits.
    #[error("message is not canonical bencode")]
    Bencode(#[from] BencodeError),
    /// The top-level value is not a dictionary.
    #[error("message is a {0}, not a dictionary")]
    NotADict(&'static str),
    /// A field is missing, has the wrong type, or is not allowed for this message type.
    #[error("bad message field")]
    Field(#[from] FieldError),
    /// The type tag names no known message.
    #[error("unknown message type {0:?}")]
    UnknownType(String),
    /// A list field is empty; every list-carrying message must carry at least one item.
    #[error("field \"{0}\" must not be empty")]
    Empty(&'static str),
    /// A list field is longer than allowed.
    #[error("field \"{field}\" has {count} items, more than {max}")]
    TooManyItems {
        /// The field.
        field: &'static str,
        /// Items found.
        count: usize,
        /// Items allowed.
        max: usize,
    },
    /// A list item has the wrong type.
    #[error("an item of \"{0}\" is not a byte string")]
    ItemNotBytes(&'static str),
    /// A record id is not exactly 32 bytes.
    #[error("record id of {0} bytes, expected 32")]
    BadIdLength(usize),
    /// An infohash is not exactly 20 bytes.
    #[error("infohash of {0} bytes, expected 20")]
    BadInfohashLength(usize),
    /// A challenge's nonce or a proof's digest is not exactly 32 bytes.
    #[error("field \"{0}\" is not 32 bytes")]
    BadLength(&'static str),
    /// A challenge's range is not 12 bytes, is empty, longer than allowed, or ends past 2^64.
    #[error("bad challenge range")]
    BadRange,
    /// A ping nonce is not exactly 8 bytes.
    #[error("nonce of {0} bytes, expected 8")]
    BadNonceLength(usize),
    /// The agent string is too long.
    #[error("agent of {0} bytes, more than {MAX_AGENT_BYTES}")]
    AgentTooLong(usize),
    /// An integer field is outside its range.
    #[error("field \"{0}\" is out of range")]
    OutOfRange(&'static str),
    /// A record is larger than `MAX_RECORD_BYTES`.
    #[error("record of {len} bytes, more than {max}")]
    RecordTooLarge {
        /// The record's size.
        len: usize,
        /// The cap.
        max: usize,
    },
}

/// Decoding limits for messages: a dictionary of lists of byte strings is depth 3, and the item count
/// allows a full list plus the handful of keys and tags.
fn decode_limits() -> DecodeLimits {
    DecodeLimits {
        max_depth: 3,
        max_items: MAX_FETCH_IDS.max(MAX_RECORDS_PER_MESSAGE).max(MAX_HOLDING) + 16,
        max_input_bytes: MAX_MAX_MESSAGE_BYTES,
    }
}

impl Message {
    /// The type tag of this message on the wire.
    pub fn type_tag(&self) -> &'static str {
        match self {
            Message::Hello { .. } => "hello",
            Message::Records { .. } => "records",
            Message::Fetch { .. } => "fetch",
            Message::Have { .. } => "have",
            Message::Reconcile { .. } => "reconcile",
            Message::FetchAuthor { .. } => "fetch_author",
            Message::Ping { .. } => "ping",
            Message::Pong { .. } => "pong",
            Message::Replicate { .. } => "replicate",
            Message::Decline { .. } => "decline",
            Message::Holding { .. } => "holding",
            Message::Challenge { .. } => "challenge",
            Message::Proof { .. } => "proof",
        }
    }

    /// The canonical bytes of this message, after checking every field against its bound.
    pub fn encode(&self) -> Result<Vec<u8>, MessageError> {
        let mut dict = Dict::new();
        dict.insert(TYPE_KEY.into(), Value::from(self.type_tag()));
        match self {
            Message::Hello {
                protocol,
                agent,
                bt_port,
            } => {
                if agent.len() > MAX_AGENT_BYTES {
                    return Err(MessageError::AgentTooLong(agent.len()));
                }
                dict.insert("protocol".into(), Value::Int(i64::from(*protocol)));
                dict.insert("agent".into(), Value::from(agent.as_str()));
                dict.insert("bt_port".into(), Value::Int(i64::from(*bt_port)));
            }
            Message::Fetch { ids } | Message::Have { ids } => {
                check_count("ids", ids.len(), MAX_FETCH_IDS)?;
                let ids = ids
                    .iter()
                    .map(|id| Value::from(id.as_bytes().as_slice()))
                    .collect();
                dict.insert("ids".into(), Value::List(ids));
            }
            Message::FetchAuthor { author } => {
                dict.insert("author".into(), Value::from(author.as_bytes().as_slice()));
            }
            Message::Reconcile { session, frame } => {
                check_count("frame", frame.len(), MAX_RECONCILE_FRAME)?;
                dict.insert(
                    "session".into(),
                    Value::from(session.to_be_bytes().as_slice()),
                );
                dict.insert("frame".into(), Value::from(frame.as_slice()));
            }
            Message::Records { records } => {
                check_count("records", records.len(), MAX_RECORDS_PER_MESSAGE)?;
                let mut items = Vec::with_capacity(records.len());
                for record in records {
                    check_record_len(record.len())?;
                    items.push(Value::from(record.as_slice()));
                }
                dict.insert("records".into(), Value::List(items));
            }
            Message::Ping { nonce } | Message::Pong { nonce } => {
                dict.insert("nonce".into(), Value::from(nonce.to_be_bytes().as_slice()));
            }
            Message::Replicate { record } => {
                check_record_len(record.len())?;
                if record.is_empty() {
                    return Err(MessageError::Empty("record"));
                }
                dict.insert("record".into(), Value::from(record.as_slice()));
            }
            Message::Decline { infohash } => {
                dict.insert("infohash".into(), Value::from(infohash.as_slice()));
            }
            Message::Holding { infohashes } => {
                check_count("infohashes", infohashes.len(), MAX_HOLDING)?;
                let items = infohashes
                    .iter()
                    .map(|h| Value::from(h.as_slice()))
                    .collect();
                dict.insert("infohashes".into(), Value::List(items));
            }
            Message::Challenge {
                id,
                infohash,
                nonce,
                ranges,
            } => {
                check_count("ranges", ranges.len(), MAX_RANGES)?;
                let mut items = Vec::with_capacity(ranges.len());
                for range in ranges {
                    check_range(range)?;
                    let mut bytes = [0u8; RANGE_BYTES];
                    bytes[..8].copy_from_slice(&range.offset.to_be_bytes());
                    bytes[8..].copy_from_slice(&range.len.to_be_bytes());
                    items.push(Value::from(bytes.as_slice()));
                }
                dict.insert("id".into(), Value::from(id.to_be_bytes().as_slice()));
                dict.insert("infohash".into(), Value::from(infohash.as_slice()));
                dict.insert("nonce".into(), Value::from(nonce.as_slice()));
                dict.insert("ranges".into(), Value::List(items));
            }
            Message::Proof { id, digest } => {
                dict.insert("id".into(), Value::from(id.to_be_bytes().as_slice()));
                dict.insert("digest".into(), Value::from(digest.as_slice()));
            }
        }
        Ok(bencode::encode(&Value::Dict(dict)))
    }

    /// Decodes one message, refusing anything that [`Message::encode`] would not produce.
    pub fn decode(bytes: &[u8]) -> Result<Message, MessageError> {
        let value = bencode::decode(bytes, &decode_limits())?;
        let dict = value
            .as_dict()
            .ok_or(MessageError::NotADict(value.kind()))?;
        let tag = required_bytes(dict, TYPE_KEY)?;
        let message = match tag {
            b"hello" => {
                reject_unknown_keys(dict, &[TYPE_KEY, "protocol", "agent", "bt_port"])?;
                let protocol = u32::try_from(required_int(dict, "protocol")?)
                    .map_err(|_| MessageError::OutOfRange("protocol"))?;
                let agent = required_str(dict, "agent")?;
                if agent.len() > MAX_AGENT_BYTES {
                    return Err(MessageError::AgentTooLong(agent.len()));
                }
                let bt_port = u16::try_from(required_int(dict, "bt_port")?)
                    .map_err(|_| MessageError::OutOfRange("bt_port"))?;
                Message::Hello {
                    protocol,
                    agent: agent.to_owned(),
                    bt_port,
                }
            }
            b"fetch" => Message::Fetch {
                ids: decode_ids(dict)?,
            },
            b"have" => Message::Have {
                ids: decode_ids(dict)?,
            },
            b"reconcile" => {
                reject_unknown_keys(dict, &[TYPE_KEY, "session", "frame"])?;
                let session = required_bytes(dict, "session")?;
                let session: [u8; NONCE_BYTES] = session
                    .try_into()
                    .map_err(|_| MessageError::BadNonceLength(session.len()))?;
                let frame = required_bytes(dict, "frame")?;
                check_count("frame", frame.len(), MAX_RECONCILE_FRAME)?;
                Message::Reconcile {
                    session: u64::from_be_bytes(session),
                    frame: frame.to_vec(),
                }
            }
            b"fetch_author" => {
                reject_unknown_keys(dict, &[TYPE_KEY, "author"])?;
                let bytes = required_bytes(dict, "author")?;
                let author: [u8; 32] = bytes
                    .try_into()
                    .map_err(|_| MessageError::BadIdLength(bytes.len()))?;
                Message::FetchAuthor {
                    author: PublicKey::from_bytes(author),
                }
            }
            b"records" => {
                reject_unknown_keys(dict, &[TYPE_KEY, "records"])?;
                let items = required_list(dict, "records")?;
                check_count("records", items.len(), MAX_RECORDS_PER_MESSAGE)?;
                let mut records = Vec::with_capacity(items.len());
                for item in items {
                    let record = item
                        .as_bytes()
                        .ok_or(MessageError::ItemNotBytes("records"))?;
                    check_record_len(record.len())?;
                    records.push(record.to_vec());
                }
                Message::Records { records }
            }
            b"ping" => Message::Ping {
                nonce: decode_nonce(dict)?,
            },
            b"pong" => Message::Pong {
                nonce: decode_nonce(dict)?,
            },
            b"replicate" => {
                reject_unknown_keys(dict, &[TYPE_KEY, "record"])?;
                let record = required_bytes(dict, "record")?;
                check_record_len(record.len())?;
                if record.is_empty() {
                    return Err(MessageError::Empty("record"));
                }
                Message::Replicate {
                    record: record.to_vec(),
                }
            }
            b"decline" => {
                reject_unknown_keys(dict, &[TYPE_KEY, "infohash"])?;
                Message::Decline {
                    infohash: infohash_of(required_bytes(dict, "infohash")?)?,
                }
            }
            b"holding" => {
                reject_unknown_keys(dict, &[TYPE_KEY, "infohashes"])?;
                let items = required_list(dict, "infohashes")?;
                check_count("infohashes", items.len(), MAX_HOLDING)?;
                let infohashes = items
                    .iter()
                    .map(|item| {
                        infohash_of(
                            item.as_bytes()
                                .ok_or(MessageError::ItemNotBytes("infohashes"))?,
                        )
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Message::Holding { infohashes }
            }
            b"challenge" => {
                reject_unknown_keys(dict, &[TYPE_KEY, "id", "infohash", "nonce", "ranges"])?;
                let items = required_list(dict, "ranges")?;
                check_count("ranges", items.len(), MAX_RANGES)?;
                let ranges = items
                    .iter()
                    .map(|item| {
                        let bytes = item
                            .as_bytes()
                            .ok_or(MessageError::ItemNotBytes("ranges"))?;
                        range_of(bytes)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Message::Challenge {
                    id: id_of(dict)?,
                    infohash: infohash_of(required_bytes(dict, "infohash")?)?,
                    nonce: bytes32(dict, "nonce")?,
                    ranges,
                }
            }
            b"proof" => {
                reject_unknown_keys(dict, &[TYPE_KEY, "id", "digest"])?;
                Message::Proof {
                    id: id_of(dict)?,
                    digest: bytes32(dict, "digest")?,
                }
            }
            other => {
                // Cap what goes into the error: the tag is peer-controlled and may be long.
                let shown = &other[..other.len().min(32)];
                return Err(MessageError::UnknownType(
                    String::from_utf8_lossy(shown).into_owned(),
                ));
            }
        };
        Ok(message)
    }
}

fn check_count(field: &'static str, count: usize, max: usize) -> Result<(), MessageError> {
    if count == 0 {
        return Err(MessageError::Empty(field));
    }
    if count > max {
        return Err(MessageError::TooManyItems { field, count, max });
    }
    Ok(())
}

fn check_record_len(len: usize) -> Result<(), MessageError> {
    if len > MAX_RECORD_BYTES {
        return Err(MessageError::RecordTooLarge {
            len,
            max: MAX_RECORD_BYTES,
        });
    }
    Ok(())
}

fn decode_ids(dict: &Dict) -> Result<Vec<RecordId>, MessageError> {
    reject_unknown_keys(dict, &[TYPE_KEY, "ids"])?;
    let items = required_list(dict, "ids")?;
    check_count("ids", items.len(), MAX_FETCH_IDS)?;
    items
        .iter()
        .map(|item| {
            let bytes = item.as_bytes().ok_or(MessageError::ItemNotBytes("ids"))?;
            let id: [u8; RECORD_ID_BYTES] = bytes
                .try_into()
                .map_err(|_| MessageError::BadIdLength(bytes.len()))?;
            Ok(RecordId(id))
        })
        .collect()
}

fn infohash_of(bytes: &[u8]) -> Result<[u8; INFOHASH_BYTES], MessageError> {
    bytes
        .try_into()
        .map_err(|_| MessageError::BadInfohashLength(bytes.len()))
}

fn check_range(range: &ByteRange) -> Result<(), MessageError> {
    if range.len == 0
        || range.len > MAX_RANGE_LEN
        || range.offset.checked_add(u64::from(range.len)).is_none()
    {
        return Err(MessageError::BadRange);
    }
    Ok(())
}

fn range_of(bytes: &[u8]) -> Result<ByteRange, MessageError> {
    let bytes: [u8; RANGE_BYTES] = bytes.try_into().map_err(|_| MessageError::BadRange)?;
    let mut offset = [0u8; 8];
    offset.copy_from_slice(&bytes[..8]);
    let mut len = [0u8; 4];
    len.copy_from_slice(&bytes[8..]);
    let range = ByteRange {
        offset: u64::from_be_bytes(offset),
        len: u32::from_be_bytes(len),
    };
    check_range(&range)?;
    Ok(range)
}

fn id_of(dict: &Dict) -> Result<u64, MessageError> {
    let bytes = required_bytes(dict, "id")?;
    let id: [u8; NONCE_BYTES] = bytes
        .try_into()
        .map_err(|_| MessageError::BadNonceLength(bytes.len()))?;
    Ok(u64::from_be_bytes(id))
}

fn bytes32(dict: &Dict, field: &'static str) -> Result<[u8; 32], MessageError> {
    required_bytes(dict, field)?
        .try_into()
        .map_err(|_| MessageError::BadLength(field))
}

fn decode_nonce(dict: &Dict) -> Result<u64, MessageError> {
    reject_unknown_keys(dict, &[TYPE_KEY, "nonce"])?;
    let bytes = required_bytes(dict, "nonce")?;
    let nonce: [u8; NONCE_BYTES] = bytes
        .try_into()
        .map_err(|_| MessageError::BadNonceLength(bytes.len()))?;
    Ok(u64::from_be_bytes(nonce))
}

#[cfg(test)]
mod tests;
