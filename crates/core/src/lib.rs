//! kolokol-core: the data that every kolokol node agrees on, and the rules for checking it.
//!
//! - [`bencode`]: the strict canonical encoding that records and wire messages use; one value, one byte string.
//! - [`keys`]: Ed25519 author and node identities, strict signature verification.
//! - [`record`]: signed publication records; [`record::validate_record`] is the single gate every record from
//!   outside passes through, and [`record::sign_record`] makes only records that gate accepts.
//! - [`magnet`]: v1 magnet links, parsed and printed.
//! - [`replication`]: the disk-quota and mirror policy ([`replication::CachePolicy`]) and the publisher's
//!   replicate-before-announce push ([`replication::PublisherPush`]).
//! - [`stem`]: the Dandelion++ stem phase that hides which node published ([`stem::Stem`]); run by the
//!   simulator, not yet by the node.
//! - [`rotation`]: when the node's wire identity is renewed ([`rotation::RotationPolicy`]).
//!
//! # Architecture invariant
//!
//! This crate is pure: no I/O of any kind (no files, sockets, async runtime), no clock and no randomness source.
//! Callers pass in bytes, the current time and secret seeds. That keeps every rule here deterministic, so the same
//! code runs in unit tests, property tests, a simulator and production, and a record is judged the same way on
//! every node. Everything read from outside is bounded before it is allocated, and no input can make it panic.

pub mod bencode;
pub mod detour;
mod ids;
pub mod keys;
pub mod magnet;
pub mod overlay;
pub mod penalty;
pub mod policy;
pub mod reconcile;
pub mod record;
pub mod replication;
pub mod rotation;
pub mod stem;

pub use ids::{ParseIdError, RENDEZVOUS_PREFIX, RENDEZVOUS_VERSION};
pub use keys::{AuthorId, KeyError, Keypair, NodeId, PublicKey};
pub use magnet::{Magnet, MagnetError};
pub use record::{
    FileEntry, InfoHash, RecordBody, RecordError, RecordId, SignedRecord, Thumbnail,
    ValidationContext, sign_record, validate_record,
};
