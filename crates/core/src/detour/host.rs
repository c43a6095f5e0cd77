//! Host names as the detour logic sees them: one normalised spelling per site, so that `Example.COM.` and
//! `example.com` share one memory entry and match the same rules.

use std::net::IpAddr;

/// The longest DNS name (RFC 1035, without the trailing dot).
pub const MAX_HOST_BYTES: usize = 253;
const MAX_LABEL_BYTES: usize = 63;

/// Why a host name was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error("host name is empty")]
    Empty,
    #[error("host name is longer than {MAX_HOST_BYTES} bytes")]
    TooLong,
    #[error("host name {0:?} has an empty label or a label longer than {MAX_LABEL_BYTES} bytes")]
    BadLabel(String),
    #[error("host name {0:?} may only contain a-z, 0-9, '-' and '_' between dots")]
    BadCharacter(String),
}

/// A site: a lower-case DNS name without trailing dot, or an IP address in its canonical text form.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Host(String);

impl Host {
    /// Normalises and checks a host name or IP literal (IPv6 may be given with or without brackets).
    pub fn parse(text: &str) -> Result<Host, HostError> {
        let unbracketed = text
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .unwrap_or(text);
        if let Ok(ip) = unbracketed.parse::<IpAddr>() {
            return Ok(Host::from_ip(ip));
        }
        let name = text.strip_suffix('.').unwrap_or(text);
        if name.is_empty() {
            return Err(HostError::Empty);
        }
        if name.len() > MAX_HOST_BYTES {
            return Err(HostError::TooLong);
        }
        let name = name.to_ascii_lowercase();
        for label in name.split('.') {
            if label.is_empty() || label.len() > MAX_LABEL_BYTES {
                return Err(HostError::BadLabel(name.clone()));
            }
            let allowed =
                |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_';
            if !label.bytes().all(allowed) {
                return Err(HostError::BadCharacter(name.clone()));
            }
        }
        Ok(Host(name))
    }

    /// The host for an IP address.
    pub fn from_ip(ip: IpAddr) -> Host {
        Host(ip.to_string())
    }

    /// The normalised text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this host is an IP literal rather than a DNS name.
    pub fn is_ip(&self) -> bool {
        self.0.parse::<IpAddr>().is_ok()
    }

    /// Whether this host is `domain` or lies under it (`a.example.com` is under `example.com`; `badexample.com`
    /// is not). IP literals match only themselves.
    pub fn is_within(&self, domain: &Host) -> bool {
        if self.0 == domain.0 {
            return true;
        }
        if self.is_ip() || domain.is_ip() {
            return false;
        }
        self.0
            .strip_suffix(domain.0.as_str())
            .is_some_and(|prefix| prefix.ends_with('.'))
    }
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Host {
    type Err = HostError;
    fn from_str(s: &str) -> Result<Host, HostError> {
        Host::parse(s)
    }
}
