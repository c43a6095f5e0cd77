//! HTTP proxy requests: `CONNECT host:port` tunnels, and plain requests with an absolute `http://` URI, which are
//! rewritten to origin form and sent with `Connection: close` (one request per proxied connection keeps the
//! detour decision per site simple; browsers open the next connection themselves).

use kolokol_core::detour::Host;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{ClientRequestError, Target};

/// Longest request head accepted.
pub const MAX_HEAD: usize = 32 * 1024;
/// Headers dropped from a forwarded plain request: they concern the hop to the proxy, not the site.
const HOP_HEADERS: [&str; 4] = [
    "proxy-connection",
    "proxy-authorization",
    "connection",
    "keep-alive",
];

/// A parsed proxy request.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    /// A tunnel; after the 200 answer the client speaks (usually TLS) directly to the site.
    Connect(Target),
    /// A plain request: `head` is the rewritten head to send to the site, `extra` the bytes after the head that
    /// were already read (the start of a body).
    Plain {
        target: Target,
        head: Vec<u8>,
        extra: Vec<u8>,
    },
}

/// Reads a request head that starts with `first` (already read by the caller) and parses it.
pub async fn read_request<S: AsyncRead + Unpin>(
    io: &mut S,
    first: u8,
) -> Result<Request, ClientRequestError> {
    let mut buf = vec![first];
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        if buf.len() > MAX_HEAD {
            return Err(ClientRequestError::Malformed("HTTP request head too long"));
        }
        let n = io.read(&mut chunk).await?;
        if n == 0 {
            return Err(ClientRequestError::Malformed(
                "connection closed inside the HTTP request head",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let extra = buf.split_off(head_end);
    parse(&buf, extra)
}

fn parse(head: &[u8], extra: Vec<u8>) -> Result<Request, ClientRequestError> {
    let text = std::str::from_utf8(head)
        .map_err(|_| ClientRequestError::Malformed("HTTP head is not text"))?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ClientRequestError::Malformed("bad HTTP request line"));
    };
    if !version.starts_with("HTTP/1.")
        || method.is_empty()
        || !method.bytes().all(|b| b.is_ascii_uppercase())
    {
        return Err(ClientRequestError::Malformed("bad HTTP request line"));
    }
    if method == "CONNECT" {
        return Ok(Request::Connect(parse_authority(uri, None)?));
    }
    let rest = uri
        .strip_prefix("http://")
        .or_else(|| uri.strip_prefix("HTTP://"))
        .ok_or(ClientRequestError::Refused(
            "only absolute http:// URIs can be proxied in plain mode",
        ))?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(pos) => (&rest[..pos], &rest[pos..]),
        None => (rest, "/"),
    };
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_owned()
    };
    let target = parse_authority(authority, Some(80))?;
    let mut out = format!("{method} {path} {version}\r\n");
    let mut has_host = false;
    for line in lines.filter(|l| !l.is_empty()) {
        let name = line
            .split(':')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if HOP_HEADERS.contains(&name.as_str()) {
            continue;
        }
        has_host |= name == "host";
        out.push_str(line);
        out.push_str("\r\n");
    }
    if !has_host {
        out.push_str(&format!("Host: {authority}\r\n"));
    }
    out.push_str("Connection: close\r\n\r\n");
    Ok(Request::Plain {
        target,
        head: out.into_bytes(),
        extra,
    })
}

/// Parses `host:port`, `[v6]:port`, or (with a default port) a bare host.
fn parse_authority(
    authority: &str,
    default_port: Option<u16>,
) -> Result<Target, ClientRequestError> {
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or(ClientRequestError::Malformed("bad IPv6 address"))?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(port) => port
            .parse::<u16>()
            .map_err(|_| ClientRequestError::Malformed("bad port"))?,
        None => default_port.ok_or(ClientRequestError::Malformed("CONNECT needs a port"))?,
    };
    if port == 0 {
        return Err(ClientRequestError::Malformed("port 0"));
    }
    let host = Host::parse(host).map_err(|_| ClientRequestError::Malformed("bad host name"))?;
    Ok(Target { host, port })
}

