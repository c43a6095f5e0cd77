//! Local search: SQLite FTS5 over title, description and tags, ranked by where the words are, with filters and paging.
//!
//! The full-text index (`records_text`) is keyed by each record's time key `k` (creation time, then id; see
//! migration 5), so FTS5 hands out the matches of a query newest first and can stop early. A word common to a tenth
//! of a million-record catalog then costs the same as a rare one: the newest [`RANKED`] matches (after the
//! filters) are ranked (the words in the title first, then in the tags, then elsewhere; newest first within each),
//! and any further pages continue past them newest first. Ranking every match instead
//! (what search did before) cost 170 ms at 100,000 records and grows with the catalog.
//!
//! A user's query is never handed to FTS5 as query syntax: it is split into words, each word quoted and made a
//! prefix term, and the terms joined with AND. So `Мос` finds "Москва", quotes or stray operators in the query
//! cannot break the search, and matching is case-insensitive in any script unicode61 knows.

use kolokol_core::keys::AuthorId;
use kolokol_core::record::{RecordBody, RecordId, SignedRecord};
use rusqlite::types::Value as SqlValue;
use rusqlite::{OptionalExtension, params_from_iter};

use crate::records::{MAX_PAGE, to_sql_int};
use crate::{Catalog, StoreError};

/// Longest query accepted, in bytes, and most words used from it.
pub const MAX_QUERY_BYTES: usize = 512;
pub const MAX_QUERY_WORDS: usize = 16;

/// What kind of media a publication is, judged from its files' MIME types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    Video,
    Audio,
    Image,
    Text,
    Other,
}

impl Media {
    pub fn as_str(self) -> &'static str {
        match self {
            Media::Video => "video",
            Media::Audio => "audio",
            Media::Image => "image",
            Media::Text => "text",
            Media::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Media> {
        Some(match s {
            "video" => Media::Video,
            "audio" => Media::Audio,
            "image" => Media::Image,
            "text" => Media::Text,
            "other" => Media::Other,
            _ => return None,
        })
    }
}

/// The media type of a publication: that of its largest file (a video with a subtitle file is a video).
pub fn media_of(body: &RecordBody) -> Media {
    let Some(main) = body.files.iter().max_by_key(|f| f.size) else {
        return Media::Other;
    };
    let top = main.mime.split('/').next().unwrap_or("");
    match top {
        "video" => Media::Video,
        "audio" => Media::Audio,
        "image" => Media::Image,
        "text" => Media::Text,
        _ if main.mime == "application/pdf" || main.mime == "application/epub+zip" => Media::Text,
        _ => Media::Other,
    }
}

/// A search: words (may be empty: then only the filters apply, newest first) and filters.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    pub text: String,
    pub author: Option<AuthorId>,
    pub tag: Option<String>,
    pub lang: Option<String>,
    /// Only records created at or after this Unix time.
    pub since: Option<u64>,
    pub media: Option<Media>,
    pub limit: u32,
    pub offset: u64,
}

/// Errors in a query the user typed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("search query is longer than {MAX_QUERY_BYTES} bytes")]
    TooLong,
}

/// How many of the newest matches are ranked by relevance; later pages continue newest first.
pub const RANKED: usize = 1000;

/// Bits of a record's time key below its creation time.
pub(crate) const KEY_LOW_BITS: u32 = 20;
const KEY_LOW_MASK: i64 = (1 << KEY_LOW_BITS) - 1;

/// The time key of a record to be stored: creation time in the high bits, the id's first 20 bits below, or the next
/// free key in the same second if that one is taken (keys are unique; the records table has an index on them).
pub(crate) fn free_key(
    conn: &rusqlite::Connection,
    created: u64,
    id: &RecordId,
) -> Result<i64, StoreError> {
    let high = i64::try_from(created)
        .ok()
        .filter(|c| *c < (1 << (63 - KEY_LOW_BITS)))
        .ok_or(StoreError::NoKey { created })?
        << KEY_LOW_BITS;
    let low = i64::from(u32::from_be_bytes([0, id.0[0], id.0[1], id.0[2]]) >> 4);
    let mut taken = conn.prepare_cached("SELECT 1 FROM records WHERE k = ?1")?;
    for step in 0..=KEY_LOW_MASK {
        let key = high | ((low + step) & KEY_LOW_MASK);
        if !taken.exists([key])? {
            return Ok(key);
        }
    }
    Err(StoreError::NoKey { created })
}

pub(crate) fn index_record(
    conn: &rusqlite::Connection,
    record: &SignedRecord,
    key: i64,
) -> Result<(), StoreError> {
    let body = record.body();
    conn.prepare_cached(
        "INSERT INTO records_text (rowid, title, description, tags) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(rusqlite::params![
        key,
        fold(&body.title),
        fold(&body.description),
        fold(&body.tags.join(" "))
    ])?;
    let mut tag =
        conn.prepare_cached("INSERT OR IGNORE INTO record_tags (id, tag) VALUES (?1, ?2)")?;
    for t in &body.tags {
        tag.execute(rusqlite::params![&record.id().0[..], t.to_lowercase()])?;
    }
    Ok(())
}

