//! The saved DHT state: routing-table nodes kept across restarts, so a node that once saw the network needs no
//! bootstrap server to find it again.
//!
//! File format (strict bencode, at most [`MAX_STATE_FILE_BYTES`]):
//!
//! ```text
//! d 3:net 32:<network tag>  5:nodes <6 bytes per node: IPv4, port big-endian>  6:publici<0|1>e  1:v i1e e
//! ```
//!
//! `public` records whether the run that learned these nodes was allowed to use the public BitTorrent routers.
//! A node started with `no_default_bootstrap` ignores a file with `public` set: its nodes may belong to the public
//! DHT, which such a node must never contact. A file of another network (`net`) is ignored too.
//!
//! Writes are atomic (temporary file in the same directory, fsync, rename, fsync of the directory), so a crash
//! leaves either the old file or the new one. Reads check the size before reading and every byte after.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};

use kolokol_core::bencode::{self, DecodeLimits, Dict, Value};

use crate::feed::network_tag;

/// Most routing-table nodes saved.
pub const MAX_SAVED_NODES: usize = 64;
/// Largest state file read; a valid one is well under 1 KiB.
pub const MAX_STATE_FILE_BYTES: u64 = 4096;
/// State file format version.
pub const STATE_VERSION: i64 = 1;

/// The DHT state saved in the data directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DhtState {
    /// [`network_tag`] of the network the nodes were learned in.
    pub network_tag: [u8; 32],
    /// Whether the public BitTorrent routers were allowed when these nodes were learned.
    pub learned_with_public_routers: bool,
    /// Routing-table nodes, best first, at most [`MAX_SAVED_NODES`], no duplicates, all dialable.
    pub nodes: Vec<SocketAddrV4>,
}

