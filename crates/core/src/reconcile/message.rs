//! Reconciliation messages and their byte form: Negentropy protocol version 1, read strictly.
//!
//! ```text
//! Message  := 0x61 Range*
//! Range    := Bound Mode Payload
//! Bound    := Varint(timestamp code) Varint(prefix length) prefix bytes
//! Mode     := Varint: 0 Skip (no payload) | 1 Fingerprint (16 bytes) | 2 IdList (Varint(count) count x 32 bytes)
//! ```
//!
//! Each range's lower bound is the previous range's upper bound ([`Bound::ZERO`] for the first); ranges after the
//! last one, up to [`Bound::INFINITY`], are an implicit Skip. A timestamp code is 0 for infinity, otherwise one
//! more than the difference to the previous bound's timestamp in the same message. See `DESIGN.md` for the rules.
//!
//! [`decode`] refuses everything an honest encoder never writes: a frame over [`MAX_FRAME_BYTES`], another
//! version byte, non-minimal varints, unknown modes, prefixes over 32 bytes or ending in a zero byte, a prefix on
//! the infinity bound, timestamps that overflow or use the reserved value, bounds that do not strictly increase,
//! ranges after infinity, id counts larger than the bytes that follow, duplicate ids, and truncated input. So
//! `decode(b) == Ok(m)` implies `m.encode() == b`.

use std::collections::BTreeSet;

use super::fingerprint::{FINGERPRINT_BYTES, Fingerprint};
use super::item::{Bound, ID_BYTES, INFINITY_TIMESTAMP};
use super::varint::{self, VarintError};
use crate::record::RecordId;

/// The first byte of every message: Negentropy protocol version 1.
pub const PROTOCOL_VERSION: u8 = 0x61;

/// The largest message any implementation must accept, in bytes. Senders keep their messages to their own
/// [`super::ReconcileConfig::frame_size_limit`], which is at most this minus a margin.
pub const MAX_FRAME_BYTES: usize = 256 * 1024;

const MODE_SKIP: u64 = 0;
const MODE_FINGERPRINT: u64 = 1;
const MODE_ID_LIST: u64 = 2;

/// What a range says about the sender's items within it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Nothing more to do in this range.
    Skip,
    /// The fingerprint of the sender's items in the range.
    Fingerprint(Fingerprint),
    /// Every id the sender holds in the range, in the sender's order.
    IdList(Vec<RecordId>),
}

/// One range: its exclusive upper bound and what the sender says about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Range {
    /// Exclusive upper end; the inclusive lower end is the previous range's upper end.
    pub upper: Bound,
    /// The payload.
    pub mode: Mode,
}

/// One reconciliation message: ranges in ascending order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// The ranges; empty means "nothing more to do".
    pub ranges: Vec<Range>,
}

impl Message {
    /// The message's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut encoder = Encoder::new();
        for range in &self.ranges {
            encoder.push(range);
        }
        encoder.finish()
    }
}

/// Why a message was refused. Each variant names the rule that was broken.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not even a version byte.
    #[error("empty message")]
    Empty,
    /// Longer than [`MAX_FRAME_BYTES`].
    #[error("message of {len} bytes is over the {max}-byte limit")]
    Oversized { len: usize, max: usize },
    /// Another protocol version.
    #[error("unsupported protocol version byte {0:#04x}")]
    Version(u8),
    /// A varint is truncated, not minimal or too large.
    #[error("bad varint at byte {offset}")]
    Varint {
        offset: usize,
        #[source]
        source: VarintError,
    },
    /// An unknown range mode.
    #[error("unknown range mode {mode} at byte {offset}")]
    Mode { mode: u64, offset: usize },
    /// An id prefix longer than 32 bytes.
    #[error("id prefix of {len} bytes at byte {offset} (at most {ID_BYTES})")]
    PrefixTooLong { len: u64, offset: usize },
    /// An id prefix that ends in a zero byte, or a prefix on the infinity bound.
    #[error("non-canonical bound at byte {offset}")]
    NonCanonicalBound { offset: usize },
    /// A timestamp above the reserved infinity value, or the reserved value written as a difference.
    #[error("timestamp out of range at byte {offset}")]
    Timestamp { offset: usize },
    /// A bound not strictly above the previous one (overlapping, empty or unsorted ranges).
    #[error("range bound at byte {offset} does not increase")]
    NotAscending { offset: usize },
    /// A range after the infinity bound.
    #[error("range after the infinity bound at byte {offset}")]
    AfterInfinity { offset: usize },
    /// The input ended inside a field.
    #[error("message truncated inside {what} at byte {offset}")]
    Truncated { what: &'static str, offset: usize },
    /// An id count larger than the bytes that follow could hold.
    #[error("id list of {count} ids at byte {offset} is longer than the message")]
    TooManyIds { count: u64, offset: usize },
    /// The same id twice in one message.
    #[error("id {0} appears twice")]
    DuplicateId(RecordId),
}

