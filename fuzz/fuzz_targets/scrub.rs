//! Files a user publishes, scrubbed of metadata: `scrub` and the dry run `inspect` never panic on any bytes, a
//! file of a kind the scrubber does not know is copied unchanged, and the kinds blanked in place (PDF, Matroska)
//! keep their length.
#![no_main]

use kolokol_scrub::{FileKind, inspect, scrub};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = inspect(data);
    let mut out = Vec::new();
    if let Ok(scrubbed) = scrub(data, &mut out) {
        match scrubbed.kind {
            FileKind::Unknown => assert_eq!(out, data, "unknown files are copied unchanged"),
            FileKind::Pdf | FileKind::Matroska => {
                assert_eq!(out.len(), data.len(), "blanked in place, nothing moves")
            }
            _ => {}
        }
    }
});
