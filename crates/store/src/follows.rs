//! Followed authors: their feed heads are polled in the DHT and what they name is fetched.

use kolokol_core::keys::AuthorId;
use rusqlite::params;

use crate::records::to_sql_int;
use crate::{Catalog, StoreError};

/// Most authors one node follows.
pub const MAX_FOLLOWS: u64 = 10_000;

/// A followed author.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowRow {
    pub author: AuthorId,
    pub added_at: u64,
    /// Sequence number of the newest feed head whose records this node holds.
    pub last_seq: Option<i64>,
    pub checked_at: Option<u64>,
}

impl Catalog {
    /// Follow an author. Returns `false` if already followed.
    pub fn follow(&mut self, author: &AuthorId, now: u64) -> Result<bool, StoreError> {
        let count: i64 = self
            .conn
            .query_row("SELECT count(*) FROM follows", [], |r| r.get(0))?;
        if u64::try_from(count).unwrap_or(u64::MAX) >= MAX_FOLLOWS {
            return Err(StoreError::Corrupt(format!(
                "already following {MAX_FOLLOWS} authors, the most kept"
            )));
        }
        let changed = self.conn.execute(
            "INSERT OR IGNORE INTO follows (author, added_at) VALUES (?1, ?2)",
            params![&author.as_bytes()[..], to_sql_int(now)?],
        )?;
        Ok(changed == 1)
    }

    /// Stop following. Returns `false` if the author was not followed.
    pub fn unfollow(&mut self, author: &AuthorId) -> Result<bool, StoreError> {
        let changed = self.conn.execute(
            "DELETE FROM follows WHERE author = ?1",
            [&author.as_bytes()[..]],
        )?;
        Ok(changed == 1)
    }

    /// Every followed author, oldest follow first.
    pub fn following(&self) -> Result<Vec<FollowRow>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT author, added_at, last_seq, checked_at FROM follows ORDER BY added_at, author",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok((
                row.get::<_, Vec<u8>>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, Option<i64>>(2)?,
                row.get::<_, Option<i64>>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (author, added_at, last_seq, checked_at) = row?;
            let author: [u8; 32] = author
                .try_into()
                .map_err(|_| StoreError::Corrupt("author id of the wrong length".into()))?;
            out.push(FollowRow {
                author: AuthorId::from_bytes(author),
                added_at: u64::try_from(added_at).unwrap_or(0),
                last_seq,
                checked_at: checked_at.and_then(|t| u64::try_from(t).ok()),
            });
        }
        Ok(out)
    }

    /// A feed head was read; `seq` is set once the records it names are here.
    pub fn follow_checked(
        &mut self,
        author: &AuthorId,
        seq: Option<i64>,
        now: u64,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE follows SET last_seq = coalesce(?2, last_seq), checked_at = ?3 WHERE author = ?1",
            params![&author.as_bytes()[..], seq, to_sql_int(now)?],
        )?;
        Ok(())
    }
}
