//! What the censor's filter decides from bytes alone: pure functions, no sockets, no clock.
//!
//! - [`fully_encrypted`]: the passive rule the Great Firewall of China used from November 2021 against fully
//!   encrypted ("looks like nothing") protocols, as measured by Wu et al., "How the Great Firewall of China Detects
//!   and Blocks Fully Encrypted Traffic" (USENIX Security 2023, Algorithm 1). Russia's filter is reported to block the
//!   same traffic on mobile networks (net4people/bbs issue 546); the paper's rule is the precise public description.
//! - [`is_quic_long_header`]: a UDP datagram that starts like a QUIC long-header packet (RFC 9000 §17.2).
//!
//! The paper's rule looks at the first data packet a client sends on a TCP connection and exempts it when any of
//! these holds, in this order:
//!
//! 1. Ex1: the average number of set bits per byte is at most 3.4 or at least 4.6 (random bytes average 4);
//! 2. Ex2: the first six bytes are printable ASCII (0x20 to 0x7e);
//! 3. Ex3: more than half of the bytes are printable ASCII;
//! 4. Ex4: more than 20 contiguous bytes are printable ASCII;
//! 5. Ex5: it starts like TLS (`[\x16-\x17] \x03 [\x00-\x09]`) or HTTP (`GET `, `PUT `, `POST`, `HEAD`).
//!
//! Anything else is blocked. (The GFW blocked a matching connection with a probability of about 1/4; this censor
//! always does, the worst case for a transport.)

/// Why a first packet passed the fully-encrypted rule, or that it did not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Ex1: set bits per byte at most 3.4 or at least 4.6.
    ExemptPopcount,
    /// Ex2: the first six bytes are printable.
    ExemptPrintablePrefix,
    /// Ex3: more than half the bytes are printable.
    ExemptMostlyPrintable,
    /// Ex4: a run of more than 20 printable bytes.
    ExemptPrintableRun,
    /// Ex5: starts like TLS or HTTP.
    ExemptKnownProtocol,
    /// None of the exemptions: the connection is blocked.
    Blocked,
}

impl Verdict {
    /// Whether the filter lets the connection go on.
    pub fn passes(self) -> bool {
        self != Verdict::Blocked
    }
}

fn printable(byte: u8) -> bool {
    (0x20..=0x7e).contains(&byte)
}

/// Average set bits per byte, as the paper's Ex1 computes it (0 for an empty packet).
pub fn bits_per_byte(packet: &[u8]) -> f64 {
    if packet.is_empty() {
        return 0.0;
    }
    let bits: u64 = packet.iter().map(|b| u64::from(b.count_ones())).sum();
    bits as f64 / packet.len() as f64
}

/// The paper's Ex5 fingerprints: a TLS record header (handshake or application data, version 3.0 to 3.9) or the
/// start of an HTTP request.
pub fn starts_like_tls_or_http(packet: &[u8]) -> bool {
    let tls = matches!(packet, [0x16..=0x17, 0x03, 0x00..=0x09, ..]);
    let http = [b"GET ", b"PUT ", b"POST", b"HEAD"]
        .iter()
        .any(|prefix| packet.starts_with(*prefix));
    tls || http
}

/// The fully-encrypted rule on a client's first data packet. An empty packet is exempt (there is nothing to judge:
/// the rule is applied to the first packet that carries data).
pub fn fully_encrypted(packet: &[u8]) -> Verdict {
    if packet.is_empty() {
        return Verdict::ExemptPopcount;
    }
    // Exact comparison in integers: bits / len <= 3.4  <=>  10 * bits <= 34 * len.
    let bits: u64 = packet.iter().map(|b| u64::from(b.count_ones())).sum();
    let len = packet.len() as u64;
    if 10 * bits <= 34 * len || 10 * bits >= 46 * len {
        return Verdict::ExemptPopcount;
    }
    if packet.len() >= 6 && packet[..6].iter().all(|b| printable(*b)) {
        return Verdict::ExemptPrintablePrefix;
    }
    let printable_count = packet.iter().filter(|b| printable(**b)).count();
    if printable_count * 2 > packet.len() {
        return Verdict::ExemptMostlyPrintable;
    }
    let mut run = 0usize;
    for byte in packet {
        run = if printable(*byte) { run + 1 } else { 0 };
        if run > 20 {
            return Verdict::ExemptPrintableRun;
        }
    }
    if starts_like_tls_or_http(packet) {
        return Verdict::ExemptKnownProtocol;
    }
    Verdict::Blocked
}

