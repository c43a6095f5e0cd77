//! Bundles from USB sticks: `read_bundle` never panics on any bytes, stages data only inside the staging
//! directory, and reports as staged only files that are there and verified.
//!
//! Each run reads from memory into one fresh temporary directory, so an iteration costs little more than the
//! parsing.
#![no_main]

use kolokol_bundle::{DataOutcome, ReadOptions, read_bundle};
use kolokol_core::record::ValidationContext;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let staging = tempfile::tempdir().expect("a temporary directory");
    let mut want_data = |_: &kolokol_core::SignedRecord| true;
    let options = ReadOptions {
        validation: ValidationContext {
            network: "kolokol".to_owned(),
            now_unix: u64::MAX / 2,
        },
        want_data: &mut want_data,
    };
    let Ok(contents) = read_bundle(data, staging.path(), options) else {
        return;
    };
    for publication in &contents.publications {
        if let DataOutcome::Staged { dir, files } = &publication.data {
            assert!(
                dir.starts_with(staging.path()),
                "data staged outside the staging directory"
            );
            let name = publication
                .name
                .as_deref()
                .expect("staged data has a torrent name");
            for file in files.iter().filter(|f| f.good) {
                let path = dir.join(&file.path);
                assert!(path.starts_with(staging.path()));
                let size = std::fs::metadata(&path).map(|m| m.len()).ok();
                assert_eq!(
                    size,
                    Some(file.size),
                    "{} of {name} is reported good",
                    file.path
                );
            }
        }
    }
});
