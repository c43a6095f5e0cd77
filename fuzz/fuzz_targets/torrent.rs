//! Torrents from users, peers and bundles (and `kolokol get FILE.torrent`): `metainfo::torrent_layout`,
//! `infohash_of` and `minimal_torrent` never panic, agree with each other, and what they accept is internally
//! consistent: one SHA-1 per piece of the files' total length, safe path components, at least one byte of data; the
//! minimal form (`d4:info<info>e`, what `kolokol torrent` writes) reads back as the same torrent.
#![no_main]

use kolokol_transfer::metainfo::{infohash_of, minimal_torrent, torrent_layout};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let layout = torrent_layout(data);
    let infohash = infohash_of(data);
    let minimal = minimal_torrent(data);
    assert_eq!(
        layout.is_ok(),
        infohash.is_ok(),
        "both readers take the same torrents"
    );
    assert_eq!(layout.is_ok(), minimal.is_ok(), "the minimal form too");
    let (Ok(layout), Ok(minimal)) = (layout, minimal) else {
        return;
    };
    assert_eq!(Ok(layout.infohash), infohash.map_err(|_| ()));
    assert_eq!(minimal.infohash, layout.infohash);
    assert_eq!(minimal.name, layout.name);
    assert!(minimal.bytes.starts_with(b"d4:info") && minimal.bytes.len() <= data.len());
    let again = torrent_layout(&minimal.bytes).expect("the minimal form reads back");
    assert_eq!(again, layout);
    let total: u64 = layout.files.iter().map(|f| f.length).sum();
    assert!(total > 0);
    let pieces = total.div_ceil(u64::from(layout.piece_length));
    assert_eq!(layout.piece_hashes.len() as u64, pieces);
    assert!(!layout.name.is_empty() && layout.name != "." && layout.name != "..");
    for file in &layout.files {
        assert!(!file.components.is_empty());
        for component in &file.components {
            assert!(!component.is_empty() && component != "." && component != "..");
            assert!(!component.contains('/') && !component.contains('\0'));
        }
    }
});
