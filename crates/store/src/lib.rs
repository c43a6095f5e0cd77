//! kolokol-store: the node's SQLite database.
//!
//! One file, `catalog.sqlite` in the data directory, in WAL mode. It holds the catalog (the signed publication
//! records this node accepted), the torrents it seeds or downloads, the kolokol peers it knows, and small node
//! settings such as the ports chosen on first start.
//!
//! Architecture invariant: a record enters the catalog only as a [`SignedRecord`], i.e. after
//! `kolokol_core::record::validate_record` or `sign_record` accepted it; the exact signed bytes are stored, and they are
//! validated again when read back, so a damaged database can hide a record but never serve a forged one.
//!
//! Every write is one SQLite transaction: a failed operation leaves the database as it was.

mod blocks;
mod bulk;
mod cache;
mod follows;
mod migrations;
mod peers;
mod records;
mod search;
mod settings;
mod torrents;

use std::path::Path;

use rusqlite::Connection;

pub use blocks::{BlockedRow, Purge};
pub use bulk::{AdmissionFacts, BatchOutcome};
pub use cache::CacheEntry;
pub use follows::{FollowRow, MAX_FOLLOWS};
pub use peers::PeerRow;
pub use records::RecordPage;
pub use search::{Media, QueryError, SearchError, SearchQuery, media_of};
pub use torrents::{TorrentRow, TorrentState};

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the catalog database {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("catalog database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error(
        "the catalog database was written by a newer kolokol (schema {found}, this build knows {known})"
    )]
    SchemaTooNew { found: i64, known: i64 },
    #[error(
        "no search key is left for records created at {created} (a million records that second)"
    )]
    NoKey { created: u64 },
    #[error("corrupt value in the catalog database: {0}")]
    Corrupt(String),
}

/// The node's database. Not `Sync`: the node keeps it behind a mutex and does short operations.
pub struct Catalog {
    conn: Connection,
    /// The network whose records this catalog holds; records are re-validated against it when read.
    network: String,
}

impl Catalog {
    /// Open (creating if needed) the database at `path`, in WAL mode, migrated to the current schema.
    pub fn open(path: &Path, network: &str) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.display().to_string(),
            source,
        })?;
        Self::init(conn, network)
    }

    /// An in-memory database, for tests.
    pub fn open_in_memory(network: &str) -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory()?, network)
    }

    fn init(conn: Connection, network: &str) -> Result<Self, StoreError> {
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // WAL: readers never block the writer, and a crash loses at most the last uncommitted transaction.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let mut catalog = Catalog {
            conn,
            network: network.to_owned(),
        };
        migrations::migrate(&mut catalog.conn)?;
        Ok(catalog)
    }

    /// Result of SQLite's `PRAGMA integrity_check`: `"ok"` when the file is sound.
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        Ok(self
            .conn
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))?)
    }

    /// Copy the write-ahead log into the database file and empty it (the file's size is then the catalog's).
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// The network this catalog was opened for.
    pub fn network(&self) -> &str {
        &self.network
    }
}

#[cfg(test)]
mod bulk_tests;
#[cfg(test)]
mod search_tests;
#[cfg(test)]
mod tests;
