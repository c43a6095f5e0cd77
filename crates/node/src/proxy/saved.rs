//! What the proxy and the bridge keep in the data directory: small files, each written whole and atomically (a 0600
//! temporary file, synced, renamed into place), read back with a size cap and checked entry by entry.
//!
//! ```text
//! bridge.key               the bridge's X25519 key pair, hex (private then public), created on the first --bridge start
//! bridge-invitations.json  bridge side: the invitations handed out (their secrets: mode 0600)
//! bridges.json             client side: the invitation codes added with `bridge add` (secrets too: mode 0600)
//! proxy-rules.json         the user's saved routing rules, "PATTERN=direct|bridge"
//! ```
//!
//! Files rather than SQLite tables: they hold secrets that, like the node's keys, belong in 0600 files; they are a
//! few kilobytes, changed by hand-typed commands, and rewritten whole.

use std::fs;
use std::io::Read;
use std::path::Path;

use kolokol_core::detour::{Host, Rule};
use kolokol_proxy::{BridgeKey, Invitation, InviteSecret};
use serde::{Deserialize, Serialize};

use crate::identity::{IdentityError, write_secret_file};

pub(crate) const BRIDGE_KEY_FILE: &str = "bridge.key";
pub(crate) const INVITATIONS_FILE: &str = "bridge-invitations.json";
pub(crate) const BRIDGES_FILE: &str = "bridges.json";
pub(crate) const RULES_FILE: &str = "proxy-rules.json";

/// Largest file read back; the real ones are a few kilobytes.
const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// Most bridges a client keeps.
pub const MAX_BRIDGES: usize = 64;
/// Most invitations a bridge keeps (each is checked on every tunnel handshake).
pub const MAX_INVITATIONS: usize = 1024;

/// Why a saved file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SavedError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Write(#[from] IdentityError),
    #[error("{path} is larger than {MAX_FILE_BYTES} bytes; it is not a file kolokol wrote")]
    TooLarge { path: String },
    /// (The damage is in the message rather than a source, as for `ProxyStartError`: the CLI prints the chain.)
    #[error("{path} is damaged: {damage}")]
    Damaged {
        path: String,
        damage: SavedFileDamage,
    },
    #[error("cannot encode {path}: {source}")]
    Encode {
        path: String,
        #[source]
        source: serde_json::Error,
    },
}

/// What is wrong with a saved file. Each cause is part of the message, not a source (see [`SavedError::Damaged`]).
#[derive(Debug, thiserror::Error)]
pub enum SavedFileDamage {
    #[error("{0}")]
    Json(serde_json::Error),
    #[error("expected 128 hex characters")]
    BridgeKeyText,
    #[error("{0}")]
    BridgeKey(kolokol_proxy::BridgeKeyError),
    #[error("no key could be generated: {0}")]
    BridgeKeyGeneration(kolokol_proxy::BridgeKeyError),
    #[error("more than {MAX_BRIDGES} bridges")]
    TooManyBridges,
    #[error("bridge {index}: {cause}")]
    Bridge {
        index: usize,
        cause: kolokol_proxy::InvitationError,
    },
    #[error("bridge {0} is listed twice")]
    BridgeTwice(usize),
    #[error("more than {MAX_INVITATIONS} invitations")]
    TooManyInvitations,
    #[error("invitation {0}: the secret is not 64 hex characters")]
    InvitationSecret(usize),
    #[error("invitation {0}: the id does not match the secret")]
    InvitationId(usize),
    #[error("invitation {index}: {cause}")]
    InvitationHost {
        index: usize,
        cause: kolokol_core::detour::HostError,
    },
    #[error("invitation {0}: port 0")]
    InvitationPort(usize),
    #[error("invitation {0} is listed twice")]
    InvitationTwice(usize),
    #[error("too many rules")]
    TooManyRules,
    #[error("{0}")]
    Rule(kolokol_core::detour::RuleError),
}

/// A bridge the user added on this (client) node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SavedBridge {
    pub invitation: Invitation,
    /// Unix time it was added.
    pub added: u64,
}

/// An invitation this (bridge) node handed out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SavedInvitation {
    pub secret: InviteSecret,
    pub host: Host,
    pub port: u16,
    /// Unix time it was made.
    pub created: u64,
}

