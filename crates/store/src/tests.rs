use kolokol_core::keys::Keypair;
use kolokol_core::record::{InfoHash, RecordId};
use kolokol_testkit::records::TestRecord;

use super::*;

fn record(key: &Keypair, title: &str, created: u64) -> kolokol_core::record::SignedRecord {
    TestRecord::new(key, title)
        .created(created)
        .file("a.bin", 1)
        .infohash([created as u8; 20])
        .sign()
        .unwrap()
}

#[test]
fn records_survive_reopen_and_are_listed_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.sqlite");
    let key = Keypair::from_secret_bytes([7; 32]);
    let older = record(&key, "older", 1_000);
    let newer = record(&key, "новое", 2_000);
    {
        let mut catalog = Catalog::open(&path, "kolokol").unwrap();
        assert!(catalog.insert_record(&older, 5).unwrap());
        assert!(catalog.insert_record(&newer, 5).unwrap());
        assert!(
            !catalog.insert_record(&newer, 6).unwrap(),
            "duplicate is not new"
        );
    }
    let catalog = Catalog::open(&path, "kolokol").unwrap();
    let page = catalog.list_records(10, 0).unwrap();
    assert_eq!(page.total, 2);
    let titles: Vec<_> = page
        .records
        .iter()
        .map(|r| r.body().title.as_str())
        .collect();
    assert_eq!(titles, ["новое", "older"]);
    assert_eq!(
        catalog.get_record(&newer.id()).unwrap().unwrap().bytes(),
        newer.bytes()
    );
    assert!(catalog.get_record(&RecordId([0; 32])).unwrap().is_none());
    assert_eq!(catalog.record_ids().unwrap().len(), 2);
    let bytes = catalog
        .record_bytes(&[older.id(), RecordId([1; 32])])
        .unwrap();
    assert_eq!(bytes, vec![older.bytes().to_vec()]);
    assert_eq!(catalog.integrity_check().unwrap(), "ok");
}

#[test]
fn damaged_row_is_hidden_not_served() {
    let mut catalog = Catalog::open_in_memory("kolokol").unwrap();
    let key = Keypair::from_secret_bytes([9; 32]);
    let good = record(&key, "good", 10);
    let bad = record(&key, "bad", 20);
    catalog.insert_record(&good, 1).unwrap();
    catalog.insert_record(&bad, 1).unwrap();
    // Flip one byte of the stored signed bytes, as disk damage or tampering would.
    let mut bytes = bad.bytes().to_vec();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    catalog
        .conn
        .execute(
            "UPDATE records SET bytes = ?2 WHERE id = ?1",
            rusqlite::params![&bad.id().0[..], bytes],
        )
        .unwrap();
    assert!(catalog.get_record(&bad.id()).is_err());
    let page = catalog.list_records(10, 0).unwrap();
    assert_eq!(page.records.len(), 1);
    assert_eq!(page.records[0].id(), good.id());
}

