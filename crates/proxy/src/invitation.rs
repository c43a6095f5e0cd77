//! Invitations: the only way to learn a bridge's address and to be let in.
//!
//! An invitation carries the bridge's address, its static public key and a 32-byte secret. As text it is
//! `kolokol-bridge:` followed by unpadded base32 (RFC 4648, case-insensitive) of:
//!
//! ```text
//! version   u8   = 1
//! addr kind u8   4 = IPv4 (4 bytes), 6 = IPv6 (16 bytes), 0 = DNS name (length u8, then the name)
//! address
//! port      u16  big-endian
//! key       32   the bridge's X25519 static public key
//! secret    32
//! checksum  4    first bytes of SHA-256("kolokol-bridge invitation" || everything above)
//! ```
//!
//! Base32 keeps the code case-insensitive (readable over the phone) and lets the QR code use its compact
//! alphanumeric mode when written in upper case.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use kolokol_core::detour::{Host, HostError};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Every invitation code starts with this (any letter case is accepted when reading).
pub const CODE_PREFIX: &str = "kolokol-bridge:";
/// The invitation format this program writes and reads.
pub const INVITATION_VERSION: u8 = 1;
/// Longest code accepted, checked before anything else.
pub const MAX_CODE_CHARS: usize = 1024;
const CHECKSUM_LEN: usize = 4;
const CHECKSUM_DOMAIN: &[u8] = b"kolokol-bridge invitation";

/// Why an invitation code was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvitationError {
    #[error("an invitation code is at most {MAX_CODE_CHARS} characters")]
    TooLong,
    #[error("an invitation code starts with {CODE_PREFIX:?}")]
    MissingPrefix,
    #[error("the invitation code is not valid base32 (was it copied completely?)")]
    NotBase32,
    #[error("the invitation code is damaged (checksum mismatch); copy it again")]
    Checksum,
    #[error(
        "the invitation has format version {0}; this program reads version {INVITATION_VERSION}"
    )]
    UnsupportedVersion(u8),
    #[error("the invitation code is cut short or has extra bytes")]
    BadLength,
    #[error("unknown address kind {0} in the invitation")]
    BadAddressKind(u8),
    #[error("the bridge address in the invitation is not valid: {0}")]
    BadHost(#[from] HostError),
    #[error("the bridge port is 0")]
    ZeroPort,
    #[error("could not draw QR code: {0}")]
    Qr(String),
}

/// The shared secret of one invitation. Never printed; [`InviteSecret::id`] names it safely.
#[derive(Clone, PartialEq, Eq)]
pub struct InviteSecret(pub(crate) [u8; 32]);

impl InviteSecret {
    /// A fresh secret from the operating system's randomness.
    pub fn generate() -> InviteSecret {
        let mut secret = [0; 32];
        rand::rng().fill_bytes(&mut secret);
        InviteSecret(secret)
    }

    /// Wraps saved secret bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> InviteSecret {
        InviteSecret(bytes)
    }

    /// The raw bytes, for saving. Handle with care.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }

    /// A short public name for this secret (to list and revoke invitations): 8 hex digits of its hash. It reveals
    /// nothing usable about the secret.
    pub fn id(&self) -> String {
        let digest = Sha256::new()
            .chain_update(b"kolokol-bridge invitation id")
            .chain_update(self.0)
            .finalize();
        hex::encode(&digest[..4])
    }
}

impl std::fmt::Debug for InviteSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InviteSecret({})", self.id())
    }
}

/// Everything a client needs to use one bridge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invitation {
    /// The bridge's address as the client should dial it: an IP address or a DNS name.
    pub host: Host,
    pub port: u16,
    /// The bridge's X25519 static public key.
    pub bridge_key: [u8; 32],
    pub secret: InviteSecret,
}

impl Invitation {
    /// A new invitation to the bridge at `host:port` with key `bridge_key` and a fresh secret. The bridge must be
    /// told to accept the secret (see [`crate::BridgeHandle::add_invitation`]).
    pub fn generate(host: Host, port: u16, bridge_key: [u8; 32]) -> Invitation {
        Invitation {
            host,
            port,
            bridge_key,
            secret: InviteSecret::generate(),
        }
    }

