//! The bytes of an author key file: plain, or sealed with a passphrase. Pure: no files, no clock.
//!
//! A plain file is the 32-byte Ed25519 secret as 64 hex characters (the format every data directory has had since
//! the start, so old `author.key` files stay valid). A sealed file is one line:
//!
//! ```text
//! kolokol-author-key 1 argon2id m=65536 t=3 p=1 <salt: 32 hex> <nonce: 24 hex> <sealed secret: 96 hex>
//! ```
//!
//! Argon2id (RFC 9106; memory-hard, so a guess costs 64 MiB of memory, not only time) turns the passphrase and the
//! salt into a 32-byte key; ChaCha20-Poly1305 (RFC 8439) seals the secret under it, with everything before the
//! sealed secret as associated data, so that neither the parameters nor the salt can be changed unnoticed.
//!
//! Architecture invariant: a sealed file holds nothing that names its author. The public key is not written
//! beside the secret (it would prove, without the passphrase, which publications this device's owner signed):
//! it is known only once the passphrase opened the file.

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use zeroize::Zeroizing;

/// Largest key file read (a sealed file is about 230 bytes): checked before the file is read whole.
pub const MAX_KEY_FILE_BYTES: u64 = 1024;
/// Longest passphrase accepted, in bytes.
pub const MAX_PASSPHRASE_BYTES: usize = 1024;

const MAGIC: &str = "kolokol-author-key";
const VERSION: &str = "1";
/// Argon2id cost when sealing: 64 MiB, 3 passes, 1 lane (RFC 9106's second recommended setting, with one lane).
const SEAL_MEMORY_KIB: u32 = 64 * 1024;
const SEAL_PASSES: u32 = 3;
const SEAL_LANES: u32 = 1;
/// Bounds on the cost a file may ask for when it is opened: an imported file must not make us allocate gigabytes
/// or spin for minutes, nor be weaker than OWASP's minimum (19 MiB, 2 passes).
const MIN_MEMORY_KIB: u32 = 19 * 1024;
const MAX_MEMORY_KIB: u32 = 1024 * 1024;
const MIN_PASSES: u32 = 2;
const MAX_PASSES: u32 = 16;
const MAX_LANES: u32 = 8;
const SALT_BYTES: usize = 16;
const NONCE_BYTES: usize = 12;
/// The 32-byte secret and the 16-byte tag.
const SEALED_BYTES: usize = 48;

/// A passphrase. Its bytes are wiped when dropped and never printed.
#[derive(Clone)]
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// A passphrase as typed: not empty, at most [`MAX_PASSPHRASE_BYTES`]; a final line break (from a pipe or an
    /// environment file) is not part of it.
    pub fn new(text: String) -> Result<Passphrase, KeyFileError> {
        let mut text = Zeroizing::new(text);
        while text.ends_with('\n') || text.ends_with('\r') {
            text.pop();
        }
        if text.is_empty() {
            return Err(KeyFileError::EmptyPassphrase);
        }
        if text.len() > MAX_PASSPHRASE_BYTES {
            return Err(KeyFileError::LongPassphrase);
        }
        Ok(Passphrase(text))
    }

    /// The passphrase's text: to compare two typings, or to hand it to the running node (loopback API).
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(..)")
    }
}

/// What is wrong with a key file or a passphrase.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyFileError {
    #[error("not a kolokol author key: {0}")]
    Damaged(&'static str),
    #[error("the key file asks for Argon2 settings outside what kolokol accepts")]
    Settings,
    #[error("wrong passphrase (or the key file was altered)")]
    WrongPassphrase,
    #[error("the passphrase is empty")]
    EmptyPassphrase,
    #[error("the passphrase is longer than {MAX_PASSPHRASE_BYTES} bytes")]
    LongPassphrase,
}

/// A parsed key file.
pub enum KeyFile {
    Plain(Zeroizing<[u8; 32]>),
    Sealed(Sealed),
}

/// A sealed secret and what is needed to open it with the right passphrase.
pub struct Sealed {
    memory_kib: u32,
    passes: u32,
    lanes: u32,
    salt: [u8; SALT_BYTES],
    nonce: [u8; NONCE_BYTES],
    sealed: [u8; SEALED_BYTES],
}

