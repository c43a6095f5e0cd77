//! The one error type of the scrubber.

use crate::FileKind;

/// Why a file could not be scrubbed. Any error means the output is incomplete and must not be published.
#[derive(Debug, thiserror::Error)]
pub enum ScrubError {
    /// Reading the input or writing the output failed.
    #[error("I/O error while scrubbing: {0}")]
    Io(#[from] std::io::Error),
    /// The file ended in the middle of a structure.
    #[error("{kind} file is truncated: it ends inside {what} (offset {offset})")]
    Truncated {
        kind: FileKind,
        what: &'static str,
        offset: u64,
    },
    /// A structure of the file is invalid (bad marker, lying length, bad checksum).
    #[error("{kind} file is malformed at offset {offset}: {reason}")]
    Malformed {
        kind: FileKind,
        offset: u64,
        reason: String,
    },
    /// The file's metadata sits where the scrubber cannot remove it without rewriting the file (an encrypted or
    /// compressed PDF part): it would be published with it, so this is an error, never a silent pass.
    #[error("{kind} file keeps metadata the scrubber cannot remove: {what}")]
    Unsupported { kind: FileKind, what: &'static str },
    /// A part that has to be held in memory is larger than the scrubber accepts.
    #[error(
        "{kind} file has a {what} of {size} bytes, more than the {limit} bytes the scrubber holds in memory"
    )]
    TooLarge {
        kind: FileKind,
        what: &'static str,
        size: u64,
        limit: u64,
    },
}
