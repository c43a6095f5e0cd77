//! KRPC messages (BEP 5, BEP 44): typed, validated, bounded.
//!
//! Decoding validates every field a message kind needs and caps every list; unknown keys are ignored (other
//! clients add their own). A transaction id of any length from 0 to [`MAX_TID`] bytes is kept exactly as it
//! came, so the answer echoes it (libtorrent and aria2 use 2 bytes, mainline 4).

use std::net::SocketAddrV4;

use crate::bencode::{self, Bencode, DecodeError, DictBuilder, Value};
use crate::id::{
    Id, NodeInfo, compact_addr, compact_nodes, parse_compact_addr, parse_compact_nodes,
};

/// Longest transaction id answered.
pub const MAX_TID: usize = 16;
/// Longest announce or put token accepted (ours are 8 bytes, libtorrent's 4).
pub const MAX_TOKEN: usize = 32;
/// Most nodes read from one `nodes` field.
pub const MAX_NODES: usize = 16;
/// Most peers read from one `values` list (libtorrent sends up to about 100 to fit a datagram).
pub const MAX_VALUES: usize = 128;
/// Largest BEP 44 value (bencoded), per BEP 44.
pub const MAX_ITEM_VALUE: usize = 1000;
/// Longest BEP 44 salt, per BEP 44.
pub const MAX_SALT: usize = 64;

