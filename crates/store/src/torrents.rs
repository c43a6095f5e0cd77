//! Torrents this node seeds or downloads, so that they resume after a restart.

use std::path::PathBuf;

use kolokol_core::record::InfoHash;
use rusqlite::{OptionalExtension, params};

use crate::records::to_sql_int;
use crate::{Catalog, StoreError};

/// Where a torrent stands, as far as the node has recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TorrentState {
    /// Not yet complete and verified.
    Downloading,
    /// Every piece verified; the node seeds it.
    Complete,
}

impl TorrentState {
    fn as_str(self) -> &'static str {
        match self {
            TorrentState::Downloading => "downloading",
            TorrentState::Complete => "complete",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "downloading" => Ok(TorrentState::Downloading),
            "complete" => Ok(TorrentState::Complete),
            other => Err(StoreError::Corrupt(format!(
                "unknown torrent state {other:?}"
            ))),
        }
    }
}

/// One row of the torrents table.
#[derive(Debug, Clone)]
pub struct TorrentRow {
    pub infohash: InfoHash,
    /// The torrent's name (its top file or directory).
    pub name: String,
    /// The metainfo (`.torrent` bytes), once known; a magnet download has none until its metadata arrived.
    pub torrent: Option<Vec<u8>>,
    /// The folder the torrent's name lives in.
    pub output_dir: PathBuf,
    pub state: TorrentState,
    pub added_at: u64,
    /// Held because the user watched it: downloaded, streamed or imported it, not published, replicated for a peer
    /// or mirrored. The node does not advertise such a torrent (DHT, `Holding`) unless the user shares what they
    /// watch; it still serves its pieces to a peer that asks.
    pub watched: bool,
}

impl Catalog {
    /// Store a record this node just published together with its torrent, in one transaction: either both are
    /// stored or neither.
    pub fn insert_published(
        &mut self,
        record: &kolokol_core::record::SignedRecord,
        row: &TorrentRow,
        now: u64,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        crate::records::insert_record_in(&tx, record, now)?;
        put_torrent_in(&tx, row)?;
        tx.commit()?;
        Ok(())
    }

    /// Insert or replace the row for `row.infohash`.
    pub fn put_torrent(&mut self, row: &TorrentRow) -> Result<(), StoreError> {
        put_torrent_in(&self.conn, row)
    }

    /// Record the metainfo once a magnet download learned it, and/or a new state.
    pub fn update_torrent(
        &mut self,
        infohash: &InfoHash,
        name: Option<&str>,
        torrent: Option<&[u8]>,
        state: TorrentState,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE torrents SET name = coalesce(?2, name), torrent = coalesce(?3, torrent), state = ?4
             WHERE infohash = ?1",
            params![&infohash.0[..], name, torrent, state.as_str()],
        )?;
        Ok(())
    }

    pub fn get_torrent(&self, infohash: &InfoHash) -> Result<Option<TorrentRow>, StoreError> {
        get_torrent_in(&self.conn, infohash)
    }

    /// Every torrent, oldest first.
    pub fn list_torrents(&self) -> Result<Vec<TorrentRow>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT infohash, name, torrent, output_dir, state, added_at, watched FROM torrents ORDER BY added_at",
        )?;
        let rows = stmt.query_map([], read_row)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row??);
        }
        Ok(out)
    }
}

type RowResult = Result<TorrentRow, StoreError>;

fn read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RowResult> {
    let infohash: Vec<u8> = row.get(0)?;
    let name: String = row.get(1)?;
    let torrent: Option<Vec<u8>> = row.get(2)?;
    let output_dir: String = row.get(3)?;
    let state: String = row.get(4)?;
    let added_at: i64 = row.get(5)?;
    let watched: bool = row.get(6)?;
    Ok((|| {
        let infohash: [u8; 20] = infohash
            .try_into()
            .map_err(|_| StoreError::Corrupt("infohash of the wrong length".into()))?;
        Ok(TorrentRow {
            infohash: InfoHash(infohash),
            name,
            torrent,
            output_dir: PathBuf::from(output_dir),
            state: TorrentState::parse(&state)?,
            added_at: u64::try_from(added_at).unwrap_or(0),
            watched,
        })
    })())
}

fn put_torrent_in(conn: &rusqlite::Connection, row: &TorrentRow) -> Result<(), StoreError> {
    let output_dir = row
        .output_dir
        .to_str()
        .ok_or_else(|| StoreError::Corrupt("output folder is not valid UTF-8".into()))?;
    conn.execute(
        "INSERT OR REPLACE INTO torrents (infohash, name, torrent, output_dir, state, added_at, watched)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            &row.infohash.0[..],
            row.name,
            row.torrent,
            output_dir,
            row.state.as_str(),
            to_sql_int(row.added_at)?,
            row.watched
        ],
    )?;
    Ok(())
}

pub(crate) fn get_torrent_in(
    conn: &rusqlite::Connection,
    infohash: &InfoHash,
) -> Result<Option<TorrentRow>, StoreError> {
    conn.query_row(
        "SELECT infohash, name, torrent, output_dir, state, added_at, watched FROM torrents WHERE infohash = ?1",
        [&infohash.0[..]],
        read_row,
    )
    .optional()?
    .transpose()
}