/// Folding that unicode61 does not do: Russian writers use ё and е interchangeably, so searchers must too.
/// (The index holds folded text; what is shown always comes from the signed record.)
pub(crate) fn fold(text: &str) -> String {
    text.replace('ё', "е").replace('Ё', "Е")
}

/// The FTS5 query for what the user typed: every word quoted, as a prefix, all required. `None` if no words.
fn fts_query(text: &str) -> Result<Option<String>, QueryError> {
    if text.len() > MAX_QUERY_BYTES {
        return Err(QueryError::TooLong);
    }
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(MAX_QUERY_WORDS)
        .map(|w| format!("\"{}\"*", fold(w)))
        .collect();
    Ok(if words.is_empty() {
        None
    } else {
        Some(words.join(" "))
    })
}

impl Catalog {
    /// Search the catalog. With words: the newest [`RANKED`] matches ranked by relevance (title matches weigh
    /// most), then older matches newest first. Without words: newest first.
    pub fn search(&self, query: &SearchQuery) -> Result<Vec<SignedRecord>, SearchError> {
        match fts_query(&query.text)? {
            Some(fts) => self.search_words(&fts, query),
            None => self.search_filters(query),
        }
    }

    /// Only filters: newest first.
    fn search_filters(&self, query: &SearchQuery) -> Result<Vec<SignedRecord>, SearchError> {
        let mut sql = String::from("SELECT r.bytes, r.created FROM records r");
        let mut args = Vec::new();
        let conditions = filters(query, &mut args)?;
        if !conditions.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conditions.join(" AND "));
        }
        sql.push_str(" ORDER BY r.created DESC, r.id DESC LIMIT ? OFFSET ?");
        args.push(SqlValue::Integer(i64::from(query.limit.min(MAX_PAGE))));
        args.push(SqlValue::Integer(to_sql_int(query.offset)?));
        let mut stmt = self.conn.prepare(&sql).map_err(StoreError::from)?;
        let rows = stmt
            .query_map(params_from_iter(args), |row| Ok((row.get(0)?, row.get(1)?)))
            .map_err(StoreError::from)?;
        Ok(self.collect_valid(rows)?)
    }

    /// Words (and filters): FTS5 walks the matches newest first and stops after the page asked for (at least the
    /// [`RANKED`] newest, which are ranked), so the cost is bounded by the page, not by how common the words are.
    fn search_words(
        &self,
        fts: &str,
        query: &SearchQuery,
    ) -> Result<Vec<SignedRecord>, SearchError> {
        let limit = usize::try_from(query.limit.min(MAX_PAGE)).unwrap_or(0);
        let offset = usize::try_from(query.offset).unwrap_or(usize::MAX);
        let window = offset.saturating_add(limit).max(RANKED);
        let mut args = vec![SqlValue::Text(fts.to_owned())];
        // Column weights: title, description, tags.
        let mut sql = String::from("SELECT f.rowid FROM records_text f");
        let mut conditions = vec!["records_text MATCH ?".to_owned()];
        if let Some(since) = query.since {
            // The key starts with the creation time: FTS5 seeks straight to it.
            conditions.push("f.rowid >= ?".to_owned());
            args.push(SqlValue::Integer(
                to_sql_int(since)?.saturating_mul(1 << KEY_LOW_BITS),
            ));
        }
        let on_record = filters(
            &SearchQuery {
                since: None,
                ..query.clone()
            },
            &mut args,
        )?;
        if !on_record.is_empty() {
            sql.push_str(" JOIN records r ON r.k = f.rowid");
            conditions.extend(on_record.into_iter().map(str::to_owned));
        }
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
        sql.push_str(" ORDER BY f.rowid DESC LIMIT ?");
        args.push(SqlValue::Integer(i64::try_from(window).unwrap_or(i64::MAX)));

        let mut stmt = self.conn.prepare(&sql).map_err(StoreError::from)?;
        let matches: Vec<i64> = stmt
            .query_map(params_from_iter(args), |row| row.get(0))
            .map_err(StoreError::from)?
            .collect::<Result<_, _>>()
            .map_err(StoreError::from)?;
        let ranked = self.rank(fts, &matches[..matches.len().min(RANKED)])?;
        let page = ranked
            .into_iter()
            .chain(matches.iter().skip(RANKED).copied())
            .skip(offset)
            .take(limit);

        let mut by_key = self
            .conn
            .prepare_cached("SELECT bytes, created FROM records WHERE k = ?1")
            .map_err(StoreError::from)?;
        let mut rows = Vec::with_capacity(limit);
        for key in page {
            if let Some(row) = by_key
                .query_row([key], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()
                .map_err(StoreError::from)?
            {
                rows.push(Ok(row));
            }
        }
        Ok(self.collect_valid(rows.into_iter())?)
    }
}

