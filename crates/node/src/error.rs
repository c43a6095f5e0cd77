//! Errors the node's API returns. Each carries a one-line message meant for the user; the HTTP layer maps the kind
//! to a status code and the CLI prints the message.

/// An API failure.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request itself is wrong (bad path, empty title, malformed magnet...). Nothing changed.
    #[error("{0}")]
    Invalid(String),
    /// The thing asked for is not known to this node.
    #[error("{0}")]
    NotFound(String),
    /// A remote node could not be reached or refused us.
    #[error("{0}")]
    Unreachable(String),
    /// The node failed doing something it should have been able to do.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub(crate) fn internal(context: &str, error: impl std::fmt::Display) -> ApiError {
        ApiError::Internal(format!("{context}: {error}"))
    }
}

impl From<kolokol_store::StoreError> for ApiError {
    fn from(error: kolokol_store::StoreError) -> Self {
        ApiError::internal("catalog", error)
    }
}

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
    #[error("{0}")]
    Other(String),
}
