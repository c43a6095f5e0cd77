//! Author identities on disk: a name and an Ed25519 author key file each, plain or sealed with a passphrase (see
//! [`crate::keyfile`]).
//!
//! The identity named `default` is the data directory's `author.key`, where it has always been (no migration: an
//! older kolokol still finds it, and nothing moves on upgrade). Every other identity is `identities/NAME.key`.
//!
//! The CLI uses this directly, with the node running or stopped, without taking the data directory's lock: every
//! write is a new file written whole under a temporary name, synced, then linked into place without replacing
//! anything (or renamed over the file it replaces, for [`Keystore::lock`]), so a reader (the running node) sees the
//! old file or the new one, never a part, and a failed command leaves what was there.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use kolokol_core::keys::Keypair;
use zeroize::Zeroizing;

use crate::keyfile::{KeyFile, KeyFileError, MAX_KEY_FILE_BYTES, Passphrase, Sealed};

/// The name of the identity kept in `author.key`: the one publications are signed with unless `--as` names another.
pub const DEFAULT_IDENTITY: &str = "default";
/// Longest identity name.
pub const MAX_IDENTITY_NAME: usize = 32;
/// Most identities one data directory holds (a node loads them all at start).
pub const MAX_IDENTITIES: usize = 256;

/// Errors of identity files and names. Each says what to do; none leaves a file half-written.
#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    #[error(
        "{0:?} is not an identity name: use 1 to {MAX_IDENTITY_NAME} characters, lowercase letters a-z, digits, '-' \
         and '_', starting with a letter or a digit"
    )]
    BadName(String),
    #[error("no identity named {0} (`kolokol identity list` shows them)")]
    NotFound(String),
    #[error("an identity named {0} exists already; nothing was changed")]
    Exists(String),
    #[error("{0} exists already; nothing was written")]
    FileExists(String),
    #[error("this data directory holds {MAX_IDENTITIES} identities, the most it may")]
    TooMany,
    #[error("{path}: {source}")]
    File {
        path: String,
        #[source]
        source: KeyFileError,
    },
    #[error(
        "identity {0} is locked with a passphrase: give it on the terminal or in KOLOKOL_PASSPHRASE (a running node \
         unlocks it with `kolokol identity unlock {0}`)"
    )]
    NeedsPassphrase(String),
    #[error("wrong passphrase for identity {0}; nothing was changed")]
    WrongPassphrase(String),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// What `identity list` shows of one identity.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IdentityView {
    pub name: String,
    /// The author id (public key, hex); `None` while the identity is locked with a passphrase that was not given.
    pub author_id: Option<String>,
    /// Whether the key file is sealed with a passphrase.
    pub passphrase: bool,
    /// Whether publications are signed with it when no `--as` is given.
    pub default: bool,
}

/// A checked identity name (safe as a file name: no dot, no slash).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct IdentityName(String);

impl IdentityName {
    pub fn parse(name: &str) -> Result<IdentityName, KeystoreError> {
        let bad = || KeystoreError::BadName(name.chars().take(64).collect());
        let first = name.bytes().next().ok_or_else(bad)?;
        let allowed =
            |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_';
        if name.len() > MAX_IDENTITY_NAME
            || !(first.is_ascii_lowercase() || first.is_ascii_digit())
            || !name.bytes().all(allowed)
        {
            return Err(bad());
        }
        Ok(IdentityName(name.to_owned()))
    }

