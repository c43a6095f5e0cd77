//! Request checks that run before any handler, in this order, each refusing with 403 before anything starts:
//!
//! 1. the `Host` header names the API's own address (DNS rebinding);
//! 2. the request does not come from another site: a browser's `Sec-Fetch-Site` is `same-origin` or `none` (typed
//!    URL, bookmark) or absent (a non-browser client), and an `Origin` header, when present, is this node's own. So
//!    a page elsewhere cannot make the node fetch (`<video src=".../files/ID/0">`), cannot time whether it holds
//!    something, and cannot even learn that a node answers here;
//! 3. every `/api/v1` request, read or write, and every other state-changing request carries the token: the API's
//!    reads (followed authors, downloads, proxied sites, node and author ids) are private to whoever can read the
//!    data directory. The gateway (`/files`), thumbnails and pages need no token, since a `<video>` or a link cannot
//!    send a header; step 2 is what keeps other sites away from them.

use std::net::SocketAddr;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use kolokol_node::Api;

use crate::HttpError;

/// Header that carries the node's API token.
pub const TOKEN_HEADER: &str = "x-kolokol-token";

pub(crate) async fn check_request(
    State(api): State<Api>,
    request: Request,
    next: Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !host_allowed(host, api.api_addr()) {
        return HttpError::new(
            StatusCode::FORBIDDEN,
            "this address does not serve that host name",
        )
        .into_response();
    }
    if let Some(refusal) = cross_site_refusal(request.headers(), api.api_addr()) {
        tracing::debug!(refusal, "cross-site request refused");
        return HttpError::new(StatusCode::FORBIDDEN, refusal).into_response();
    }
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if !safe || needs_token_to_read(request.uri().path()) {
        let token = request
            .headers()
            .get(TOKEN_HEADER)
            .and_then(|t| t.to_str().ok())
            .unwrap_or("");
        if !constant_time_eq(token.as_bytes(), api.token().as_bytes()) {
            return HttpError::new(
                StatusCode::FORBIDDEN,
                "missing or wrong API token (the CLI reads it from the node's data directory: pass --data-dir)",
            )
            .into_response();
        }
    }
    next.run(request).await
}

/// Why a request is refused as coming from another site, or `None` when it does not. Fails closed: a
/// `Sec-Fetch-Site` value this code does not know is refused, as is `Origin: null` (sandboxed frames, and the
/// gateway's own `sandbox` policy on published files). `same-site` is refused too: a site ignores ports, so any other
/// web server on 127.0.0.1 (or another `*.localhost` name) is the "same site" as this node.
pub(crate) fn cross_site_refusal(headers: &HeaderMap, api: SocketAddr) -> Option<&'static str> {
    if let Some(site) = headers.get("sec-fetch-site") {
        match site.to_str().unwrap_or("") {
            "same-origin" | "none" => {}
            _ => return Some("requests from other web sites are refused"),
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let own = origin
            .to_str()
            .ok()
            .and_then(|o| o.strip_prefix("http://"))
            .is_some_and(|host| host_allowed(host, api));
        if !own {
            return Some("requests from other origins are refused");
        }
    }
    None
}

/// Whether a read needs the token: everything under the JSON API does (it answers with private state); pages, the
/// gateway, thumbnails and assets do not (a browser loads them without headers of ours).
fn needs_token_to_read(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}

/// Host names under which the API may be addressed: its own address, and `localhost` when it listens on loopback.
/// A node bound to an unspecified address (0.0.0.0) by the user's choice accepts any host name.
fn host_allowed(host: &str, api: SocketAddr) -> bool {
    if api.ip().is_unspecified() {
        return true;
    }
    let port = api.port();
    let mut allowed = vec![api.to_string()];
    if api.ip().is_loopback() {
        allowed.push(format!("localhost:{port}"));
        allowed.push(format!("127.0.0.1:{port}"));
        allowed.push(format!("[::1]:{port}"));
    }
    if port == 80 {
        allowed.push(api.ip().to_string());
    }
    allowed.iter().any(|a| a.eq_ignore_ascii_case(host))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_own_host_names_are_allowed() {
        let api: SocketAddr = "127.0.0.1:7411".parse().unwrap();
        assert!(host_allowed("127.0.0.1:7411", api));
        assert!(host_allowed("localhost:7411", api));
        assert!(host_allowed("LOCALHOST:7411", api));
        assert!(!host_allowed("evil.example:7411", api));
        assert!(!host_allowed("127.0.0.1:80", api));
        assert!(!host_allowed("", api));
        let any: SocketAddr = "0.0.0.0:7411".parse().unwrap();
        assert!(host_allowed("whatever:1", any));
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn other_sites_are_refused() {
        let api: SocketAddr = "127.0.0.1:7411".parse().unwrap();
        let refused = |pairs: &[(&'static str, &'static str)]| {
            cross_site_refusal(&headers(pairs), api).is_some()
        };
        assert!(!refused(&[]));
        assert!(!refused(&[("sec-fetch-site", "same-origin")]));
        assert!(!refused(&[("sec-fetch-site", "none")]));
        assert!(refused(&[("sec-fetch-site", "cross-site")]));
        assert!(refused(&[("sec-fetch-site", "same-site")]));
        assert!(refused(&[("sec-fetch-site", "something-new")]));
        assert!(!refused(&[("origin", "http://127.0.0.1:7411")]));
        assert!(!refused(&[("origin", "http://localhost:7411")]));
        assert!(refused(&[("origin", "http://127.0.0.1:8080")]));
        assert!(refused(&[("origin", "https://127.0.0.1:7411")]));
        assert!(refused(&[("origin", "null")]));
        assert!(refused(&[("origin", "http://evil.example")]));
        assert!(refused(&[
            ("sec-fetch-site", "same-origin"),
            ("origin", "http://127.0.0.1:9")
        ]));
        assert!(needs_token_to_read("/api/v1/status"));
        assert!(needs_token_to_read("/api"));
        assert!(!needs_token_to_read("/files/x/0"));
        assert!(!needs_token_to_read("/apix"));
    }

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