/// Why bytes are not a KRPC message we act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KrpcError {
    #[error(transparent)]
    Bencode(#[from] DecodeError),
    #[error("not a dictionary")]
    NotDict,
    #[error("missing or invalid transaction id")]
    Tid,
    #[error("unknown message type")]
    Type,
    /// A query we can name the transaction of but not act on: answered with a protocol error (203).
    #[error("invalid query: {reason}")]
    BadQuery { tid: Vec<u8>, reason: &'static str },
    /// A query for a method we do not know: answered with 204.
    #[error("unknown method")]
    UnknownMethod { tid: Vec<u8>, id: Option<Id> },
    #[error("invalid response: {0}")]
    BadResponse(&'static str),
    #[error("invalid error message")]
    BadError,
}

/// One KRPC message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Transaction id, echoed exactly.
    pub tid: Vec<u8>,
    /// BEP 42 `ip`: the sender's view of the receiver's address (responses only).
    pub ip: Option<SocketAddrV4>,
    pub body: Body,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Query(Query),
    Response(Response),
    Error { code: i64, message: Vec<u8> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The querying node's id.
    pub id: Id,
    /// BEP 43: the sender does not answer queries; do not put it in a routing table.
    pub read_only: bool,
    pub kind: QueryKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryKind {
    Ping,
    FindNode {
        target: Id,
    },
    GetPeers {
        info_hash: Id,
    },
    AnnouncePeer {
        info_hash: Id,
        port: u16,
        implied_port: bool,
        token: Vec<u8>,
    },
    /// BEP 44 `get`: `seq` asks only for a mutable item newer than it.
    Get {
        target: Id,
        seq: Option<i64>,
    },
    /// BEP 44 `put`.
    Put {
        token: Vec<u8>,
        item: PutItem,
    },
}

/// What a `put` stores. `value` is the bencoded `v` as sent (what the signature covers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutItem {
    Immutable {
        value: Vec<u8>,
    },
    Mutable {
        key: [u8; 32],
        signature: [u8; 64],
        seq: i64,
        salt: Vec<u8>,
        value: Vec<u8>,
        cas: Option<i64>,
    },
}

/// A response; which fields matter depends on the query it answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    pub id: Option<Id>,
    pub nodes: Vec<NodeInfo>,
    pub values: Vec<SocketAddrV4>,
    pub token: Option<Vec<u8>>,
    /// BEP 44 fields of a `get` answer; `value` is the bencoded `v` as received.
    pub value: Option<Vec<u8>>,
    pub key: Option<[u8; 32]>,
    pub signature: Option<[u8; 64]>,
    pub seq: Option<i64>,
}

/// KRPC error codes (BEP 5, BEP 44).
pub mod code {
    pub const GENERIC: i64 = 201;
    pub const PROTOCOL: i64 = 203;
    pub const METHOD_UNKNOWN: i64 = 204;
    pub const VALUE_TOO_BIG: i64 = 205;
    pub const INVALID_SIGNATURE: i64 = 206;
    pub const SALT_TOO_BIG: i64 = 207;
    pub const CAS_MISMATCH: i64 = 301;
    pub const SEQ_TOO_LOW: i64 = 302;
}

impl Message {
    /// Reads a KRPC message. A query that can be answered with an error carries its tid in the error.
    pub fn decode(bytes: &[u8]) -> Result<Message, KrpcError> {
        let root = bencode::decode(bytes)?;
        if !matches!(root, Value::Dict(_)) {
            return Err(KrpcError::NotDict);
        }
        let tid = root
            .get(b"t")
            .and_then(Value::as_bytes)
            .filter(|t| t.len() <= MAX_TID)
            .ok_or(KrpcError::Tid)?
            .to_vec();
        let ip = root
            .get(b"ip")
            .and_then(Value::as_bytes)
            .and_then(parse_compact_addr);
        let body = match root.get(b"y").and_then(Value::as_bytes) {
            Some(b"q") => Body::Query(decode_query(&root, &tid)?),
            Some(b"r") => Body::Response(decode_response(&root)?),
            Some(b"e") => decode_error(&root)?,
            _ => return Err(KrpcError::Type),
        };
        Ok(Message { tid, ip, body })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut d = DictBuilder::new().bytes("t", &self.tid);
        if let Some(ip) = &self.ip {
            d = d.bytes("ip", &compact_addr(ip));
        }
        d = match &self.body {
            Body::Query(q) => {
                let (method, args) = encode_query(q);
                let d = d
                    .bytes("y", b"q")
                    .bytes("q", method.as_bytes())
                    .put("a", args);
                if q.read_only { d.int("ro", 1) } else { d }
            }
            Body::Response(r) => d.bytes("y", b"r").put("r", encode_response(r)),
            Body::Error { code, message } => d.bytes("y", b"e").put(
                "e",
                Bencode::List(vec![Bencode::Int(*code), Bencode::Bytes(message.clone())]),
            ),
        };
        d.build().encode()
    }
}

fn bad(tid: &[u8], reason: &'static str) -> KrpcError {
    KrpcError::BadQuery {
        tid: tid.to_vec(),
        reason,
    }
}

fn id_field(dict: &Value<'_>, key: &[u8]) -> Option<Id> {
    dict.get(key)
        .and_then(Value::as_bytes)
        .and_then(Id::from_slice)
}

fn decode_query(root: &Value<'_>, tid: &[u8]) -> Result<Query, KrpcError> {
    let method = root.get(b"q").and_then(Value::as_bytes);
    let args = root.get(b"a").filter(|a| matches!(a, Value::Dict(_)));
    let Some(args) = args else {
        return Err(bad(tid, "no arguments"));
    };
    let id = id_field(args, b"id");
    let Some(method) = method else {
        return Err(bad(tid, "no method"));
    };
    let kind = match method {
        b"ping" => QueryKind::Ping,
        b"find_node" => QueryKind::FindNode {
            target: id_field(args, b"target").ok_or_else(|| bad(tid, "target"))?,
        },
        b"get_peers" => QueryKind::GetPeers {
            info_hash: id_field(args, b"info_hash").ok_or_else(|| bad(tid, "info_hash"))?,
        },
        b"announce_peer" => {
            let info_hash = id_field(args, b"info_hash").ok_or_else(|| bad(tid, "info_hash"))?;
            let implied_port = args.get(b"implied_port").and_then(Value::as_int) == Some(1);
            let port = match args.get(b"port").and_then(Value::as_int) {
                Some(p) => u16::try_from(p).map_err(|_| bad(tid, "port"))?,
                None if implied_port => 0,
                None => return Err(bad(tid, "port")),
            };
            QueryKind::AnnouncePeer {
                info_hash,
                port,
                implied_port,
                token: token_field(args).ok_or_else(|| bad(tid, "token"))?,
            }
        }
        b"get" => QueryKind::Get {
            target: id_field(args, b"target").ok_or_else(|| bad(tid, "target"))?,
            seq: args.get(b"seq").and_then(Value::as_int),
        },
        b"put" => QueryKind::Put {
            token: token_field(args).ok_or_else(|| bad(tid, "token"))?,
            item: decode_put_item(args, tid)?,
        },
        _ => {
            return Err(KrpcError::UnknownMethod {
                tid: tid.to_vec(),
                id,
            });
        }
    };
    let id = id.ok_or_else(|| bad(tid, "id"))?;
    let read_only = root.get(b"ro").and_then(Value::as_int) == Some(1);
    Ok(Query {
        id,
        read_only,
        kind,
    })
}

fn token_field(args: &Value<'_>) -> Option<Vec<u8>> {
    args.get(b"token")
        .and_then(Value::as_bytes)
        .filter(|t| t.len() <= MAX_TOKEN)
        .map(<[u8]>::to_vec)
}

fn decode_put_item(args: &Value<'_>, tid: &[u8]) -> Result<PutItem, KrpcError> {
    let (_, raw) = args.get_raw(b"v").ok_or_else(|| bad(tid, "v"))?;
    if raw.len() > MAX_ITEM_VALUE {
        return Err(bad(tid, "v too big"));
    }
    let value = raw.to_vec();
    let Some(k) = args.get(b"k").and_then(Value::as_bytes) else {
        return Ok(PutItem::Immutable { value });
    };
    let key: [u8; 32] = k.try_into().map_err(|_| bad(tid, "k"))?;
    let signature: [u8; 64] = args
        .get(b"sig")
        .and_then(Value::as_bytes)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| bad(tid, "sig"))?;
    let seq = args
        .get(b"seq")
        .and_then(Value::as_int)
        .ok_or_else(|| bad(tid, "seq"))?;
    let salt = match args.get(b"salt") {
        None => Vec::new(),
        Some(s) => s
            .as_bytes()
            .filter(|s| s.len() <= MAX_SALT)
            .ok_or_else(|| bad(tid, "salt"))?
            .to_vec(),
    };
    let cas = args.get(b"cas").and_then(Value::as_int);
    Ok(PutItem::Mutable {
        key,
        signature,
        seq,
        salt,
        value,
        cas,
    })
}

