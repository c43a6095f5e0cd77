//! What discovery reads from the DHT, the LAN and its saved state file. The first input byte picks the decoder:
//! - 0: a BEP 44 feed value (`decode_feed_value`), which must be exactly what `encode_feed_value` writes for the
//!   head it names;
//! - 1: a LAN announce datagram (`Announce::decode`), which must re-encode to the same 40 bytes;
//! - 2: the saved DHT state file (`DhtState::decode`), which must re-encode to the same bytes.
#![no_main]

use kolokol_discovery::DhtState;
use kolokol_discovery::feed::{decode_feed_value, encode_feed_value};
use kolokol_discovery::lan::Announce;
use libfuzzer_sys::fuzz_target;

const NETWORK: &str = "kolokol";

fuzz_target!(|data: &[u8]| {
    let Some((&kind, bytes)) = data.split_first() else {
        return;
    };
    match kind % 3 {
        0 => {
            if let Ok(head) = decode_feed_value(bytes, NETWORK) {
                let encoded = encode_feed_value(NETWORK, &head).expect("a decoded head encodes");
                assert_eq!(encoded, bytes, "an accepted feed value is canonical");
            }
        }
        1 => {
            if let Ok(announce) = Announce::decode(bytes) {
                assert_eq!(announce.encode().as_slice(), bytes);
            }
        }
        _ => {
            if let Ok(state) = DhtState::decode(bytes) {
                assert_eq!(state.encode(), bytes, "an accepted state file is canonical");
            }
        }
    }
});
