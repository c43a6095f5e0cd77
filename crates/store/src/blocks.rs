//! Blocked authors: hidden everywhere, purged from the catalog, refused when peers offer their records.

use kolokol_core::keys::AuthorId;
use kolokol_core::record::InfoHash;
use rusqlite::{OptionalExtension, params};

use crate::records::to_sql_int;
use crate::{Catalog, StoreError};

/// A blocked author.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockedRow {
    pub author: AuthorId,
    pub blocked_at: u64,
}

/// What blocking removed.
#[derive(Debug, Clone, Default)]
pub struct Purge {
    /// Records deleted from the catalog.
    pub records: u64,
    /// Torrents of those records that no remaining record refers to (their rows, as they were): their data should
    /// go too.
    pub orphaned_torrents: Vec<crate::TorrentRow>,
}

impl Catalog {
    /// Block an author: remember the block, delete their records (and their search entries and tags), and the
    /// follow if any, in one transaction. Returns what was purged.
    pub fn block_author(&mut self, author: &AuthorId, now: u64) -> Result<Purge, StoreError> {
        let key = &author.as_bytes()[..];
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT OR IGNORE INTO blocked_authors (author, blocked_at) VALUES (?1, ?2)",
            params![key, to_sql_int(now)?],
        )?;
        let infohashes: Vec<Vec<u8>> = {
            let mut stmt = tx.prepare("SELECT DISTINCT infohash FROM records WHERE author = ?1")?;
            stmt.query_map([key], |row| row.get(0))?
                .collect::<Result<_, _>>()?
        };
        tx.execute(
            "DELETE FROM records_text WHERE rowid IN (SELECT k FROM records WHERE author = ?1)",
            [key],
        )?;
        tx.execute(
            "DELETE FROM record_tags WHERE id IN (SELECT id FROM records WHERE author = ?1)",
            [key],
        )?;
        let records = tx.execute("DELETE FROM records WHERE author = ?1", [key])?;
        tx.execute("DELETE FROM follows WHERE author = ?1", [key])?;
        let mut orphaned = Vec::new();
        for infohash in infohashes {
            let still_used: Option<i64> = tx
                .query_row(
                    "SELECT 1 FROM records WHERE infohash = ?1 LIMIT 1",
                    [&infohash],
                    |r| r.get(0),
                )
                .optional()?;
            if still_used.is_none() {
                let key: [u8; 20] = infohash
                    .as_slice()
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("infohash of the wrong length".into()))?;
                if let Some(row) = crate::torrents::get_torrent_in(&tx, &InfoHash(key))? {
                    tx.execute("DELETE FROM torrents WHERE infohash = ?1", [&infohash])?;
                    orphaned.push(row);
                }
            }
        }
        tx.commit()?;
        Ok(Purge {
            records: records as u64,
            orphaned_torrents: orphaned,
        })
    }

    /// Lift a block. Returns `false` if the author was not blocked. (Purged records come back through sync.)
    pub fn unblock_author(&mut self, author: &AuthorId) -> Result<bool, StoreError> {
        let changed = self.conn.execute(
            "DELETE FROM blocked_authors WHERE author = ?1",
            [&author.as_bytes()[..]],
        )?;
        Ok(changed == 1)
    }

    pub fn is_blocked(&self, author: &AuthorId) -> Result<bool, StoreError> {
        // Cached: admission asks this for every record from outside.
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM blocked_authors WHERE author = ?1")?
            .query_row([&author.as_bytes()[..]], |r| r.get::<_, i64>(0))
            .optional()?
            .is_some())
    }

    /// Every blocked author, most recent first.
    pub fn blocked_authors(&self) -> Result<Vec<BlockedRow>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT author, blocked_at FROM blocked_authors ORDER BY blocked_at DESC, author",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok((row.get::<_, Vec<u8>>(0)?, row.get::<_, i64>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (author, at) = row?;
            let author: [u8; 32] = author
                .try_into()
                .map_err(|_| StoreError::Corrupt("author id of the wrong length".into()))?;
            out.push(BlockedRow {
                author: AuthorId::from_bytes(author),
                blocked_at: u64::try_from(at).unwrap_or(0),
            });
        }
        Ok(out)
    }
}
