//! The data directory: one directory is one node, and everything the node writes lives inside it.
//!
//! Layout:
//! ```text
//! lock            held (flock) while a node runs; holds the pid of that node
//! author.key      the `default` author identity's Ed25519 key (plain hex, or sealed with a passphrase), mode 0600
//! identities/     the other author identities, NAME.key each, mode 0600 (folder 0700; see `keystore.rs`)
//! api.token       secret the local API demands on every API request, mode 0600
//! api.addr        the address the running node's API listens on (written by `up`, read by the CLI), mode 0600
//! catalog.sqlite  the SQLite database (catalog, torrents, peers, settings), WAL mode
//! content/        published data, one folder per infohash
//! downloads/      fetched data (unless `get -o DIR` chose another folder)
//! engine/         BitTorrent engine state
//! bridge.key, bridge-invitations.json, bridges.json, proxy-rules.json
//!                 the proxy's and the bridge's saved state, mode 0600 (see `proxy/saved.rs`)
//! ```
//!
//! The node's wire identity is not here: it is new at every start and never written (`wire_identity.rs`). A
//! `node.key` left by an older version is overwritten and deleted at start.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use fs4::fs_std::FileExt;

/// Errors opening the data directory.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error("cannot create data directory {path}: {source}")]
    Create {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "data directory {path} is in use by another kolokol node{pid}; stop it or choose another --data-dir"
    )]
    Locked { path: String, pid: String },
    #[error("cannot lock data directory {path}: {source}")]
    Lock {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "no data directory given and no per-user data directory is known on this system; pass --data-dir"
    )]
    NoDefault,
}

/// An exclusively locked data directory. The lock is released when this value is dropped (or the process dies).
/// Its paths ([`DataPaths`]) can be handed out without the lock: the node keeps the lock itself and drops it last.
#[derive(Debug)]
pub struct DataDir {
    paths: DataPaths,
    _lock: File,
}

/// Where things live inside a data directory (no lock: see [`DataDir`]).
#[derive(Debug, Clone)]
pub struct DataPaths {
    root: PathBuf,
}

impl std::ops::Deref for DataDir {
    type Target = DataPaths;

    fn deref(&self) -> &DataPaths {
        &self.paths
    }
}

impl DataDir {
    /// The platform's per-user data directory for kolokol (e.g. `~/.local/share/kolokol`).
    pub fn default_path() -> Result<PathBuf, DataDirError> {
        directories::ProjectDirs::from("org", "kolokol", "kolokol")
            .map(|dirs| dirs.data_dir().to_path_buf())
            .ok_or(DataDirError::NoDefault)
    }

    /// Create `root` if needed (mode 0700) and take its lock, refusing if another node holds it.
    pub fn lock(root: &Path) -> Result<DataDir, DataDirError> {
        let create = |path: &Path| {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(path)
                .map_err(|source| DataDirError::Create {
                    path: path.display().to_string(),
                    source,
                })
        };
        create(root)?;
        let lock_path = root.join("lock");
        let lock_error = |source| DataDirError::Lock {
            path: root.display().to_string(),
            source,
        };
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .map_err(lock_error)?;
        match lock.try_lock_exclusive() {
            Ok(true) => {}
            Ok(false) => {
                let mut pid = String::new();
                // The pid is only for the message; a lock file we cannot read still means "locked".
                let _ = Read::by_ref(&mut lock).take(32).read_to_string(&mut pid);
                let pid = pid.trim();
                let pid = if pid.chars().all(|c| c.is_ascii_digit()) && !pid.is_empty() {
                    format!(" (pid {pid})")
                } else {
                    String::new()
                };
                return Err(DataDirError::Locked {
                    path: root.display().to_string(),
                    pid,
                });
            }
            Err(source) => return Err(lock_error(source)),
        }
        lock.set_len(0).map_err(lock_error)?;
        lock.seek(SeekFrom::Start(0)).map_err(lock_error)?;
        write!(lock, "{}", std::process::id()).map_err(lock_error)?;
        for sub in ["content", "downloads", "engine"] {
            create(&root.join(sub))?;
        }
        // An older directory may have been created with looser permissions.
        let _ = fs::set_permissions(root, fs::Permissions::from_mode(0o700));
        Ok(DataDir {
            paths: DataPaths {
                root: root.to_path_buf(),
            },
            _lock: lock,
        })
    }

    /// The directory's paths, for parts of the node that must not hold the lock.
    pub fn paths(&self) -> &DataPaths {
        &self.paths
    }
}

impl DataPaths {
    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn catalog_path(&self) -> PathBuf {
        self.root.join("catalog.sqlite")
    }
    /// Where older versions kept the node's wire key; only ever deleted now (`wire_identity::forget_old_key_file`).
    pub fn old_node_key_path(&self) -> PathBuf {
        self.root.join("node.key")
    }
    pub fn token_path(&self) -> PathBuf {
        token_path(&self.root)
    }
    pub fn content_dir(&self) -> PathBuf {
        self.root.join("content")
    }
    pub fn downloads_dir(&self) -> PathBuf {
        self.root.join("downloads")
    }
    pub fn engine_dir(&self) -> PathBuf {
        self.root.join("engine")
    }
}

/// Where the API token of the node using data directory `root` is kept (the CLI reads it from there).
pub fn token_path(root: &Path) -> PathBuf {
    root.join("api.token")
}

/// Where `up` writes the address its API listens on, so that the CLI finds a node started with `--api
/// 127.0.0.1:0` (a port the system picked, which a web page cannot guess).
pub fn api_addr_path(root: &Path) -> PathBuf {
    root.join("api.addr")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_with_pid_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("node");
        let first = DataDir::lock(&root).unwrap();
        let err = DataDir::lock(&root).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("in use by another kolokol node"),
            "{message}"
        );
        assert!(
            message.contains(&format!("pid {}", std::process::id())),
            "{message}"
        );
        drop(first);
        DataDir::lock(&root).unwrap();
        let mode = fs::metadata(&root).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
}
