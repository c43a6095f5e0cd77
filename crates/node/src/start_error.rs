//! Why a node did not start.

/// Errors starting a node.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
    #[error(transparent)]
    Store(#[from] kolokol_store::StoreError),
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
    #[error("cannot start the catalog thread: {0}")]
    CatalogThread(#[source] std::io::Error),
    #[error("{0}")]
    Other(String),
}
