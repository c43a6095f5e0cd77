//! The running node's author identities: the keys it can sign with, by name.
//!
//! Owner: this type, created once by `Node::start` and shared (behind an `Arc`) by publishing (signs with the
//! identity a publish names), discovery (puts each identity's feed head with that identity's key), mirroring and
//! the API (a record of any local identity is "own"). The files are the [`Keystore`]'s; the CLI adds identities
//! there, and the node takes them in when a publish names one it has not loaded (a plain key) or when `identity
//! unlock` gives it a sealed one's passphrase. Keys are never removed while the node runs.
//!
//! Lock order: the map's lock is held only to copy an `Arc` in or out, never across a file read or an `await`.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use kolokol_core::keys::{AuthorId, Keypair};

use crate::keyfile::Passphrase;
use crate::keystore::{IdentityName, IdentityView, Keystore, KeystoreError};

pub(crate) struct Identities {
    store: Keystore,
    default: Arc<Keypair>,
    /// Identities other than `default` that this node has loaded, by name.
    others: RwLock<BTreeMap<IdentityName, Arc<Keypair>>>,
}

impl Identities {
    /// Load every identity of the data directory (making the default one if there is none yet); a sealed one must
    /// open with one of `passphrases`, or the node does not start.
    pub fn load(store: Keystore, passphrases: &[Passphrase]) -> Result<Identities, KeystoreError> {
        let default = Arc::new(store.open_or_create_default(passphrases)?);
        let mut others = BTreeMap::new();
        for name in store.names()? {
            if !name.is_default() {
                let key = store.open(&name, passphrases)?;
                others.insert(name, Arc::new(key));
            }
        }
        Ok(Identities {
            store,
            default,
            others: RwLock::new(others),
        })
    }

    /// The key publications are signed with when no identity is named.
    pub fn default_key(&self) -> Arc<Keypair> {
        self.default.clone()
    }

    /// The key of identity `name` (`None`: the default). One this node has not loaded yet is read from the data
    /// directory (a small file); a sealed one it has not been given the passphrase of is an error.
    pub fn key(&self, name: Option<&str>) -> Result<Arc<Keypair>, KeystoreError> {
        let Some(name) = name else {
            return Ok(self.default_key());
        };
        let name = IdentityName::parse(name)?;
        if name.is_default() {
            return Ok(self.default_key());
        }
        if let Some(key) = self.read_map().get(&name) {
            return Ok(key.clone());
        }
        let key = self.store.open(&name, &[])?;
        Ok(self.insert(name, key))
    }

    /// Open sealed identity `name` with `passphrase` and keep its key for this node's life. Blocking (Argon2 takes
    /// a fraction of a second and 64 MiB): call it off the async threads.
    pub fn unlock(
        &self,
        name: &str,
        passphrase: Option<&Passphrase>,
    ) -> Result<IdentityView, KeystoreError> {
        let name = IdentityName::parse(name)?;
        let passphrases: Vec<Passphrase> = passphrase.into_iter().cloned().collect();
        let key = if name.is_default() {
            self.default_key()
        } else {
            let key = self.store.open(&name, &passphrases)?;
            self.insert(name.clone(), key)
        };
        Ok(IdentityView {
            default: name.is_default(),
            passphrase: self.store.read(&name)?.is_sealed(),
            name: name.as_str().to_owned(),
            author_id: Some(key.public().to_string()),
        })
    }

    /// The loaded key whose public key is `author`.
    pub fn by_author(&self, author: &AuthorId) -> Option<Arc<Keypair>> {
        if self.default.public() == *author {
            return Some(self.default_key());
        }
        self.read_map()
            .values()
            .find(|key| key.public() == *author)
            .cloned()
    }

    /// Whether `author` is one of this node's loaded identities.
    pub fn is_own(&self, author: &AuthorId) -> bool {
        self.by_author(author).is_some()
    }

    /// The loaded identities, default first.
    pub fn views(&self) -> Vec<IdentityView> {
        let others: Vec<(IdentityName, Arc<Keypair>)> = self
            .read_map()
            .iter()
            .map(|(name, key)| (name.clone(), key.clone()))
            .collect();
        let mut views = vec![self.view(&IdentityName::default_name(), &self.default, true)];
        for (name, key) in &others {
            views.push(self.view(name, key, false));
        }
        views
    }

    fn view(&self, name: &IdentityName, key: &Keypair, default: bool) -> IdentityView {
        IdentityView {
            name: name.as_str().to_owned(),
            author_id: Some(key.public().to_string()),
            passphrase: self.store.read(name).is_ok_and(|f| f.is_sealed()),
            default,
        }
    }

    fn insert(&self, name: IdentityName, key: Keypair) -> Arc<Keypair> {
        let mut map = self.others.write().unwrap_or_else(|e| e.into_inner());
        map.entry(name).or_insert_with(|| Arc::new(key)).clone()
    }

    fn read_map(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<IdentityName, Arc<Keypair>>> {
        self.others.read().unwrap_or_else(|e| e.into_inner())
    }
}