#[test]
fn torrents_peers_and_settings_round_trip() {
    let mut catalog = Catalog::open_in_memory("kolokol").unwrap();
    let row = TorrentRow {
        infohash: InfoHash([3; 20]),
        name: "video.mp4".into(),
        torrent: None,
        output_dir: "/tmp/x".into(),
        state: TorrentState::Downloading,
        added_at: 42,
        watched: true,
    };
    catalog.put_torrent(&row).unwrap();
    catalog
        .update_torrent(
            &row.infohash,
            None,
            Some(b"d4:infod..ee"),
            TorrentState::Complete,
        )
        .unwrap();
    let got = catalog.get_torrent(&row.infohash).unwrap().unwrap();
    assert_eq!(got.state, TorrentState::Complete);
    assert_eq!(got.torrent.as_deref(), Some(&b"d4:infod..ee"[..]));
    assert_eq!(got.name, "video.mp4");
    assert!(got.watched, "a watched torrent stays marked as watched");
    assert_eq!(catalog.list_torrents().unwrap().len(), 1);

    catalog.add_peer("127.0.0.1:4000", true).unwrap();
    catalog.add_peer("127.0.0.1:4000", false).unwrap();
    catalog.peer_seen("127.0.0.1:4000", 99).unwrap();
    let peers = catalog.list_peers().unwrap();
    assert_eq!(peers.len(), 1);
    assert!(peers[0].by_user, "a user's peer stays a user's peer");
    assert_eq!(peers[0].last_seen, Some(99));

    assert_eq!(catalog.get_setting("wire_port").unwrap(), None);
    catalog.set_setting("wire_port", "4000").unwrap();
    catalog.set_setting("wire_port", "4001").unwrap();
    assert_eq!(
        catalog.get_setting("wire_port").unwrap().as_deref(),
        Some("4001")
    );
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.sqlite");
    drop(Catalog::open(&path, "kolokol").unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    assert!(matches!(
        Catalog::open(&path, "kolokol"),
        Err(StoreError::SchemaTooNew { found: 99, .. })
    ));
}

fn rich(
    key: &Keypair,
    title: &str,
    description: &str,
    tags: &[&str],
    lang: &str,
    mime: &str,
    created: u64,
) -> kolokol_core::record::SignedRecord {
    TestRecord::new(key, title)
        .created(created)
        .description(description)
        .tags(tags)
        .lang(lang)
        .typed_file("f", 100, mime)
        .infohash([created as u8; 20])
        .sign()
        .unwrap()
}

fn titles(records: Vec<kolokol_core::record::SignedRecord>) -> Vec<String> {
    records
        .into_iter()
        .map(|r| r.body().title.clone())
        .collect()
}

#[test]
fn search_russian_and_english_with_case_prefix_ranking_and_filters() {
    let mut catalog = Catalog::open_in_memory("kolokol").unwrap();
    let alice = Keypair::from_secret_bytes([1; 32]);
    let bob = Keypair::from_secret_bytes([2; 32]);
    let records = [
        rich(
            &alice,
            "Митинг в Москве",
            "видео с площади",
            &["протест"],
            "ru",
            "video/mp4",
            100,
        ),
        rich(
            &alice,
            "Прогулка",
            "мы шли через Москву к реке",
            &["город"],
            "ru",
            "image/jpeg",
            200,
        ),
        rich(
            &bob,
            "Protest in Moscow",
            "crowds on the square",
            &["protest"],
            "en",
            "video/webm",
            300,
        ),
        rich(
            &bob,
            "Ёлка на площади",
            "праздник",
            &["Праздник"],
            "ru",
            "image/png",
            400,
        ),
    ];
    for r in &records {
        catalog.insert_record(r, 1).unwrap();
    }
    let search = |text: &str| {
        titles(
            catalog
                .search(&SearchQuery {
                    text: text.into(),
                    limit: 10,
                    ..SearchQuery::default()
                })
                .unwrap(),
        )
    };
    // Case-insensitive Cyrillic, prefix match standing in for stemming ("Москв" finds Москве and Москву),
    // and a title match ranks above a description match.
    assert_eq!(search("москв"), ["Митинг в Москве", "Прогулка"]);
    assert_eq!(search("МИТИНГ"), ["Митинг в Москве"]);
    assert_eq!(search("moscow"), ["Protest in Moscow"]);
    assert_eq!(search("PROT"), ["Protest in Moscow"]);
    // ё and е are the same letter to a searcher.
    assert_eq!(search("елка"), ["Ёлка на площади"]);
    // Several words: all must match.
    assert_eq!(search("видео площади"), ["Митинг в Москве"]);
    assert!(search("площади несуществующее").is_empty());
    // Query syntax in user text is only text.
    assert!(search("\"OR\" NEAR( * ").is_empty());

    let filtered =
        |q: SearchQuery| titles(catalog.search(&SearchQuery { limit: 10, ..q }).unwrap());
    assert_eq!(
        filtered(SearchQuery {
            author: Some(bob.public()),
            ..SearchQuery::default()
        }),
        ["Ёлка на площади", "Protest in Moscow"]
    );
    assert_eq!(
        filtered(SearchQuery {
            tag: Some("ПРАЗДНИК".into()),
            ..SearchQuery::default()
        }),
        ["Ёлка на площади"]
    );
    assert_eq!(
        filtered(SearchQuery {
            lang: Some("en".into()),
            ..SearchQuery::default()
        }),
        ["Protest in Moscow"]
    );
    assert_eq!(
        filtered(SearchQuery {
            media: Some(Media::Video),
            ..SearchQuery::default()
        }),
        ["Protest in Moscow", "Митинг в Москве"]
    );
    assert_eq!(
        filtered(SearchQuery {
            since: Some(250),
            text: "площади".into(),
            ..SearchQuery::default()
        }),
        ["Ёлка на площади"]
    );
    // Paging.
    let page = |offset| {
        titles(
            catalog
                .search(&SearchQuery {
                    limit: 1,
                    offset,
                    ..SearchQuery::default()
                })
                .unwrap(),
        )
    };
    assert_eq!(page(0), ["Ёлка на площади"]);
    assert_eq!(page(3), ["Митинг в Москве"]);
    assert!(page(4).is_empty());
}

#[test]
fn follows_round_trip() {
    let mut catalog = Catalog::open_in_memory("kolokol").unwrap();
    let a = Keypair::from_secret_bytes([1; 32]).public();
    let b = Keypair::from_secret_bytes([2; 32]).public();
    assert!(catalog.follow(&a, 10).unwrap());
    assert!(!catalog.follow(&a, 11).unwrap());
    assert!(catalog.follow(&b, 12).unwrap());
    catalog.follow_checked(&a, Some(5), 20).unwrap();
    catalog.follow_checked(&a, None, 30).unwrap();
    let rows = catalog.following().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].author, a);
    assert_eq!(rows[0].last_seq, Some(5));
    assert_eq!(rows[0].checked_at, Some(30));
    assert!(catalog.unfollow(&a).unwrap());
    assert!(!catalog.unfollow(&a).unwrap());
    assert_eq!(catalog.following().unwrap().len(), 1);
}

