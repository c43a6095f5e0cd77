//! The web UI: server-rendered HTML pages at the API address, with every asset (CSS, a little JavaScript, an icon)
//! embedded in the binary, so it works with no Internet at all. Routes:
//!
//! | route | page |
//! |---|---|
//! | `/` | newest publications (`?page=N`) |
//! | `/search` | search with filters (`q`, `media`, `lang`, `tag`, `period`) |
//! | `/p/{id}` | a publication: player (video, audio, image, text) for `?file=N`, files, magnet link, .torrent file |
//! | `/a/{author}` | an author's publications; follow and block |
//! | `/publish` | upload files and publish them |
//! | `/downloads` | downloads and seeds with progress |
//! | `/node` | peers, DHT, storage, network name |
//! | `/thumb/{id}` | a record's thumbnail image |
//! | `/assets/*` | the embedded CSS, JS and icon |
//! | `POST /ui/upload?name=F` | a file's bytes as the request body (streamed to disk) → `{"upload": id}` |
//! | `POST /ui/publish` | `UploadPublishRequest` JSON → `PublishedView` |
//!
//! Security model: the router's guard (Host check, cross-site refusal, token on every POST) runs in front of these
//! routes too. Pages
//! carry the token in `<meta name="kolokol-token">` for their own script to send in `X-Kolokol-Token`; no other
//! origin can read a page (same-origin policy, and the Host check defeats DNS rebinding). Every response here has a
//! strict Content-Security-Policy (no inline script, nothing from other hosts), `X-Frame-Options: DENY`,
//! `nosniff`, `Referrer-Policy: no-referrer`; pages are `no-store` because they hold the token. Text from records
//! reaches HTML only through maud, which escapes every interpolated value.

mod assets;
mod format;
mod i18n;
mod layout;
mod pages;
mod publication;
mod upload;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware;
use axum::response::Response;
use axum::routing::{get, post};
use kolokol_node::Api;

/// The policy of every UI response: only this origin, no inline script, no plugins, no framing.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; media-src 'self'; img-src 'self' data:; \
     script-src 'self'; style-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; \
     form-action 'self'";

/// The UI's routes (state: the node's [`Api`]).
pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/", get(pages::home))
        .route("/search", get(pages::search))
        .route("/p/{id}", get(publication::publication))
        .route("/a/{author}", get(pages::author))
        .route("/publish", get(pages::publish))
        .route("/downloads", get(pages::downloads))
        .route("/node", get(pages::node))
        .route("/thumb/{id}", get(publication::thumbnail))
        .route("/assets/{name}", get(assets::asset))
        .route(
            "/ui/upload",
            // Uploads stream to disk under their own cap (MAX_UPLOAD_BYTES), not axum's 2 MB buffer limit.
            post(upload::upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/ui/publish", post(upload::publish))
        .layer(middleware::map_response(security_headers))
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
    }
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
