//! Schema, versioned by `PRAGMA user_version`. Migrations only ever append.

use rusqlite::Connection;

use crate::StoreError;

/// One step of the schema: SQL, or SQL followed by code that moves existing rows, or SQL that removes data which must
/// not stay anywhere in the file (the file is rebuilt with `VACUUM` after the migrations: SQLite rewrites a row in
/// place and leaves the old bytes in the page's free space, `secure_delete` or not).
enum Migration {
    Sql(&'static str),
    Scrub(&'static str),
    SqlThen(
        &'static str,
        fn(&rusqlite::Transaction<'_>) -> Result<(), StoreError>,
    ),
}

use Migration::{Scrub, Sql, SqlThen};

const MIGRATIONS: &[Migration] = &[
    // 1: catalog, torrents, peers, settings.
    Sql("
    CREATE TABLE records (
        id          BLOB PRIMARY KEY NOT NULL CHECK (length(id) = 32),
        author      BLOB NOT NULL CHECK (length(author) = 32),
        created     INTEGER NOT NULL,
        infohash    BLOB NOT NULL CHECK (length(infohash) = 20),
        title       TEXT NOT NULL,
        lang        TEXT,
        media       TEXT NOT NULL,
        bytes       BLOB NOT NULL,
        received_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX records_by_time ON records (created, id);
    CREATE INDEX records_by_author ON records (author, created);
    CREATE INDEX records_by_infohash ON records (infohash);

    -- Full-text index over what people search for. unicode61 folds case for Cyrillic as for Latin and strips
    -- diacritics (so 'е' matches 'ё'); prefix queries stand in for stemming, which SQLite lacks for Russian.
    CREATE VIRTUAL TABLE records_fts USING fts5(
        id UNINDEXED, title, description, tags,
        tokenize = 'unicode61 remove_diacritics 2'
    );
    CREATE TABLE record_tags (
        id  BLOB NOT NULL REFERENCES records (id) ON DELETE CASCADE,
        tag TEXT NOT NULL,
        PRIMARY KEY (tag, id)
    ) WITHOUT ROWID;

    CREATE TABLE torrents (
        infohash   BLOB PRIMARY KEY NOT NULL CHECK (length(infohash) = 20),
        name       TEXT NOT NULL,
        torrent    BLOB,
        output_dir TEXT NOT NULL,
        state      TEXT NOT NULL CHECK (state IN ('downloading', 'complete')),
        added_at   INTEGER NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE peers (
        addr      TEXT PRIMARY KEY NOT NULL,
        node_id   BLOB CHECK (node_id IS NULL OR length(node_id) = 32),
        by_user   INTEGER NOT NULL DEFAULT 0,
        last_seen INTEGER,
        last_error TEXT
    ) WITHOUT ROWID;

    CREATE TABLE settings (
        key   TEXT PRIMARY KEY NOT NULL,
        value TEXT NOT NULL
    ) WITHOUT ROWID;
    "),
    // 2: followed authors.
    Sql("
    CREATE TABLE follows (
        author     BLOB PRIMARY KEY NOT NULL CHECK (length(author) = 32),
        added_at   INTEGER NOT NULL,
        -- The BEP 44 sequence number of the newest feed head whose records we hold.
        last_seq   INTEGER,
        checked_at INTEGER
    ) WITHOUT ROWID;
    "),
    // 3: blocked authors.
    Sql("
    CREATE TABLE blocked_authors (
        author     BLOB PRIMARY KEY NOT NULL CHECK (length(author) = 32),
        blocked_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    "),
    // 4: what the cache policy needs to know about held data: pins and the last time it was asked for.
    Sql("
    CREATE TABLE cache_entries (
        infohash       BLOB PRIMARY KEY NOT NULL CHECK (length(infohash) = 20),
        pinned         INTEGER NOT NULL DEFAULT 0,
        last_requested INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;
    "),
    // 5: which torrents the user watched (downloaded, streamed, imported) rather than published, replicated or
    // mirrored: those are not advertised unless the user shares what they watch. Rows from before were all
    // advertised already and stay so.
    Sql("
    ALTER TABLE torrents ADD COLUMN watched INTEGER NOT NULL DEFAULT 0;
    "),
    // 6: search keyed by time. Every record gets an integer key `k` that sorts like (created, id): the creation time
    // in the high bits, the id's first 20 bits below (the next free key on a collision). The full-text index is keyed
    // by it, so the newest matches of a common word come straight off the index in key order, without reading every
    // match (see search.rs). The index holds no copy of the text (contentless; the signed record is the text).
    SqlThen(
        "
    ALTER TABLE records ADD COLUMN k INTEGER;
    CREATE VIRTUAL TABLE records_text USING fts5(
        title, description, tags,
        content = '', contentless_delete = 1,
        tokenize = 'unicode61 remove_diacritics 2'
    );
    -- Admission counts an author's records and their arrivals in the last hour for every record from outside:
    -- with the arrival time in the author index, both counts read only the index.
    DROP INDEX records_by_author;
    CREATE INDEX records_by_author ON records (author, created, received_at);
    ",
        crate::search::move_to_keyed_index,
    ),
    // 7: the peer cache keeps addresses only. Wire identities are renewed at every start, daily and on a change of
    // network (issue 12 part 3): a remembered node id is stale, and a list of the ids this device met ties it to
    // those peers' observations. A scrub: the file is rebuilt afterwards, so the old ids do not linger in it.
    Scrub("
    UPDATE peers SET node_id = NULL;
    ALTER TABLE peers DROP COLUMN node_id;
    "),
];

pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    migrate_to(conn, MIGRATIONS.len())
}

/// Migrate up to schema `version` (tests build catalogs of older schemas with it).
pub(crate) fn migrate_to(conn: &mut Connection, version: usize) -> Result<(), StoreError> {
    let known = MIGRATIONS.len() as i64;
    let found: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if found > known {
        return Err(StoreError::SchemaTooNew { found, known });
    }
    let mut rebuild = false;
    for (index, migration) in MIGRATIONS
        .iter()
        .enumerate()
        .take(version)
        .skip(found as usize)
    {
        let tx = conn.transaction()?;
        match migration {
            Sql(sql) => tx.execute_batch(sql)?,
            Scrub(sql) => {
                tx.execute_batch(sql)?;
                rebuild = true;
            }
            SqlThen(sql, then) => {
                tx.execute_batch(sql)?;
                then(&tx)?;
            }
        }
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
        tx.commit()?;
    }
    if rebuild {
        // Every page written anew from the live rows only (outside any transaction, as VACUUM must be).
        conn.execute_batch("VACUUM")?;
    }
    Ok(())
}