impl Catalog {
    /// Order `newest` (keys of matches, newest first) by relevance: all the words in the title first, then all in the
    /// tags, then the rest (words in the description or spread over fields); newest first within each.
    ///
    /// Not bm25: SQLite's bm25 counts every match of every word in the whole catalog for each query (to weigh rare
    /// words), which costs what a common word costs in a large catalog, the very thing the key order avoids. Two
    /// column-restricted matches over the same key range cost no more than the window.
    fn rank(&self, fts: &str, newest: &[i64]) -> Result<Vec<i64>, StoreError> {
        let (Some(&high), Some(&low)) = (newest.first(), newest.last()) else {
            return Ok(Vec::new());
        };
        let mut in_column = self.conn.prepare_cached(
            "SELECT rowid FROM records_text WHERE records_text MATCH ?1 AND rowid BETWEEN ?2 AND ?3",
        )?;
        let mut hits = |column: &str| -> Result<std::collections::HashSet<i64>, StoreError> {
            Ok(in_column
                .query_map(
                    rusqlite::params![format!("{{{column}}} : ({fts})"), low, high],
                    |row| row.get(0),
                )?
                .collect::<Result<_, _>>()?)
        };
        let title = hits("title")?;
        let tags = hits("tags")?;
        let mut ranked = newest.to_vec();
        // Stable: equal relevance stays newest first.
        ranked.sort_by_key(|key| {
            std::cmp::Reverse(if title.contains(key) {
                2
            } else {
                u8::from(tags.contains(key))
            })
        });
        Ok(ranked)
    }
}

/// The SQL conditions (on `records r`) for a query's filters, their arguments appended to `args`.
fn filters(query: &SearchQuery, args: &mut Vec<SqlValue>) -> Result<Vec<&'static str>, StoreError> {
    let mut conditions = Vec::new();
    if let Some(author) = &query.author {
        conditions.push("r.author = ?");
        args.push(SqlValue::Blob(author.as_bytes().to_vec()));
    }
    if let Some(tag) = &query.tag {
        conditions.push("r.id IN (SELECT id FROM record_tags WHERE tag = ?)");
        args.push(SqlValue::Text(tag.to_lowercase()));
    }
    if let Some(lang) = &query.lang {
        conditions.push("r.lang = ?");
        args.push(SqlValue::Text(lang.to_lowercase()));
    }
    if let Some(since) = query.since {
        conditions.push("r.created >= ?");
        args.push(SqlValue::Integer(to_sql_int(since)?));
    }
    if let Some(media) = query.media {
        conditions.push("r.media = ?");
        args.push(SqlValue::Text(media.as_str().to_owned()));
    }
    Ok(conditions)
}

/// Migration 5: give every record its time key and move the full-text index to `records_text`, keyed by it.
pub(crate) fn move_to_keyed_index(tx: &rusqlite::Transaction<'_>) -> Result<(), StoreError> {
    // With the columns search filters on, so that filtering the newest matches reads only this index, not the
    // records (a row is most of a kilobyte). Keys are unique: `free_key` finds a free one, and the full-text index,
    // keyed by them, refuses a second row with the same key.
    tx.execute_batch("CREATE INDEX records_by_key ON records (k, lang, media, author)")?;
    let rows: Vec<(Vec<u8>, i64)> = tx
        .prepare("SELECT id, created FROM records ORDER BY created, id")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut set_key = tx.prepare("UPDATE records SET k = ?1 WHERE id = ?2")?;
    for (id, created) in rows {
        let id_bytes: [u8; 32] = id
            .as_slice()
            .try_into()
            .map_err(|_| StoreError::Corrupt("record id of the wrong length".into()))?;
        let created = u64::try_from(created)
            .map_err(|_| StoreError::Corrupt(format!("negative creation time {created}")))?;
        let key = free_key(tx, created, &RecordId(id_bytes))?;
        set_key.execute(rusqlite::params![key, id])?;
    }
    // The old index holds the folded text already: copy it rather than parse every record again.
    tx.execute_batch(
        "INSERT INTO records_text (rowid, title, description, tags)
             SELECT r.k, f.title, f.description, f.tags FROM records_fts f JOIN records r ON r.id = f.id;
         DROP TABLE records_fts;",
    )?;
    Ok(())
}

/// Why a search failed.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_text_becomes_quoted_prefix_terms() {
        assert_eq!(fts_query("").unwrap(), None);
        assert_eq!(fts_query("  -- ").unwrap(), None);
        assert_eq!(fts_query("Мос").unwrap().as_deref(), Some("\"Мос\"*"));
        assert_eq!(
            fts_query("a \"b\" OR c*").unwrap().as_deref(),
            Some("\"a\"* \"b\"* \"OR\"* \"c\"*")
        );
        assert!(fts_query(&"x".repeat(MAX_QUERY_BYTES + 1)).is_err());
    }
}
