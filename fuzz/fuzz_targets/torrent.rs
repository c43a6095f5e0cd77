//! Torrents from users, peers and bundles: `metainfo::torrent_layout` and `infohash_of` never panic, agree with
//! each other, and what they accept is internally consistent: one SHA-1 per piece of the files' total length,
//! safe path components, at least one byte of data.
#![no_main]

use kolokol_transfer::metainfo::{infohash_of, torrent_layout};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let layout = torrent_layout(data);
    let infohash = infohash_of(data);
    assert_eq!(
        layout.is_ok(),
        infohash.is_ok(),
        "both readers take the same torrents"
    );
    let Ok(layout) = layout else {
        return;
    };
    assert_eq!(Ok(layout.infohash), infohash.map_err(|_| ()));
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
