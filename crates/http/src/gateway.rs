//! The streaming gateway (design decision 6): `GET /files/{record_id}/{index}` serves one file of a publication with
//! Range requests, from the torrent while it downloads, so a video plays and seeks before the download is complete.
//!
//! - One range (`bytes=a-b`, `bytes=a-`, `bytes=-n`) is answered `206` with `Content-Range`; no `Range` header, a
//!   header this gateway does not understand, or several ranges are answered `200` with the whole file (RFC 9110
//!   lets a server ignore `Range`); a range that starts past the end gets `416` with `Content-Range: bytes */size`.
//! - `Content-Type` is the MIME type the author signed into the record, never sniffed (`X-Content-Type-Options:
//!   nosniff`), and the response is `Content-Security-Policy: sandbox`, so a published HTML file cannot run script
//!   with this API's origin. `Content-Disposition: inline` carries a safe file name.
//! - `HEAD` answers from the record alone and fetches nothing.
//! - Before answering, the gateway waits for the first bytes of the range (the node's `stream_timeout` at most): if
//!   no peer has them, it answers `504` with a JSON error instead of keeping the client waiting. A stall later in the
//!   body (the data stopped coming) ends the connection early; players then ask again with a new range.
//! - The body streams through a fixed buffer; a file is never read into memory whole.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_core::Stream;
use kolokol_node::{Api, ApiError, FileInfo, FileStream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt, ReadBuf};

use crate::HttpError;

/// Bytes read from the torrent at a time for one response.
const CHUNK: usize = 64 * 1024;

/// The gateway's routes (merged into the API router, behind its Host check).
pub(crate) fn routes() -> Router<Api> {
    Router::new().route("/files/{id}/{index}", get(serve_file))
}

/// What a `Range` header asks of a file of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeRequest {
    /// The whole file (no header, one we do not understand, or several ranges).
    Full,
    /// Bytes `start..=end`, both inside the file.
    Partial { start: u64, end: u64 },
    /// Nothing of it can be served (416).
    Unsatisfiable,
}

/// Reads a `Range` header (RFC 9110 section 14.1.2) against a file of `size` bytes.
pub(crate) fn parse_range(header: Option<&str>, size: u64) -> RangeRequest {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeRequest::Full;
    };
    if spec.contains(',') {
        return RangeRequest::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::Full;
    };
    let number = |text: &str| -> Option<u64> {
        let text = text.trim();
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse().ok()
    };
    match (first.trim().is_empty(), last.trim().is_empty()) {
        // bytes=-n: the last n bytes.
        (true, false) => match number(last) {
            None => RangeRequest::Full,
            Some(0) => RangeRequest::Unsatisfiable,
            Some(_) if size == 0 => RangeRequest::Unsatisfiable,
            Some(n) => RangeRequest::Partial {
                start: size - n.min(size),
                end: size - 1,
            },
        },
        // bytes=a-
        (false, true) => match number(first) {
            None => RangeRequest::Full,
            Some(start) if start >= size => RangeRequest::Unsatisfiable,
            Some(start) => RangeRequest::Partial {
                start,
                end: size - 1,
            },
        },
        // bytes=a-b
        (false, false) => match (number(first), number(last)) {
            (Some(start), Some(end)) if start <= end => {
                if start >= size {
                    RangeRequest::Unsatisfiable
                } else {
                    RangeRequest::Partial {
                        start,
                        end: end.min(size - 1),
                    }
                }
            }
            _ => RangeRequest::Full,
        },
        (true, true) => RangeRequest::Full,
    }
}