fn decode_response(root: &Value<'_>) -> Result<Response, KrpcError> {
    let r = root
        .get(b"r")
        .filter(|r| matches!(r, Value::Dict(_)))
        .ok_or(KrpcError::BadResponse("no r"))?;
    let mut response = Response {
        id: id_field(r, b"id"),
        ..Response::default()
    };
    if let Some(nodes) = r.get(b"nodes").and_then(Value::as_bytes) {
        response.nodes = parse_compact_nodes(nodes, MAX_NODES);
    }
    if let Some(values) = r.get(b"values").and_then(Value::as_list) {
        response.values = values
            .iter()
            .filter_map(Value::as_bytes)
            .filter_map(parse_compact_addr)
            .take(MAX_VALUES)
            .collect();
    }
    response.token = token_field(r);
    if let Some((_, raw)) = r.get_raw(b"v") {
        if raw.len() > MAX_ITEM_VALUE {
            return Err(KrpcError::BadResponse("v too big"));
        }
        response.value = Some(raw.to_vec());
    }
    response.key = r
        .get(b"k")
        .and_then(Value::as_bytes)
        .and_then(|k| k.try_into().ok());
    response.signature = r
        .get(b"sig")
        .and_then(Value::as_bytes)
        .and_then(|s| s.try_into().ok());
    response.seq = r.get(b"seq").and_then(Value::as_int);
    Ok(response)
}

