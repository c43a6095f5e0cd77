//! The configuration a user or a script hands the node as text (flags and environment variables): sizes (`--quota`,
//! `--upload-limit`, `--download-limit`), dates (`bundle export --since`) and the network name (`--network`). The
//! first input byte picks the parser; the rest is the text. Checked beyond "no panic": a size is below 2^64 and a plain
//! number of bytes is itself; a plain number of seconds is itself and a date is a midnight UTC before the year 10000;
//! the wire accepts exactly the network names of 1 to `MAX_NETWORK_NAME_BYTES` bytes.
//! (Proxy rules and hosts, also flags, are fuzzed by `detour`.)
#![no_main]

use kolokol_wire::WireConfig;
use kolokol_wire::config::MAX_NETWORK_NAME_BYTES;
use libfuzzer_sys::fuzz_target;

// `units.rs` uses nothing but std: included by path, so that this target does not build the whole node crate.
#[path = "../../crates/node/src/units.rs"]
#[allow(dead_code)]
mod units;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, bytes)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    match kind % 3 {
        0 => {
            if let Ok(size) = units::parse_size(text) {
                assert!(size < u64::MAX, "{text:?} gave {size}");
                if let Ok(plain) = text.trim().parse::<u64>() {
                    assert_eq!(size, plain, "{text:?}");
                }
            }
        }
        1 => {
            if let Ok(seconds) = units::parse_since(text) {
                if let Ok(plain) = text.parse::<u64>() {
                    assert_eq!(seconds, plain, "{text:?}");
                } else {
                    // A date: midnight UTC of a day from 1970 to 9999.
                    assert_eq!(seconds % 86_400, 0, "{text:?}");
                    assert!(seconds < 253_402_300_800, "{text:?} gave {seconds}");
                }
            }
        }
        _ => {
            let accepted = WireConfig::for_network(text).validate().is_ok();
            let fits = (1..=MAX_NETWORK_NAME_BYTES).contains(&text.len());
            assert_eq!(accepted, fits, "network name {text:?}");
        }
    }
});
