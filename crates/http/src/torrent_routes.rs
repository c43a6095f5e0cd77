//! .torrent files under `/api/v1`: a publication's torrent (`GET /records/{id}/torrent`), and a download started from
//! a .torrent file (`POST /get/torrent`, the file's bytes as the body). The router's guard (Host check, token on every
//! POST) covers both like every other route.

use std::path::PathBuf;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use kolokol_node::{Api, MAX_TORRENT_FILE_BYTES, TransferView};
use serde::Deserialize;

use crate::HttpError;

/// The media type of .torrent files.
pub const TORRENT_CONTENT_TYPE: &str = "application/x-bittorrent";

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/api/v1/records/{id}/torrent", get(torrent_file))
        // The publication page's link: a link cannot send the token, so like the gateway this one is outside
        // `/api/v1` and the guard's cross-site refusal is what keeps other web pages from it.
        .route("/torrent/{id}", get(torrent_file))
        .route(
            "/api/v1/get/torrent",
            // axum refuses a larger body (413) before it is buffered.
            post(get_torrent).layer(DefaultBodyLimit::max(MAX_TORRENT_FILE_BYTES)),
        )
}

/// `GET /api/v1/records/{id}/torrent` and `GET /torrent/{id}`: the .torrent file, as an attachment named after the torrent.
async fn torrent_file(State(api): State<Api>, Path(id): Path<String>) -> Response {
    let file = match api.torrent_file(&id).await {
        Ok(file) => file,
        Err(e) => return HttpError::from(e).into_response(),
    };
    let mut response = file.bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(TORRENT_CONTENT_TYPE),
    );
    if let Ok(value) = HeaderValue::from_str(&content_disposition(&file.name)) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Another web page may not even load it (a <script> or <img> of it could tell whether this node holds a
    // publication's metadata, that is, whether its user downloaded it).
    headers.insert(
        HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[derive(Deserialize)]
struct GetTorrentQuery {
    /// Absolute folder to download into; default: the node's data directory.
    out_dir: Option<PathBuf>,
}

/// `POST /api/v1/get/torrent?out_dir=/abs/dir` with the .torrent file as the body → the transfer, as `POST /get`.
async fn get_torrent(
    State(api): State<Api>,
    Query(query): Query<GetTorrentQuery>,
    body: Bytes,
) -> Result<Json<TransferView>, HttpError> {
    Ok(Json(api.get_torrent(&body, query.out_dir).await?))
}

/// `attachment; filename="<ASCII name>.torrent"; filename*=UTF-8''<percent-encoded name>.torrent` (RFC 6266).
fn content_disposition(name: &str) -> String {
    let name: String = name.chars().take(100).collect();
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ' ') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'-' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}.torrent\"; filename*=UTF-8''{encoded}.torrent")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachment_names_are_header_safe() {
        assert_eq!(
            content_disposition("report \"x\".mp4"),
            "attachment; filename=\"report _x_.mp4.torrent\"; filename*=UTF-8''report%20%22x%22.mp4.torrent"
        );
        let russian = content_disposition("отчёт");
        assert!(russian.starts_with("attachment; filename=\"_____.torrent\""));
        assert!(HeaderValue::from_str(&russian).is_ok());
        assert!(HeaderValue::from_str(&content_disposition("a\r\nSet-Cookie: x")).is_ok());
    }
}
