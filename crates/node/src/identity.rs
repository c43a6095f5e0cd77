//! Secrets kept in the data directory (the API token), created on first start with mode 0600. Author keys are
//! `keystore.rs`'s; the wire key is never saved (`wire_identity.rs`).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use rand::RngCore;

/// Errors loading or creating a key file.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is damaged: expected {expected} hex characters")]
    Damaged { path: String, expected: usize },
}

/// Load the 32-byte secret stored (as hex) at `path`, or create a random one.
pub fn load_or_create_secret(path: &Path) -> Result<[u8; 32], IdentityError> {
    match fs::read(path) {
        Ok(contents) => {
            let damaged = || IdentityError::Damaged {
                path: path.display().to_string(),
                expected: 64,
            };
            let text = std::str::from_utf8(&contents).map_err(|_| damaged())?;
            let bytes = hex::decode(text.trim()).map_err(|_| damaged())?;
            let secret: [u8; 32] = bytes.try_into().map_err(|_| damaged())?;
            // Tighten permissions an earlier tool may have loosened.
            let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o600));
            Ok(secret)
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let mut secret = [0u8; 32];
            rand::rng().fill_bytes(&mut secret);
            write_secret_file(path, hex::encode(secret).as_bytes())?;
            Ok(secret)
        }
        Err(source) => Err(IdentityError::Read {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// Write a new secret file atomically: a 0600 temporary file, synced, then renamed into place, so a crash never
/// leaves a half-written key behind.
pub(crate) fn write_secret_file(path: &Path, contents: &[u8]) -> Result<(), IdentityError> {
    let write_error = |source| IdentityError::Write {
        path: path.display().to_string(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(write_error)?;
    file.write_all(contents).map_err(write_error)?;
    file.sync_all().map_err(write_error)?;
    drop(file);
    fs::rename(&tmp, path).map_err(write_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_created_once_with_mode_0600_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api.token");
        let first = load_or_create_secret(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = load_or_create_secret(&path).unwrap();
        assert_eq!(first, again);
    }

    #[test]
    fn damaged_secret_file_is_an_error_and_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api.token");
        fs::write(&path, "not hex").unwrap();
        let err = load_or_create_secret(&path).unwrap_err();
        assert!(err.to_string().contains("damaged"), "{err}");
        assert_eq!(fs::read_to_string(&path).unwrap(), "not hex");
    }
}
