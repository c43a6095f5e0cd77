//! Admission: what a record from outside must pass, after `validate_record` proved it well-formed and signed, before
//! it is stored. One path for every record from outside (the wire, bundle imports, replicate requests): [`admit`],
//! run on the catalog thread; the owner [`Admission`] keeps the limits and the counters.
//!
//! Spam costs the spammer: each record carries a proof-of-work stamp of the network's difficulty; one author may add
//! only so many records an hour and hold only so many in this catalog; blocked authors are refused. Every refusal is
//! counted by reason (`status` shows the counts).

use std::sync::atomic::{AtomicU64, Ordering};

use kolokol_core::record::SignedRecord;
use kolokol_store::{Catalog, StoreError};
use serde::{Deserialize, Serialize};

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
    /// The catalog could not answer whether the record may be admitted (a database error). Refused: a blocked
    /// author must not get through because the block list could not be read.
    Unchecked,
}

/// Refusals since the node started, by reason.
#[derive(Debug, Default)]
pub struct AdmissionCounters {
    pub invalid: AtomicU64,
    pub not_enough_work: AtomicU64,
    pub blocked: AtomicU64,
    pub rate_limited: AtomicU64,
    pub author_full: AtomicU64,
    pub unchecked: AtomicU64,
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
    /// Refused because the catalog could not be consulted (a database error): admission fails closed.
    #[serde(default)]
    pub unchecked: u64,
}

impl AdmissionCounters {
    pub fn count(&self, refusal: Refusal) {
        let counter = match refusal {
            Refusal::NotEnoughWork => &self.not_enough_work,
            Refusal::Blocked => &self.blocked,
            Refusal::RateLimited => &self.rate_limited,
            Refusal::AuthorFull => &self.author_full,
            Refusal::Unchecked => &self.unchecked,
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
            unchecked: self.unchecked.load(Ordering::Relaxed),
        }
    }
}

/// The admission owner: its limits and its counters. The rest of the node reaches it through these methods; the
/// decision itself is [`admit`], which runs on the catalog thread. Which refused ids not to fetch again is the record
/// policy's memory (`kolokol_core::policy`), not this owner's.
pub(crate) struct Admission {
    limits: AdmissionConfig,
    /// The network's proof-of-work difficulty in bits.
    work_bits: u8,
    counters: AdmissionCounters,
}

impl Admission {
    pub fn new(limits: AdmissionConfig, work_bits: u8) -> Admission {
        Admission {
            limits,
            work_bits,
            counters: AdmissionCounters::default(),
        }
    }

    /// What admission applies to records from outside (`rate_limited`: whether the hourly rate counts).
    pub fn rules(&self, rate_limited: bool) -> Rules {
        Rules {
            limits: self.limits,
            work_bits: self.work_bits,
            rate_limited,
        }
    }

    /// The network's proof-of-work difficulty, which this node's own records must meet too.
    pub fn work_bits(&self) -> u8 {
        self.work_bits
    }

    /// A record failed validation (malformed, forged, another network...).
    pub fn invalid(&self) {
        self.counters.invalid.fetch_add(1, Ordering::Relaxed);
    }

    /// A valid record was refused (counted by reason).
    pub fn refused(&self, refusal: Refusal) {
        self.counters.count(refusal);
    }

    /// The refusal counts, for `status`.
    pub fn view(&self) -> RefusedView {
        self.counters.view()
    }
}

/// What admission applies besides the catalog's answers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules {
    pub limits: AdmissionConfig,
    /// The network's proof-of-work difficulty in bits.
    pub work_bits: u8,
    /// Whether the hourly rate counts (not for bundle imports: a bundle is carried by hand, all at once).
    pub rate_limited: bool,
}

/// What the catalog says about a record and its author.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AuthorFacts {
    blocked: bool,
    /// The record itself is held already.
    held: bool,
    received_last_hour: u64,
    author_records: u64,
}

fn author_facts(
    catalog: &Catalog,
    record: &SignedRecord,
    now: u64,
) -> Result<AuthorFacts, StoreError> {
    let facts = catalog.admission_facts(record, now.saturating_sub(3600))?;
    Ok(AuthorFacts {
        blocked: facts.blocked,
        held: facts.held,
        received_last_hour: facts.received_since,
        author_records: facts.author_records,
    })
}

/// Judge a valid record from outside. A record already held passes (storing it again changes nothing). A catalog
/// that cannot answer refuses the record ([`Refusal::Unchecked`]): nothing gets in unchecked.
pub(crate) fn admit(
    catalog: &Catalog,
    rules: Rules,
    record: &SignedRecord,
    now: u64,
) -> Result<(), Refusal> {
    if record.work_bits() < u32::from(rules.work_bits) {
        return Err(Refusal::NotEnoughWork);
    }
    let facts = author_facts(catalog, record, now).map_err(|error| {
        tracing::warn!(%error, "cannot check a record's admission; refused");
        tracing::debug!(%error, id = %record.id(), "cannot check a record's admission; refused");
        error
    });
    judge(rules, facts.ok())
}

/// The decision on what the catalog said (`None`: it could not say).
fn judge(rules: Rules, facts: Option<AuthorFacts>) -> Result<(), Refusal> {
    let Some(facts) = facts else {
        return Err(Refusal::Unchecked);
    };
    if facts.blocked {
        return Err(Refusal::Blocked);
    }
    if facts.held {
        return Ok(());
    }
    if rules.rate_limited && facts.received_last_hour >= rules.limits.per_author_per_hour {
        return Err(Refusal::RateLimited);
    }
    if facts.author_records >= rules.limits.per_author_max {
        return Err(Refusal::AuthorFull);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Rules {
        Rules {
            limits: AdmissionConfig {
                per_author_per_hour: 2,
                per_author_max: 5,
            },
            work_bits: 0,
            rate_limited: true,
        }
    }

    fn fresh() -> AuthorFacts {
        AuthorFacts {
            blocked: false,
            held: false,
            received_last_hour: 0,
            author_records: 0,
        }
    }

    #[test]
    fn a_catalog_that_cannot_answer_refuses_the_record() {
        assert_eq!(judge(rules(), None), Err(Refusal::Unchecked));
        let counters = AdmissionCounters::default();
        counters.count(Refusal::Unchecked);
        assert_eq!(counters.view().unchecked, 1);
        assert_eq!(counters.view().blocked, 0);
    }

    #[test]
    fn a_blocked_author_is_refused_even_for_a_record_held_already() {
        let facts = AuthorFacts {
            blocked: true,
            held: true,
            ..fresh()
        };
        assert_eq!(judge(rules(), Some(facts)), Err(Refusal::Blocked));
    }

    #[test]
    fn the_hourly_rate_and_the_cap_hold_and_bundles_skip_only_the_rate() {
        assert_eq!(judge(rules(), Some(fresh())), Ok(()));
        let busy = AuthorFacts {
            received_last_hour: 2,
            ..fresh()
        };
        assert_eq!(judge(rules(), Some(busy)), Err(Refusal::RateLimited));
        let by_hand = Rules {
            rate_limited: false,
            ..rules()
        };
        assert_eq!(judge(by_hand, Some(busy)), Ok(()));
        let full = AuthorFacts {
            author_records: 5,
            ..busy
        };
        assert_eq!(judge(by_hand, Some(full)), Err(Refusal::AuthorFull));
        let held = AuthorFacts { held: true, ..full };
        assert_eq!(judge(rules(), Some(held)), Ok(()));
    }
}
