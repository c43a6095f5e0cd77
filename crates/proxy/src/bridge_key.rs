//! The bridge's long-term Noise key (X25519). Its public half travels in every invitation; the node saves the
//! 64-byte form in its data directory.

use crate::tunnel::handshake::NOISE_PARAMS;

/// Why saved key bytes were refused.
#[derive(Debug, thiserror::Error)]
pub enum BridgeKeyError {
    #[error("a bridge key is 64 bytes (private then public), got {0}")]
    WrongLength(usize),
    #[error("the public half does not belong to the private half")]
    Mismatch,
    #[error("could not generate a key: {0}")]
    Generate(#[source] snow::Error),
}

/// An X25519 static key pair for a bridge. The private half is never printed.
#[derive(Clone)]
pub struct BridgeKey {
    private: [u8; 32],
    public: [u8; 32],
}

impl BridgeKey {
    /// A fresh key from the operating system's randomness.
    pub fn generate() -> Result<BridgeKey, BridgeKeyError> {
        let builder = snow::Builder::new(NOISE_PARAMS.clone());
        let pair = builder
            .generate_keypair()
            .map_err(BridgeKeyError::Generate)?;
        let private: [u8; 32] = pair
            .private
            .as_slice()
            .try_into()
            .map_err(|_| BridgeKeyError::WrongLength(64))?;
        let public: [u8; 32] = pair
            .public
            .as_slice()
            .try_into()
            .map_err(|_| BridgeKeyError::WrongLength(64))?;
        Ok(BridgeKey { private, public })
    }

    /// The 64-byte saved form: private key, then public key.
    pub fn to_bytes(&self) -> [u8; 64] {
        let mut out = [0; 64];
        out[..32].copy_from_slice(&self.private);
        out[32..].copy_from_slice(&self.public);
        out
    }

    /// Reads the saved form back, checking that the halves belong together (by running a handshake between them,
    /// since X25519 arithmetic is not otherwise exposed).
    pub fn from_bytes(bytes: &[u8]) -> Result<BridgeKey, BridgeKeyError> {
        let bytes: &[u8; 64] = bytes
            .try_into()
            .map_err(|_| BridgeKeyError::WrongLength(bytes.len()))?;
        let mut private = [0; 32];
        let mut public = [0; 32];
        private.copy_from_slice(&bytes[..32]);
        public.copy_from_slice(&bytes[32..]);
        if !crate::tunnel::handshake::key_halves_match(&private, &public) {
            return Err(BridgeKeyError::Mismatch);
        }
        Ok(BridgeKey { private, public })
    }

    /// The public half, as carried by invitations.
    pub fn public(&self) -> [u8; 32] {
        self.public
    }

    pub(crate) fn private(&self) -> &[u8; 32] {
        &self.private
    }
}

impl std::fmt::Debug for BridgeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BridgeKey")
            .field("public", &hex::encode(self.public))
            .finish_non_exhaustive()
    }
}