    pub fn default_name() -> IdentityName {
        IdentityName(DEFAULT_IDENTITY.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_default(&self) -> bool {
        self.0 == DEFAULT_IDENTITY
    }
}

impl std::fmt::Display for IdentityName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The identity files of one data directory.
#[derive(Debug, Clone)]
pub struct Keystore {
    root: PathBuf,
}

impl Keystore {
    /// The identities of the data directory `root`.
    pub fn new(root: &Path) -> Keystore {
        Keystore {
            root: root.to_path_buf(),
        }
    }

    fn dir(&self) -> PathBuf {
        self.root.join("identities")
    }

    /// Where identity `name` is kept.
    pub fn path(&self, name: &IdentityName) -> PathBuf {
        if name.is_default() {
            self.root.join("author.key")
        } else {
            self.dir().join(format!("{name}.key"))
        }
    }

    /// Names of the identities present: `default` first (if its file exists), then the others by name. Files in
    /// `identities/` that are not `NAME.key` with a valid name (a temporary file a crash left) are ignored.
    pub fn names(&self) -> Result<Vec<IdentityName>, KeystoreError> {
        let mut names = Vec::new();
        let default = IdentityName::default_name();
        if self.path(&default).exists() {
            names.push(default);
        }
        let dir = self.dir();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(names),
            Err(source) => return Err(io("cannot read", &dir, source)),
        };
        let mut others = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| io("cannot read", &dir, source))?;
            let file_name = entry.file_name();
            let Some(stem) = file_name.to_str().and_then(|n| n.strip_suffix(".key")) else {
                continue;
            };
            match IdentityName::parse(stem) {
                Ok(name) if !name.is_default() => others.push(name),
                _ => continue,
            }
            if others.len() > MAX_IDENTITIES {
                return Err(KeystoreError::TooMany);
            }
        }
        others.sort();
        names.extend(others);
        Ok(names)
    }

    /// Read and parse identity `name`'s file (nothing is decrypted).
    pub fn read(&self, name: &IdentityName) -> Result<KeyFile, KeystoreError> {
        let path = self.path(name);
        let bytes = read_capped(&path).map_err(|error| match error {
            ReadError::Io(source) if source.kind() == std::io::ErrorKind::NotFound => {
                KeystoreError::NotFound(name.to_string())
            }
            ReadError::Io(source) => io("cannot read", &path, source),
            ReadError::File(source) => file_error(&path, source),
        })?;
        // Tighten permissions an earlier tool may have loosened.
        let _ = fs::set_permissions(&path, fs::Permissions::from_mode(0o600));
        KeyFile::parse(&bytes).map_err(|source| file_error(&path, source))
    }

    /// The key of identity `name`, opened with the first of `passphrases` that fits if it is sealed.
    pub fn open(
        &self,
        name: &IdentityName,
        passphrases: &[Passphrase],
    ) -> Result<Keypair, KeystoreError> {
        open_file(name, self.read(name)?, passphrases)
    }

    /// Every identity, as `identity list` shows it (sealed ones without their author id).
    pub fn list(&self) -> Result<Vec<IdentityView>, KeystoreError> {
        self.names()?
            .into_iter()
            .map(|name| {
                let file = self.read(&name)?;
                let author_id = match &file {
                    KeyFile::Plain(secret) => {
                        Some(Keypair::from_secret_bytes(**secret).public().to_string())
                    }
                    KeyFile::Sealed(_) => None,
                };
                Ok(IdentityView {
                    default: name.is_default(),
                    name: name.0,
                    author_id,
                    passphrase: file.is_sealed(),
                })
            })
            .collect()
    }

    /// Make a new identity with a fresh random key, sealed if a passphrase is given. Refused (nothing written) if
    /// the name is taken.
    pub fn create(
        &self,
        name: &IdentityName,
        passphrase: Option<&Passphrase>,
    ) -> Result<Keypair, KeystoreError> {
        let secret = Zeroizing::new(rand::random::<[u8; 32]>());
        let file = match passphrase {
            Some(passphrase) => KeyFile::Sealed(
                Sealed::seal(&secret, passphrase).map_err(|e| file_error(&self.path(name), e))?,
            ),
            None => KeyFile::Plain(secret.clone()),
        };
        self.add(name, &file)?;
        Ok(Keypair::from_secret_bytes(*secret))
    }

    /// The default identity's key, made (plain, as every earlier version did) if the data directory has none yet.
    pub fn open_or_create_default(
        &self,
        passphrases: &[Passphrase],
    ) -> Result<Keypair, KeystoreError> {
        let name = IdentityName::default_name();
        match self.open(&name, passphrases) {
            Err(KeystoreError::NotFound(_)) => match self.create(&name, None) {
                // Another process made it in between: use theirs.
                Err(KeystoreError::Exists(_)) => self.open(&name, passphrases),
                other => other,
            },
            other => other,
        }
    }

    /// Copy identity `name`'s file to `dest` as it is (sealed stays sealed). Refused if `dest` exists.
    pub fn export(&self, name: &IdentityName, dest: &Path) -> Result<(), KeystoreError> {
        let file = self.read(name)?;
        write_new(dest, file.to_text().as_bytes()).map_err(|error| match error {
            WriteError::Exists => KeystoreError::FileExists(dest.display().to_string()),
            WriteError::Io(source) => io("cannot write", dest, source),
        })
    }

    /// Add the key in file `src` as identity `name`. The file must be a valid key file; a sealed one must open with
    /// `passphrase` (so a backup that cannot be opened is noticed now, not on the day it is needed). Refused,
    /// nothing written, if the name is taken. Returns the key.
    pub fn import(
        &self,
        name: &IdentityName,
        src: &Path,
        passphrase: Option<&Passphrase>,
    ) -> Result<Keypair, KeystoreError> {
        let bytes = read_capped(src).map_err(|error| match error {
            ReadError::Io(source) => io("cannot read", src, source),
            ReadError::File(source) => file_error(src, source),
        })?;
        let file = KeyFile::parse(&bytes).map_err(|source| file_error(src, source))?;
        if self.path(name).exists() {
            return Err(KeystoreError::Exists(name.to_string()));
        }
        let passphrases: Vec<Passphrase> = passphrase.into_iter().cloned().collect();
        let file_text = file.to_text();
        let key = open_file(name, file, &passphrases)?;
        self.add_text(name, file_text.as_bytes())?;
        Ok(key)
    }

    /// Seal identity `name` under `new` (opening it with `current` if it is sealed already), replacing its file.
    /// Copies of the plain key written before (in backups, or in blocks the disk has not reused yet) are not
    /// erased: see SECURITY.md.
    pub fn lock(
        &self,
        name: &IdentityName,
        current: &[Passphrase],
        new: &Passphrase,
    ) -> Result<(), KeystoreError> {
        let key = self.open(name, current)?;
        let path = self.path(name);
        let sealed = Sealed::seal(&Zeroizing::new(key.secret_bytes()), new)
            .map_err(|e| file_error(&path, e))?;
        replace(&path, KeyFile::Sealed(sealed).to_text().as_bytes())
            .map_err(|source| io("cannot write", &path, source))
    }

    fn add(&self, name: &IdentityName, file: &KeyFile) -> Result<(), KeystoreError> {
        self.add_text(name, file.to_text().as_bytes())
    }

    fn add_text(&self, name: &IdentityName, text: &[u8]) -> Result<(), KeystoreError> {
        if !name.is_default() {
            if self.names()?.len() > MAX_IDENTITIES {
                return Err(KeystoreError::TooMany);
            }
            let dir = self.dir();
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(|source| io("cannot create", &dir, source))?;
        }
        let path = self.path(name);
        write_new(&path, text).map_err(|error| match error {
            WriteError::Exists => KeystoreError::Exists(name.to_string()),
            WriteError::Io(source) => io("cannot write", &path, source),
        })
    }
}