#[test]
fn blocking_purges_an_author_and_their_orphaned_torrents_only() {
    let mut catalog = Catalog::open_in_memory("kolokol").unwrap();
    let spammer = Keypair::from_secret_bytes([4; 32]);
    let honest = Keypair::from_secret_bytes([5; 32]);
    let spam = rich(&spammer, "Купите", "спам", &["spam"], "ru", "video/mp4", 10);
    let good = rich(
        &honest,
        "Новости",
        "правда",
        &["news"],
        "ru",
        "video/mp4",
        20,
    );
    catalog.insert_record(&spam, 1).unwrap();
    catalog.insert_record(&good, 1).unwrap();
    catalog.follow(&spammer.public(), 1).unwrap();
    for record in [&spam, &good] {
        catalog
            .put_torrent(&TorrentRow {
                infohash: record.body().infohash,
                name: "f".into(),
                torrent: None,
                output_dir: "/tmp".into(),
                state: TorrentState::Complete,
                added_at: 1,
                watched: false,
            })
            .unwrap();
    }
    let purge = catalog.block_author(&spammer.public(), 30).unwrap();
    assert_eq!(purge.records, 1);
    let orphaned: Vec<_> = purge.orphaned_torrents.iter().map(|r| r.infohash).collect();
    assert_eq!(orphaned, vec![spam.body().infohash]);
    assert!(catalog.is_blocked(&spammer.public()).unwrap());
    assert!(!catalog.is_blocked(&honest.public()).unwrap());
    assert_eq!(catalog.count_records().unwrap(), 1);
    assert!(
        catalog
            .get_torrent(&spam.body().infohash)
            .unwrap()
            .is_none()
    );
    assert!(
        catalog
            .get_torrent(&good.body().infohash)
            .unwrap()
            .is_some()
    );
    assert!(catalog.following().unwrap().is_empty());
    let search = |text: &str| {
        catalog
            .search(&SearchQuery {
                text: text.into(),
                limit: 10,
                ..SearchQuery::default()
            })
            .unwrap()
            .len()
    };
    assert_eq!(
        search("купите"),
        0,
        "the search index forgot the purged record"
    );
    assert_eq!(search("новости"), 1);
    assert_eq!(catalog.blocked_authors().unwrap().len(), 1);
    assert!(catalog.unblock_author(&spammer.public()).unwrap());
    assert!(!catalog.unblock_author(&spammer.public()).unwrap());
    assert!(!catalog.is_blocked(&spammer.public()).unwrap());
}