/// Reads a message, refusing any deviation from the canonical form (see the module documentation).
pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
    if bytes.len() > MAX_FRAME_BYTES {
        return Err(DecodeError::Oversized {
            len: bytes.len(),
            max: MAX_FRAME_BYTES,
        });
    }
    let (&version, body) = bytes.split_first().ok_or(DecodeError::Empty)?;
    if version != PROTOCOL_VERSION {
        return Err(DecodeError::Version(version));
    }
    let mut reader = Reader {
        input: body,
        total: bytes.len(),
        last_timestamp: 0,
    };
    let mut ranges = Vec::new();
    let mut previous = Bound::ZERO;
    let mut seen_ids = BTreeSet::new();
    while !reader.input.is_empty() {
        let offset = reader.offset();
        if previous.is_infinity() {
            return Err(DecodeError::AfterInfinity { offset });
        }
        let upper = reader.bound()?;
        if upper.position_cmp(&previous) != std::cmp::Ordering::Greater {
            return Err(DecodeError::NotAscending { offset });
        }
        let mode_offset = reader.offset();
        let mode = match reader.varint()? {
            MODE_SKIP => Mode::Skip,
            MODE_FINGERPRINT => {
                let bytes = reader.take(FINGERPRINT_BYTES, "fingerprint")?;
                let mut fingerprint = [0u8; FINGERPRINT_BYTES];
                fingerprint.copy_from_slice(bytes);
                Mode::Fingerprint(Fingerprint(fingerprint))
            }
            MODE_ID_LIST => {
                let count_offset = reader.offset();
                let count = reader.varint()?;
                // Checked against the bytes present before anything is allocated.
                let available = (reader.input.len() / ID_BYTES) as u64;
                if count > available {
                    return Err(DecodeError::TooManyIds {
                        count,
                        offset: count_offset,
                    });
                }
                let mut ids = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    let bytes = reader.take(ID_BYTES, "id")?;
                    let mut id = [0u8; ID_BYTES];
                    id.copy_from_slice(bytes);
                    let id = RecordId(id);
                    if !seen_ids.insert(id) {
                        return Err(DecodeError::DuplicateId(id));
                    }
                    ids.push(id);
                }
                Mode::IdList(ids)
            }
            mode => {
                return Err(DecodeError::Mode {
                    mode,
                    offset: mode_offset,
                });
            }
        };
        ranges.push(Range { upper, mode });
        previous = upper;
    }
    Ok(Message { ranges })
}

struct Reader<'a> {
    input: &'a [u8],
    total: usize,
    last_timestamp: u64,
}

impl<'a> Reader<'a> {
    fn offset(&self) -> usize {
        self.total - self.input.len()
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let offset = self.offset();
        varint::read(&mut self.input).map_err(|source| DecodeError::Varint { offset, source })
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.input.len() < n {
            return Err(DecodeError::Truncated {
                what,
                offset: self.offset(),
            });
        }
        let (head, tail) = self.input.split_at(n);
        self.input = tail;
        Ok(head)
    }

