//! The full catalog exchange after a handshake, as a pure state machine (no I/O, no clock).
//!
//! Both sides run the same machine. Each side sends `Hello` (announcing how many ids it will list),
//! its whole inventory in ascending `Inventory` chunks, and `InventoryDone`. For every inventory chunk
//! it receives, it asks with one `Want` for the ids it lacks. Each `Want` is answered with `Records`
//! and, for ids the sender can no longer provide, `Missing`. A side that has received its peer's
//! `InventoryDone` and has had every wanted id answered sends `Satisfied`. The exchange is done for a
//! side when it has sent `Satisfied` and received the peer's.
//!
//! # Matching records to requests
//!
//! A record's id is the SHA-256 of its signed bytes ([`RecordId::of_signed_bytes`]), so the machine
//! matches every received record to an outstanding request by hashing it. That is not validation: a
//! record we asked for may still be invalid, and the driver must check every `Received` record with
//! `kolokol_core`'s record validation before storing it. A record that arrives invalid still counts as
//! answered (the peer advertised a bad record; the driver may drop the peer).
//!
//! # Bounds on remote input
//!
//! - The peer's inventory may list at most `max_inventory_ids` ids; a `Hello` announcing more, or an
//!   inventory running past what `Hello` announced, ends the exchange with an error.
//! - Inventory ids must be strictly ascending (no duplicates to track).
//! - The peer may want only ids we advertised (our whole `local_ids`), each at most once, and only
//!   until it sends `Satisfied`.
//! - Before we send `Satisfied`, every record must answer an outstanding request; `Missing` may name
//!   only outstanding ids. After we send `Satisfied`, the peer may push records unsolicited (it can only
//!   do so after receiving our `Satisfied`, which it sees after all its answers); each push is one
//!   message, so it is bounded by the message caps, and is passed on as [`ExchangeAction::Received`].
//!
//! State grows only with our own catalog and with ids we requested, which are at most
//! `max_inventory_ids`. After an error the machine refuses everything: close the connection.

use std::collections::BTreeSet;

use kolokol_core::keys::PublicKey;
use kolokol_core::record::RecordId;

use crate::message::{MAX_IDS_PER_MESSAGE, Message, PROTOCOL_VERSION};

/// Default cap on the number of ids a peer's inventory may list.
pub const DEFAULT_MAX_INVENTORY_IDS: usize = 1_000_000;

/// The agent string this crate puts in `Hello`.
pub const AGENT: &str = concat!("kolokol/", env!("CARGO_PKG_VERSION"));

/// What the driver must do after feeding the machine a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExchangeAction {
    /// Send this message, in order with the other actions.
    Send(Message),
    /// Load these records (ids we advertised) from the store and send them with
    /// [`crate::RecordPacker`]; send [`crate::missing_messages`] for any that are gone.
    SendRecords(Vec<RecordId>),
    /// Record bytes from the peer: validate each with `kolokol_core` and store the valid ones.
    Received(Vec<Vec<u8>>),
    /// The peer asks for these records (a `Fetch`): send those we have in `Records`, ignore the rest.
    ServeFetch(Vec<RecordId>),
    /// The peer holds these records (a `Have`): ask with `Fetch` for those we lack and want.
    Announced(Vec<RecordId>),
    /// The peer asks for an author's records (a `FetchAuthor`): send the newest we have, at most
    /// [`crate::message::MAX_AUTHOR_RECORDS`].
    ServeAuthor(PublicKey),
    /// A reconciliation message from the peer: hand it to the session with that id (or start answering one).
    Reconcile { session: u64, frame: Vec<u8> },
    /// The peer asks us to fetch and seed a fresh publication (a `Replicate`): validate the record, decide, and
    /// answer with `Holding` when complete or `Decline`.
    Replicate(Vec<u8>),
    /// The peer will not replicate this publication of ours.
    Declined([u8; 20]),
    /// The peer holds complete copies of these publications.
    Holding(Vec<[u8; 20]>),
    /// Both directions are complete. Emitted once; the connection stays open.
    Done,
}

