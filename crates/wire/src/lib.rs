//! The kolokol wire protocol: the encrypted node-to-node link and the messages that run on it.
//!
//! A connection starts with a Noise `XX` handshake ([`handshake()`]) in which both nodes prove their
//! Ed25519 node keys and agree on the network name; it returns a [`WireReader`] and a [`WireWriter`]
//! that can be used from two tasks at once, and the remote [`kolokol_core::keys::NodeId`]. On the
//! socket, Noise transport frames carry length-prefixed [`Message`]s whose sizes are capped before
//! anything is allocated ([`frame`]). After the handshake both sides run an [`Exchange`], a pure state
//! machine that opens the connection with `Hello` and turns every later message into an action (serve a fetch,
//! take an announcement, feed a reconciliation, store records after validating them with `kolokol_core`); the
//! driver (the node) moves its messages, and `kolokol_core::policy` decides what to announce and fetch. [`pack`] helps the driver turn records into messages that respect the caps.
//!
//! `PROTOCOL.md` next to this crate's manifest describes the bytes on the wire for other implementers.
//!
//! Drive the reader and the writer from separate tasks (or at least never stop reading while a long
//! send is blocked): if both nodes write large answers without reading, both TCP buffers fill and the
//! connection stalls until a write times out. The example below keeps to one loop for brevity.
//!
//! What this crate does not do: validate records (that is `kolokol_core`'s single validation
//! function), keep time for the exchange, or decide whom to connect to.
//!
//! ```no_run
//! # async fn example(stream: tokio::net::TcpStream, key: kolokol_core::keys::Keypair)
//! # -> Result<(), Box<dyn std::error::Error>> {
//! use kolokol_wire::{Exchange, ExchangeAction, Role, WireConfig, handshake};
//!
//! let cfg = WireConfig::for_network("kolokol");
//! let (mut reader, mut writer, remote) = handshake(stream, Role::Initiator, &key, &cfg).await?;
//! if remote == key.public() {
//!     return Ok(()); // connected to ourselves
//! }
//! let mut exchange = Exchange::new();
//! for message in exchange.start() {
//!     writer.send(&message).await?;
//! }
//! loop {
//!     for action in exchange.handle(reader.recv().await?)? {
//!         match action {
//!             ExchangeAction::Send(message) => writer.send(&message).await?,
//!             ExchangeAction::Received(_records) => { /* validate, store */ }
//!             ExchangeAction::ServeFetch(_ids) => { /* load those we have, pack, send */ }
//!             ExchangeAction::Announced(_ids) => { /* fetch those we lack and want */ }
//!             ExchangeAction::ServeAuthor(_author) => { /* load the author's newest, pack, send */ }
//!             ExchangeAction::Reconcile { .. } => { /* feed the reconciliation session */ }
//!             ExchangeAction::Replicate(_record) => { /* validate, fetch the data, answer Holding or Decline */ }
//!             ExchangeAction::Declined(_) | ExchangeAction::Holding(_) => { /* challenge the claim */ }
//!             ExchangeAction::Challenged(_) => { /* prove from our copy, or decline */ }
//!             ExchangeAction::Proved { .. } => { /* check against our copy */ }
//!             ExchangeAction::Opened => { /* start reconciling */ }
//!         }
//!     }
//! }
//! # }
//! ```

pub mod config;
pub mod error;
pub mod exchange;
pub mod frame;
pub mod handshake;
pub mod message;
pub mod pack;

pub use config::{ConfigError, WireConfig};
pub use error::WireError;
pub use exchange::{Exchange, ExchangeAction, ExchangeError, PeerHello};
pub use frame::{WireReader, WireWriter};
pub use handshake::{Role, handshake};
pub use message::{Message, MessageError, PROTOCOL_VERSION};
pub use pack::{PackError, RecordPacker, pack_records};
