//! Local search: SQLite FTS5 over title, description and tags, ranked by bm25, with filters and paging.
//!
//! A user's query is never handed to FTS5 as query syntax: it is split into words, each word quoted and made a
//! prefix term, and the terms joined with AND. So `Мос` finds "Москва", quotes or stray operators in the query
//! cannot break the search, and matching is case-insensitive in any script unicode61 knows.

use kolokol_core::keys::AuthorId;
use kolokol_core::record::{RecordBody, SignedRecord};
use rusqlite::params_from_iter;
use rusqlite::types::Value as SqlValue;

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

pub(crate) fn index_record(
    conn: &rusqlite::Connection,
    record: &SignedRecord,
) -> Result<(), StoreError> {
    let body = record.body();
    conn.execute(
        "INSERT INTO records_fts (id, title, description, tags) VALUES (?1, ?2, ?3, ?4)",
        rusqlite::params![
            &record.id().0[..],
            fold(&body.title),
            fold(&body.description),
            fold(&body.tags.join(" "))
        ],
    )?;
    let mut tag =
        conn.prepare_cached("INSERT OR IGNORE INTO record_tags (id, tag) VALUES (?1, ?2)")?;
    for t in &body.tags {
        tag.execute(rusqlite::params![&record.id().0[..], t.to_lowercase()])?;
    }
    Ok(())
}

/// Folding that unicode61 does not do: Russian writers use ё and е interchangeably, so searchers must too.
/// (The index holds folded text; what is shown always comes from the signed record.)
fn fold(text: &str) -> String {
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
    /// Search the catalog. Ranked by relevance (title matches weigh most) when there are words, else newest first.
    pub fn search(&self, query: &SearchQuery) -> Result<Vec<SignedRecord>, SearchError> {
        let fts = fts_query(&query.text)?;
        let mut sql = String::from("SELECT r.bytes, r.created FROM records r");
        let mut args: Vec<SqlValue> = Vec::new();
        let mut conditions: Vec<&str> = Vec::new();
        if let Some(fts) = fts.clone() {
            sql.push_str(" JOIN records_fts f ON f.id = r.id");
            conditions.push("records_fts MATCH ?");
            args.push(SqlValue::Text(fts));
        }
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
        if !conditions.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conditions.join(" AND "));
        }
        // Column weights: id (unindexed), title, description, tags.
        sql.push_str(if fts.is_some() {
            " ORDER BY bm25(records_fts, 0.0, 10.0, 1.0, 4.0), r.created DESC"
        } else {
            " ORDER BY r.created DESC, r.id DESC"
        });
        sql.push_str(" LIMIT ? OFFSET ?");
        args.push(SqlValue::Integer(i64::from(query.limit.min(MAX_PAGE))));
        args.push(SqlValue::Integer(to_sql_int(query.offset)?));

        let mut stmt = self.conn.prepare(&sql).map_err(StoreError::from)?;
        let rows = stmt
            .query_map(params_from_iter(args), |row| Ok((row.get(0)?, row.get(1)?)))
            .map_err(StoreError::from)?;
        Ok(self.collect_valid(rows)?)
    }
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