    fn bound(&mut self) -> Result<Bound, DecodeError> {
        let offset = self.offset();
        let code = self.varint()?;
        let timestamp = if code == 0 {
            INFINITY_TIMESTAMP
        } else {
            let timestamp = self
                .last_timestamp
                .checked_add(code - 1)
                .filter(|t| *t != INFINITY_TIMESTAMP)
                .ok_or(DecodeError::Timestamp { offset })?;
            self.last_timestamp = timestamp;
            timestamp
        };
        let len_offset = self.offset();
        let len = self.varint()?;
        if len > ID_BYTES as u64 {
            return Err(DecodeError::PrefixTooLong {
                len,
                offset: len_offset,
            });
        }
        let prefix = self.take(len as usize, "id prefix")?;
        let canonical = if timestamp == INFINITY_TIMESTAMP {
            prefix.is_empty()
        } else {
            prefix.last() != Some(&0)
        };
        if !canonical {
            return Err(DecodeError::NonCanonicalBound { offset });
        }
        Bound::new(timestamp, prefix).ok_or(DecodeError::PrefixTooLong {
            len,
            offset: len_offset,
        })
    }
}

/// Writes ranges one by one, tracking the size so a session can stop before a frame limit, and undo a range.
#[derive(Clone, Debug)]
pub(crate) struct Encoder {
    buf: Vec<u8>,
    last_timestamp: u64,
}

/// A position an [`Encoder`] can return to.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Checkpoint {
    len: usize,
    last_timestamp: u64,
}

impl Encoder {
    pub(crate) fn new() -> Self {
        Encoder {
            buf: vec![PROTOCOL_VERSION],
            last_timestamp: 0,
        }
    }

    /// Bytes written so far, the version byte included.
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            len: self.buf.len(),
            last_timestamp: self.last_timestamp,
        }
    }

    pub(crate) fn rollback(&mut self, checkpoint: Checkpoint) {
        self.buf.truncate(checkpoint.len);
        self.last_timestamp = checkpoint.last_timestamp;
    }

    fn bound(&mut self, bound: &Bound) {
        if bound.is_infinity() {
            varint::write(0, &mut self.buf);
            self.last_timestamp = INFINITY_TIMESTAMP;
        } else {
            debug_assert!(
                bound.timestamp() >= self.last_timestamp,
                "bounds out of order"
            );
            let delta = bound.timestamp().saturating_sub(self.last_timestamp);
            varint::write(delta.saturating_add(1), &mut self.buf);
            self.last_timestamp = bound.timestamp();
        }
        varint::write(bound.prefix().len() as u64, &mut self.buf);
        self.buf.extend_from_slice(bound.prefix());
    }

    /// Writes a range whose ids are not yet collected: the bound and mode of an id list, then its count.
    pub(crate) fn id_list_header(&mut self, upper: &Bound, count: usize) {
        self.bound(upper);
        varint::write(MODE_ID_LIST, &mut self.buf);
        varint::write(count as u64, &mut self.buf);
    }

    /// Writes one id of an id list started with [`Encoder::id_list_header`].
    pub(crate) fn id(&mut self, id: &RecordId) {
        self.buf.extend_from_slice(&id.0);
    }

    pub(crate) fn skip(&mut self, upper: &Bound) {
        self.bound(upper);
        varint::write(MODE_SKIP, &mut self.buf);
    }

    pub(crate) fn fingerprint(&mut self, upper: &Bound, fingerprint: &Fingerprint) {
        self.bound(upper);
        varint::write(MODE_FINGERPRINT, &mut self.buf);
        self.buf.extend_from_slice(&fingerprint.0);
    }

    pub(crate) fn push(&mut self, range: &Range) {
        match &range.mode {
            Mode::Skip => self.skip(&range.upper),
            Mode::Fingerprint(fingerprint) => self.fingerprint(&range.upper, fingerprint),
            Mode::IdList(ids) => {
                self.id_list_header(&range.upper, ids.len());
                for id in ids {
                    self.id(id);
                }
            }
        }
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Most bytes one bound can take: timestamp varint, length varint, 32 prefix bytes.
pub(crate) const MAX_BOUND_BYTES: usize = varint::MAX_VARINT_BYTES + 1 + ID_BYTES;
