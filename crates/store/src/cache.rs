//! Cache bookkeeping of held publications: pins and when each was last asked for (the eviction order).

use kolokol_core::record::InfoHash;
use rusqlite::params;

use crate::records::to_sql_int;
use crate::{Catalog, StoreError};

/// One publication's cache facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheEntry {
    pub infohash: InfoHash,
    pub pinned: bool,
    /// Unix seconds; 0 if never asked for.
    pub last_requested: u64,
}

impl Catalog {
    /// Pin or unpin a publication's data. Returns whether the flag changed.
    pub fn set_pinned(&mut self, infohash: &InfoHash, pinned: bool) -> Result<bool, StoreError> {
        let before = self.cache_entry(infohash)?.is_some_and(|e| e.pinned);
        self.conn.execute(
            "INSERT INTO cache_entries (infohash, pinned) VALUES (?1, ?2)
             ON CONFLICT (infohash) DO UPDATE SET pinned = excluded.pinned",
            params![&infohash.0[..], pinned],
        )?;
        Ok(before != pinned)
    }

    /// Note that a publication's data was asked for at `now` (a user fetch, a stream, a peer's upload).
    pub fn touch(&mut self, infohash: &InfoHash, now: u64) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO cache_entries (infohash, last_requested) VALUES (?1, ?2)
             ON CONFLICT (infohash) DO UPDATE SET last_requested = max(last_requested, excluded.last_requested)",
            params![&infohash.0[..], to_sql_int(now)?],
        )?;
        Ok(())
    }

    pub fn cache_entry(&self, infohash: &InfoHash) -> Result<Option<CacheEntry>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT infohash, pinned, last_requested FROM cache_entries WHERE infohash = ?1",
        )?;
        let mut rows = stmt.query_map([&infohash.0[..]], read_entry)?;
        rows.next().transpose()?.transpose()
    }

    /// Every publication with cache facts.
    pub fn cache_entries(&self) -> Result<Vec<CacheEntry>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT infohash, pinned, last_requested FROM cache_entries")?;
        let rows = stmt.query_map([], read_entry)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row??);
        }
        Ok(out)
    }

    /// Forget a torrent whose data was evicted: its row and its cache facts, in one transaction. Records stay.
    pub fn delete_torrent(&mut self, infohash: &InfoHash) -> Result<bool, StoreError> {
        let tx = self.conn.transaction()?;
        let deleted = tx.execute(
            "DELETE FROM torrents WHERE infohash = ?1",
            [&infohash.0[..]],
        )?;
        tx.execute(
            "DELETE FROM cache_entries WHERE infohash = ?1 AND pinned = 0",
            [&infohash.0[..]],
        )?;
        tx.commit()?;
        Ok(deleted == 1)
    }
}

fn read_entry(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<CacheEntry, StoreError>> {
    let infohash: Vec<u8> = row.get(0)?;
    let pinned: bool = row.get(1)?;
    let last_requested: i64 = row.get(2)?;
    Ok(infohash
        .try_into()
        .map(|bytes: [u8; 20]| CacheEntry {
            infohash: InfoHash(bytes),
            pinned,
            last_requested: u64::try_from(last_requested).unwrap_or(0),
        })
        .map_err(|_| StoreError::Corrupt("infohash of the wrong length".into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_and_touches_survive_reopen_and_eviction_keeps_pins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.sqlite");
        let a = InfoHash([1; 20]);
        let b = InfoHash([2; 20]);
        {
            let mut catalog = Catalog::open(&path, "kolokol").unwrap();
            assert!(catalog.set_pinned(&a, true).unwrap());
            assert!(!catalog.set_pinned(&a, true).unwrap());
            catalog.touch(&b, 100).unwrap();
            catalog.touch(&b, 50).unwrap();
        }
        let mut catalog = Catalog::open(&path, "kolokol").unwrap();
        let mut entries = catalog.cache_entries().unwrap();
        entries.sort_by_key(|e| e.infohash.0);
        assert_eq!(
            entries,
            vec![
                CacheEntry {
                    infohash: a,
                    pinned: true,
                    last_requested: 0
                },
                CacheEntry {
                    infohash: b,
                    pinned: false,
                    last_requested: 100
                },
            ]
        );
        catalog.delete_torrent(&a).unwrap();
        catalog.delete_torrent(&b).unwrap();
        assert_eq!(catalog.cache_entries().unwrap().len(), 1, "the pin stays");
        assert!(catalog.set_pinned(&a, false).unwrap());
    }
}
