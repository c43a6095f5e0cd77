//! Wire messages from peers: `Message::decode` never panics and what it accepts encodes back to the same bytes;
//! an `Exchange` fed any sequence of decoded messages never panics, and only ever asks the driver to send
//! records it advertised.
//!
//! Input: messages as `u16` length + bytes (see `kolokol_fuzz::chunks`).
#![no_main]

use std::collections::BTreeSet;

use kolokol_core::RecordId;
use kolokol_fuzz::chunks;
use kolokol_wire::{Exchange, ExchangeAction, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let local: BTreeSet<RecordId> = (1..=3u8).map(|i| RecordId([i; 32])).collect();
    let mut exchange = Exchange::with_max_inventory(local.clone(), 64);
    let _ = exchange.start();
    for bytes in chunks(data, 64) {
        let Ok(message) = Message::decode(bytes) else {
            continue;
        };
        assert_eq!(
            message.encode().as_deref(),
            Ok(bytes),
            "an accepted message is canonical"
        );
        let Ok(actions) = exchange.handle(message) else {
            break;
        };
        for action in actions {
            if let ExchangeAction::SendRecords(ids) = action {
                assert!(
                    ids.iter().all(|id| local.contains(id)),
                    "only advertised records are sent"
                );
            }
        }
    }
});
