//! Key derivation from an invitation secret, and the keystream that hides every length field.
//!
//! Without the secret a prober sees only uniformly random bytes: the client's random nonce `R`, a check value
//! that is a keyed hash of `R`, and ChaCha20-encrypted rest. Noise's own ephemeral public keys (whose top bit is
//! always zero, so they are recognisable) are inside that encryption.

use chacha20::ChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher};
use sha2::{Digest, Sha256};

use crate::invitation::InviteSecret;

/// Length of the client's random nonce at the start of a connection.
pub const NONCE_LEN: usize = 32;
/// Length of the check value that follows it.
pub const CHECK_LEN: usize = 16;

fn derive(label: &[u8], secret: &InviteSecret, nonce: &[u8; NONCE_LEN]) -> [u8; 32] {
    let digest = Sha256::new()
        .chain_update(b"kolokol-bridge v1 ")
        .chain_update(label)
        .chain_update(secret.0)
        .chain_update(nonce)
        .finalize();
    digest.into()
}

/// The Noise pre-shared key for an invitation.
pub fn psk(secret: &InviteSecret) -> [u8; 32] {
    let digest = Sha256::new()
        .chain_update(b"kolokol-bridge v1 psk")
        .chain_update(secret.0)
        .finalize();
    digest.into()
}

/// The check value that tells the bridge which invitation a connection uses, before any expensive work.
pub fn check_value(secret: &InviteSecret, nonce: &[u8; NONCE_LEN]) -> [u8; CHECK_LEN] {
    let full = derive(b"check", secret, nonce);
    let mut out = [0; CHECK_LEN];
    out.copy_from_slice(&full[..CHECK_LEN]);
    out
}

/// Compares without an early exit, so timing does not reveal how many bytes of a guess were right.
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Which way the bytes go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    ClientToBridge,
    BridgeToClient,
}

/// A ChaCha20 keystream for one direction of one connection. It encrypts the handshake envelope and then masks
/// every record length, continuing the same stream, so no byte on the wire is predictable without the secret.
pub struct Mask(ChaCha20);

impl Mask {
    /// The keystream for `direction`; the nonce `R` is unique per connection (the bridge refuses a repeated one).
    pub fn new(secret: &InviteSecret, nonce: &[u8; NONCE_LEN], direction: Direction) -> Mask {
        let label: &[u8] = match direction {
            Direction::ClientToBridge => b"c2s",
            Direction::BridgeToClient => b"s2c",
        };
        let key = derive(label, secret, nonce);
        Mask(ChaCha20::new(&key.into(), &[0u8; 12].into()))
    }

    /// XORs the next keystream bytes into `bytes` (the same call encrypts and decrypts).
    pub fn apply(&mut self, bytes: &mut [u8]) {
        self.0.apply_keystream(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_is_its_own_inverse_and_depends_on_everything() {
        let secret = InviteSecret([1; 32]);
        let nonce = [2; NONCE_LEN];
        let mut data = *b"hello, bridge";
        Mask::new(&secret, &nonce, Direction::ClientToBridge).apply(&mut data);
        assert_ne!(&data, b"hello, bridge");
        let mut other = *b"hello, bridge";
        Mask::new(&secret, &nonce, Direction::BridgeToClient).apply(&mut other);
        assert_ne!(data, other);
        Mask::new(&secret, &nonce, Direction::ClientToBridge).apply(&mut data);
        assert_eq!(&data, b"hello, bridge");
        assert_ne!(
            check_value(&secret, &nonce),
            check_value(&InviteSecret([3; 32]), &nonce)
        );
        assert_ne!(
            check_value(&secret, &nonce),
            check_value(&secret, &[4; NONCE_LEN])
        );
        assert!(
            same_bytes(b"abc", b"abc") && !same_bytes(b"abc", b"abd") && !same_bytes(b"ab", b"abc")
        );
    }
}
