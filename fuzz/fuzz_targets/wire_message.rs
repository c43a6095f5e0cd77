//! Wire messages from peers: `Message::decode` never panics and what it accepts encodes back to the same bytes;
//! an `Exchange` fed any sequence of decoded messages never panics, opens the connection at most once, and turns
//! each message into at most one action.
//!
//! Input: messages as `u16` length + bytes (see `kolokol_fuzz::chunks`).
#![no_main]

use kolokol_fuzz::chunks;
use kolokol_wire::{Exchange, ExchangeAction, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut exchange = Exchange::new();
    let _ = exchange.start();
    let mut opened = 0;
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
        assert!(actions.len() <= 1, "one action per message");
        opened += actions
            .iter()
            .filter(|a| **a == ExchangeAction::Opened)
            .count();
        assert!(opened <= 1, "the connection opens once");
    }
});
