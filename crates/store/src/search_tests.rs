//! Search at scale: the keyed full-text index, bounded ranking, paging past it, and the migration from schema 4.

use std::collections::BTreeSet;

use kolokol_core::keys::Keypair;
use kolokol_core::record::{RecordId, SignedRecord};
use kolokol_testkit::records::TestRecord;

use crate::search::{KEY_LOW_BITS, RANKED, fold, free_key};
use crate::{Catalog, SearchQuery, media_of};

fn titled(key: &Keypair, title: &str, description: &str, created: u64) -> SignedRecord {
    TestRecord::new(key, title)
        .created(created)
        .description(description)
        .tags(&["tag"])
        .lang("ru")
        .file("a.bin", 1)
        .sign()
        .unwrap()
}

fn search(catalog: &Catalog, text: &str, limit: u32, offset: u64) -> Vec<SignedRecord> {
    catalog
        .search(&SearchQuery {
            text: text.into(),
            limit,
            offset,
            ..SearchQuery::default()
        })
        .unwrap()
}

#[test]
fn keys_sort_by_creation_time_and_a_taken_key_moves_to_the_next() {
    let mut catalog = Catalog::open_in_memory("kolokol").unwrap();
    let key = Keypair::from_secret_bytes([9; 32]);
    let record = titled(&key, "один", "", 500);
    catalog.insert_record(&record, 1).unwrap();
    let stored: i64 = catalog
        .conn
        .query_row(
            "SELECT k FROM records WHERE id = ?1",
            [&record.id().0[..]],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stored >> KEY_LOW_BITS, 500);
    // Another id with the same first 20 bits, in the same second: the next key.
    let mut twin = record.id().0;
    twin[3] ^= 0xff;
    twin[2] ^= 0x0f;
    assert_eq!(
        free_key(&catalog.conn, 500, &RecordId(twin)).unwrap(),
        stored + 1
    );
    // An earlier second sorts below.
    assert!(free_key(&catalog.conn, 499, &RecordId(twin)).unwrap() < stored);
    // A time that does not fit the key is refused, not wrapped.
    assert!(free_key(&catalog.conn, u64::MAX, &RecordId(twin)).is_err());
}

#[test]
fn the_newest_matches_are_ranked_and_later_pages_continue_newest_first() {
    let mut catalog = Catalog::open_in_memory("kolokol").unwrap();
    let key = Keypair::from_secret_bytes([8; 32]);
    let total = RANKED + 120;
    // The oldest record has the word in its title (it would rank first), but is outside the ranked window; the one
    // in the middle has it in its title and is inside.
    let mut created_of_title_match = Vec::new();
    for i in 0..total {
        let (title, description) = if i == 0 || i == total - 300 {
            created_of_title_match.push(1_000 + i as u64);
            ("река", "")
        } else {
            ("запись", "про реку и город")
        };
        catalog
            .insert_record(&titled(&key, title, description, 1_000 + i as u64), 1)
            .unwrap();
    }
    let first = search(&catalog, "рек", 50, 0);
    assert_eq!(first.len(), 50);
    assert_eq!(first[0].body().created, created_of_title_match[1]);
    // After the title match, the rest of the ranked window by equal relevance: newest first.
    assert_eq!(first[1].body().created, 1_000 + total as u64 - 1);

    // Paging through everything finds every match exactly once; past the ranked window, newest first.
    let mut seen = BTreeSet::new();
    let mut offset = 0;
    let mut last_page = Vec::new();
    loop {
        let page = search(&catalog, "рек", 100, offset);
        if page.is_empty() {
            break;
        }
        for record in &page {
            assert!(seen.insert(record.id()), "a record appeared on two pages");
        }
        offset += page.len() as u64;
        last_page = page;
    }
    assert_eq!(seen.len(), total);
    let tail: Vec<u64> = last_page.iter().map(|r| r.body().created).collect();
    let mut sorted = tail.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(tail, sorted);
    assert_eq!(*tail.last().unwrap(), created_of_title_match[0]);

    // Filters apply before the window: the only record by another author is found however old.
    let other = Keypair::from_secret_bytes([6; 32]);
    let old = titled(&other, "запись", "река", 10);
    catalog.insert_record(&old, 1).unwrap();
    let found = catalog
        .search(&SearchQuery {
            text: "река".into(),
            author: Some(other.public()),
            limit: 50,
            ..SearchQuery::default()
        })
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id(), old.id());
}

