//! kolokol-proxy: reach blocked sites through a local proxy that goes direct where it can and through an
//! invitation-only bridge where it must (design decision 9). See `DESIGN.md` beside this crate for the threat model
//! and the wire format.
//!
//! - [`ProxyServer`] serves SOCKS5 and HTTP proxying on one local port and drives the pure detour machine of
//!   [`kolokol_core::detour`]: direct first, a bridge on reset, time-out, bogus DNS, block page or a silent site,
//!   replaying what the client already sent.
//! - [`BridgeServer`] runs the bridge: it lets in only holders of an [`Invitation`] and stays silent to everyone
//!   else.
//! - [`Invitation`] is what travels from a bridge operator to a user: a `kolokol-bridge:` text code and a QR code.
//! - [`tunnel`] is the transport between them: an obfuscated Noise handshake, padded records, multiplexed streams.
//!
//! # Using it from the node
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use kolokol_proxy::{BridgeConfig, BridgeKey, BridgeServer, Invitation, ProxyConfig, ProxyServer};
//!
//! // A client: the local proxy with the bridges the user added.
//! let code = "kolokol-bridge:...";
//! let proxy = ProxyServer::start(ProxyConfig::new("127.0.0.1:7412".parse()?), vec![Invitation::parse(code)?]).await?;
//! println!("proxy on {}", proxy.addr());
//! for site in proxy.status().sites {
//!     println!("{} -> {}", site.host, site.route);
//! }
//!
//! // A bridge: its key is saved in the data directory, invitations are made on demand.
//! let key = BridgeKey::generate()?;
//! let bridge = BridgeServer::start(BridgeConfig::new("0.0.0.0:443".parse()?, key)).await?;
//! let invitation = bridge.invite("203.0.113.7".parse()?, 443);
//! println!("{}\n{}", invitation.to_code(), invitation.qr_terminal_string()?);
//! # Ok(()) }
//! ```
//!
//! # Architecture invariant
//!
//! Decisions live in `kolokol_core::detour` (pure, tested without sockets); this crate only performs them. Every
//! byte from a client, a site or a tunnel peer is bounded before it is buffered: request heads, replay buffers,
//! record sizes, per-stream windows, stream and tunnel counts.

pub mod bridge;
mod bridge_key;
mod connect;
pub mod invitation;
pub mod proxy;
pub mod relay;
pub mod resolve;
pub mod tunnel;

pub use bridge::pool::{BridgeOpenError, BridgeStatus, PoolConfig};
pub use bridge::server::{BridgeConfig, BridgeError, BridgeHandle, BridgeServer, BridgeStats};
pub use bridge_key::{BridgeKey, BridgeKeyError};
pub use invitation::{CODE_PREFIX, Invitation, InvitationError, InviteSecret};
pub use kolokol_core::detour::{Host, Route, Rule, Rules, SiteRoute};
pub use proxy::detect::BlockPageRules;
pub use proxy::{
    DEFAULT_PROXY_ADDR, ProxyConfig, ProxyError, ProxyHandle, ProxyServer, ProxyStatus, Target,
};
pub use resolve::{Resolver, StaticResolver, SystemResolver};
