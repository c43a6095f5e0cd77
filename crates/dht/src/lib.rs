//! kolokol-dht: a BitTorrent mainline DHT node (BEP 5 KRPC and Kademlia, BEP 44 items, BEP 43 read-only
//! flag) for kolokol's discovery.
//!
//! - [`bencode`], [`krpc`]: the lenient, bounded codec of KRPC messages. Any transaction id of up to 16
//!   bytes is answered and echoed, so libtorrent, aria2 and other clients can use a kolokol node as their
//!   entry point into the DHT.
//! - [`node`]: the protocol as a pure state machine ([`Node`]): no sockets, no clock, RNG passed in. Its
//!   parts: [`routing`] (k-buckets), [`lookup`] (iterative lookups), [`storage`] (peers, items, tokens),
//!   answering queries in `answer`.
//! - [`net`]: the tokio driver, one task owning the UDP socket and the [`Node`]; [`Dht`] is its handle.
//!
//! See `DESIGN.md` for the state machine, the bounds and what an observer learns.

pub mod bencode;
pub mod id;
pub mod item;
pub mod krpc;
pub mod lookup;
pub mod net;
pub mod node;
pub mod routing;
pub mod storage;

mod answer;

pub use id::{Id, NodeInfo};
pub use item::{ItemError, MutableItem, bencode_bytes, immutable_target, mutable_target};
pub use net::{Dht, DhtInfo, NetError};
pub use node::{Config, Event, Node, Outcome, QueryId, Transmit};
