//! What each message from a peer means for one connection, as a pure state machine (no I/O, no clock).
//!
//! Both sides run the same machine. Each side opens with `Hello`; the first message from the peer must be its
//! `Hello`, in our protocol version, and once it has arrived the connection is open ([`ExchangeAction::Opened`]).
//! After that every message is turned into one action for the driver: a request to serve (`Fetch`,
//! `FetchAuthor`), an announcement (`Have`), a reconciliation frame, records to validate, a replication request or
//! answer, a replica challenge or proof, or a `Ping` to answer. Nothing is advertised by the machine itself: catalogs are compared by range
//! reconciliation and new records are announced by id (`kolokol_core::policy` decides both).
//!
//! Protocol 1 opened every connection with a full inventory exchange (`inventory`, `want`, `missing`,
//! `satisfied`). kolokol nodes advertised empty inventories since reconciliation replaced it, so no peer used it;
//! protocol 2 retired those messages, and the `records` count of `Hello` with them.
//!
//! # Records
//!
//! `Records` carry answers to our `Fetch` and `FetchAuthor`, or pushes. The machine does not match them to
//! requests: every record is validated with `kolokol_core` by the driver before it is stored, and the record
//! policy counts a peer's invalid records and asks for a disconnect. Each message is bounded by the message caps.
//!
//! After an error the machine refuses everything: close the connection.

use kolokol_core::keys::PublicKey;
use kolokol_core::record::{InfoHash, RecordId};
use kolokol_core::replication::Challenge;

use crate::message::{Message, PROTOCOL_VERSION};

/// The agent string this crate puts in `Hello`.
pub const AGENT: &str = concat!("kolokol/", env!("CARGO_PKG_VERSION"));

/// What the driver must do after feeding the machine a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExchangeAction {
    /// Send this message, in order with the other actions.
    Send(Message),
    /// The peer's `Hello` arrived: the connection is open. Emitted once.
    Opened,
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
    /// The peer claims complete copies of these publications: counted only once proven (challenge them).
    Holding(Vec<[u8; 20]>),
    /// The peer asks us to prove that we hold a publication: answer with `Proof` from our copy, or `Decline`.
    Challenged(Challenge),
    /// The peer's answer to one of our challenges.
    Proved { id: u64, digest: [u8; 32] },
}

/// What the peer said in its `Hello`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerHello {
    /// Its protocol version (equal to [`PROTOCOL_VERSION`], or the exchange would have failed).
    pub protocol: u32,
    /// Its software name.
    pub agent: String,
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
    /// A message that the protocol does not allow at this point.
    #[error("unexpected {0}")]
    Unexpected(&'static str),
}

/// One side of a connection's message exchange. See the module documentation for the protocol.
#[derive(Debug, Default)]
pub struct Exchange {
    bt_port: u16,
    started: bool,
    failed: bool,
    peer_hello: Option<PeerHello>,
}

impl Exchange {
    /// An exchange that advertises no BitTorrent port.
    pub fn new() -> Self {
        Self::default()
    }

    /// Advertises our BitTorrent listening port in `Hello` (the default, 0, advertises none).
    pub fn with_bt_port(mut self, bt_port: u16) -> Self {
        self.bt_port = bt_port;
        self
    }

    /// The opening message, `Hello`. Send it before anything else. A second call returns nothing.
    pub fn start(&mut self) -> Vec<Message> {
        if self.started {
            return Vec::new();
        }
        self.started = true;
        vec![Message::Hello {
            protocol: PROTOCOL_VERSION,
            agent: AGENT.to_owned(),
            bt_port: self.bt_port,
        }]
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

    /// True once the peer's `Hello` has arrived ([`ExchangeAction::Opened`] was emitted).
    pub fn is_open(&self) -> bool {
        self.peer_hello.is_some()
    }

    /// The peer's `Hello`, once received.
    pub fn peer_hello(&self) -> Option<&PeerHello> {
        self.peer_hello.as_ref()
    }

    fn dispatch(&mut self, message: Message) -> Result<Vec<ExchangeAction>, ExchangeError> {
        if self.peer_hello.is_none() {
            return self.on_first(message);
        }
        let action = match message {
            Message::Hello { .. } => return Err(ExchangeError::Unexpected("second hello")),
            Message::Ping { nonce } => ExchangeAction::Send(Message::Pong { nonce }),
            // Round-trip measurement is the driver's business; the reader's idle timer already counts the
            // message as life.
            Message::Pong { .. } => return Ok(Vec::new()),
            Message::Records { records } => ExchangeAction::Received(records),
            Message::Fetch { ids } => ExchangeAction::ServeFetch(ids),
            Message::Have { ids } => ExchangeAction::Announced(ids),
            Message::FetchAuthor { author } => ExchangeAction::ServeAuthor(author),
            Message::Reconcile { session, frame } => ExchangeAction::Reconcile { session, frame },
            Message::Replicate { record } => ExchangeAction::Replicate(record),
            Message::Decline { infohash } => ExchangeAction::Declined(infohash),
            Message::Holding { infohashes } => ExchangeAction::Holding(infohashes),
            Message::Challenge {
                id,
                infohash,
                nonce,
                ranges,
            } => ExchangeAction::Challenged(Challenge {
                id,
                infohash: InfoHash(infohash),
                nonce,
                ranges,
            }),
            Message::Proof { id, digest } => ExchangeAction::Proved { id, digest },
        };
        Ok(vec![action])
    }

    fn on_first(&mut self, message: Message) -> Result<Vec<ExchangeAction>, ExchangeError> {
        let Message::Hello {
            protocol,
            agent,
            bt_port,
        } = message
        else {
            return Err(ExchangeError::HelloFirst(message.type_tag()));
        };
        if protocol != PROTOCOL_VERSION {
            return Err(ExchangeError::UnsupportedProtocol(protocol));
        }
        self.peer_hello = Some(PeerHello {
            protocol,
            agent,
            bt_port,
        });
        Ok(vec![ExchangeAction::Opened])
    }
}

#[cfg(test)]
mod tests;
