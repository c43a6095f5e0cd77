//! Request checks that run before any handler: the Host header and, for state-changing methods, the token.

use std::net::SocketAddr;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
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
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if !safe {
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

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
