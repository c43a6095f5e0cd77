//! Catalog reconciliation: two nodes find which records one holds and the other lacks, exchanging
//! O(d log n) bytes for sets of n records that differ by d, never the whole catalog.
//!
//! This is range-based set reconciliation (A. Meyer, "Range-Based Set Reconciliation", arXiv 2212.13567) with
//! the messages of the Negentropy protocol, version 1. Items ([`Item`]) are ordered by (timestamp, record id).
//! The initiator sends fingerprints of a few ranges covering everything; the responder answers each range whose
//! fingerprint differs from its own with finer ranges, or with the list of its ids when the range holds few;
//! and so on, alternating, until every range is settled. The initiator then knows the ids it holds that the
//! responder lacks ([`Initiator::have`]: send those records) and those it lacks ([`Initiator::need`]: ask for
//! them). `DESIGN.md` next to this file describes the protocol and the byte format for other implementers.
//!
//! The session types are sans-IO state machines: they take bytes and a [`ReconcileStorage`] and return bytes;
//! the caller moves the bytes (the node wraps them in wire messages). Every message is bounded: a sender keeps
//! to [`ReconcileConfig::frame_size_limit`] (going on in the next round with what did not fit), a receiver
//! refuses more than [`MAX_FRAME_BYTES`], and a session ends after [`ReconcileConfig::max_rounds`] messages.
//!
//! # Invariants (checked by the tests)
//!
//! - Two honest sessions over any two sets end with `have` = ours \ theirs and `need` = theirs \ ours.
//! - An honest session ends in O(log n) rounds plus one round per frame of id lists.
//! - A message that breaks any rule of the format ends the session with an error and changes no state: the
//!   ids reported before stay, nothing of the refused message is reported.

mod fingerprint;
mod item;
mod message;
mod session;
mod storage;
mod varint;

#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use fingerprint::{Accumulator, FINGERPRINT_BYTES, Fingerprint, fingerprint_of};
pub use item::{Bound, ID_BYTES, INFINITY_TIMESTAMP, Item};
pub use message::{DecodeError, MAX_FRAME_BYTES, Message, Mode, PROTOCOL_VERSION, Range, decode};
pub use session::{Initiator, InitiatorStatus, Responder, Step};
pub use storage::{ReconcileStorage, StorageError, VecStorage};
pub use varint::VarintError;

/// Smallest [`ReconcileConfig::frame_size_limit`]: room for the largest answer to one range (so every message
/// settles at least one range) and for the fingerprint that hands the rest back.
pub const MIN_FRAME_SIZE_LIMIT: usize = 4096;
/// Largest [`ReconcileConfig::frame_size_limit`]: a margin below [`MAX_FRAME_BYTES`], since the first range of a
/// message is written even when it passes the limit.
pub const MAX_FRAME_SIZE_LIMIT: usize = MAX_FRAME_BYTES - MIN_FRAME_SIZE_LIMIT;
/// Largest [`ReconcileConfig::buckets`].
pub const MAX_BUCKETS: usize = 32;
/// Largest [`ReconcileConfig::id_list_threshold`].
pub const MAX_ID_LIST_THRESHOLD: usize = 64;

/// Parameters of a session. Both sides may use different values; [`Default`] gives what a node uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReconcileConfig {
    /// Largest message this side sends, in bytes: 128 KiB. What does not fit goes in the next round. Between
    /// [`MIN_FRAME_SIZE_LIMIT`] and [`MAX_FRAME_SIZE_LIMIT`].
    pub frame_size_limit: usize,
    /// Number of sub-ranges a differing range is split into: 16. More buckets mean fewer rounds and more bytes
    /// per round. From 2 to [`MAX_BUCKETS`].
    pub buckets: usize,
    /// A differing range holding fewer items than this is answered with its ids instead of being split: 32.
    /// From `buckets` (so that every bucket holds an item) to [`MAX_ID_LIST_THRESHOLD`].
    pub id_list_threshold: usize,
    /// Most messages one side sends in a session: 256. An honest session needs about
    /// `2 * log16(n) + (bytes of id lists) / frame_size_limit`; the cap bounds what a peer that never lets the
    /// session end can cost (at most `max_rounds * frame_size_limit` bytes sent).
    pub max_rounds: u32,
    /// Most ids the initiator collects as needed in one session: 100,000 (3.2 MB). A session that finds more
    /// stops early ([`InitiatorStatus::Truncated`]); fetch those records and run another one.
    pub max_need: usize,
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        ReconcileConfig {
            frame_size_limit: 128 * 1024,
            buckets: 16,
            id_list_threshold: 32,
            max_rounds: 256,
            max_need: 100_000,
        }
    }
}

impl ReconcileConfig {
    /// Checks that the parameters are within their ranges and consistent.
    pub fn validate(&self) -> Result<(), ReconcileConfigError> {
        let ranges = [
            (
                "frame_size_limit",
                self.frame_size_limit,
                MIN_FRAME_SIZE_LIMIT,
                MAX_FRAME_SIZE_LIMIT,
            ),
            ("buckets", self.buckets, 2, MAX_BUCKETS),
            (
                "id_list_threshold",
                self.id_list_threshold,
                self.buckets,
                MAX_ID_LIST_THRESHOLD,
            ),
            ("max_rounds", self.max_rounds as usize, 1, usize::MAX),
            ("max_need", self.max_need, 1, usize::MAX),
        ];
        for (field, value, min, max) in ranges {
            if value < min || value > max {
                return Err(ReconcileConfigError::OutOfRange {
                    field,
                    value,
                    min,
                    max,
                });
            }
        }
        Ok(())
    }
}

/// Why a [`ReconcileConfig`] was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReconcileConfigError {
    /// A parameter is outside its allowed range.
    #[error("{field} is {value}, outside {min}..={max}")]
    OutOfRange {
        field: &'static str,
        value: usize,
        min: usize,
        max: usize,
    },
}

/// Why a session ended with an error. After any of these the session refuses further messages.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The peer's message breaks the format.
    #[error("refused reconciliation message")]
    Decode(#[from] DecodeError),
    /// The local storage failed.
    #[error("reconciliation storage failed")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
    /// The session needed more than [`ReconcileConfig::max_rounds`] messages.
    #[error("reconciliation did not finish within {max} rounds")]
    TooManyRounds { max: u32 },
    /// [`Initiator::handle`] was called before [`Initiator::initiate`].
    #[error("session not started")]
    NotStarted,
    /// [`Initiator::initiate`] was called twice.
    #[error("session already started")]
    AlreadyStarted,
    /// A message arrived after the session ended.
    #[error("session is over")]
    Finished,
}
