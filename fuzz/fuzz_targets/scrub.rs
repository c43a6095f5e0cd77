//! Files a user publishes, scrubbed of metadata: `scrub` never panics on any bytes, and a file of a kind it does
//! not know is copied unchanged.
#![no_main]

use kolokol_scrub::{FileKind, scrub};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::new();
    if let Ok(scrubbed) = scrub(data, &mut out)
        && scrubbed.kind == FileKind::Unknown
    {
        assert_eq!(out, data, "unknown files are copied unchanged");
    }
});
