//! Ed25519 identities: an author signs records with a [`Keypair`]; anyone checks them with the [`PublicKey`].
//!
//! The same key type names nodes on the wire. Verification is strict (RFC 8032 plus the checks that stop
//! signature malleability and weak keys), so one record has exactly one valid signature encoding per key.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::ids::{ParseIdError, hex_id_impls};

/// An author's identity: the key that signs their records.
pub type AuthorId = PublicKey;
/// A node's identity on the wire.
pub type NodeId = PublicKey;

/// Why a key or a signature was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("public key is not a valid Ed25519 curve point")]
    InvalidPublicKey,
    #[error("signature does not match the public key and message")]
    BadSignature,
    #[error(transparent)]
    Parse(#[from] ParseIdError),
}

/// An Ed25519 signing key. The secret is zeroed when dropped and never printed.
#[derive(Clone)]
pub struct Keypair(SigningKey);

impl Keypair {
    /// Rebuilds a keypair from its 32-byte secret seed. The caller supplies the randomness for new keys
    /// (this crate has no randomness source of its own).
    pub fn from_secret_bytes(secret: [u8; 32]) -> Keypair {
        Keypair(SigningKey::from_bytes(&secret))
    }

    /// The 32-byte secret seed, for saving the key. Handle with care.
    pub fn secret_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    /// Signs `msg` (deterministic Ed25519: the same key and message always give the same signature).
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.0.sign(msg).to_bytes()
    }
}

impl std::fmt::Debug for Keypair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keypair")
            .field("public", &self.public())
            .finish_non_exhaustive()
    }
}

/// A 32-byte Ed25519 public key, as received: it may not be a valid curve point, which [`PublicKey::verify`]
/// reports as an error.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey([u8; 32]);

hex_id_impls!(PublicKey, 32, "public key", KeyError);

impl PublicKey {
    /// Wraps 32 bytes; no check is made until the key is used.
    pub fn from_bytes(bytes: [u8; 32]) -> PublicKey {
        PublicKey(bytes)
    }

    /// The 32 raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Whether these bytes decode to a curve point that can verify signatures (not one of the weak,
    /// small-order points that strict verification refuses).
    pub fn is_valid(&self) -> bool {
        VerifyingKey::from_bytes(&self.0).is_ok_and(|key| !key.is_weak())
    }

    /// Checks `sig` over `msg` with strict Ed25519 verification.
    pub fn verify(&self, msg: &[u8], sig: &[u8; 64]) -> Result<(), KeyError> {
        let key = VerifyingKey::from_bytes(&self.0).map_err(|_| KeyError::InvalidPublicKey)?;
        key.verify_strict(msg, &Signature::from_bytes(sig))
            .map_err(|_| KeyError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc8032_test_vector_1() {
        // RFC 8032 section 7.1, TEST 1 (empty message).
        let secret =
            hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .unwrap();
        let key = Keypair::from_secret_bytes(secret.try_into().unwrap());
        assert_eq!(
            key.public().to_string(),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        let sig = key.sign(b"");
        assert_eq!(
            hex::encode(sig),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
        assert_eq!(key.public().verify(b"", &sig), Ok(()));
    }

    #[test]
    fn debug_does_not_leak_the_secret() {
        let key = Keypair::from_secret_bytes([7; 32]);
        let shown = format!("{key:?}");
        assert!(shown.contains(&key.public().to_string()));
        assert!(!shown.contains(&hex::encode([7u8; 32])));
        assert!(!shown.contains("7, 7"));
    }

    #[test]
    fn invalid_point_is_an_error_not_a_panic() {
        // y = 2 is not the y-coordinate of any point on edwards25519.
        let mut bytes = [0u8; 32];
        bytes[0] = 2;
        let key = PublicKey::from_bytes(bytes);
        assert!(!key.is_valid());
        assert_eq!(
            key.verify(b"msg", &[0; 64]),
            Err(KeyError::InvalidPublicKey)
        );
    }

    #[test]
    fn weak_key_is_refused() {
        // The identity point (y = 1) has small order: strict verification must not accept anything for it.
        let mut bytes = [0u8; 32];
        bytes[0] = 1;
        let key = PublicKey::from_bytes(bytes);
        assert!(!key.is_valid());
        // With A = identity and R = identity, S = 0 satisfies the plain equation; strict verification refuses it.
        let mut sig = [0u8; 64];
        sig[0] = 1;
        assert!(key.verify(b"anything", &sig).is_err());
    }

    #[test]
    fn text_and_serde_forms() {
        let key = Keypair::from_secret_bytes([1; 32]).public();
        let text = key.to_string();
        assert_eq!(text.len(), 64);
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert_eq!(text.to_uppercase().parse::<PublicKey>(), Ok(key));
        assert_eq!(
            "xyz".parse::<PublicKey>().unwrap_err().to_string(),
            "public key must be 64 hex characters, got 3"
        );
        assert!(format!("{text}0").parse::<PublicKey>().is_err());
        assert!(format!("0x{}", &text[2..]).parse::<PublicKey>().is_err());
        let json = serde_json::to_string(&key).unwrap();
        assert_eq!(json, format!("\"{text}\""));
        assert_eq!(serde_json::from_str::<PublicKey>(&json).unwrap(), key);
        assert!(serde_json::from_str::<PublicKey>("\"00\"").is_err());
        assert!(serde_json::from_str::<PublicKey>("42").is_err());
    }

    proptest! {
        #[test]
        fn sign_verify(secret in any::<[u8; 32]>(), msg in prop::collection::vec(any::<u8>(), 0..128), flip in any::<prop::sample::Index>()) {
            let key = Keypair::from_secret_bytes(secret);
            prop_assert_eq!(Keypair::from_secret_bytes(key.secret_bytes()).public(), key.public());
            let sig = key.sign(&msg);
            prop_assert_eq!(key.public().verify(&msg, &sig), Ok(()));
            let mut bad = sig;
            bad[flip.index(64)] ^= 1;
            prop_assert!(key.public().verify(&msg, &bad).is_err());
            let other = Keypair::from_secret_bytes(secret.map(|b| b ^ 0xff)).public();
            prop_assert!(other.verify(&msg, &sig).is_err());
        }

        #[test]
        fn verify_never_panics(key in any::<[u8; 32]>(), sig in prop::collection::vec(any::<u8>(), 64)) {
            let sig: [u8; 64] = sig.try_into().unwrap();
            let _ = PublicKey::from_bytes(key).verify(b"m", &sig);
        }
    }
}
