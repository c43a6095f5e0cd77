//! The owner of the node's wire identity: the Ed25519 node key that every wire handshake proves.
//!
//! The key is ephemeral (issue 12 part 3): made fresh at every start, never written to disk, and renewed while
//! the node runs when core's `RotationPolicy` says so (`rotation.rs` drives it: at least daily, and when the node's
//! addresses change). Everything that uses the key reads the current one from here at the moment it needs it
//! (`current`), so a renewal is seen everywhere at once; `subscribe` tells the LAN announcer and the connections
//! that it happened. Only the rotation driver renews it (`renew`).
//!
//! With the key comes the LAN instance: 16 random bytes the LAN announces carry so that the node recognises its own
//! announces. It is new with every key, so an announce ties nothing to an earlier one.
//!
//! Older versions kept the key in `node.key` in the data directory. That file is overwritten and deleted at start
//! ([`forget_old_key_file`]): its key was sent to every peer this node ever met, so a seized device holding it
//! would prove that this device was the node those peers saw. Nothing reads it.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use kolokol_core::keys::{Keypair, NodeId};
use rand::RngCore;
use tokio::sync::watch;

/// One wire identity: the key and the LAN instance that goes with it.
pub(crate) struct Identity {
    pub key: Keypair,
    /// What LAN announces carry while this key is in use (never the key itself).
    pub lan_instance: [u8; 16],
}

impl Identity {
    fn fresh() -> Identity {
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        let mut lan_instance = [0u8; 16];
        rand::rng().fill_bytes(&mut lan_instance);
        let key = Keypair::from_secret_bytes(secret);
        // The secret's only copy is inside the key now.
        secret.fill(0);
        Identity { key, lan_instance }
    }

    pub fn id(&self) -> NodeId {
        self.key.public()
    }
}

/// The node's current wire identity; see the module documentation.
pub(crate) struct WireIdentity {
    current: watch::Sender<Arc<Identity>>,
}

impl WireIdentity {
    /// A fresh identity, for a node that is starting.
    pub fn fresh() -> WireIdentity {
        WireIdentity {
            current: watch::Sender::new(Arc::new(Identity::fresh())),
        }
    }

    /// The identity in use now. A handshake holds on to the one it started with; [`WireIdentity::is_current`] tells
    /// whether it is still the node's.
    pub fn current(&self) -> Arc<Identity> {
        self.current.borrow().clone()
    }

    /// The node id in use now.
    pub fn id(&self) -> NodeId {
        self.current.borrow().id()
    }

    /// Whether `identity` is the one in use now (not replaced while a handshake ran).
    pub fn is_current(&self, identity: &Arc<Identity>) -> bool {
        Arc::ptr_eq(&self.current.borrow(), identity)
    }

    /// Told of every renewal.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Identity>> {
        self.current.subscribe()
    }

    /// Replace the identity with a fresh one (the rotation driver's call). Returns the new node id.
    pub fn renew(&self) -> NodeId {
        let fresh = Arc::new(Identity::fresh());
        let id = fresh.id();
        self.current.send_replace(fresh);
        id
    }
}

/// Overwrite and delete the node key file an older version left in the data directory (see the module
/// documentation). Best effort: a file that cannot be removed is reported and ignored, never read.
pub(crate) fn forget_old_key_file(path: &Path) {
    match fs::symlink_metadata(path) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return,
        Err(error) => {
            tracing::warn!(%error, path = %path.display(), "cannot check for an old node key file");
            return;
        }
        // Overwrite only a regular file; a link or anything else is only removed.
        Ok(meta) if meta.is_file() => {
            let zeros = vec![0u8; usize::try_from(meta.len()).unwrap_or(0).min(4096)];
            let overwritten = OpenOptions::new().write(true).open(path).and_then(|mut f| {
                f.write_all(&zeros)?;
                f.sync_all()
            });
            if let Err(error) = overwritten {
                tracing::warn!(%error, path = %path.display(), "cannot overwrite the old node key file");
            }
        }
        Ok(_) => {}
    }
    match fs::remove_file(path) {
        Ok(()) => tracing::info!(
            path = %path.display(),
            "deleted the node key an older version kept: the node's wire identity is new at every start now"
        ),
        Err(error) => {
            tracing::warn!(%error, path = %path.display(), "cannot delete the old node key file; it is not used")
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is the failure report

    use super::*;

    #[test]
    fn every_identity_is_new_and_renewal_is_seen_by_subscribers() {
        let identity = WireIdentity::fresh();
        let other = WireIdentity::fresh();
        assert_ne!(identity.id(), other.id());
        let first = identity.current();
        let mut watcher = identity.subscribe();
        assert!(identity.is_current(&first));
        let renewed = identity.renew();
        assert_ne!(renewed, first.id());
        assert_eq!(identity.id(), renewed);
        assert!(!identity.is_current(&first));
        assert_ne!(identity.current().lan_instance, first.lan_instance);
        assert!(watcher.has_changed().unwrap());
        assert_eq!(watcher.borrow_and_update().id(), renewed);
    }

    #[test]
    fn an_old_node_key_file_is_overwritten_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        fs::write(&path, "ab".repeat(32)).unwrap();
        forget_old_key_file(&path);
        assert!(!path.exists());
        // No file: nothing to do.
        forget_old_key_file(&path);
        assert!(!path.exists());
    }
}