fn open_file(
    name: &IdentityName,
    file: KeyFile,
    passphrases: &[Passphrase],
) -> Result<Keypair, KeystoreError> {
    match file {
        KeyFile::Plain(secret) => Ok(Keypair::from_secret_bytes(*secret)),
        KeyFile::Sealed(sealed) => {
            if passphrases.is_empty() {
                return Err(KeystoreError::NeedsPassphrase(name.to_string()));
            }
            for passphrase in passphrases {
                match sealed.open(passphrase) {
                    Ok(secret) => return Ok(Keypair::from_secret_bytes(*secret)),
                    Err(KeyFileError::WrongPassphrase) => continue,
                    Err(other) => {
                        return Err(KeystoreError::File {
                            path: name.to_string(),
                            source: other,
                        });
                    }
                }
            }
            Err(KeystoreError::WrongPassphrase(name.to_string()))
        }
    }
}

fn io(what: &'static str, path: &Path, source: std::io::Error) -> KeystoreError {
    KeystoreError::Io {
        what,
        path: path.display().to_string(),
        source,
    }
}

fn file_error(path: &Path, source: KeyFileError) -> KeystoreError {
    KeystoreError::File {
        path: path.display().to_string(),
        source,
    }
}

enum ReadError {
    Io(std::io::Error),
    File(KeyFileError),
}

/// A file's bytes, refusing before reading one longer than a key file can be.
fn read_capped(path: &Path) -> Result<Zeroizing<Vec<u8>>, ReadError> {
    let file = fs::File::open(path).map_err(ReadError::Io)?;
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_KEY_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(ReadError::File(KeyFileError::Damaged("too long")));
    }
    Ok(bytes)
}

enum WriteError {
    Exists,
    Io(std::io::Error),
}

/// Write a temporary file beside `path` (mode 0600), synced, and return its path.
fn write_temp(path: &Path, contents: &[u8]) -> std::io::Result<PathBuf> {
    let parent = path.parent().unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = parent.join(format!(
        ".{file_name}.{}.tmp",
        hex::encode(rand::random::<[u8; 6]>())
    ));
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()
    })();
    match written {
        Ok(()) => Ok(tmp),
        Err(error) => {
            let _ = fs::remove_file(&tmp);
            Err(error)
        }
    }
}

/// Create `path` with `contents`, atomically, never replacing a file that is there: the temporary file is
/// hard-linked to its name (which fails if the name is taken), then its temporary name removed.
fn write_new(path: &Path, contents: &[u8]) -> Result<(), WriteError> {
    if path.exists() {
        return Err(WriteError::Exists);
    }
    let tmp = write_temp(path, contents).map_err(WriteError::Io)?;
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(WriteError::Exists);
        }
        Err(error) => return Err(WriteError::Io(error)),
    }
    sync_parent(path).map_err(WriteError::Io)
}

/// Replace `path` with `contents` atomically (temporary file, synced, renamed over it).
fn replace(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let tmp = write_temp(path, contents)?;
    if let Err(error) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(error);
    }
    sync_parent(path)
}

fn sync_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => crate::durable::sync_dir(parent),
        _ => Ok(()),
    }
}

#[cfg(test)]
#[path = "keystore_tests.rs"]
mod tests;
