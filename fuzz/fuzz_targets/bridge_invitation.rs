//! Bridge invitations (codes a user pastes, and the saved bridges file that keeps them) and the saved bridge key.
//! The first input byte picks the decoder:
//! - 0: a text code (`Invitation::parse`); an accepted code prints to a code that parses to the same invitation;
//! - 1: the binary form (`Invitation::from_bytes`); the 4-byte checksum is appended here as `invitation.rs`
//!   specifies it (first bytes of SHA-256 of a domain and the body), so the fuzzer reaches the fields behind it.
//!   An accepted form is canonical: it encodes back to the same bytes;
//! - 2: the saved bridge key (`BridgeKey::from_bytes`), which re-encodes to the same 64 bytes.
#![no_main]

use kolokol_proxy::{BridgeKey, Invitation};
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

fuzz_target!(|data: &[u8]| {
    let Some((&kind, bytes)) = data.split_first() else {
        return;
    };
    match kind % 3 {
        0 => {
            let Ok(code) = std::str::from_utf8(bytes) else {
                return;
            };
            if let Ok(invitation) = Invitation::parse(code) {
                let again =
                    Invitation::parse(&invitation.to_code()).expect("a printed code parses");
                assert_eq!(again, invitation);
            }
        }
        1 => {
            let digest = Sha256::new()
                .chain_update(b"kolokol-bridge invitation")
                .chain_update(bytes)
                .finalize();
            let mut form = bytes.to_vec();
            form.extend_from_slice(&digest[..4]);
            if let Ok(invitation) = Invitation::from_bytes(&form) {
                assert_eq!(
                    invitation.to_bytes(),
                    form,
                    "an accepted invitation is canonical"
                );
                let _ = invitation.address();
            }
        }
        _ => {
            if let Ok(key) = BridgeKey::from_bytes(bytes) {
                assert_eq!(key.to_bytes().as_slice(), bytes);
            }
        }
    }
});
