//! The catalog: signed publication records, stored as their exact signed bytes.

use std::collections::BTreeSet;

use kolokol_core::record::{InfoHash, RecordId, SignedRecord, ValidationContext, validate_record};
use rusqlite::{OptionalExtension, params};

use crate::{Catalog, StoreError};

/// Upper bound on one page of [`Catalog::list_records`], whatever the caller asks for.
pub const MAX_PAGE: u32 = 1000;

/// A page of records, newest first.
pub struct RecordPage {
    pub records: Vec<SignedRecord>,
    /// Records in the catalog in total.
    pub total: u64,
}

impl Catalog {
    /// Store a record that was already validated. Returns `false` if it was stored before (nothing changes).
    pub fn insert_record(
        &mut self,
        record: &SignedRecord,
        received_at: u64,
    ) -> Result<bool, StoreError> {
        // The row, its search index entry and its tags go in together or not at all.
        let tx = self.conn.transaction()?;
        let new = insert_record_in(&tx, record, received_at)?;
        tx.commit()?;
        Ok(new)
    }

    /// The record with this id, if it is in the catalog.
    pub fn get_record(&self, id: &RecordId) -> Result<Option<SignedRecord>, StoreError> {
        let row: Option<(Vec<u8>, i64)> = self
            .conn
            .query_row(
                "SELECT bytes, created FROM records WHERE id = ?1",
                [&id.0[..]],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        row.map(|(bytes, created)| self.revalidate(&bytes, created))
            .transpose()
    }

    /// Records whose torrent has this infohash (usually one).
    pub fn records_by_infohash(
        &self,
        infohash: &InfoHash,
    ) -> Result<Vec<SignedRecord>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT bytes, created FROM records WHERE infohash = ?1 ORDER BY created DESC, id DESC LIMIT 100",
        )?;
        let rows = stmt.query_map([&infohash.0[..]], |row| Ok((row.get(0)?, row.get(1)?)))?;
        self.collect_valid(rows)
    }

    /// Newest records first, `limit` (at most [`MAX_PAGE`]) starting at `offset`.
    pub fn list_records(&self, limit: u32, offset: u64) -> Result<RecordPage, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT bytes, created FROM records ORDER BY created DESC, id DESC LIMIT ?1 OFFSET ?2",
        )?;
        let rows = stmt.query_map(params![limit.min(MAX_PAGE), to_sql_int(offset)?], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
        let records = self.collect_valid(rows)?;
        Ok(RecordPage {
            records,
            total: self.count_records()?,
        })
    }

    /// Number of records in the catalog.
    pub fn count_records(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM records", [], |row| row.get(0))?;
        u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("negative record count {n}")))
    }

    /// The ids of every record held.
    pub fn record_ids(&self) -> Result<BTreeSet<RecordId>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT id FROM records")?;
        let mut ids = BTreeSet::new();
        for id in stmt.query_map([], |row| row.get::<_, Vec<u8>>(0))? {
            let id = id?;
            let id: [u8; 32] = id
                .try_into()
                .map_err(|_| StoreError::Corrupt("record id of the wrong length".into()))?;
            ids.insert(RecordId(id));
        }
        Ok(ids)
    }

    /// The signed bytes of the records with these ids that the catalog holds (unknown ids are skipped).
    pub fn record_bytes(&self, ids: &[RecordId]) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT bytes FROM records WHERE id = ?1")?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(bytes) = stmt
                .query_row([&id.0[..]], |row| row.get::<_, Vec<u8>>(0))
                .optional()?
            {
                out.push(bytes);
            }
        }
        Ok(out)
    }

    /// The ids of `ids` that the catalog does not hold, in the given order.
    pub fn missing_ids(&self, ids: &[RecordId]) -> Result<Vec<RecordId>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT 1 FROM records WHERE id = ?1")?;
        let mut out = Vec::new();
        for id in ids {
            if stmt
                .query_row([&id.0[..]], |_| Ok(()))
                .optional()?
                .is_none()
            {
                out.push(*id);
            }
        }
        Ok(out)
    }

    /// The signed bytes of up to `limit` of an author's newest records.
    pub fn author_record_bytes(
        &self,
        author: &kolokol_core::keys::AuthorId,
        limit: u32,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT bytes FROM records WHERE author = ?1 ORDER BY created DESC, id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(
            params![&author.as_bytes()[..], limit.min(MAX_PAGE)],
            |row| row.get::<_, Vec<u8>>(0),
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every record as (created, id): the items of catalog reconciliation, in no particular order.
    pub fn reconcile_items(&self) -> Result<Vec<(u64, RecordId)>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT created, id FROM records")?;
        let rows = stmt.query_map([], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (created, id) = row?;
            let id: [u8; 32] = id
                .try_into()
                .map_err(|_| StoreError::Corrupt("record id of the wrong length".into()))?;
            out.push((u64::try_from(created).unwrap_or(0), RecordId(id)));
        }
        Ok(out)
    }

    /// How many records of this author arrived at or after `since` (Unix seconds, by arrival time).
    pub fn count_author_received_since(
        &self,
        author: &kolokol_core::keys::AuthorId,
        since: u64,
    ) -> Result<u64, StoreError> {
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM records WHERE author = ?1 AND received_at >= ?2",
            params![&author.as_bytes()[..], to_sql_int(since)?],
            |row| row.get(0),
        )?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// How many records of this author the catalog holds.
    pub fn count_author_records(
        &self,
        author: &kolokol_core::keys::AuthorId,
    ) -> Result<u64, StoreError> {
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM records WHERE author = ?1",
            [&author.as_bytes()[..]],
            |row| row.get(0),
        )?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    pub(crate) fn collect_valid(
        &self,
        rows: impl Iterator<Item = rusqlite::Result<(Vec<u8>, i64)>>,
    ) -> Result<Vec<SignedRecord>, StoreError> {
        let mut out = Vec::new();
        for row in rows {
            let (bytes, created) = row?;
            match self.revalidate(&bytes, created) {
                Ok(record) => out.push(record),
                // A damaged row hides one record; it must not take the whole listing down.
                Err(error) => tracing::warn!(%error, "skipping a damaged catalog row"),
            }
        }
        Ok(out)
    }

    /// Stored bytes are checked again on the way out: the database file is outside data too.
    fn revalidate(&self, bytes: &[u8], created: i64) -> Result<SignedRecord, StoreError> {
        let ctx = ValidationContext {
            network: self.network.clone(),
            // The record was accepted when it arrived; its age is not re-judged, only its integrity.
            now_unix: u64::try_from(created).unwrap_or(0),
        };
        validate_record(bytes, &ctx).map_err(|error| {
            StoreError::Corrupt(format!("stored record failed validation: {error}"))
        })
    }
}

pub(crate) fn to_sql_int(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{value} does not fit in SQLite")))
}

pub(crate) fn insert_record_in(
    conn: &rusqlite::Connection,
    record: &SignedRecord,
    received_at: u64,
) -> Result<bool, StoreError> {
    let body = record.body();
    let key = crate::search::free_key(conn, body.created, &record.id())?;
    let changed = conn.prepare_cached(
        "INSERT OR IGNORE INTO records (id, author, created, infohash, title, lang, media, bytes, received_at, k)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
            &record.id().0[..],
            &body.author.as_bytes()[..],
            to_sql_int(body.created)?,
            &body.infohash.0[..],
            body.title,
            body.lang.as_deref().map(str::to_lowercase),
            crate::search::media_of(body).as_str(),
            record.bytes(),
            to_sql_int(received_at)?,
            key,
    ])?;
    if changed == 1 {
        crate::search::index_record(conn, record, key)?;
    }
    Ok(changed == 1)
}
