//! Strict bencode from anywhere (records, wire messages, feed values): no panic, and whatever decodes is canonical,
//! so it encodes back to exactly the input.
#![no_main]

use kolokol_core::bencode::{DecodeLimits, decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = decode(data, &DecodeLimits::default()) {
        assert_eq!(
            encode(&value),
            data,
            "a decoded value must re-encode to its input"
        );
    }
});
