//! Recognising a block page in the first bytes of a plain-HTTP answer.
//!
//! Filters that cannot reset a connection often answer in the site's place: an HTTP 451, a redirect to the
//! regulator's "this resource is blocked" host, or a page with a recognisable text. Only plain HTTP can be
//! inspected (inside TLS the proxy sees nothing), and only the first answer of a connection.

use kolokol_core::detour::Host;

/// How much of an answer is looked at, at most.
pub const INSPECT_LIMIT: usize = 8 * 1024;

/// What counts as a block page.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockPageRules {
    /// Byte strings that appear in block pages (in the headers or the start of the body).
    pub signatures: Vec<Vec<u8>>,
    /// Hosts that block pages redirect to (a redirect to the host or a name under it is a block).
    pub block_hosts: Vec<Host>,
}

/// The judgement on the bytes seen so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A block page.
    Blocked,
    /// A real answer (or not HTTP at all).
    Genuine,
    /// Not enough bytes yet to tell.
    NeedMore,
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > haystack.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Judges the start of an HTTP answer. `NeedMore` is returned until the header block is complete and the body
/// (up to its `Content-Length`, within [`INSPECT_LIMIT`]) has arrived.
pub fn inspect(answer: &[u8], rules: &BlockPageRules) -> Verdict {
    let prefix = &answer[..answer.len().min(5)];
    if !b"HTTP/".starts_with(prefix) {
        return Verdict::Genuine;
    }
    let Some(head_end) = find(answer, b"\r\n\r\n") else {
        return if answer.len() >= INSPECT_LIMIT {
            judge(answer, answer.len(), rules)
        } else {
            Verdict::NeedMore
        };
    };
    let head = &answer[..head_end];
    let body_have = answer.len() - head_end - 4;
    if let Some(length) =
        header(head, "content-length").and_then(|v| v.trim().parse::<usize>().ok())
    {
        let wanted = length.min(INSPECT_LIMIT.saturating_sub(head_end + 4));
        if body_have < wanted {
            return Verdict::NeedMore;
        }
    }
    judge(answer, head_end, rules)
}

fn judge(answer: &[u8], head_end: usize, rules: &BlockPageRules) -> Verdict {
    let head = &answer[..head_end];
    let status = head
        .split(|&b| b == b' ')
        .nth(1)
        .and_then(|code| std::str::from_utf8(code).ok())
        .and_then(|code| code.trim().parse::<u16>().ok());
    if status == Some(451) {
        return Verdict::Blocked;
    }
    if let Some(code) = status
        && (300..400).contains(&code)
        && let Some(location) = header(head, "location")
        && let Some(host) = url_host(location)
        && rules
            .block_hosts
            .iter()
            .any(|blocked| host.is_within(blocked))
    {
        return Verdict::Blocked;
    }
    let inspected = &answer[..answer.len().min(INSPECT_LIMIT)];
    if rules
        .signatures
        .iter()
        .any(|sig| find(inspected, sig).is_some())
    {
        return Verdict::Blocked;
    }
    Verdict::Genuine
}

/// The value of the first header named `name` (case-insensitive) in a header block.
fn header<'a>(head: &'a [u8], name: &str) -> Option<&'a str> {
    head.split(|&b| b == b'\n').skip(1).find_map(|line| {
        let line = std::str::from_utf8(line).ok()?;
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

fn url_host(url: &str) -> Option<Host> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host.starts_with('[') {
        host.split_once(']').map(|(h, _)| format!("{h}]"))?
    } else {
        host.split(':').next()?.to_owned()
    };
    Host::parse(&host).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rules() -> BlockPageRules {
        BlockPageRules {
            signatures: vec![b"access to this resource is restricted".to_vec()],
            block_hosts: vec![Host::parse("blocked.regulator.example").unwrap()],
        }
    }

    #[test]
    fn recognises_block_pages() {
        let r = rules();
        assert_eq!(
            inspect(b"HTTP/1.1 451 Unavailable For Legal Reasons\r\n\r\n", &r),
            Verdict::Blocked
        );
        let redirect = b"HTTP/1.1 302 Found\r\nLocation: http://www.blocked.regulator.example/?u=x\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(inspect(redirect, &r), Verdict::Blocked);
        let page = b"HTTP/1.0 200 OK\r\nContent-Length: 42\r\n\r\n<p>access to this resource is restricted</p>";
        assert_eq!(inspect(page, &r), Verdict::Blocked);
    }

    #[test]
    fn real_answers_pass() {
        let r = rules();
        assert_eq!(
            inspect(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", &r),
            Verdict::Genuine
        );
        let redirect =
            b"HTTP/1.1 301 Moved\r\nLocation: https://example.org/\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(inspect(redirect, &r), Verdict::Genuine);
        assert_eq!(inspect(b"\x16\x03\x03\x00\x10binary", &r), Verdict::Genuine);
        assert_eq!(inspect(b"SSH-2.0-OpenSSH", &r), Verdict::Genuine);
    }

    #[test]
    fn waits_for_the_head_and_a_short_body() {
        let r = rules();
        assert_eq!(inspect(b"HTT", &r), Verdict::NeedMore);
        assert_eq!(
            inspect(b"HTTP/1.1 200 OK\r\nContent-Le", &r),
            Verdict::NeedMore
        );
        assert_eq!(
            inspect(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", &r),
            Verdict::NeedMore
        );
        // A large body is not waited for beyond the inspection limit.
        let mut big = b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n".to_vec();
        big.resize(INSPECT_LIMIT, b'x');
        assert_eq!(inspect(&big, &r), Verdict::Genuine);
        let endless = vec![b'H'; 1]
            .into_iter()
            .chain(b"TTP/1.1 200 ".iter().copied())
            .chain(std::iter::repeat_n(b'a', INSPECT_LIMIT))
            .collect::<Vec<u8>>();
        assert_eq!(inspect(&endless, &r), Verdict::Genuine);
    }

    proptest! {
        #[test]
        fn never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300), prefix in prop::bool::ANY) {
            let mut answer = if prefix { b"HTTP/1.1 ".to_vec() } else { Vec::new() };
            answer.extend(bytes);
            let _ = inspect(&answer, &rules());
        }
    }
}