impl KeyFile {
    /// Parse a key file's bytes (at most [`MAX_KEY_FILE_BYTES`]): every field is checked, nothing is decrypted.
    pub fn parse(bytes: &[u8]) -> Result<KeyFile, KeyFileError> {
        if bytes.len() as u64 > MAX_KEY_FILE_BYTES {
            return Err(KeyFileError::Damaged("too long"));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| KeyFileError::Damaged("not text"))?;
        let text = text.trim();
        if !text.starts_with(MAGIC) {
            let mut secret = Zeroizing::new([0u8; 32]);
            hex::decode_to_slice(text, secret.as_mut_slice())
                .map_err(|_| KeyFileError::Damaged("expected 64 hex characters"))?;
            return Ok(KeyFile::Plain(secret));
        }
        let fields: Vec<&str> = text.split(' ').collect();
        let [magic, version, algorithm, m, t, p, salt, nonce, sealed] = fields.as_slice() else {
            return Err(KeyFileError::Damaged("wrong number of fields"));
        };
        if *magic != MAGIC || *algorithm != "argon2id" {
            return Err(KeyFileError::Damaged("unknown format"));
        }
        if *version != VERSION {
            return Err(KeyFileError::Damaged(
                "a newer format version than this kolokol reads",
            ));
        }
        let number = |field: &str, name: &str| -> Result<u32, KeyFileError> {
            field
                .strip_prefix(name)
                .and_then(|v| v.strip_prefix('='))
                .filter(|v| !v.is_empty() && v.len() <= 10 && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse().ok())
                .ok_or(KeyFileError::Damaged("bad Argon2 setting"))
        };
        let (memory_kib, passes, lanes) = (number(m, "m")?, number(t, "t")?, number(p, "p")?);
        if !(MIN_MEMORY_KIB..=MAX_MEMORY_KIB).contains(&memory_kib)
            || !(MIN_PASSES..=MAX_PASSES).contains(&passes)
            || !(1..=MAX_LANES).contains(&lanes)
            || memory_kib < 8 * lanes
        {
            return Err(KeyFileError::Settings);
        }
        let mut out = Sealed {
            memory_kib,
            passes,
            lanes,
            salt: [0; SALT_BYTES],
            nonce: [0; NONCE_BYTES],
            sealed: [0; SEALED_BYTES],
        };
        hex::decode_to_slice(salt, &mut out.salt).map_err(|_| KeyFileError::Damaged("bad salt"))?;
        hex::decode_to_slice(nonce, &mut out.nonce)
            .map_err(|_| KeyFileError::Damaged("bad nonce"))?;
        hex::decode_to_slice(sealed, &mut out.sealed)
            .map_err(|_| KeyFileError::Damaged("bad sealed secret"))?;
        Ok(KeyFile::Sealed(out))
    }

    /// The file's text (one line and a line break).
    pub fn to_text(&self) -> Zeroizing<String> {
        match self {
            KeyFile::Plain(secret) => {
                Zeroizing::new(format!("{}\n", hex::encode(secret.as_slice())))
            }
            KeyFile::Sealed(sealed) => Zeroizing::new(format!(
                "{} {}\n",
                sealed.header(),
                hex::encode(sealed.sealed)
            )),
        }
    }

    pub fn is_sealed(&self) -> bool {
        matches!(self, KeyFile::Sealed(_))
    }
}

impl Sealed {
    /// Seal `secret` under `passphrase` with a fresh salt and nonce.
    pub fn seal(secret: &[u8; 32], passphrase: &Passphrase) -> Result<Sealed, KeyFileError> {
        let mut out = Sealed {
            memory_kib: SEAL_MEMORY_KIB,
            passes: SEAL_PASSES,
            lanes: SEAL_LANES,
            salt: rand::random(),
            nonce: rand::random(),
            sealed: [0; SEALED_BYTES],
        };
        let key = out.derive(passphrase)?;
        let sealed = ChaCha20Poly1305::new(Key::from_slice(key.as_slice()))
            .encrypt(
                Nonce::from_slice(&out.nonce),
                Payload {
                    msg: secret,
                    aad: out.header().as_bytes(),
                },
            )
            .map_err(|_| KeyFileError::Settings)?;
        out.sealed = sealed
            .try_into()
            .map_err(|_| KeyFileError::Damaged("sealed secret of the wrong size"))?;
        Ok(out)
    }

