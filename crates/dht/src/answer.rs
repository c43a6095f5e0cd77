//! Answering other nodes' queries (BEP 5, BEP 44).
//!
//! Every query with a transaction id we can read gets an answer or a KRPC error, whatever the length of the
//! id (up to [`crate::krpc::MAX_TID`]), echoed exactly. Storing (announce_peer, put) needs a token we gave the
//! sender's IP address within the last two token periods, so nobody can announce an address it does not
//! receive at.

use std::net::SocketAddrV4;
use std::time::Instant;

use rand::RngCore;

use crate::item::{ItemError, MutableItem, immutable_target};
use crate::krpc::{Body, KrpcError, Message, PutItem, Query, QueryKind, Response, code};
use crate::node::Node;
use crate::routing::K;
use crate::storage::StoredItem;

impl<R: RngCore> Node<R> {
    fn reply(&mut self, to: SocketAddrV4, tid: &[u8], body: Body) {
        let message = Message {
            tid: tid.to_vec(),
            ip: Some(to),
            body,
        };
        self.send(to, message.encode());
    }

    fn reply_error(&mut self, to: SocketAddrV4, tid: &[u8], code: i64, message: &str) {
        let body = Body::Error {
            code,
            message: message.as_bytes().to_vec(),
        };
        self.reply(to, tid, body);
    }

    /// Answers a query that could not be read, if it named its transaction.
    pub(crate) fn answer_malformed(&mut self, from: SocketAddrV4, error: KrpcError) {
        match error {
            KrpcError::BadQuery { tid, reason } => {
                tracing::debug!(%from, reason, "malformed DHT query");
                self.reply_error(from, &tid, code::PROTOCOL, "Protocol Error");
            }
            KrpcError::UnknownMethod { tid, .. } => {
                self.reply_error(from, &tid, code::METHOD_UNKNOWN, "Method Unknown");
            }
            _ => {}
        }
    }

    pub(crate) fn answer(&mut self, now: Instant, from: SocketAddrV4, tid: &[u8], query: Query) {
        if query.id == self.id() {
            // Our own id from elsewhere: a reflection or a node pretending to be us.
            return;
        }
        self.saw_unsolicited_query(from);
        let mut response = Response {
            id: Some(self.id()),
            ..Response::default()
        };
        match query.kind {
            QueryKind::Ping => {}
            QueryKind::FindNode { target } => {
                response.nodes = self.table.closest(&target, K);
            }
            QueryKind::GetPeers { info_hash } => {
                response.token = Some(self.storage.token(*from.ip()));
                response.nodes = self.table.closest(&info_hash, K);
                response.values = self.storage.peers(&info_hash);
            }
            QueryKind::AnnouncePeer {
                info_hash,
                port,
                implied_port,
                token,
            } => {
                if !self.storage.token_is_valid(*from.ip(), &token) {
                    return self.reply_error(from, tid, code::PROTOCOL, "invalid token");
                }
                let port = if implied_port { from.port() } else { port };
                if port == 0 {
                    return self.reply_error(from, tid, code::PROTOCOL, "invalid port");
                }
                self.storage
                    .add_peer(info_hash, SocketAddrV4::new(*from.ip(), port), now);
            }
            QueryKind::Get { target, seq } => {
                response.token = Some(self.storage.token(*from.ip()));
                response.nodes = self.table.closest(&target, K);
                match self.storage.item(&target) {
                    Some(StoredItem::Immutable(value)) => response.value = Some(value.clone()),
                    Some(StoredItem::Mutable(item)) => {
                        response.seq = Some(item.seq);
                        if seq.is_none_or(|asked| item.seq > asked) {
                            response.value = Some(item.value.clone());
                            response.key = Some(item.key);
                            response.signature = Some(item.signature);
                        }
                    }
                    None => {}
                }
            }
            QueryKind::Put { token, item } => {
                if !self.storage.token_is_valid(*from.ip(), &token) {
                    return self.reply_error(from, tid, code::PROTOCOL, "invalid token");
                }
                if let Err((code, message)) = self.store_item(now, item) {
                    return self.reply_error(from, tid, code, message);
                }
            }
        }
        self.reply(from, tid, Body::Response(response));
        if !query.read_only {
            self.consider_querier(now, query.id, from);
        }
    }

    fn store_item(&mut self, now: Instant, item: PutItem) -> Result<(), (i64, &'static str)> {
        match item {
            PutItem::Immutable { value } => {
                if crate::bencode::decode(&value).is_err() {
                    return Err((code::PROTOCOL, "invalid value"));
                }
                let target = immutable_target(&value);
                self.storage
                    .put_item(target, StoredItem::Immutable(value), None, now)
                    .map_err(|c| (c, "refused"))
            }
            PutItem::Mutable {
                key,
                signature,
                seq,
                salt,
                value,
                cas,
            } => {
                let item = MutableItem {
                    key,
                    signature,
                    seq,
                    salt,
                    value,
                };
                item.verify().map_err(|e| match e {
                    ItemError::Value => (code::VALUE_TOO_BIG, "invalid value"),
                    ItemError::Salt => (code::SALT_TOO_BIG, "salt too big"),
                    ItemError::Signature | ItemError::Target => {
                        (code::INVALID_SIGNATURE, "invalid signature")
                    }
                })?;
                let target = item.target();
                self.storage
                    .put_item(target, StoredItem::Mutable(item), cas, now)
                    .map_err(|c| match c {
                        code::CAS_MISMATCH => (c, "CAS mismatch"),
                        _ => (c, "sequence number less than current"),
                    })
            }
        }
    }
}
