//! Replication policy: which publications a node keeps on disk and fetches on its own, and how a publisher
//! gets its data copied before it announces it (design decision 5: content survives its publisher).
//!
//! Two sans-IO state machines; the node does the I/O (torrent engine, wire messages, DHT) and feeds them what
//! happened with the current time, a `u64` of seconds (unix seconds in the node; any origin works as long as it
//! does not go backwards). Nothing here reads a clock, draws a random number or allocates without a bound.
//!
//! - [`CachePolicy`] (one per node): the disk quota. In [`CacheMode::Mirror`] it fetches publications on its
//!   own, followed authors first, then the rarest (fewest known holders), then the newest; in
//!   [`CacheMode::Viewer`] it only keeps what the user fetched. Over the quota it evicts the least recently
//!   requested unpinned data. The node carries out the [`CacheAction`]s of [`CachePolicy::next_actions`].
//! - [`PublisherPush`] (one per fresh publication): asks a few connected peers to replicate, and says when to
//!   announce (push the record, put the feed head and announce in the DHT): after the first peer confirms it
//!   holds every piece, or at a time-out, so that the publisher is never the first and only seeder.
//! - [`HolderProofs`] (one per node): a peer's claim to hold a publication counts (towards announcing, towards
//!   rarity) only after it answered a challenge over random byte ranges of our own copy with a fresh nonce; a
//!   wrong or late proof is misconduct; at most one counted holder per address prefix.
//!
//! # Invariants (checked by property tests over random event sequences)
//!
//! Cache: after the evictions [`CachePolicy::next_actions`] returns are applied, held plus in-flight bytes are
//! within the quota, or no unpinned held item is left (pins and fetches already running may exceed it; then
//! nothing is fetched). Pinned items are never evicted. A returned fetch always fits and is never bigger than
//! the quota. Viewer mode never fetches. Over the quota, eviction is least recently requested first; a
//! candidate only ever evicts items that rank strictly below it. An evicted item is not fetched again for a
//! cool-down, a failed one for a back-off; both double each time. At most `max_parallel_fetches` fetches of
//! the policy run at once. Calling `next_actions` twice with no event between returns nothing the second
//! time. The candidates tracked are capped ([`CacheLimits`]).
//!
//! Push: the announcement happens exactly once, never before a confirmed full replica unless the announce
//! time-out passed; no peer is asked twice; at most `replicas_wanted` asks are outstanding, and at most
//! [`push::ASKS_PER_REPLICA`] times `replicas_wanted` asks are made in all.

pub mod cache;
pub mod proof;
pub mod push;

#[cfg(test)]
mod cache_proptests;
#[cfg(test)]
mod cache_tests;
#[cfg(test)]
mod proof_tests;
#[cfg(test)]
mod push_tests;

pub use cache::{
    CacheAction, CacheConfig, CacheItemView, CacheLimits, CacheMode, CachePolicy, Candidate,
    ItemState,
};
pub use proof::{
    ByteRange, Challenge, HolderPrefix, HolderProofs, ProofConfig, ProofEvent, ProofFailure,
};
pub use push::{PublisherPush, PushAction, PushConfig};
