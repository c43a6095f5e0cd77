//! Every reason a record can be refused, worded for the person who will read it in the CLI or web page.
//!
//! Strings that come from the record itself are shown with `{:?}` so that control characters in hostile input are
//! escaped rather than sent to a terminal.

use super::bounds::*;
use super::work::MAX_WORK_BITS;
use crate::bencode::{BencodeError, FieldError};
use crate::keys::{AuthorId, KeyError};

/// Why a record was refused by [`super::validate_record`] or could not be made by [`super::sign_record`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    // --- Shape of the bytes ---
    #[error("record is {len} bytes, more than the {MAX_RECORD_BYTES}-byte limit")]
    TooLarge { len: usize },
    #[error("record is not valid canonical bencode: {0}")]
    Encoding(#[from] BencodeError),
    #[error("record is not a bencode dictionary")]
    NotADictionary,
    #[error("record has the wrong shape: {0}")]
    Schema(#[from] FieldError),
    #[error(
        "record format version {0} is not supported (this program reads version {RECORD_VERSION})"
    )]
    UnsupportedVersion(i64),
    #[error("{field} must be {expected} bytes, got {actual}")]
    WrongLength {
        field: &'static str,
        expected: usize,
        actual: usize,
    },
    #[error("{field} must be a whole number from 0 to {}", i64::MAX)]
    IntegerOutOfRange { field: String },
    #[error("record bytes are not in canonical form")]
    NonCanonical,

    // --- Authenticity and context ---
    #[error("signature does not verify against the author's key ({0})")]
    BadSignature(#[source] KeyError),
    #[error("the signing key {key} is not the record's author {author}")]
    AuthorMismatch { author: AuthorId, key: AuthorId },
    #[error("record belongs to network {record:?}, not {expected:?}")]
    WrongNetwork { record: String, expected: String },
    #[error(
        "record is dated {created} (unix time), more than an hour after the current time {now}"
    )]
    CreatedInFuture { created: u64, now: u64 },

    // --- Proof of work (only when making a record: judging a received stamp is the node's part) ---
    #[error("proof-of-work difficulty of {requested} bits is above the {MAX_WORK_BITS}-bit limit")]
    WorkBitsTooHigh { requested: u8 },
    #[error("no proof-of-work nonce reaches {bits} bits")]
    WorkNotFound { bits: u8 },

    // --- Bounds on the content ---
    #[error("network name is empty")]
    NetworkEmpty,
    #[error("network name is longer than {MAX_NETWORK_BYTES} bytes")]
    NetworkTooLong,
    #[error("network name {0:?} may only contain a-z, 0-9 and '-'")]
    NetworkInvalid(String),
    #[error("creation time {0} is too large")]
    CreatedTooLarge(u64),
    #[error("title is empty")]
    TitleEmpty,
    #[error("title is only whitespace")]
    TitleBlank,
    #[error("title is longer than {MAX_TITLE_BYTES} bytes")]
    TitleTooLong,
    #[error("description is longer than {MAX_DESCRIPTION_BYTES} bytes")]
    DescriptionTooLong,
    #[error("{count} tags given, at most {MAX_TAGS} are allowed")]
    TooManyTags { count: usize },
    #[error("tag #{} is empty or only whitespace", .index + 1)]
    TagEmpty { index: usize },
    #[error("tag #{} is longer than {MAX_TAG_BYTES} bytes", .index + 1)]
    TagTooLong { index: usize },
    #[error("language is empty (leave it out instead)")]
    LangEmpty,
    #[error("language is longer than {MAX_LANG_BYTES} bytes")]
    LangTooLong,
    #[error("language {0:?} may only contain A-Z, a-z, 0-9 and '-'")]
    LangInvalid(String),
    #[error("record lists no files")]
    NoFiles,
    #[error("record lists {count} files, at most {MAX_FILES} are allowed")]
    TooManyFiles { count: usize },
    #[error("file #{} has an empty path", .index + 1)]
    FilePathEmpty { index: usize },
    #[error("path of file #{} is longer than {MAX_FILE_PATH_BYTES} bytes", .index + 1)]
    FilePathTooLong { index: usize },
    #[error("file path {0:?} starts with '/'; paths must be relative")]
    FilePathAbsolute(String),
    #[error("file path {0:?} contains a backslash; use '/' between folders")]
    FilePathBackslash(String),
    #[error("file path {0:?} contains a NUL byte")]
    FilePathNul(String),
    #[error("file path {0:?} has an empty, \".\" or \"..\" component")]
    FilePathBadComponent(String),
    #[error(
        "file path {0:?} contains a bidirectional-text control character, which can disguise a file's type"
    )]
    FilePathBidiControl(String),
    #[error("file path {0:?} is listed twice")]
    DuplicateFilePath(String),
    #[error("file path {file:?} is also used as a folder by {other:?}")]
    FilePathConflict { file: String, other: String },
    #[error("file {path:?} has size {size}, which is too large")]
    FileTooLarge { path: String, size: u64 },
    #[error("{field} MIME type is empty")]
    MimeEmpty { field: String },
    #[error("{field} MIME type is longer than {MAX_MIME_BYTES} bytes")]
    MimeTooLong { field: String },
    #[error("{field} MIME type {mime:?} is not of the form type/subtype")]
    MimeMalformed { field: String, mime: String },
    #[error("thumbnail is {len} bytes, more than the {MAX_THUMBNAIL_BYTES}-byte limit")]
    ThumbnailTooLarge { len: usize },
    #[error("thumbnail type {0:?} is not an image/* type")]
    ThumbnailNotImage(String),
    #[error("{field} contains a control character")]
    ControlCharacter { field: String },
}