async fn serve_file(
    State(api): State<Api>,
    Path((id, index)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let index: usize = index.parse().map_err(|_| {
        HttpError::new(
            StatusCode::NOT_FOUND,
            format!("{index:?} is not a file number"),
        )
    })?;
    let info = api.file_info(&id, index).await.map_err(gateway_error)?;
    let etag = format!("\"{}-{index}\"", id.trim().to_ascii_lowercase());
    let range_header = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    // If-Range with another validator than ours: the client's copy is not this file, send it whole.
    let if_range_matches = headers
        .get(header::IF_RANGE)
        .is_none_or(|v| v.as_bytes() == etag.as_bytes());
    let range = if if_range_matches {
        parse_range(range_header, info.size)
    } else {
        RangeRequest::Full
    };
    let (status, start, len) = match range {
        RangeRequest::Full => (StatusCode::OK, 0, info.size),
        RangeRequest::Partial { start, end } => {
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
        RangeRequest::Unsatisfiable => {
            let mut response = HttpError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                format!("the file has {} bytes", info.size),
            )
            .into_response();
            response.headers_mut().insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes */{}", info.size)),
            );
            return Ok(response);
        }
    };

    let body = if method == Method::HEAD || len == 0 {
        Body::empty()
    } else {
        let opened = api.open_file(&id, index).await.map_err(gateway_error)?;
        let mut reader = opened.reader;
        reader
            .seek(io::SeekFrom::Start(start))
            .await
            .map_err(read_error)?;
        // Wait for the first bytes before answering: a range no peer can serve gets an error status, not a hang.
        let mut first = vec![0; CHUNK.min(usize::try_from(len).unwrap_or(CHUNK))];
        let got = reader.read(&mut first).await.map_err(read_error)?;
        first.truncate(got);
        Body::from_stream(FileBody {
            first: Some(Bytes::from(first)),
            reader,
            remaining: len - got as u64,
            buf: vec![0; CHUNK],
        })
    };

    let mut response = Response::new(body);
    *response.status_mut() = status;
    let out = response.headers_mut();
    out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    out.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    out.insert(header::CONTENT_TYPE, content_type(&info));
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    out.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
    out.insert(
        header::CONTENT_DISPOSITION,
        header_value(&content_disposition(&info.name)),
    );
    out.insert(header::ETAG, header_value(&etag));
    if status == StatusCode::PARTIAL_CONTENT {
        let end = start + len - 1;
        out.insert(
            header::CONTENT_RANGE,
            header_value(&format!("bytes {start}-{end}/{}", info.size)),
        );
    }
    Ok(response)
}

/// API errors as the gateway answers them: data that cannot be had in time is a gateway time-out.
fn gateway_error(error: ApiError) -> HttpError {
    match error {
        ApiError::Unreachable(message) => HttpError::new(StatusCode::GATEWAY_TIMEOUT, message),
        other => other.into(),
    }
}

fn read_error(error: io::Error) -> HttpError {
    if error.kind() == io::ErrorKind::TimedOut {
        HttpError::new(
            StatusCode::GATEWAY_TIMEOUT,
            format!("the file is not available now: {error}"),
        )
    } else {
        HttpError::new(
            StatusCode::BAD_GATEWAY,
            format!("reading the file from the torrent failed: {error}"),
        )
    }
}

/// The signed MIME type (the record's validation admits only `type/subtype` tokens); anything that is not a valid
/// header value falls back to opaque bytes.
fn content_type(info: &FileInfo) -> HeaderValue {
    let valid = info.mime.split_once('/').is_some_and(|(t, s)| {
        let token = |x: &str| {
            !x.is_empty()
                && x.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
        };
        token(t) && token(s)
    });
    if valid {
        header_value(&info.mime)
    } else {
        HeaderValue::from_static("application/octet-stream")
    }
}