/// Whether a UDP payload starts like a QUIC long-header packet: the header-form and fixed bits set (RFC 9000
/// §17.2), followed by at least a version field. What a filter that drops QUIC's handshake looks for.
pub fn is_quic_long_header(datagram: &[u8]) -> bool {
    datagram.len() >= 5 && datagram[0] & 0xc0 == 0xc0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Bytes with exactly `ones` set bits each, none printable (0x80 and up, or control characters).
    fn filler(ones: u32, len: usize) -> Vec<u8> {
        let byte = (0x80u8..=0xff)
            .chain(0x00..0x20)
            .find(|b| b.count_ones() == ones)
            .unwrap();
        vec![byte; len]
    }

    #[test]
    fn random_looking_bytes_are_blocked() {
        // Four set bits per byte, nothing printable, no known start: what a "looks like nothing" transport sends.
        let packet = filler(4, 300);
        assert_eq!(bits_per_byte(&packet), 4.0);
        assert_eq!(fully_encrypted(&packet), Verdict::Blocked);
        // Real randomness: a 200-byte pseudo-random packet is almost always in the band and mostly unprintable.
        let mut state = 0x1234_5678_9abc_def0u64;
        let random: Vec<u8> = (0..200)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8 | 0x80
            })
            .collect();
        let bpb = bits_per_byte(&random);
        assert!(bpb > 3.4 && bpb < 4.6, "{bpb}");
        assert_eq!(fully_encrypted(&random), Verdict::Blocked);
    }

    #[test]
    fn popcount_band_edges_follow_the_paper() {
        // 3.4 and 4.6 themselves are exempt; just inside the band is not.
        let mut low = filler(3, 5);
        low.extend(filler(4, 2)); // 23 bits / 7 bytes = 3.29
        assert_eq!(fully_encrypted(&low), Verdict::ExemptPopcount);
        let mut edge = filler(3, 3);
        edge.extend(filler(4, 2)); // 17 / 5 = 3.4 exactly
        assert_eq!(fully_encrypted(&edge), Verdict::ExemptPopcount);
        let mut inside = filler(3, 2);
        inside.extend(filler(4, 3)); // 18 / 5 = 3.6
        assert_eq!(fully_encrypted(&inside), Verdict::Blocked);
        let mut high_edge = filler(5, 3);
        high_edge.extend(filler(4, 2)); // 23 / 5 = 4.6 exactly
        assert_eq!(fully_encrypted(&high_edge), Verdict::ExemptPopcount);
        let mut high_inside = filler(5, 2);
        high_inside.extend(filler(4, 3)); // 22 / 5 = 4.4
        assert_eq!(fully_encrypted(&high_inside), Verdict::Blocked);
        assert_eq!(fully_encrypted(&filler(7, 50)), Verdict::ExemptPopcount);
    }

    #[test]
    fn printable_exemptions() {
        // Ex2: six printable bytes first, the rest random-looking.
        let mut prefix = b"SSH-2.".to_vec();
        prefix.extend(filler(4, 100));
        assert_eq!(fully_encrypted(&prefix), Verdict::ExemptPrintablePrefix);
        // Five are not enough.
        let mut five = b"SSH-2".to_vec();
        five.extend(filler(4, 100));
        assert_eq!(fully_encrypted(&five), Verdict::Blocked);
        // Ex3: more than half printable, scattered so that no run is long and the start is not printable.
        let mut half: Vec<u8> = Vec::new();
        for _ in 0..20 {
            half.extend([0x8b, b'J', b'J']); // 0x8b has 4 set bits, 'J' 3: 3.33 per byte, lifted into the band below
        }
        half.extend(filler(5, 10));
        assert!(bits_per_byte(&half) > 3.4 && bits_per_byte(&half) < 4.6);
        assert_eq!(fully_encrypted(&half), Verdict::ExemptMostlyPrintable);
        // Exactly half is not more than half.
        let mut exactly_half: Vec<u8> = Vec::new();
        for _ in 0..30 {
            exactly_half.extend([0x8b, b'J']);
        }
        assert!(bits_per_byte(&exactly_half) > 3.4);
        assert_eq!(fully_encrypted(&exactly_half), Verdict::Blocked);
        // Ex4: a run of 21 printable bytes inside 100 random-looking ones.
        let mut run = filler(4, 40);
        run.extend(b"ZZZZZZZZZZZZZZZZZZZZZ"); // 21 bytes
        run.extend(filler(4, 40));
        assert_eq!(fully_encrypted(&run), Verdict::ExemptPrintableRun);
        let mut short_run = filler(4, 40);
        short_run.extend(b"ZZZZZZZZZZZZZZZZZZZZ"); // 20 bytes: not more than 20
        short_run.extend(filler(4, 40));
        assert_eq!(fully_encrypted(&short_run), Verdict::Blocked);
    }

    #[test]
    fn tls_and_http_starts_are_exempt() {
        for start in [
            &[0x16, 0x03, 0x01][..],
            &[0x17, 0x03, 0x03],
            &[0x16, 0x03, 0x09],
        ] {
            let mut packet = start.to_vec();
            packet.extend(filler(4, 100));
            assert_eq!(fully_encrypted(&packet), Verdict::ExemptKnownProtocol);
        }
        for start in [
            &[0x15, 0x03, 0x01][..],
            &[0x16, 0x03, 0x0a],
            &[0x16, 0x02, 0x01],
        ] {
            let mut packet = start.to_vec();
            packet.extend(filler(4, 100));
            assert_eq!(fully_encrypted(&packet), Verdict::Blocked, "{start:?}");
        }
        // A real ClientHello (openssl s_client) and a real HTTP request pass.
        let hello = include_bytes!("../../fixtures/clienthello-openssl-www.example.org.bin");
        assert!(fully_encrypted(hello).passes());
        assert!(fully_encrypted(b"GET / HTTP/1.1\r\nHost: site0.test\r\n\r\n").passes());
        assert!(starts_like_tls_or_http(b"HEAD / HTTP/1.1"));
        assert!(!starts_like_tls_or_http(b"OPTIONS / HTTP/1.1"));
        assert!(!starts_like_tls_or_http(&[0x16, 0x03]));
    }

    #[test]
    fn quic_long_header() {
        // A QUIC v1 Initial starts 0xc0 | type bits | packet number length, then the version 0x00000001.
        assert!(is_quic_long_header(&[0xc3, 0, 0, 0, 1, 8]));
        assert!(is_quic_long_header(&[0xff, 0, 0, 0, 1]));
        // Short header (0x40 set, 0x80 clear), a bare header-form bit, DNS, and too short.
        assert!(!is_quic_long_header(&[0x43, 1, 2, 3, 4, 5]));
        assert!(!is_quic_long_header(&[0x80, 0, 0, 0, 1]));
        assert!(!is_quic_long_header(&[0x12, 0x34, 0x01, 0x00, 0x00, 0x01]));
        assert!(!is_quic_long_header(&[0xc3, 0, 0, 0]));
    }
}
