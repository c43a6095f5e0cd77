//! kolokol-discovery: how kolokol nodes find each other with no server (design decision 2).
//!
//! - [`dht`]: one mainline DHT node (BEP 5) per kolokol node, kolokol's own (`kolokol-dht`). It bootstraps from
//!   the routing-table nodes saved on the last run ([`state`]), then the configured `HOST:PORT`s, then the public
//!   BitTorrent routers unless `no_default_bootstrap` is set ([`bootstrap`]). It announces and looks up the
//!   rendezvous infohash of the network ([`kolokol_core::InfoHash::rendezvous`]) and torrent infohashes.
//! - [`rendezvous`]: the periodic announce + lookup task that turns the rendezvous into a stream of candidate
//!   addresses for the node's overlay ([`kolokol_core::overlay`]).
//! - [`policy`]: the pure decisions both apply: a node answers DHT queries from the start when its network has
//!   nothing else to answer (public routers off), the DHT request timeout, and the rendezvous back-off.
//! - [`feed`] and [`feeds`]: an author's feed head (latest record id and record count) as a BEP 44 mutable item
//!   signed by the author's key, so a follower learns of new records through the DHT alone.
//! - [`lan`]: UDP multicast announces on the local network, for nodes with no DHT and no Internet.
//!
//! The pure parts (feed value codec, state file format, bootstrap list, LAN message) have no I/O and are
//! property-tested; the rest is the thin layer that drives sockets and the `kolokol-dht` node.
//!
//! # Threat model
//!
//! What the DHT reveals. The mainline DHT is public: anyone can run many nodes in it and watch. A kolokol node's
//! DHT traffic shows:
//!
//! - that its IP address runs a DHT node (as any BitTorrent client does);
//! - that its IP address and wire port are announced on the rendezvous infohash of its network. The infohash is
//!   a hash of a fixed prefix and the network name, so anyone who knows or guesses the name (the default is
//!   `kolokol`) can list the IP addresses of that network's nodes. An observer at the DHT nodes closest to the
//!   infohash sees who announces and who looks up. A private network with an unguessable name hides the name,
//!   not the traffic pattern;
//! - which torrents it looks up and announces (as any BitTorrent client does): what a node downloads and seeds
//!   can be seen by DHT observers;
//! - which authors it follows: a feed lookup names the author's public key and the network's salt. Putting a
//!   feed head reveals that the putting IP holds the author's key, unless the head is put from elsewhere.
//!
//! The DHT never sees record contents, and it cannot forge anything: feed heads are signed by the author (and
//! checked again here with strict Ed25519 verification), rendezvous results are only candidates until the wire
//! handshake proves a node, and records are verified when fetched. A hostile DHT can hide things (return
//! nothing, return stale heads, flood the rendezvous with fake addresses); the overlay bounds and backs off
//! candidates, and LAN discovery and the peer cache work without the DHT.
//!
//! Why no public routers with `no_default_bootstrap`. A private network (its own bootstrap list, for example a
//! national intranet during a shutdown, or a test) must not leak to the public DHT: a single packet to a public
//! router tells it that this address runs a DHT node, and the public DHT would learn the private nodes' addresses
//! and the rendezvous infohash. With `no_default_bootstrap`, the DHT node is always given an explicit
//! bootstrap list (the crate would otherwise fall back to its built-in public routers), the public routers are
//! never resolved, and saved routing-table nodes learned in a run that allowed public routers are not used. The
//! node then only sends to configured addresses and to nodes that those (and their peers) told it about.
//!
//! What the LAN reveals. A LAN announce tells everyone on the link that this device runs kolokol, its wire port
//! and a hash of its network name, plus 16 random bytes (the instance) that are new with every wire identity of
//! the node: at every start, daily, and when the node's addresses change. It carries no node id and nothing kept
//! across restarts except the wire port (which the node keeps so that peers find it again; see SECURITY.md). On an
//! untrusted network (a café, an office), turn LAN discovery off.
//!
//! # Other BitTorrent clients
//!
//! The DHT node answers queries whatever the length of their KRPC transaction id (libtorrent and aria2 use 2
//! bytes), so those clients can use a kolokol node as their way into the DHT, and kolokol nodes use theirs.
//! `tests/interop.rs` and `crates/dht/tests/interop_libtorrent.rs` show both directions. (The `mainline` crate
//! used before read only 4-byte ids and dropped those clients' queries.)

pub mod bootstrap;
pub mod dht;
pub mod feed;
pub mod feeds;
pub mod lan;
pub mod policy;
pub mod rendezvous;
pub mod state;

pub use dht::{Dht, DhtConfig, DhtError, DhtStatus};
pub use feed::{FeedEntry, FeedHead, next_feed_seq};
pub use feeds::{FeedError, FeedPut};
pub use lan::{Lan, LanConfig, LanError, LanInterfaces, LanPeer, local_addresses};
pub use policy::ServerMode;
pub use rendezvous::{Rendezvous, RendezvousConfig};
pub use state::DhtState;