    /// The secret, if `passphrase` is the one it was sealed with.
    pub fn open(&self, passphrase: &Passphrase) -> Result<Zeroizing<[u8; 32]>, KeyFileError> {
        let key = self.derive(passphrase)?;
        let opened = Zeroizing::new(
            ChaCha20Poly1305::new(Key::from_slice(key.as_slice()))
                .decrypt(
                    Nonce::from_slice(&self.nonce),
                    Payload {
                        msg: &self.sealed,
                        aad: self.header().as_bytes(),
                    },
                )
                .map_err(|_| KeyFileError::WrongPassphrase)?,
        );
        let mut secret = Zeroizing::new([0u8; 32]);
        if opened.len() != 32 {
            return Err(KeyFileError::Damaged("sealed secret of the wrong size"));
        }
        secret.copy_from_slice(&opened);
        Ok(secret)
    }

    /// Everything before the sealed secret: the associated data of the seal.
    fn header(&self) -> String {
        format!(
            "{MAGIC} {VERSION} argon2id m={} t={} p={} {} {}",
            self.memory_kib,
            self.passes,
            self.lanes,
            hex::encode(self.salt),
            hex::encode(self.nonce)
        )
    }

    fn derive(&self, passphrase: &Passphrase) -> Result<Zeroizing<[u8; 32]>, KeyFileError> {
        let params = Params::new(self.memory_kib, self.passes, self.lanes, Some(32))
            .map_err(|_| KeyFileError::Settings)?;
        let mut key = Zeroizing::new([0u8; 32]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(passphrase.bytes(), &self.salt, key.as_mut_slice())
            .map_err(|_| KeyFileError::Settings)?;
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn pass(text: &str) -> Passphrase {
        Passphrase::new(text.into()).unwrap()
    }

    #[test]
    fn sealed_secret_opens_with_its_passphrase_only_and_names_no_author() {
        let secret = [7u8; 32];
        let sealed = Sealed::seal(&secret, &pass("correct horse")).unwrap();
        let text = KeyFile::Sealed(sealed).to_text();
        assert!(!text.contains(&hex::encode(secret)));
        let public = kolokol_core::keys::Keypair::from_secret_bytes(secret).public();
        assert!(!text.contains(&public.to_string()), "{}", *text);

        let KeyFile::Sealed(parsed) = KeyFile::parse(text.as_bytes()).unwrap() else {
            panic!("not sealed");
        };
        assert_eq!(*parsed.open(&pass("correct horse")).unwrap(), secret);
        assert_eq!(
            parsed.open(&pass("correct horsf")).unwrap_err(),
            KeyFileError::WrongPassphrase
        );
    }

    #[test]
    fn a_changed_setting_or_byte_is_refused() {
        let text = KeyFile::Sealed(Sealed::seal(&[1; 32], &pass("pw")).unwrap()).to_text();
        // The cost lowered by someone who wants to guess faster: the seal covers the settings.
        let weaker = text.replace("t=3", "t=2");
        let KeyFile::Sealed(parsed) = KeyFile::parse(weaker.as_bytes()).unwrap() else {
            panic!("not sealed");
        };
        assert_eq!(
            parsed.open(&pass("pw")).unwrap_err(),
            KeyFileError::WrongPassphrase
        );
        for bad in [
            text.replace("m=65536", "m=1024"),
            text.replace("m=65536", "m=99999999999"),
            text.replace("t=3", "t=0"),
            text.replace("p=1", "p=100"),
        ] {
            assert!(KeyFile::parse(bad.as_bytes()).is_err(), "{bad}");
        }
        for bad in [
            "",
            "kolokol-author-key 1",
            "kolokol-author-key 2 argon2id m=65536 t=3 p=1 00 00 00",
            "zz",
            &"a".repeat(63),
            &"a".repeat(2000),
        ] {
            assert!(KeyFile::parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn plain_files_of_earlier_versions_are_read() {
        let secret = [9u8; 32];
        let KeyFile::Plain(read) = KeyFile::parse(hex::encode(secret).as_bytes()).unwrap() else {
            panic!("not plain");
        };
        assert_eq!(*read, secret);
    }

    #[test]
    fn passphrase_rules() {
        assert_eq!(
            Passphrase::new("\n".into()).unwrap_err(),
            KeyFileError::EmptyPassphrase
        );
        assert_eq!(
            Passphrase::new("x".repeat(1025)).unwrap_err(),
            KeyFileError::LongPassphrase
        );
        assert_eq!(format!("{:?}", pass("secret")), "Passphrase(..)");
    }
}