/// What the peer said in its `Hello`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerHello {
    /// Its protocol version (equal to [`PROTOCOL_VERSION`], or the exchange would have failed).
    pub protocol: u32,
    /// Its software name.
    pub agent: String,
    /// How many ids its inventory lists.
    pub records: u64,
    /// Its BitTorrent listening port on the connection's remote address; 0 if none.
    pub bt_port: u16,
}

/// Why the exchange ended. After any of these the machine is failed and the connection should close.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExchangeError {
    /// [`Exchange::handle`] was called before [`Exchange::start`].
    #[error("exchange not started")]
    NotStarted,
    /// An earlier error ended the exchange.
    #[error("exchange already failed")]
    Failed,
    /// The peer's first message was not `Hello`.
    #[error("expected hello first, got {0}")]
    HelloFirst(&'static str),
    /// The peer speaks another protocol version.
    #[error("unsupported protocol version {0}")]
    UnsupportedProtocol(u32),
    /// The peer's inventory is (or is announced to be) larger than the cap.
    #[error("peer inventory of {count} ids exceeds the cap of {max}")]
    InventoryTooLarge {
        /// Ids announced or listed.
        count: u64,
        /// The cap.
        max: usize,
    },
    /// The peer listed a different number of ids than its `Hello` announced.
    #[error("peer announced {announced} ids but listed {listed}")]
    InventoryMismatch {
        /// Count from `Hello`.
        announced: u64,
        /// Count listed so far.
        listed: u64,
    },
    /// Inventory ids are not strictly ascending.
    #[error("inventory id {0} is not above the previous one")]
    InventoryNotAscending(RecordId),
    /// The peer wants an id we did not advertise.
    #[error("peer wants unadvertised record {0}")]
    UnadvertisedWant(RecordId),
    /// The peer wants an id it already asked for.
    #[error("peer wants record {0} twice")]
    DuplicateWant(RecordId),
    /// The peer sent a record that answers no outstanding request.
    #[error("peer sent unrequested record {0}")]
    UnrequestedRecord(RecordId),
    /// The peer reported as missing an id that is not outstanding.
    #[error("peer reported unrequested record {0} as missing")]
    UnrequestedMissing(RecordId),
    /// A message that the protocol does not allow at this point.
    #[error("unexpected {0}")]
    Unexpected(&'static str),
}

/// One side of the catalog exchange. See the module documentation for the protocol.
#[derive(Debug)]
pub struct Exchange {
    local_ids: BTreeSet<RecordId>,
    max_inventory_ids: usize,
    bt_port: u16,
    started: bool,
    failed: bool,
    done: bool,
    // Peer to us.
    peer_hello: Option<PeerHello>,
    listed: u64,
    last_listed: Option<RecordId>,
    peer_inventory_done: bool,
    /// Ids we asked for that have been neither delivered nor reported missing.
    outstanding: BTreeSet<RecordId>,
    sent_satisfied: bool,
    // Us to peer.
    /// Ids the peer has asked for; a subset of `local_ids`.
    served: BTreeSet<RecordId>,
    peer_satisfied: bool,
}

impl Exchange {
    /// An exchange advertising `local_ids`, with the default inventory cap.
    pub fn new(local_ids: BTreeSet<RecordId>) -> Self {
        Self::with_max_inventory(local_ids, DEFAULT_MAX_INVENTORY_IDS)
    }

    /// An exchange that refuses peer inventories larger than `max_inventory_ids`.
    pub fn with_max_inventory(local_ids: BTreeSet<RecordId>, max_inventory_ids: usize) -> Self {
        Self {
            local_ids,
            max_inventory_ids,
            bt_port: 0,
            started: false,
            failed: false,
            done: false,
            peer_hello: None,
            listed: 0,
            last_listed: None,
            peer_inventory_done: false,
            outstanding: BTreeSet::new(),
            sent_satisfied: false,
            served: BTreeSet::new(),
            peer_satisfied: false,
        }
    }

    /// Advertises our BitTorrent listening port in `Hello` (the default, 0, advertises none).
    pub fn with_bt_port(mut self, bt_port: u16) -> Self {
        self.bt_port = bt_port;
        self
    }

    /// The opening messages: `Hello`, the inventory in chunks, `InventoryDone`. Send them before
    /// anything the machine asks for later. A second call returns nothing.
    pub fn start(&mut self) -> Vec<Message> {
        if self.started {
            return Vec::new();
        }
        self.started = true;
        let ids: Vec<RecordId> = self.local_ids.iter().copied().collect();
        let mut messages = Vec::with_capacity(ids.len() / MAX_IDS_PER_MESSAGE + 3);
        messages.push(Message::Hello {
            protocol: PROTOCOL_VERSION,
            agent: AGENT.to_owned(),
            records: u64::try_from(ids.len()).unwrap_or(u64::MAX),
            bt_port: self.bt_port,
        });
        messages.extend(
            ids.chunks(MAX_IDS_PER_MESSAGE)
                .map(|chunk| Message::Inventory {
                    ids: chunk.to_vec(),
                }),
        );
        messages.push(Message::InventoryDone);
        messages
    }

    /// Feeds one message from the peer and returns what to do, in order.
    pub fn handle(&mut self, message: Message) -> Result<Vec<ExchangeAction>, ExchangeError> {
        if self.failed {
            return Err(ExchangeError::Failed);
        }
        if !self.started {
            return Err(ExchangeError::NotStarted);
        }
        let result = self.dispatch(message);
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    /// True once [`ExchangeAction::Done`] has been emitted.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// True once the peer has sent `Satisfied`: from then on the driver may push new records to it.
    pub fn may_push(&self) -> bool {
        self.peer_satisfied
    }

    /// The peer's `Hello`, once received.
    pub fn peer_hello(&self) -> Option<&PeerHello> {
        self.peer_hello.as_ref()
    }

    /// How many requested records have not yet arrived.
    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    fn dispatch(&mut self, message: Message) -> Result<Vec<ExchangeAction>, ExchangeError> {
        let Some(hello) = &self.peer_hello else {
            return self.on_first(message);
        };
        let announced = hello.records;
        match message {
            Message::Hello { .. } => Err(ExchangeError::Unexpected("second hello")),
            Message::Ping { nonce } => Ok(vec![ExchangeAction::Send(Message::Pong { nonce })]),
            // Round-trip measurement is the driver's business; the reader's idle timer already counts
            // the message as life.
            Message::Pong { .. } => Ok(Vec::new()),
            // Requests outside the exchange. Their answers are unsolicited `Records`, which the requester
            // accepts only once it has sent `Satisfied`; a well-behaved peer therefore fetches only after its
            // side of the exchange is over, and the answer of an early fetch ends the connection.
            Message::Fetch { ids } => Ok(vec![ExchangeAction::ServeFetch(ids)]),
            Message::Have { ids } => Ok(vec![ExchangeAction::Announced(ids)]),
            Message::FetchAuthor { author } => Ok(vec![ExchangeAction::ServeAuthor(author)]),
            Message::Reconcile { session, frame } => {
                Ok(vec![ExchangeAction::Reconcile { session, frame }])
            }
            Message::Replicate { record } => Ok(vec![ExchangeAction::Replicate(record)]),
            Message::Decline { infohash } => Ok(vec![ExchangeAction::Declined(infohash)]),
            Message::Holding { infohashes } => Ok(vec![ExchangeAction::Holding(infohashes)]),
            Message::Inventory { ids } => self.on_inventory(ids, announced),
            Message::InventoryDone => {
                if self.peer_inventory_done {
                    return Err(ExchangeError::Unexpected("second inventory_done"));
                }
                if self.listed != announced {
                    return Err(ExchangeError::InventoryMismatch {
                        announced,
                        listed: self.listed,
                    });
                }
                self.peer_inventory_done = true;
                Ok(self.progress())
            }
            Message::Want { ids } => self.on_want(ids),
            Message::Missing { ids } => {
                for id in ids {
                    if !self.outstanding.remove(&id) {
                        return Err(ExchangeError::UnrequestedMissing(id));
                    }
                }
                Ok(self.progress())
            }
            Message::Records { records } => self.on_records(records),
            Message::Satisfied => {
                if self.peer_satisfied {
                    return Err(ExchangeError::Unexpected("second satisfied"));
                }
                self.peer_satisfied = true;
                Ok(self.progress())
            }
        }
    }

    fn on_first(&mut self, message: Message) -> Result<Vec<ExchangeAction>, ExchangeError> {
        let Message::Hello {
            protocol,
            agent,
            records,
            bt_port,
        } = message
        else {
            return Err(ExchangeError::HelloFirst(message.type_tag()));
        };
        if protocol != PROTOCOL_VERSION {
            return Err(ExchangeError::UnsupportedProtocol(protocol));
        }
        if usize::try_from(records).map_or(true, |n| n > self.max_inventory_ids) {
            return Err(ExchangeError::InventoryTooLarge {
                count: records,
                max: self.max_inventory_ids,
            });
        }
        self.peer_hello = Some(PeerHello {
            protocol,
            agent,
            records,
            bt_port,
        });
        Ok(Vec::new())
    }

    fn on_inventory(
        &mut self,
        ids: Vec<RecordId>,
        announced: u64,
    ) -> Result<Vec<ExchangeAction>, ExchangeError> {
        if self.peer_inventory_done {
            return Err(ExchangeError::Unexpected("inventory after inventory_done"));
        }
        let listed = self
            .listed
            .saturating_add(u64::try_from(ids.len()).unwrap_or(u64::MAX));
        if listed > announced {
            // `announced` is already within the cap, so this also bounds an endless inventory.
            return Err(ExchangeError::InventoryMismatch { announced, listed });
        }
        let mut lacking = Vec::new();
        for id in ids {
            if self.last_listed.is_some_and(|last| id <= last) {
                return Err(ExchangeError::InventoryNotAscending(id));
            }
            self.last_listed = Some(id);
            if !self.local_ids.contains(&id) {
                self.outstanding.insert(id);
                lacking.push(id);
            }
        }
        self.listed = listed;
        if lacking.is_empty() {
            Ok(Vec::new())
        } else {
            Ok(vec![ExchangeAction::Send(Message::Want { ids: lacking })])
        }
    }

    fn on_want(&mut self, ids: Vec<RecordId>) -> Result<Vec<ExchangeAction>, ExchangeError> {
        if self.peer_satisfied {
            return Err(ExchangeError::Unexpected("want after satisfied"));
        }
        for id in &ids {
            if !self.local_ids.contains(id) {
                return Err(ExchangeError::UnadvertisedWant(*id));
            }
            if !self.served.insert(*id) {
                return Err(ExchangeError::DuplicateWant(*id));
            }
        }
        Ok(vec![ExchangeAction::SendRecords(ids)])
    }

    fn on_records(&mut self, records: Vec<Vec<u8>>) -> Result<Vec<ExchangeAction>, ExchangeError> {
        if self.sent_satisfied {
            // A push of new records; the message caps bound it.
            return Ok(vec![ExchangeAction::Received(records)]);
        }
        for record in &records {
            let id = RecordId::of_signed_bytes(record);
            if !self.outstanding.remove(&id) {
                return Err(ExchangeError::UnrequestedRecord(id));
            }
        }
        let mut actions = vec![ExchangeAction::Received(records)];
        actions.extend(self.progress());
        Ok(actions)
    }

    /// Sends `Satisfied` and emits `Done` when their conditions have just become true.
    fn progress(&mut self) -> Vec<ExchangeAction> {
        let mut actions = Vec::new();
        if !self.sent_satisfied && self.peer_inventory_done && self.outstanding.is_empty() {
            self.sent_satisfied = true;
            actions.push(ExchangeAction::Send(Message::Satisfied));
        }
        if !self.done && self.sent_satisfied && self.peer_satisfied {
            self.done = true;
            actions.push(ExchangeAction::Done);
        }
        actions
    }
}

#[cfg(test)]
mod tests;
