//! kolokol-transfer: moving publication content as standard BitTorrent.
//!
//! # Why this crate exists
//!
//! kolokol publishes every publication's files as a v1 torrent, so that any BitTorrent client
//! (libtorrent, qBittorrent, Transmission, aria2) can fetch and seed them. The engine underneath is
//! [librqbit]; this crate is the only place in kolokol that knows it. No librqbit type appears in
//! the API below: the node sees an [`Engine`] that hashes content, seeds it, fetches it from a
//! magnet link or a .torrent, and reports [`Progress`], with plain `[u8; 20]` info-hashes and
//! `SocketAddr` peers. Replacing librqbit means rewriting `backend.rs` (every librqbit call) and
//! `fastresume.rs` (its resume-file layout), not the node.
//!
//! # Off public networks
//!
//! People who use kolokol may be watched. Until kolokol has its own peer discovery, the engine
//! talks only to peers it is explicitly given, and to peers those peers tell it about (ut_pex,
//! inside the swarm). It is started with:
//!
//! - no mainline DHT (`SessionOptions::dht = None`): no UDP socket, no public bootstrap routers;
//! - trackers disabled, and every torrent rewritten to `d4:info...e` and every magnet to its bare
//!   info-hash before librqbit sees it, so no announce URL can be contacted;
//! - no local service discovery (BEP 14 multicast) and no UPnP port mapping;
//! - one TCP listener bound exactly to [`EngineConfig::listen`], no uTP socket; outgoing
//!   connections are TCP too, and several peers may share one IP (e.g. 127.0.0.1);
//! - no proxy, blocklist or allowlist URL (each would be fetched over HTTP);
//! - a peer id and client name (`v`) of Transmission 4.0.6, not of rqbit or kolokol ([`fingerprint`]).
//!
//! Peers come from [`Engine::fetch`]'s list, the magnet's `x.pe` parameters, or
//! [`Engine::add_peers`]. librqbit accepts peers only when a torrent is added, so `add_peers`
//! re-adds a running download (see its documentation).
//!
//! Known limits of librqbit 9.1 that settings cannot remove: every session binds one UDP socket on
//! `[::]:<random port>` for its UDP tracker client (checked with strace: nothing is ever sent on
//! it while trackers are off, but the port is open); the handshake's reserved bits and the extension
//! handshake's keys are librqbit's own (the peer id and client name say Transmission, see [`fingerprint`]); ut_pex
//! cannot be turned off for public torrents; a peer that sends one bad
//! piece is dropped and retried only after 10 s, then 60 s, then 6 min (so a swarm with a single
//! damaged seeder stalls, though it never accepts the bad data).
//!
//! # Checking what comes in
//!
//! Every torrent, whether given by the caller or received as BEP 9 metadata, is parsed by our own
//! bounded bencode reader and checked (piece length and count, file names that cannot escape the
//! download folder, sizes) before librqbit handles it. librqbit calls run on their own tasks, so a
//! panic inside librqbit becomes a [`TransferError`] rather than a crash.
//!
//! # Hashing
//!
//! [`Engine::create_torrent`] hashes with all cores, in sorted file order (the same folder always
//! gives the same info-hash). Seeding what was just hashed does not hash it again: the engine hands
//! librqbit a fast-resume bitfield, so it verifies only a sample of pieces.
//!
//! # Streaming
//!
//! [`Engine::open_stream`] gives a [`FileStream`] (`AsyncRead + AsyncSeek`) over one file while
//! the torrent downloads: librqbit fetches the pieces at the read position first and reads ahead;
//! a read that gets nothing for [`EngineConfig::stream_timeout`] fails with `TimedOut` instead of
//! hanging, and a torrent re-added by [`Engine::add_peers`] is followed (see `stream.rs`).
//! [`EngineConfig::limits`] slows the whole engine down (upload and download, bytes per second).

mod backend;
mod bencode;
mod create;
mod engine;
mod error;
mod fastresume;
pub mod fingerprint;
pub mod metainfo;
mod progress;
mod resolve;
mod stream;

pub use bencode::BencodeError;
pub use engine::{
    CreatedTorrent, DEFAULT_STREAM_TIMEOUT, Engine, EngineConfig, FetchSource,
    MAX_PEERS_PER_TORRENT, MIN_RATE_LIMIT, RateLimits,
};
pub use error::TransferError;
pub use metainfo::MetainfoError;
pub use progress::{Progress, TorrentState};
pub use stream::{FileStream, MAX_OPEN_STREAMS};
