//! What this engine says about itself to every BitTorrent peer: the peer id of the handshake and the
//! `v` (client name) of the BEP 10 extension handshake.
//!
//! # Why Transmission
//!
//! A peer id or `v` naming kolokol (or rqbit, which almost nobody runs) would let an ISP's DPI or any
//! member of a swarm pick kolokol users out of ordinary BitTorrent traffic. So the engine presents
//! itself as one common client, consistently: Transmission 4.0.6 (the client of most Linux desktops,
//! macOS users and home routers, Keenetic's among them). Transmission is chosen over libtorrent-based
//! clients because the extension handshake librqbit sends already has Transmission's shape: the same
//! extension message ids (`ut_metadata` 3, `ut_pex` 1, where libtorrent uses 2 and 1) and a `yourip`.
//!
//! What still differs from a real Transmission, and cannot change without replacing librqbit (9.1),
//! is listed in SECURITY.md ("BitTorrent handshake fingerprint"): the reserved bits (librqbit sets only
//! the extension-protocol bit; Transmission also sets the fast-extension and, with DHT on, the DHT bit)
//! and the keys the extension handshake lacks (`p`, `reqq`, `upload_only`, `e`).

use rand::Rng;

/// The `v` of the extension handshake: Transmission's own (`TR_NAME " " USERAGENT_PREFIX`).
pub const CLIENT_NAME_AND_VERSION: &str = "Transmission 4.0.6";

/// Azureus-style peer id prefix of Transmission 4.0.6.
pub const PEER_ID_PREFIX: &[u8; 8] = b"-TR4060-";

/// The characters of the random part of a Transmission peer id.
const PEER_ID_ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// A fresh peer id in Transmission's format: the prefix, 11 random characters from `[0-9a-z]`, and a
/// last character that makes the values of all 12 sum to a multiple of 36 (so it passes the check a
/// client identifier might apply).
pub fn new_peer_id() -> [u8; 20] {
    let mut rng = rand::rng();
    let mut values = [0u8; 11];
    for v in &mut values {
        *v = rng.random_range(0..36);
    }
    peer_id_from(values)
}

/// The peer id for the given random values (each below 36; larger ones are reduced modulo 36).
pub(crate) fn peer_id_from(values: [u8; 11]) -> [u8; 20] {
    let mut id = [0u8; 20];
    id[..8].copy_from_slice(PEER_ID_PREFIX);
    let mut total = 0usize;
    for (slot, value) in id[8..19].iter_mut().zip(values) {
        let value = usize::from(value % 36);
        total += value;
        *slot = PEER_ID_ALPHABET[value];
    }
    id[19] = PEER_ID_ALPHABET[(36 - total % 36) % 36];
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value_of(c: u8) -> usize {
        PEER_ID_ALPHABET.iter().position(|&a| a == c).unwrap()
    }

    #[test]
    fn peer_ids_have_the_prefix_and_a_valid_checksum() {
        for _ in 0..200 {
            let id = new_peer_id();
            assert_eq!(&id[..8], PEER_ID_PREFIX);
            let sum: usize = id[8..].iter().map(|&c| value_of(c)).sum();
            assert_eq!(sum % 36, 0, "{:?}", String::from_utf8_lossy(&id));
        }
        assert_eq!(&peer_id_from([0; 11])[8..], b"000000000000");
        assert_eq!(&peer_id_from([1; 11])[8..], b"11111111111p");
    }

    #[test]
    fn nothing_names_kolokol_or_the_library() {
        for text in [CLIENT_NAME_AND_VERSION.as_bytes(), PEER_ID_PREFIX] {
            let lower = String::from_utf8_lossy(text).to_ascii_lowercase();
            assert!(
                !lower.contains("kolokol") && !lower.contains("rqbit") && !lower.contains("rq")
            );
        }
    }
}
