//! Records in bulk (a sync, a bundle): admitted and stored in one transaction per batch.
//!
//! One transaction per record spends most of its time committing (each commit a WAL write and, at `synchronous =
//! NORMAL`, a sync at checkpoints); a batch of a thousand pays that once. The guarantees stay those of a single
//! record: each record goes in with its search index entry and tags in the same transaction, so after a crash a
//! record is there whole or not at all, and a committed batch is never lost (WAL).

use kolokol_core::keys::AuthorId;
use kolokol_core::record::{RecordId, SignedRecord};
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use crate::records::{insert_record_in, to_sql_int};
use crate::{Catalog, StoreError};

/// The page cache while a batch is stored: 64 MiB (negative: in KiB, as SQLite takes it).
const BATCH_CACHE_KIB: i64 = -65_536;

/// What admission asks the catalog about a record and its author.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionFacts {
    pub blocked: bool,
    /// The record itself is held already.
    pub held: bool,
    /// Records of the author that arrived at or after the time asked about.
    pub received_since: u64,
    /// Records of the author held.
    pub author_records: u64,
}

/// What became of one record of a batch: `Ok(true)` stored, `Ok(false)` held already, `Err` refused by `admit`.
pub type BatchOutcome<R> = (SignedRecord, Result<bool, R>);

impl Catalog {
    /// Whether the catalog holds the record with this id (no read of the record itself).
    pub fn has_record(&self, id: &RecordId) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM records WHERE id = ?1")?
            .query_row([&id.0[..]], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// The facts admission judges a record by; `received_since` counts the author's arrivals from that time on.
    pub fn admission_facts(
        &self,
        record: &SignedRecord,
        received_since: u64,
    ) -> Result<AdmissionFacts, StoreError> {
        let author: &AuthorId = &record.body().author;
        let key = &author.as_bytes()[..];
        let (author_records, received): (i64, i64) = self
            .conn
            .prepare_cached(
                "SELECT count(*), count(*) FILTER (WHERE received_at >= ?2) FROM records WHERE author = ?1",
            )?
            .query_row(params![key, to_sql_int(received_since)?], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })?;
        Ok(AdmissionFacts {
            blocked: self.is_blocked(author)?,
            held: self.has_record(&record.id())?,
            received_since: u64::try_from(received).unwrap_or(0),
            author_records: u64::try_from(author_records).unwrap_or(0),
        })
    }

    /// Admit and store a batch of validated records in one transaction. `admit` judges each record in turn against
    /// the catalog as it stands, the batch's earlier records included (so per-author limits count them), and
    /// returns why not; admitted records are stored. On a store error nothing of the batch is kept.
    pub fn insert_batch<R>(
        &mut self,
        records: Vec<SignedRecord>,
        received_at: u64,
        mut admit: impl FnMut(&Catalog, &SignedRecord) -> Result<(), R>,
    ) -> Result<Vec<BatchOutcome<R>>, StoreError> {
        // A batch touches pages all over the tables and indexes (ids are random): a larger page cache while it runs
        // halves the work of storing it; the cache goes back to its usual size afterwards.
        let usual: i64 = self.conn.query_row("PRAGMA cache_size", [], |r| r.get(0))?;
        self.conn
            .pragma_update(None, "cache_size", BATCH_CACHE_KIB)?;
        let stored = self.insert_batch_in(records, received_at, &mut admit);
        self.conn.pragma_update(None, "cache_size", usual)?;
        stored
    }

    fn insert_batch_in<R>(
        &self,
        records: Vec<SignedRecord>,
        received_at: u64,
        admit: &mut impl FnMut(&Catalog, &SignedRecord) -> Result<(), R>,
    ) -> Result<Vec<BatchOutcome<R>>, StoreError> {
        // IMMEDIATE: take the write lock now, so the batch cannot fail half-way for want of it.
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        let mut outcomes = Vec::with_capacity(records.len());
        for record in records {
            let outcome = match admit(self, &record) {
                Ok(()) => Ok(insert_record_in(&tx, &record, received_at)?),
                Err(refusal) => Err(refusal),
            };
            outcomes.push((record, outcome));
        }
        tx.commit()?;
        Ok(outcomes)
    }
}