impl SavedInvitation {
    pub fn address(&self) -> String {
        if self.host.as_str().contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

#[derive(Serialize, Deserialize)]
struct BridgeEntry {
    code: String,
    added: u64,
}

#[derive(Serialize, Deserialize)]
struct InvitationEntry {
    /// For people reading the file; recomputed from the secret when read.
    id: String,
    secret: String,
    host: String,
    port: u16,
    created: u64,
}

/// The bridge key at `path`, or a new one written there (mode 0600) if there is none.
pub(crate) fn load_or_create_bridge_key(path: &Path) -> Result<BridgeKey, SavedError> {
    match read_capped(path)? {
        Some(bytes) => {
            let damaged = |damage: SavedFileDamage| SavedError::Damaged {
                path: path.display().to_string(),
                damage,
            };
            let text =
                std::str::from_utf8(&bytes).map_err(|_| damaged(SavedFileDamage::BridgeKeyText))?;
            let raw =
                hex::decode(text.trim()).map_err(|_| damaged(SavedFileDamage::BridgeKeyText))?;
            BridgeKey::from_bytes(&raw).map_err(|e| damaged(SavedFileDamage::BridgeKey(e)))
        }
        None => {
            let key = BridgeKey::generate().map_err(|e| SavedError::Damaged {
                path: path.display().to_string(),
                damage: SavedFileDamage::BridgeKeyGeneration(e),
            })?;
            write_secret_file(path, hex::encode(key.to_bytes()).as_bytes())?;
            Ok(key)
        }
    }
}

/// The client's bridges; none if the file does not exist.
pub(crate) fn load_bridges(path: &Path) -> Result<Vec<SavedBridge>, SavedError> {
    let Some(entries) = read_json::<Vec<BridgeEntry>>(path)? else {
        return Ok(Vec::new());
    };
    let damaged = |damage: SavedFileDamage| SavedError::Damaged {
        path: path.display().to_string(),
        damage,
    };
    if entries.len() > MAX_BRIDGES {
        return Err(damaged(SavedFileDamage::TooManyBridges));
    }
    let mut out: Vec<SavedBridge> = Vec::with_capacity(entries.len());
    for (index, entry) in entries.into_iter().enumerate() {
        let invitation = Invitation::parse(&entry.code).map_err(|cause| {
            damaged(SavedFileDamage::Bridge {
                index: index + 1,
                cause,
            })
        })?;
        if out.iter().any(|b| b.invitation.secret == invitation.secret) {
            return Err(damaged(SavedFileDamage::BridgeTwice(index + 1)));
        }
        out.push(SavedBridge {
            invitation,
            added: entry.added,
        });
    }
    Ok(out)
}

pub(crate) fn save_bridges(path: &Path, bridges: &[SavedBridge]) -> Result<(), SavedError> {
    let entries: Vec<BridgeEntry> = bridges
        .iter()
        .map(|b| BridgeEntry {
            code: b.invitation.to_code(),
            added: b.added,
        })
        .collect();
    write_json(path, &entries)
}

/// The bridge's invitations; none if the file does not exist.
pub(crate) fn load_invitations(path: &Path) -> Result<Vec<SavedInvitation>, SavedError> {
    let Some(entries) = read_json::<Vec<InvitationEntry>>(path)? else {
        return Ok(Vec::new());
    };
    let damaged = |damage: SavedFileDamage| SavedError::Damaged {
        path: path.display().to_string(),
        damage,
    };
    if entries.len() > MAX_INVITATIONS {
        return Err(damaged(SavedFileDamage::TooManyInvitations));
    }
    let mut out: Vec<SavedInvitation> = Vec::with_capacity(entries.len());
    for (index, entry) in entries.into_iter().enumerate() {
        let n = index + 1;
        let secret: [u8; 32] = hex::decode(entry.secret.trim())
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| damaged(SavedFileDamage::InvitationSecret(n)))?;
        let secret = InviteSecret::from_bytes(secret);
        if secret.id() != entry.id {
            return Err(damaged(SavedFileDamage::InvitationId(n)));
        }
        let host = Host::parse(&entry.host)
            .map_err(|cause| damaged(SavedFileDamage::InvitationHost { index: n, cause }))?;
        if entry.port == 0 {
            return Err(damaged(SavedFileDamage::InvitationPort(n)));
        }
        if out.iter().any(|i| i.secret == secret) {
            return Err(damaged(SavedFileDamage::InvitationTwice(n)));
        }
        out.push(SavedInvitation {
            secret,
            host,
            port: entry.port,
            created: entry.created,
        });
    }
    Ok(out)
}

pub(crate) fn save_invitations(
    path: &Path,
    invitations: &[SavedInvitation],
) -> Result<(), SavedError> {
    let entries: Vec<InvitationEntry> = invitations
        .iter()
        .map(|i| InvitationEntry {
            id: i.secret.id(),
            secret: hex::encode(i.secret.to_bytes()),
            host: i.host.to_string(),
            port: i.port,
            created: i.created,
        })
        .collect();
    write_json(path, &entries)
}

/// The saved rules, in the order they were added; none if the file does not exist.
pub(crate) fn load_rules(path: &Path) -> Result<Vec<Rule>, SavedError> {
    let Some(entries) = read_json::<Vec<String>>(path)? else {
        return Ok(Vec::new());
    };
    let damaged = |damage: SavedFileDamage| SavedError::Damaged {
        path: path.display().to_string(),
        damage,
    };
    if entries.len() > kolokol_core::detour::MAX_RULES {
        return Err(damaged(SavedFileDamage::TooManyRules));
    }
    let rules = entries
        .iter()
        .map(|text| Rule::parse(text).map_err(|e| damaged(SavedFileDamage::Rule(e))))
        .collect::<Result<Vec<Rule>, SavedError>>()?;
    // The same check the running proxy applies (no two rules for one pattern).
    kolokol_core::detour::Rules::new(rules.clone())
        .map_err(|e| damaged(SavedFileDamage::Rule(e)))?;
    Ok(rules)
}

pub(crate) fn save_rules(path: &Path, rules: &[Rule]) -> Result<(), SavedError> {
    let entries: Vec<String> = rules.iter().map(Rule::to_string).collect();
    write_json(path, &entries)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, SavedError> {
    let Some(bytes) = read_capped(path)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| SavedError::Damaged {
            path: path.display().to_string(),
            damage: SavedFileDamage::Json(e),
        })
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), SavedError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|source| SavedError::Encode {
        path: path.display().to_string(),
        source,
    })?;
    bytes.push(b'\n');
    write_secret_file(path, &bytes)?;
    Ok(())
}

