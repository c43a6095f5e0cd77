//! A strict reader of a TLS ClientHello's server name (RFC 8446 §4.1.2, RFC 6066 §3): what a whitelist filter
//! needs to decide whether a connection goes to a listed name. Pure; reads only the bytes it is given.
//!
//! Strict means: one TLS handshake record holding exactly one ClientHello, every length consistent with the ones
//! around it, no extension twice, at most one host name, and that name a plain DNS name. A filter that allows only
//! listed names treats anything it cannot read as not listed, so malformed input is an error, never a guess.

/// Most bytes of a first flight the censor reads to find a whole ClientHello (a record is at most 2^14 bytes).
pub const MAX_HELLO_BYTES: usize = 5 + (1 << 14);

/// Why no server name could be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HelloError {
    /// The bytes so far are a valid beginning: read more (up to [`MAX_HELLO_BYTES`]).
    #[error("incomplete ClientHello")]
    Incomplete,
    #[error("not a TLS handshake record")]
    NotTls,
    #[error("not a ClientHello")]
    NotClientHello,
    #[error("malformed ClientHello: {0}")]
    Malformed(&'static str),
}

/// A cursor over a length-delimited part of the hello; every read is bounds-checked.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], HelloError> {
        if self.bytes.len() < n {
            return Err(HelloError::Malformed(what));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn u8(&mut self, what: &'static str) -> Result<usize, HelloError> {
        Ok(usize::from(self.take(1, what)?[0]))
    }

    fn u16(&mut self, what: &'static str) -> Result<usize, HelloError> {
        let b = self.take(2, what)?;
        Ok(usize::from(u16::from_be_bytes([b[0], b[1]])))
    }

    fn vec8(&mut self, what: &'static str) -> Result<&'a [u8], HelloError> {
        let n = self.u8(what)?;
        self.take(n, what)
    }

    fn vec16(&mut self, what: &'static str) -> Result<&'a [u8], HelloError> {
        let n = self.u16(what)?;
        self.take(n, what)
    }
}

/// The server name a ClientHello asks for: `Ok(Some(name))` (lower case), `Ok(None)` for a valid ClientHello
/// without one, or why it cannot be read. `flight` is what the client sent first, from its first byte.
pub fn server_name(flight: &[u8]) -> Result<Option<String>, HelloError> {
    // Record header: handshake (22), version 3.x, length.
    if flight.is_empty() {
        return Err(HelloError::Incomplete);
    }
    if flight[0] != 0x16 {
        return Err(HelloError::NotTls);
    }
    if flight.len() >= 2 && flight[1] != 0x03 {
        return Err(HelloError::NotTls);
    }
    if flight.len() < 5 {
        return Err(HelloError::Incomplete);
    }
    if flight[2] > 0x04 {
        return Err(HelloError::NotTls);
    }
    let record_len = usize::from(u16::from_be_bytes([flight[3], flight[4]]));
    if record_len == 0 || record_len > 1 << 14 {
        return Err(HelloError::Malformed("record length"));
    }
    if flight.len() < 5 + record_len {
        return Err(HelloError::Incomplete);
    }
    let record = &flight[5..5 + record_len];
    // Handshake header: ClientHello (1) with a 24-bit length that fills the record exactly (a ClientHello split
    // over records is legal but no mainstream client sends one; this filter, like many, does not reassemble).
    if record[0] != 0x01 {
        return Err(HelloError::NotClientHello);
    }
    if record.len() < 4 {
        return Err(HelloError::Malformed("handshake header"));
    }
    let body_len =
        (usize::from(record[1]) << 16) | (usize::from(record[2]) << 8) | usize::from(record[3]);
    if body_len != record.len() - 4 {
        return Err(HelloError::Malformed("handshake length"));
    }
    let mut hello = Reader {
        bytes: &record[4..],
    };
    let version = hello.u16("version")?;
    if !(0x0301..=0x0304).contains(&version) {
        return Err(HelloError::Malformed("version"));
    }
    hello.take(32, "random")?;
    if hello.vec8("session id")?.len() > 32 {
        return Err(HelloError::Malformed("session id"));
    }
    let suites = hello.vec16("cipher suites")?;
    if suites.is_empty() || suites.len() % 2 != 0 {
        return Err(HelloError::Malformed("cipher suites"));
    }
    if hello.vec8("compression methods")?.is_empty() {
        return Err(HelloError::Malformed("compression methods"));
    }
    if hello.bytes.is_empty() {
        // No extensions at all (legal before TLS 1.3): no server name.
        return Ok(None);
    }
    let extensions = hello.vec16("extensions")?;
    if !hello.bytes.is_empty() {
        return Err(HelloError::Malformed("bytes after the extensions"));
    }
    let mut extensions = Reader { bytes: extensions };
    let mut seen: Vec<usize> = Vec::new();
    let mut name = None;
    while !extensions.bytes.is_empty() {
        let kind = extensions.u16("extension type")?;
        let data = extensions.vec16("extension data")?;
        if seen.contains(&kind) {
            return Err(HelloError::Malformed("an extension twice"));
        }
        seen.push(kind);
        if kind == 0 {
            name = Some(read_server_name(data)?);
        }
    }
    Ok(name)
}

/// The `server_name` extension's data: a list holding exactly one `host_name` entry.
fn read_server_name(data: &[u8]) -> Result<String, HelloError> {
    let mut outer = Reader { bytes: data };
    let list = outer.vec16("server name list")?;
    if !outer.bytes.is_empty() {
        return Err(HelloError::Malformed("bytes after the server name list"));
    }
    let mut list = Reader { bytes: list };
    let mut found: Option<String> = None;
    while !list.bytes.is_empty() {
        let kind = list.u8("server name type")?;
        let name = list.vec16("server name")?;
        if kind != 0 {
            return Err(HelloError::Malformed("server name type"));
        }
        if found.is_some() {
            return Err(HelloError::Malformed("two host names"));
        }
        found = Some(dns_name(name)?);
    }
    found.ok_or(HelloError::Malformed("empty server name list"))
}

/// A host name as RFC 6066 allows it: ASCII letters, digits and hyphens in dot-separated labels of 1 to 63 bytes,
/// at most 253 bytes, no trailing dot, not an IP literal's brackets. Returned in lower case.
fn dns_name(raw: &[u8]) -> Result<String, HelloError> {
    if raw.is_empty() || raw.len() > 253 {
        return Err(HelloError::Malformed("host name length"));
    }
    for label in raw.split(|b| *b == b'.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
            && !label.starts_with(b"-")
            && !label.ends_with(b"-");
        if !ok {
            return Err(HelloError::Malformed("host name"));
        }
    }
    String::from_utf8(raw.to_ascii_lowercase()).map_err(|_| HelloError::Malformed("host name"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const OPENSSL: &[u8] = include_bytes!("../../fixtures/clienthello-openssl-www.example.org.bin");
    const CURL: &[u8] = include_bytes!("../../fixtures/clienthello-curl-site0.test.bin");
    const NO_SNI: &[u8] = include_bytes!("../../fixtures/clienthello-openssl-no-sni.bin");

    #[test]
    fn real_client_hellos() {
        assert_eq!(
            server_name(OPENSSL).unwrap().as_deref(),
            Some("www.example.org")
        );
        assert_eq!(server_name(CURL).unwrap().as_deref(), Some("site0.test"));
        assert_eq!(server_name(NO_SNI).unwrap(), None);
    }

    #[test]
    fn a_partial_hello_asks_for_more() {
        for cut in [0, 1, 4, 5, 100, OPENSSL.len() - 1] {
            assert_eq!(
                server_name(&OPENSSL[..cut]),
                Err(HelloError::Incomplete),
                "cut at {cut}"
            );
        }
        // Bytes after the record (the next record, early data) do not matter.
        let mut more = OPENSSL.to_vec();
        more.extend([0x17, 0x03, 0x03, 0x00, 0x01, 0x00]);
        assert_eq!(
            server_name(&more).unwrap().as_deref(),
            Some("www.example.org")
        );
    }

    #[test]
    fn not_tls_is_refused_at_once() {
        assert_eq!(server_name(b"GET / HTTP/1.1\r\n"), Err(HelloError::NotTls));
        assert_eq!(server_name(&[0x16, 0x02]), Err(HelloError::NotTls));
        assert_eq!(
            server_name(&[0x16, 0x03, 0x07, 0, 5]),
            Err(HelloError::NotTls)
        );
        let mut server_hello = OPENSSL.to_vec();
        server_hello[5] = 0x02;
        assert_eq!(server_name(&server_hello), Err(HelloError::NotClientHello));
    }

    /// The offset of the server name's bytes in the openssl fixture.
    fn name_offset() -> usize {
        OPENSSL
            .windows(15)
            .position(|w| w == b"www.example.org")
            .unwrap()
    }

    #[test]
    fn malformed_hellos_are_errors() {
        // Inconsistent handshake length.
        let mut bad = OPENSSL.to_vec();
        bad[8] ^= 1;
        assert!(matches!(server_name(&bad), Err(HelloError::Malformed(_))));
        // A host name with a byte a DNS name cannot hold.
        let mut bad = OPENSSL.to_vec();
        bad[name_offset() + 3] = b'/';
        assert_eq!(server_name(&bad), Err(HelloError::Malformed("host name")));
        // An empty label.
        let mut bad = OPENSSL.to_vec();
        bad[name_offset() + 4] = b'.';
        assert_eq!(server_name(&bad), Err(HelloError::Malformed("host name")));
        // A name type other than host_name.
        let mut bad = OPENSSL.to_vec();
        bad[name_offset() - 3] = 1;
        assert_eq!(
            server_name(&bad),
            Err(HelloError::Malformed("server name type"))
        );
        // The server name list longer than its extension.
        let mut bad = OPENSSL.to_vec();
        bad[name_offset() - 4] += 1;
        assert!(matches!(server_name(&bad), Err(HelloError::Malformed(_))));
        // Record length 0 and over 2^14.
        assert!(matches!(
            server_name(&[0x16, 0x03, 0x01, 0x00, 0x00]),
            Err(HelloError::Malformed(_))
        ));
        assert!(matches!(
            server_name(&[0x16, 0x03, 0x01, 0x40, 0x01]),
            Err(HelloError::Malformed(_))
        ));
    }

    #[test]
    fn names_are_compared_in_lower_case() {
        let mut upper = OPENSSL.to_vec();
        let at = name_offset();
        upper[at..at + 3].copy_from_slice(b"WWW");
        assert_eq!(
            server_name(&upper).unwrap().as_deref(),
            Some("www.example.org")
        );
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // Every truncation and every single-byte change of a real hello: an answer, never a panic.
        for cut in 0..OPENSSL.len() {
            let _ = server_name(&OPENSSL[..cut]);
        }
        for at in 0..OPENSSL.len() {
            for value in [0x00, 0x01, 0x7f, 0xff] {
                let mut changed = OPENSSL.to_vec();
                changed[at] = value;
                let _ = server_name(&changed);
            }
        }
    }
}