/// Sends a short error answer and closes the write side.
pub async fn error_reply<S: AsyncWrite + Unpin>(
    io: &mut S,
    status: u16,
    reason: &str,
    detail: &str,
) {
    let body = format!("{status} {reason}\n{detail}\n");
    let answer = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = io.write_all(answer.as_bytes()).await;
    let _ = io.shutdown().await;
}

/// The answer to a CONNECT once the route is open.
pub const CONNECT_OK: &[u8] = b"HTTP/1.1 200 Connection established\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    async fn read(input: &[u8]) -> Result<Request, ClientRequestError> {
        let mut io = &input[1..];
        read_request(&mut io, input[0]).await
    }

    #[tokio::test]
    async fn connect_requests() {
        let request = read(b"CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(
            request,
            Request::Connect(Target {
                host: Host::parse("example.org").unwrap(),
                port: 443
            })
        );
        let request = read(b"CONNECT [2001:db8::1]:8443 HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        assert!(matches!(request, Request::Connect(t) if t.to_string() == "[2001:db8::1]:8443"));
        assert!(read(b"CONNECT example.org HTTP/1.1\r\n\r\n").await.is_err());
    }

    #[tokio::test]
    async fn plain_requests_are_rewritten() {
        let input = b"GET http://Example.org:8080/a/b?c=d HTTP/1.1\r\nHost: example.org:8080\r\nProxy-Connection: keep-alive\r\nConnection: keep-alive\r\nAccept: */*\r\n\r\nBODY";
        let Request::Plain {
            target,
            head,
            extra,
        } = read(input).await.unwrap()
        else {
            panic!()
        };
        assert_eq!(target.to_string(), "example.org:8080");
        assert_eq!(
            String::from_utf8(head).unwrap(),
            "GET /a/b?c=d HTTP/1.1\r\nHost: example.org:8080\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        );
        assert_eq!(extra, b"BODY");
        let Request::Plain { head, target, .. } =
            read(b"GET http://x.org HTTP/1.0\r\n\r\n").await.unwrap()
        else {
            panic!()
        };
        assert_eq!(target.port, 80);
        assert_eq!(
            String::from_utf8(head).unwrap(),
            "GET / HTTP/1.0\r\nHost: x.org\r\nConnection: close\r\n\r\n"
        );
    }

    #[tokio::test]
    async fn bad_requests_are_refused() {
        assert!(matches!(
            read(b"GET /relative HTTP/1.1\r\n\r\n").await,
            Err(ClientRequestError::Refused(_))
        ));
        assert!(matches!(
            read(b"GET https://x.org/ HTTP/1.1\r\n\r\n").await,
            Err(ClientRequestError::Refused(_))
        ));
        assert!(matches!(
            read(b"get http://x.org/ HTTP/1.1\r\n\r\n").await,
            Err(ClientRequestError::Malformed(_))
        ));
        assert!(matches!(
            read(b"GET http://x.org/ HTTP/1.1\r\n").await,
            Err(ClientRequestError::Malformed(_))
        ));
        assert!(matches!(
            read(b"GET http://x.org:99999/ HTTP/1.1\r\n\r\n").await,
            Err(ClientRequestError::Malformed(_))
        ));
        let long = [
            b"GET http://x.org/ HTTP/1.1\r\nX: ".as_slice(),
            &vec![b'a'; MAX_HEAD + 10],
        ]
        .concat();
        assert!(matches!(
            read(&long).await,
            Err(ClientRequestError::Malformed(_))
        ));
    }

    proptest! {
        #[test]
        fn parse_never_panics(head in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse(&head, Vec::new());
        }

        #[test]
        fn parse_never_panics_on_textual_input(line in "[A-Z]{1,7} [ -~]{0,60} HTTP/1\\.[01]", headers in prop::collection::vec("[ -~]{0,40}", 0..5)) {
            let head = format!("{line}\r\n{}\r\n\r\n", headers.join("\r\n"));
            let _ = parse(head.as_bytes(), Vec::new());
        }
    }
}
