//! Admission: what a record from outside must pass, after `validate_record` proved it well-formed and signed, before
//! it is stored. One path for every record from outside (the wire, bundle imports, replicate requests).
//!
//! Spam costs the spammer: each record carries a proof-of-work stamp of the network's difficulty; one author may add
//! only so many records an hour and hold only so many in this catalog; blocked authors are refused. Every refusal is
//! counted by reason (`status` shows the counts).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kolokol_core::keys::NodeId;
use kolokol_core::policy::Verdict;
use kolokol_core::record::{RecordId, SignedRecord, ValidationContext, validate_record};
use serde::{Deserialize, Serialize};

use crate::node::{Inner, unix_now};

/// Limits applied to records from other nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionConfig {
    /// Records one author may add to this catalog per hour (counted by arrival).
    pub per_author_per_hour: u64,
    /// Records of one author this catalog holds at most.
    pub per_author_max: u64,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        AdmissionConfig {
            per_author_per_hour: 60,
            per_author_max: 10_000,
        }
    }
}

/// Why a valid record was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The record's proof-of-work stamp is weaker than the network's difficulty.
    NotEnoughWork,
    Blocked,
    RateLimited,
    AuthorFull,
}

/// Refusals since the node started, by reason.
#[derive(Debug, Default)]
pub struct AdmissionCounters {
    pub invalid: AtomicU64,
    pub not_enough_work: AtomicU64,
    pub blocked: AtomicU64,
    pub rate_limited: AtomicU64,
    pub author_full: AtomicU64,
}

/// The counters as `status` shows them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RefusedView {
    /// Malformed, forged, of another network, from the future, oversized, or without enough work.
    pub invalid: u64,
    /// Valid records whose proof-of-work stamp is weaker than this network's difficulty.
    pub not_enough_work: u64,
    pub blocked: u64,
    pub rate_limited: u64,
    pub author_full: u64,
}

impl AdmissionCounters {
    pub fn count(&self, refusal: Refusal) {
        let counter = match refusal {
            Refusal::NotEnoughWork => &self.not_enough_work,
            Refusal::Blocked => &self.blocked,
            Refusal::RateLimited => &self.rate_limited,
            Refusal::AuthorFull => &self.author_full,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn view(&self) -> RefusedView {
        RefusedView {
            invalid: self.invalid.load(Ordering::Relaxed),
            not_enough_work: self.not_enough_work.load(Ordering::Relaxed),
            blocked: self.blocked.load(Ordering::Relaxed),
            rate_limited: self.rate_limited.load(Ordering::Relaxed),
            author_full: self.author_full.load(Ordering::Relaxed),
        }
    }
}

/// Judge a valid record from outside. A record already held passes (storing it again changes nothing).
pub(crate) fn admit(inner: &Inner, record: &SignedRecord) -> Result<(), Refusal> {
    if record.work_bits() < u32::from(inner.work_bits) {
        return Err(Refusal::NotEnoughWork);
    }
    let author = &record.body().author;
    let catalog = inner.catalog();
    if catalog.is_blocked(author).unwrap_or(false) {
        return Err(Refusal::Blocked);
    }
    if catalog.get_record(&record.id()).ok().flatten().is_some() {
        return Ok(());
    }
    let limits = inner.admission;
    let hour_ago = unix_now().saturating_sub(3600);
    if catalog
        .count_author_received_since(author, hour_ago)
        .unwrap_or(0)
        >= limits.per_author_per_hour
    {
        return Err(Refusal::RateLimited);
    }
    if catalog.count_author_records(author).unwrap_or(0) >= limits.per_author_max {
        return Err(Refusal::AuthorFull);
    }
    Ok(())
}

/// Validate each record from a peer with the one validation function, admit it, and store the good ones. Returns
/// what became of each, for the record policy (`kolokol_core::policy`), which decides what to relay, remembers what
/// was refused so that it is not fetched again, and counts invalid records against the peer (admission refusals are
/// not held against it).
pub(crate) fn store_incoming(inner: &Inner, from: &NodeId, records: Vec<Vec<u8>>) -> Vec<Arrival> {
    let now_unix = unix_now();
    let ctx = ValidationContext {
        network: inner.network.clone(),
        now_unix,
    };
    let mut arrivals = Vec::with_capacity(records.len());
    for bytes in records {
        let record = match validate_record(&bytes, &ctx) {
            Ok(record) => record,
            Err(error) => {
                inner
                    .counters
                    .invalid
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(peer = %from, %error, "refused an invalid record");
                arrivals.push(Arrival {
                    id: RecordId::of_signed_bytes(&bytes),
                    age: Duration::ZERO,
                    verdict: Verdict::Invalid,
                });
                continue;
            }
        };
        let age = Duration::from_secs(now_unix.saturating_sub(record.body().created));
        let verdict = match admit(inner, &record) {
            Err(refusal) => {
                inner.counters.count(refusal);
                tracing::debug!(peer = %from, author = %record.body().author, ?refusal, "record not admitted");
                Verdict::Refused
            }
            Ok(()) => match inner.catalog().insert_record(&record, now_unix) {
                Ok(true) => {
                    tracing::info!(peer = %from, id = %record.id(), title = %record.body().title, "new record");
                    Verdict::Stored
                }
                Ok(false) => Verdict::Duplicate,
                Err(error) => {
                    // Not the peer's fault, and not stored: like a refusal, minus the memory of it.
                    tracing::warn!(%error, "cannot store a record");
                    continue;
                }
            },
        };
        arrivals.push(Arrival {
            id: record.id(),
            age,
            verdict,
        });
    }
    arrivals
}

/// What became of one record from a peer.
pub(crate) struct Arrival {
    pub id: RecordId,
    /// How old it is by its signed creation time (zero if invalid or in the future).
    pub age: Duration,
    pub verdict: Verdict,
}