/// The file's bytes (at most [`MAX_FILE_BYTES`]), or `None` if it does not exist.
fn read_capped(path: &Path) -> Result<Option<Vec<u8>>, SavedError> {
    let read_error = |source| SavedError::Read {
        path: path.display().to_string(),
        source,
    };
    let file = match fs::File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(read_error(source)),
    };
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(SavedError::TooLarge {
            path: path.display().to_string(),
        });
    }
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn invitation(seed: u8) -> Invitation {
        Invitation {
            host: Host::parse("203.0.113.9").unwrap(),
            port: 443,
            bridge_key: [seed; 32],
            secret: InviteSecret::from_bytes([seed; 32]),
        }
    }

    #[test]
    fn bridge_key_is_created_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(BRIDGE_KEY_FILE);
        let key = load_or_create_bridge_key(&path).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            load_or_create_bridge_key(&path).unwrap().public(),
            key.public()
        );
        fs::write(&path, "00".repeat(64)).unwrap();
        let error = load_or_create_bridge_key(&path).unwrap_err();
        assert!(error.to_string().contains("damaged"), "{error}");
        assert_eq!(fs::read_to_string(&path).unwrap(), "00".repeat(64));
    }

    #[test]
    fn bridges_round_trip_and_damage_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(BRIDGES_FILE);
        assert!(load_bridges(&path).unwrap().is_empty());
        let bridges = vec![
            SavedBridge {
                invitation: invitation(1),
                added: 10,
            },
            SavedBridge {
                invitation: invitation(2),
                added: 20,
            },
        ];
        save_bridges(&path, &bridges).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(load_bridges(&path).unwrap(), bridges);

        // One flipped character in a code breaks its checksum: the file is refused, not half-read.
        let text = fs::read_to_string(&path).unwrap();
        let code = invitation(2).to_code();
        let mut flipped = code.clone().into_bytes();
        let at = flipped.len() - 2;
        flipped[at] = if flipped[at] == b'a' { b'b' } else { b'a' };
        fs::write(
            &path,
            text.replace(&code, std::str::from_utf8(&flipped).unwrap()),
        )
        .unwrap();
        let error = load_bridges(&path).unwrap_err().to_string();
        assert!(error.contains("bridge 2"), "{error}");

        fs::write(&path, "{ not json").unwrap();
        assert!(matches!(
            load_bridges(&path),
            Err(SavedError::Damaged { .. })
        ));
        fs::write(&path, vec![b' '; MAX_FILE_BYTES as usize + 1]).unwrap();
        assert!(matches!(
            load_bridges(&path),
            Err(SavedError::TooLarge { .. })
        ));
    }

    #[test]
    fn invitations_round_trip_and_a_wrong_id_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(INVITATIONS_FILE);
        let saved = vec![SavedInvitation {
            secret: InviteSecret::from_bytes([5; 32]),
            host: Host::parse("bridge.example.org").unwrap(),
            port: 8443,
            created: 99,
        }];
        save_invitations(&path, &saved).unwrap();
        assert_eq!(load_invitations(&path).unwrap(), saved);
        let text = fs::read_to_string(&path).unwrap();
        let id = saved[0].secret.id();
        fs::write(&path, text.replace(&id, "00000000")).unwrap();
        let error = load_invitations(&path).unwrap_err().to_string();
        assert!(error.contains("does not match"), "{error}");
    }

    #[test]
    fn rules_round_trip_and_conflicts_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(RULES_FILE);
        let rules = vec![
            Rule::parse("example.org=bridge").unwrap(),
            Rule::parse("*=direct").unwrap(),
        ];
        save_rules(&path, &rules).unwrap();
        assert_eq!(load_rules(&path).unwrap(), rules);
        fs::write(&path, r#"["a.org=bridge", "a.org=direct"]"#).unwrap();
        assert!(load_rules(&path).is_err());
        fs::write(&path, r#"["a.org=sideways"]"#).unwrap();
        assert!(load_rules(&path).is_err());
    }
}
