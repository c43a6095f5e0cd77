//! Magnet links pasted by users: `Magnet::parse` never panics, and what it accepts prints to a link that parses
//! back to the same magnet.
#![no_main]

use kolokol_core::Magnet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(magnet) = Magnet::parse(text) {
        let printed = magnet.to_uri();
        let reparsed = Magnet::parse(&printed).expect("a printed magnet link parses");
        assert_eq!(reparsed, magnet);
    }
});