/// `inline; filename*=UTF-8''<name>` with every byte outside RFC 5987's attr-char percent-encoded, so no quote,
/// semicolon or line break of a name from outside can leave the parameter.
pub(crate) fn content_disposition(name: &str) -> String {
    let mut out = String::from("inline; filename*=UTF-8''");
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Header values built here are ASCII without control characters; anything else becomes an empty value rather than
/// a panic.
fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The response body: the bytes read before answering, then the rest of the range through one fixed buffer.
struct FileBody {
    first: Option<Bytes>,
    reader: FileStream,
    remaining: u64,
    buf: Vec<u8>,
}

impl Stream for FileBody {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some(first) = this.first.take().filter(|b| !b.is_empty()) {
            return Poll::Ready(Some(Ok(first)));
        }
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        let want = this
            .buf
            .len()
            .min(usize::try_from(this.remaining).unwrap_or(usize::MAX));
        let mut buf = ReadBuf::new(&mut this.buf[..want]);
        match Pin::new(&mut this.reader).poll_read(cx, &mut buf) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(error)) => {
                tracing::debug!(%error, "file stream ended early");
                this.remaining = 0;
                Poll::Ready(Some(Err(error)))
            }
            Poll::Ready(Ok(())) => {
                let read = buf.filled().len();
                if read == 0 {
                    this.remaining = 0;
                    return Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the file ended before the range did",
                    ))));
                }
                this.remaining -= read as u64;
                Poll::Ready(Some(Ok(Bytes::copy_from_slice(buf.filled()))))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partial(start: u64, end: u64) -> RangeRequest {
        RangeRequest::Partial { start, end }
    }

    #[test]
    fn single_ranges() {
        assert_eq!(parse_range(Some("bytes=0-99"), 1000), partial(0, 99));
        assert_eq!(parse_range(Some("bytes=500-"), 1000), partial(500, 999));
        assert_eq!(parse_range(Some("bytes=-100"), 1000), partial(900, 999));
        assert_eq!(parse_range(Some("bytes=-5000"), 1000), partial(0, 999));
        assert_eq!(parse_range(Some("bytes=900-5000"), 1000), partial(900, 999));
        assert_eq!(parse_range(Some("bytes=999-999"), 1000), partial(999, 999));
        assert_eq!(parse_range(Some(" bytes= 1 - 2 "), 1000), partial(1, 2));
    }

    #[test]
    fn unsatisfiable_ranges() {
        assert_eq!(
            parse_range(Some("bytes=1000-"), 1000),
            RangeRequest::Unsatisfiable
        );
        assert_eq!(
            parse_range(Some("bytes=1000-2000"), 1000),
            RangeRequest::Unsatisfiable
        );
        assert_eq!(
            parse_range(Some("bytes=-0"), 1000),
            RangeRequest::Unsatisfiable
        );
        assert_eq!(
            parse_range(Some("bytes=0-"), 0),
            RangeRequest::Unsatisfiable
        );
        assert_eq!(
            parse_range(Some("bytes=-1"), 0),
            RangeRequest::Unsatisfiable
        );
    }

    #[test]
    fn ignored_headers_mean_the_whole_file() {
        for header in [
            None,
            Some("items=0-1"),
            Some("bytes=0-1,5-6"),
            Some("bytes=5-1"),
            Some("bytes=a-b"),
            Some("bytes=-"),
            Some("bytes=1"),
            Some("bytes=+1-2"),
            Some("bytes=99999999999999999999999-"),
        ] {
            assert_eq!(parse_range(header, 1000), RangeRequest::Full, "{header:?}");
        }
    }

    #[test]
    fn file_names_cannot_break_the_header() {
        assert_eq!(
            content_disposition("clip.mp4"),
            "inline; filename*=UTF-8''clip.mp4"
        );
        assert_eq!(
            content_disposition("a\"b; c\r\nd.txt"),
            "inline; filename*=UTF-8''a%22b%3B%20c%0D%0Ad.txt"
        );
        assert_eq!(
            content_disposition("видео.webm"),
            "inline; filename*=UTF-8''%D0%B2%D0%B8%D0%B4%D0%B5%D0%BE.webm"
        );
        assert!(HeaderValue::from_str(&content_disposition("x\u{0}\u{7f}y")).is_ok());
    }
}