/// A catalog written by the schema before the keyed index (4), with its records stored the way that code did.
fn schema_4_catalog(path: &std::path::Path, records: &[SignedRecord]) {
    let mut conn = rusqlite::Connection::open(path).unwrap();
    crate::migrations::migrate_to(&mut conn, 4).unwrap();
    for record in records {
        let body = record.body();
        conn.execute(
            "INSERT INTO records (id, author, created, infohash, title, lang, media, bytes, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            rusqlite::params![
                &record.id().0[..],
                &body.author.as_bytes()[..],
                body.created as i64,
                &body.infohash.0[..],
                body.title,
                body.lang,
                media_of(body).as_str(),
                record.bytes(),
                1,
            ],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO records_fts (id, title, description, tags) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![
                &record.id().0[..],
                fold(&body.title),
                fold(&body.description),
                fold(&body.tags.join(" "))
            ],
        )
        .unwrap();
        for tag in &body.tags {
            conn.execute(
                "INSERT INTO record_tags (id, tag) VALUES (?1, ?2)",
                rusqlite::params![&record.id().0[..], tag],
            )
            .unwrap();
        }
    }
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 4);
}

#[test]
fn a_catalog_of_the_old_schema_is_migrated_and_searches_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.sqlite");
    let alice = Keypair::from_secret_bytes([1; 32]);
    let bob = Keypair::from_secret_bytes([2; 32]);
    let records = [
        titled(&alice, "Митинг в Москве", "видео с площади", 100),
        titled(&alice, "Прогулка", "мы шли через Москву", 200),
        titled(&bob, "Ёлка на площади", "праздник", 300),
        // Same second as the one before: both keep distinct keys.
        titled(&bob, "Ещё ёлка", "праздник", 300),
    ];
    schema_4_catalog(&path, &records);

    let mut catalog = Catalog::open(&path, "kolokol").unwrap();
    assert_eq!(catalog.integrity_check().unwrap(), "ok");
    let titles = |found: Vec<SignedRecord>| -> Vec<String> {
        found.into_iter().map(|r| r.body().title.clone()).collect()
    };
    assert_eq!(
        titles(search(&catalog, "москв", 10, 0)),
        ["Митинг в Москве", "Прогулка"]
    );
    assert_eq!(search(&catalog, "елка", 10, 0).len(), 2);
    let tagged = catalog
        .search(&SearchQuery {
            text: "праздник".into(),
            tag: Some("TAG".into()),
            author: Some(bob.public()),
            limit: 10,
            ..SearchQuery::default()
        })
        .unwrap();
    assert_eq!(tagged.len(), 2);
    let keys: BTreeSet<i64> = catalog
        .conn
        .prepare("SELECT k FROM records")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(keys.len(), records.len(), "every record has its own key");

    // New records join the migrated index, and a purge still empties it.
    catalog
        .insert_record(&titled(&alice, "Москва ночью", "", 400), 1)
        .unwrap();
    assert_eq!(search(&catalog, "москв", 10, 0).len(), 3);
    catalog.block_author(&alice.public(), 500).unwrap();
    assert!(search(&catalog, "москв", 10, 0).is_empty());
    let indexed: i64 = catalog
        .conn
        .query_row("SELECT count(*) FROM records_text_docsize", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(indexed, 2);
    drop(catalog);
    let catalog = Catalog::open(&path, "kolokol").unwrap();
    assert_eq!(catalog.integrity_check().unwrap(), "ok");
    assert_eq!(search(&catalog, "елка", 10, 0).len(), 2);
}