    /// The binary form (see the module docs).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![INVITATION_VERSION];
        match self.host.as_str().parse::<IpAddr>() {
            Ok(IpAddr::V4(ip)) => {
                out.push(4);
                out.extend_from_slice(&ip.octets());
            }
            Ok(IpAddr::V6(ip)) => {
                out.push(6);
                out.extend_from_slice(&ip.octets());
            }
            Err(_) => {
                let name = self.host.as_str().as_bytes();
                out.push(0);
                // A Host is at most 253 bytes, so the length fits in one byte.
                out.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
                out.extend_from_slice(name);
            }
        }
        out.extend_from_slice(&self.port.to_be_bytes());
        out.extend_from_slice(&self.bridge_key);
        out.extend_from_slice(&self.secret.0);
        let sum = checksum(&out);
        out.extend_from_slice(&sum);
        out
    }

    /// Reads the binary form, checking the checksum first.
    pub fn from_bytes(bytes: &[u8]) -> Result<Invitation, InvitationError> {
        let (body, sum) = bytes
            .split_last_chunk::<CHECKSUM_LEN>()
            .ok_or(InvitationError::BadLength)?;
        if checksum(body) != *sum {
            return Err(InvitationError::Checksum);
        }
        let mut reader = Reader(body);
        let version = reader.u8()?;
        if version != INVITATION_VERSION {
            return Err(InvitationError::UnsupportedVersion(version));
        }
        let host = match reader.u8()? {
            4 => Host::from_ip(IpAddr::V4(Ipv4Addr::from(reader.array::<4>()?))),
            6 => Host::from_ip(IpAddr::V6(Ipv6Addr::from(reader.array::<16>()?))),
            0 => {
                let len = usize::from(reader.u8()?);
                let name = reader.take(len)?;
                let name = std::str::from_utf8(name).map_err(|_| {
                    InvitationError::BadHost(HostError::BadCharacter(String::new()))
                })?;
                let host = Host::parse(name)?;
                if host.is_ip() || host.as_str() != name {
                    // Only the canonical spelling is written, so anything else was not made by us.
                    return Err(InvitationError::BadHost(HostError::BadCharacter(
                        name.to_owned(),
                    )));
                }
                host
            }
            kind => return Err(InvitationError::BadAddressKind(kind)),
        };
        let port = u16::from_be_bytes(reader.array::<2>()?);
        if port == 0 {
            return Err(InvitationError::ZeroPort);
        }
        let bridge_key = reader.array::<32>()?;
        let secret = InviteSecret(reader.array::<32>()?);
        if !reader.0.is_empty() {
            return Err(InvitationError::BadLength);
        }
        Ok(Invitation {
            host,
            port,
            bridge_key,
            secret,
        })
    }

    /// The text code, lower case: `kolokol-bridge:...`.
    pub fn to_code(&self) -> String {
        let body = data_encoding::BASE32_NOPAD.encode(&self.to_bytes());
        format!("{CODE_PREFIX}{}", body.to_ascii_lowercase())
    }

    /// Reads a text code in any letter case; spaces and line breaks (from copying) are ignored.
    pub fn parse(code: &str) -> Result<Invitation, InvitationError> {
        if code.len() > MAX_CODE_CHARS {
            return Err(InvitationError::TooLong);
        }
        let compact: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        let prefix = compact
            .get(..CODE_PREFIX.len())
            .ok_or(InvitationError::MissingPrefix)?;
        if !prefix.eq_ignore_ascii_case(CODE_PREFIX) {
            return Err(InvitationError::MissingPrefix);
        }
        let body = compact[CODE_PREFIX.len()..].to_ascii_uppercase();
        let bytes = data_encoding::BASE32_NOPAD
            .decode(body.as_bytes())
            .map_err(|_| InvitationError::NotBase32)?;
        Invitation::from_bytes(&bytes)
    }

    /// The code as a QR code drawn with Unicode half blocks, for a terminal with a dark background (light modules
    /// are drawn; phone scanners also read the inverted form that a light background shows).
    pub fn qr_terminal_string(&self) -> Result<String, InvitationError> {
        use qrcode::render::unicode::Dense1x2;
        let text = self.to_code().to_ascii_uppercase();
        let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M)
            .map_err(|e| InvitationError::Qr(e.to_string()))?;
        Ok(code
            .render::<Dense1x2>()
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
            .quiet_zone(true)
            .build())
    }

    /// `host:port` of the bridge, for display and dialing.
    pub fn address(&self) -> String {
        if self.host.as_str().contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

fn checksum(body: &[u8]) -> [u8; CHECKSUM_LEN] {
    let digest = Sha256::new()
        .chain_update(CHECKSUM_DOMAIN)
        .chain_update(body)
        .finalize();
    let mut out = [0; CHECKSUM_LEN];
    out.copy_from_slice(&digest[..CHECKSUM_LEN]);
    out
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], InvitationError> {
        if self.0.len() < n {
            return Err(InvitationError::BadLength);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, InvitationError> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], InvitationError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(host: &str) -> Invitation {
        Invitation {
            host: Host::parse(host).unwrap(),
            port: 8443,
            bridge_key: [7; 32],
            secret: InviteSecret([9; 32]),
        }
    }

    #[test]
    fn code_round_trips_for_every_address_kind() {
        for host in ["203.0.113.5", "2001:db8::1", "bridge.example.org"] {
            let invitation = sample(host);
            let code = invitation.to_code();
            assert!(code.starts_with(CODE_PREFIX));
            assert_eq!(Invitation::parse(&code).unwrap(), invitation);
            assert_eq!(
                Invitation::parse(&code.to_ascii_uppercase()).unwrap(),
                invitation
            );
            let wrapped: String = code
                .chars()
                .enumerate()
                .flat_map(|(i, c)| if i % 20 == 19 { vec![c, '\n'] } else { vec![c] })
                .collect();
            assert_eq!(Invitation::parse(&wrapped).unwrap(), invitation);
        }
        assert_eq!(sample("2001:db8::1").address(), "[2001:db8::1]:8443");
    }

    #[test]
    fn damaged_codes_are_refused() {
        let code = sample("203.0.113.5").to_code();
        assert_eq!(
            Invitation::parse("hello"),
            Err(InvitationError::MissingPrefix)
        );
        assert_eq!(
            Invitation::parse(&code.replace("kolokol-bridge:", "kolokol:")),
            Err(InvitationError::MissingPrefix)
        );
        assert_eq!(
            Invitation::parse(&format!("{code}!")),
            Err(InvitationError::NotBase32)
        );
        let mut flipped = code.clone().into_bytes();
        let last = flipped.len() - 3;
        flipped[last] = if flipped[last] == b'a' { b'b' } else { b'a' };
        assert_eq!(
            Invitation::parse(std::str::from_utf8(&flipped).unwrap()),
            Err(InvitationError::Checksum)
        );
        assert_eq!(
            Invitation::parse(&"a".repeat(2000)),
            Err(InvitationError::TooLong)
        );
        let mut bytes = sample("203.0.113.5").to_bytes();
        bytes[0] = 2;
        let body_len = bytes.len() - CHECKSUM_LEN;
        let sum = checksum(&bytes[..body_len]);
        bytes[body_len..].copy_from_slice(&sum);
        assert_eq!(
            Invitation::from_bytes(&bytes),
            Err(InvitationError::UnsupportedVersion(2))
        );
    }

    #[test]
    fn secret_id_is_stable_and_secret_is_not_printed() {
        let invitation = sample("203.0.113.5");
        assert_eq!(invitation.secret.id().len(), 8);
        assert_eq!(invitation.secret.id(), InviteSecret([9; 32]).id());
        assert_ne!(invitation.secret.id(), InviteSecret([8; 32]).id());
        assert!(!format!("{invitation:?}").contains(&hex::encode([9u8; 32])));
    }

    #[test]
    fn qr_code_is_drawn() {
        let qr = sample("bridge.example.org").qr_terminal_string().unwrap();
        let lines: Vec<&str> = qr.lines().collect();
        assert!(lines.len() > 20);
        assert!(qr.contains('\u{2588}') || qr.contains('\u{2580}') || qr.contains('\u{2584}'));
    }

    proptest! {
        #[test]
        fn any_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..120)) {
            let _ = Invitation::from_bytes(&bytes);
        }

        #[test]
        fn any_text_never_panics(text in "\\PC{0,200}") {
            let _ = Invitation::parse(&text);
        }

        #[test]
        fn round_trip(ip in any::<[u8; 4]>(), port in 1..=u16::MAX, key in any::<[u8; 32]>(), secret in any::<[u8; 32]>()) {
            let invitation = Invitation {
                host: Host::from_ip(IpAddr::V4(Ipv4Addr::from(ip))),
                port,
                bridge_key: key,
                secret: InviteSecret(secret),
            };
            prop_assert_eq!(Invitation::parse(&invitation.to_code()).unwrap(), invitation);
        }
    }
}
