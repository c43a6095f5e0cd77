//! kolokol peers this node knows (their wire addresses), used to reconnect after a restart.
//!
//! The cache is keyed by address and holds no node id: wire identities are renewed at every start, daily and on a
//! change of network (issue 12 part 3), so an id would be stale at the next start, and a list of the ids this device
//! met would tie it, once seized, to what those peers saw. Schema 7 dropped the column that older versions filled.

use rusqlite::params;

use crate::records::to_sql_int;
use crate::{Catalog, StoreError};

/// How many peers the table keeps; the oldest non-user entries go first.
pub const MAX_PEERS: u32 = 1000;

/// A known kolokol peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerRow {
    /// Wire address as `host:port`.
    pub addr: String,
    /// Added with `peer add`: never forgotten automatically.
    pub by_user: bool,
    pub last_seen: Option<u64>,
    pub last_error: Option<String>,
}

impl Catalog {
    /// Remember a peer address (a user's `peer add`, or one we connected to).
    pub fn add_peer(&mut self, addr: &str, by_user: bool) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO peers (addr, by_user) VALUES (?1, ?2)
             ON CONFLICT (addr) DO UPDATE SET by_user = max(by_user, excluded.by_user)",
            params![addr, by_user],
        )?;
        // Bounded: drop the stalest automatically learned peers beyond the cap.
        tx.execute(
            "DELETE FROM peers WHERE by_user = 0 AND addr NOT IN
               (SELECT addr FROM peers ORDER BY by_user DESC, coalesce(last_seen, 0) DESC LIMIT ?1)",
            [MAX_PEERS],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// A handshake with `addr` succeeded at `now`.
    pub fn peer_seen(&mut self, addr: &str, now: u64) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE peers SET last_seen = ?2, last_error = NULL WHERE addr = ?1",
            params![addr, to_sql_int(now)?],
        )?;
        Ok(())
    }

    /// The last attempt to reach `addr` failed.
    pub fn peer_failed(&mut self, addr: &str, error: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE peers SET last_error = ?2 WHERE addr = ?1",
            params![addr, error],
        )?;
        Ok(())
    }

    /// Every known peer, user-added first, then most recently seen.
    pub fn list_peers(&self) -> Result<Vec<PeerRow>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT addr, by_user, last_seen, last_error FROM peers
             ORDER BY by_user DESC, coalesce(last_seen, 0) DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([MAX_PEERS], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, bool>(1)?,
                row.get::<_, Option<i64>>(2)?,
                row.get::<_, Option<String>>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (addr, by_user, last_seen, last_error) = row?;
            out.push(PeerRow {
                addr,
                by_user,
                last_seen: last_seen.and_then(|t| u64::try_from(t).ok()),
                last_error,
            });
        }
        Ok(out)
    }
}