#[test]
fn missing_ids_names_only_what_the_catalog_lacks() {
    let dir = tempfile::tempdir().unwrap();
    let mut catalog = Catalog::open(&dir.path().join("c.sqlite"), "kolokol").unwrap();
    let key = Keypair::from_secret_bytes([3; 32]);
    let held = record(&key, "held", 10);
    catalog.insert_record(&held, 10).unwrap();
    let unknown = RecordId([7; 32]);
    assert_eq!(
        catalog.missing_ids(&[held.id(), unknown]).unwrap(),
        vec![unknown]
    );
    assert!(catalog.missing_ids(&[]).unwrap().is_empty());
}

/// A catalog written by schema 6 remembered each peer's node id; opening it with this version drops every id and
/// the column, keeps the addresses, and leaves none of the id's bytes in the database file.
#[test]
fn the_peer_cache_keeps_no_node_ids_after_the_migration() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.sqlite");
    // A node id that is easy to find in the file: 32 bytes of 0xA7 (not a valid key; schema 6 checked only length).
    let id = [0xA7u8; 32];
    {
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        crate::migrations::migrate_to(&mut conn, 6).unwrap();
        conn.execute(
            "INSERT INTO peers (addr, node_id, by_user, last_seen) VALUES ('192.0.2.1:4000', ?1, 1, 77)",
            [&id[..]],
        )
        .unwrap();
        // Enough rows for several pages: rewriting them in place leaves old bytes in the pages' free space, which
        // is why the migration rebuilds the file.
        let tx = conn.transaction().unwrap();
        for n in 0..400 {
            tx.execute(
                "INSERT INTO peers (addr, node_id, last_seen) VALUES (?1, ?2, 1)",
                rusqlite::params![format!("198.51.100.{}:{}", n % 250, 5000 + n), &id[..]],
            )
            .unwrap();
        }
        tx.commit().unwrap();
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .unwrap();
    }
    let contains_id = |bytes: &[u8]| bytes.windows(id.len()).any(|w| w == id);
    assert!(
        contains_id(&std::fs::read(&path).unwrap()),
        "the test must see the id before the migration"
    );

    let mut catalog = Catalog::open(&path, "kolokol").unwrap();
    let peers = catalog.list_peers().unwrap();
    assert_eq!(peers.len(), 401);
    assert_eq!(peers[0].addr, "192.0.2.1:4000");
    assert!(peers[0].by_user);
    assert_eq!(peers[0].last_seen, Some(77));
    catalog.peer_seen("192.0.2.1:4000", 88).unwrap();
    drop(catalog);

    let conn = rusqlite::Connection::open(&path).unwrap();
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('peers')")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(columns, ["addr", "by_user", "last_seen", "last_error"]);
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    drop(conn);
    for file in std::fs::read_dir(dir.path()).unwrap() {
        let file = file.unwrap().path();
        assert!(
            !contains_id(&std::fs::read(&file).unwrap()),
            "{} still holds the old node id",
            file.display()
        );
    }
}
