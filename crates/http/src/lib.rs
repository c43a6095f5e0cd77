//! kolokol-http: the node's local HTTP API (JSON under `/api/v1`), served with axum.
//!
//! API boundary: handlers call [`kolokol_node::Api`] and nothing else.
//!
//! Local security (design decision 7): the server answers only requests whose `Host` header names the API's own
//! address (so a web page cannot reach it through DNS rebinding), and every state-changing request must carry the
//! node's token in `X-Kolokol-Token` (kept in the data directory; another web site cannot read it, and a cross-site
//! request cannot set that header without a CORS preflight that this server never approves).

mod bundle_routes;
mod error;
mod gateway;
mod guard;
mod holdings_routes;
mod proxy_routes;
mod routes;
mod torrent_routes;
mod ui;

use std::future::Future;

use kolokol_node::Api;
use tokio::net::TcpListener;

pub use error::HttpError;
pub use guard::TOKEN_HEADER;
pub use routes::router;
pub use torrent_routes::TORRENT_CONTENT_TYPE;

/// Serve the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    api: Api,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(api))
        .with_graceful_shutdown(shutdown)
        .await
}