fn decode_error(root: &Value<'_>) -> Result<Body, KrpcError> {
    let list = root
        .get(b"e")
        .and_then(Value::as_list)
        .ok_or(KrpcError::BadError)?;
    let code = list
        .first()
        .and_then(Value::as_int)
        .ok_or(KrpcError::BadError)?;
    let message = list
        .get(1)
        .and_then(Value::as_bytes)
        .unwrap_or_default()
        .iter()
        .take(256)
        .copied()
        .collect();
    Ok(Body::Error { code, message })
}

fn encode_query(q: &Query) -> (&'static str, Bencode) {
    let mut a = DictBuilder::new().bytes("id", &q.id.0);
    let method = match &q.kind {
        QueryKind::Ping => "ping",
        QueryKind::FindNode { target } => {
            a = a.bytes("target", &target.0);
            "find_node"
        }
        QueryKind::GetPeers { info_hash } => {
            a = a.bytes("info_hash", &info_hash.0);
            "get_peers"
        }
        QueryKind::AnnouncePeer {
            info_hash,
            port,
            implied_port,
            token,
        } => {
            a = a
                .bytes("info_hash", &info_hash.0)
                .int("port", i64::from(*port))
                .bytes("token", token);
            if *implied_port {
                a = a.int("implied_port", 1);
            }
            "announce_peer"
        }
        QueryKind::Get { target, seq } => {
            a = a.bytes("target", &target.0);
            if let Some(seq) = seq {
                a = a.int("seq", *seq);
            }
            "get"
        }
        QueryKind::Put { token, item } => {
            a = a.bytes("token", token);
            match item {
                PutItem::Immutable { value } => {
                    a = a.put("v", Bencode::Raw(value.clone()));
                }
                PutItem::Mutable {
                    key,
                    signature,
                    seq,
                    salt,
                    value,
                    cas,
                } => {
                    a = a
                        .bytes("k", key)
                        .bytes("sig", signature)
                        .int("seq", *seq)
                        .put("v", Bencode::Raw(value.clone()));
                    if !salt.is_empty() {
                        a = a.bytes("salt", salt);
                    }
                    if let Some(cas) = cas {
                        a = a.int("cas", *cas);
                    }
                }
            }
            "put"
        }
    };
    // BEP 43 `ro` is a top-level key, added by `Message::encode`.
    (method, a.build())
}

fn encode_response(r: &Response) -> Bencode {
    let mut d = DictBuilder::new();
    if let Some(id) = &r.id {
        d = d.bytes("id", &id.0);
    }
    if !r.nodes.is_empty() {
        d = d.bytes("nodes", &compact_nodes(&r.nodes));
    }
    if !r.values.is_empty() {
        d = d.put(
            "values",
            Bencode::List(
                r.values
                    .iter()
                    .map(|v| Bencode::Bytes(compact_addr(v).to_vec()))
                    .collect(),
            ),
        );
    }
    if let Some(token) = &r.token {
        d = d.bytes("token", token);
    }
    if let Some(v) = &r.value {
        d = d.put("v", Bencode::Raw(v.clone()));
    }
    if let Some(k) = &r.key {
        d = d.bytes("k", k);
    }
    if let Some(sig) = &r.signature {
        d = d.bytes("sig", sig);
    }
    if let Some(seq) = r.seq {
        d = d.int("seq", seq);
    }
    d.build()
}

/// The bytes a BEP 44 mutable item's signature covers: `4:salt<len>:<salt>` (only with a salt),
/// `3:seqi<seq>e1:v` and the bencoded value.
pub fn mutable_signed_bytes(salt: &[u8], seq: i64, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(salt.len() + value.len() + 40);
    if !salt.is_empty() {
        out.extend_from_slice(b"4:salt");
        out.extend_from_slice(salt.len().to_string().as_bytes());
        out.push(b':');
        out.extend_from_slice(salt);
    }
    out.extend_from_slice(b"3:seqi");
    out.extend_from_slice(seq.to_string().as_bytes());
    out.extend_from_slice(b"e1:v");
    out.extend_from_slice(value);
    out
}

#[cfg(test)]
#[path = "krpc_tests.rs"]
mod tests;