/// Why a state file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read DHT state file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write DHT state file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("DHT state file {path} is larger than {MAX_STATE_FILE_BYTES} bytes")]
    TooLarge { path: PathBuf },
    #[error("DHT state file is not strict bencode: {0}")]
    Bencode(#[from] bencode::BencodeError),
    #[error("DHT state file: {0}")]
    Field(#[from] bencode::FieldError),
    #[error("DHT state file is not a dictionary")]
    NotADict,
    #[error("DHT state file has version {0}, only {STATE_VERSION} is understood")]
    Version(i64),
    #[error("DHT state file: {0}")]
    Invalid(&'static str),
}

impl DhtState {
    /// A state for `network` holding `nodes` (invalid and duplicate addresses dropped, at most
    /// [`MAX_SAVED_NODES`] kept in the given order).
    pub fn new(
        network: &str,
        learned_with_public_routers: bool,
        nodes: &[SocketAddrV4],
    ) -> DhtState {
        let mut kept: Vec<SocketAddrV4> = Vec::new();
        for node in nodes {
            if kept.len() >= MAX_SAVED_NODES {
                break;
            }
            if is_routable_node(node) && !kept.contains(node) {
                kept.push(*node);
            }
        }
        DhtState {
            network_tag: network_tag(network),
            learned_with_public_routers,
            nodes: kept,
        }
    }

    /// The canonical bytes of this state.
    pub fn encode(&self) -> Vec<u8> {
        let mut compact = Vec::with_capacity(self.nodes.len() * 6);
        for node in &self.nodes {
            compact.extend_from_slice(&node.ip().octets());
            compact.extend_from_slice(&node.port().to_be_bytes());
        }
        let mut dict = Dict::new();
        dict.insert(b"net".to_vec(), Value::Bytes(self.network_tag.to_vec()));
        dict.insert(b"nodes".to_vec(), Value::Bytes(compact));
        dict.insert(
            b"public".to_vec(),
            Value::Int(i64::from(self.learned_with_public_routers)),
        );
        dict.insert(b"v".to_vec(), Value::Int(STATE_VERSION));
        bencode::encode(&Value::Dict(dict))
    }

    /// Reads state bytes, refusing anything but what [`DhtState::encode`] writes.
    pub fn decode(bytes: &[u8]) -> Result<DhtState, StateError> {
        let limits = DecodeLimits {
            max_depth: 2,
            max_items: 16,
            max_input_bytes: MAX_STATE_FILE_BYTES as usize,
        };
        let value = bencode::decode(bytes, &limits)?;
        let dict = value.as_dict().ok_or(StateError::NotADict)?;
        bencode::reject_unknown_keys(dict, &["net", "nodes", "public", "v"])?;
        let version = bencode::required_int(dict, "v")?;
        if version != STATE_VERSION {
            return Err(StateError::Version(version));
        }
        let network_tag: [u8; 32] = bencode::required_bytes(dict, "net")?
            .try_into()
            .map_err(|_| StateError::Invalid("\"net\" must be 32 bytes"))?;
        let learned_with_public_routers = match bencode::required_int(dict, "public")? {
            0 => false,
            1 => true,
            _ => return Err(StateError::Invalid("\"public\" must be 0 or 1")),
        };
        let compact = bencode::required_bytes(dict, "nodes")?;
        if compact.len() % 6 != 0 {
            return Err(StateError::Invalid(
                "\"nodes\" is not a whole number of 6-byte entries",
            ));
        }
        if compact.len() / 6 > MAX_SAVED_NODES {
            return Err(StateError::Invalid("\"nodes\" has too many entries"));
        }
        let mut nodes = Vec::with_capacity(compact.len() / 6);
        for entry in compact.chunks_exact(6) {
            let ip = Ipv4Addr::new(entry[0], entry[1], entry[2], entry[3]);
            let node = SocketAddrV4::new(ip, u16::from_be_bytes([entry[4], entry[5]]));
            if !is_routable_node(&node) {
                return Err(StateError::Invalid(
                    "\"nodes\" has an address that cannot be a DHT node",
                ));
            }
            if nodes.contains(&node) {
                return Err(StateError::Invalid("\"nodes\" has a duplicate address"));
            }
            nodes.push(node);
        }
        Ok(DhtState {
            network_tag,
            learned_with_public_routers,
            nodes,
        })
    }

    /// Reads the state file at `path`; `Ok(None)` if there is none.
    pub fn load(path: &Path) -> Result<Option<DhtState>, StateError> {
        let read_err = |source| StateError::Read {
            path: path.to_owned(),
            source,
        };
        let file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(read_err(e)),
        };
        // Read at most one byte past the cap: the size is checked on what was read, not on metadata that could
        // change between the check and the read.
        let mut bytes = Vec::new();
        file.take(MAX_STATE_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(read_err)?;
        if bytes.len() as u64 > MAX_STATE_FILE_BYTES {
            return Err(StateError::TooLarge {
                path: path.to_owned(),
            });
        }
        DhtState::decode(&bytes).map(Some)
    }

    /// Writes the state file at `path` atomically.
    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        let write_err = |source| StateError::Write {
            path: path.to_owned(),
            source,
        };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        let name = path
            .file_name()
            .ok_or_else(|| write_err(std::io::Error::other("path has no file name")))?;
        let mut tmp_name = name.to_owned();
        tmp_name.push(format!(".tmp-{}", std::process::id()));
        let tmp = dir.join(tmp_name);
        let result = (|| {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(&self.encode())?;
            file.sync_all()?;
            drop(file);
            std::fs::rename(&tmp, path)?;
            // Make the rename itself durable.
            std::fs::File::open(&dir)?.sync_all()
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map_err(write_err)
    }

    /// Whether these nodes may be used by a node of `network` with the given bootstrap policy.
    pub fn usable_for(&self, network: &str, public_routers_allowed: bool) -> bool {
        self.network_tag == network_tag(network)
            && (public_routers_allowed || !self.learned_with_public_routers)
    }
}

/// Whether a DHT node could be at this address.
pub(crate) fn is_routable_node(addr: &SocketAddrV4) -> bool {
    let ip = addr.ip();
    addr.port() != 0 && !ip.is_unspecified() && !ip.is_multicast() && !ip.is_broadcast()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn node(last: u8, port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(10, 9, 8, last), port)
    }

    #[test]
    fn round_trip_through_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dht-state");
        assert!(DhtState::load(&path).unwrap().is_none());
        let state = DhtState::new("kolokol", false, &[node(1, 6881), node(2, 6882)]);
        state.save(&path).unwrap();
        assert_eq!(DhtState::load(&path).unwrap(), Some(state.clone()));
        // Overwrite: still atomic, no temporary file left behind.
        let newer = DhtState::new("kolokol", false, &[node(3, 1)]);
        newer.save(&path).unwrap();
        assert_eq!(DhtState::load(&path).unwrap(), Some(newer));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("dht-state")]);
    }

    #[test]
    fn new_drops_bad_and_duplicate_nodes_and_caps() {
        let mut many: Vec<SocketAddrV4> = (0..100).map(|i| node(i, 1000 + u16::from(i))).collect();
        many.insert(0, node(1, 0));
        many.insert(0, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 5));
        many.insert(0, SocketAddrV4::new(Ipv4Addr::new(224, 0, 0, 1), 5));
        many.insert(3, node(0, 1000));
        let state = DhtState::new("n", true, &many);
        assert_eq!(state.nodes.len(), MAX_SAVED_NODES);
        assert_eq!(state.nodes[0], node(0, 1000));
        assert_eq!(state.nodes[1], node(1, 1001));
    }

    #[test]
    fn scope_rules() {
        let private = DhtState::new("kolokol", false, &[node(1, 1)]);
        let public = DhtState::new("kolokol", true, &[node(1, 1)]);
        assert!(private.usable_for("kolokol", false));
        assert!(private.usable_for("kolokol", true));
        assert!(
            !public.usable_for("kolokol", false),
            "public-DHT nodes must not reach a private-only node"
        );
        assert!(public.usable_for("kolokol", true));
        assert!(!private.usable_for("other", false));
    }

    #[test]
    fn corrupt_files_are_refused() {
        let good = DhtState::new("n", false, &[node(1, 1), node(2, 2)]).encode();
        assert!(DhtState::decode(&good).is_ok());
        let replace = |from: &[u8], to: &[u8]| {
            let s = good.windows(from.len()).position(|w| w == from).unwrap();
            let mut out = good[..s].to_vec();
            out.extend_from_slice(to);
            out.extend_from_slice(&good[s + from.len()..]);
            out
        };
        assert!(matches!(
            DhtState::decode(&replace(b"1:vi1e", b"1:vi2e")),
            Err(StateError::Version(2))
        ));
        assert!(matches!(
            DhtState::decode(&replace(b"6:publici0e", b"6:publici2e")),
            Err(StateError::Invalid(_))
        ));
        // A duplicate node, a node with port 0, a truncated entry.
        let with_nodes = |compact: Vec<u8>| {
            let mut d = Dict::new();
            d.insert(b"net".to_vec(), Value::Bytes(vec![0; 32]));
            d.insert(b"nodes".to_vec(), Value::Bytes(compact));
            d.insert(b"public".to_vec(), Value::Int(0));
            d.insert(b"v".to_vec(), Value::Int(1));
            bencode::encode(&Value::Dict(d))
        };
        assert!(DhtState::decode(&with_nodes(vec![10, 9, 8, 1, 0, 1])).is_ok());
        let dup = [10, 9, 8, 1, 0, 1, 10, 9, 8, 1, 0, 1].to_vec();
        assert!(matches!(
            DhtState::decode(&with_nodes(dup)),
            Err(StateError::Invalid(_))
        ));
        let port0 = [10, 9, 8, 1, 0, 0].to_vec();
        assert!(matches!(
            DhtState::decode(&with_nodes(port0)),
            Err(StateError::Invalid(_))
        ));
        let truncated = [10, 9, 8, 1, 0].to_vec();
        assert!(matches!(
            DhtState::decode(&with_nodes(truncated)),
            Err(StateError::Invalid(_))
        ));
        let too_many = vec![1; 6 * (MAX_SAVED_NODES + 1)];
        assert!(matches!(
            DhtState::decode(&with_nodes(too_many)),
            Err(StateError::Invalid(_))
        ));
        assert!(DhtState::decode(b"le").is_err());
        assert!(DhtState::decode(b"").is_err());
        assert!(DhtState::decode(&good[..good.len() - 1]).is_err());
    }

    #[test]
    fn oversized_file_is_refused_before_decoding() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dht-state");
        std::fs::write(&path, vec![b'd'; MAX_STATE_FILE_BYTES as usize + 10]).unwrap();
        assert!(matches!(
            DhtState::load(&path),
            Err(StateError::TooLarge { .. })
        ));
        std::fs::write(&path, b"garbage").unwrap();
        assert!(matches!(DhtState::load(&path), Err(StateError::Bencode(_))));
    }

    proptest! {
        #[test]
        fn round_trip(nodes in prop::collection::vec((any::<u32>(), 1u16..), 0..80), public in any::<bool>()) {
            let nodes: Vec<SocketAddrV4> = nodes.into_iter().map(|(ip, port)| SocketAddrV4::new(Ipv4Addr::from(ip), port)).collect();
            let state = DhtState::new("net", public, &nodes);
            prop_assert!(state.nodes.len() <= MAX_SAVED_NODES);
            prop_assert_eq!(DhtState::decode(&state.encode()).unwrap(), state);
        }

        #[test]
        fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
            let _ = DhtState::decode(&bytes);
        }
    }
}
