//! Why a node did not start.

/// Errors starting a node. (A variant added with a source leaves the source out of its own message: the CLI prints
/// the chain, joined by colons, as one line.)
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
    #[error(transparent)]
    AuthorKey(#[from] crate::keystore::KeystoreError),
    #[error(transparent)]
    Store(#[from] kolokol_store::StoreError),
    /// The blocking task that opens (and may migrate) the catalog did not finish.
    #[error("opening the catalog")]
    CatalogOpen(#[source] tokio::task::JoinError),
    #[error("network name")]
    NetworkName(#[source] kolokol_wire::ConfigError),
    #[error("peer settings")]
    PeerSettings(#[source] kolokol_core::overlay::OverlayConfigError),
    #[error("record policy settings")]
    RecordPolicySettings(#[source] kolokol_core::policy::PolicyConfigError),
    #[error("a rate limit of 0 bytes per second would stop all transfers")]
    ZeroRateLimit,
    #[error("cannot find a free port")]
    NoFreePort(#[source] std::io::Error),
    #[error("--dht {0}: the DHT is IPv4 only; give an IPv4 address")]
    DhtNotIpv4(std::net::SocketAddrV6),
    #[error("cannot start the DHT")]
    Dht(#[source] kolokol_discovery::DhtError),
    #[error("cannot start the BitTorrent engine: {0}")]
    Engine(#[from] kolokol_transfer::TransferError),
    #[error("cannot listen for kolokol peers on {addr}: {source}")]
    WireListen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Proxy(#[from] crate::proxy::ProxyStartError),
    /// The blocking task that reads (and unlocks) the author keys did not finish.
    #[error("reading the author keys")]
    IdentityTask(#[source] tokio::task::JoinError),
    #[error(transparent)]
    Presence(#[from] crate::presence::PresenceError),
    #[error("cannot start the catalog thread: {0}")]
    CatalogThread(#[source] std::io::Error),
}
