//! Where the DHT node starts: saved routing-table nodes, then configured `HOST:PORT`s, then (only if allowed) the
//! public BitTorrent routers.
//!
//! The DHT node (`kolokol-dht`) knows no router of its own: it starts only from the list [`BootstrapPlan`]
//! makes, possibly empty, and the public routers enter that list only through [`BootstrapPlan::public`], which is
//! empty when `no_default_bootstrap` is set: that is what makes a fallback to public routers impossible.

use std::net::{SocketAddr, SocketAddrV4};

/// The public BitTorrent DHT routers, used unless `no_default_bootstrap` is set.
pub const PUBLIC_ROUTERS: [&str; 3] = [
    "router.bittorrent.com:6881",
    "dht.transmissionbt.com:6881",
    "dht.libtorrent.org:25401",
];

/// Most `--bootstrap` entries accepted.
pub const MAX_CONFIGURED_BOOTSTRAP: usize = 16;
/// Most addresses one configured host name may contribute.
pub const MAX_ADDRS_PER_HOST: usize = 4;
/// Size the whole list is trimmed to when it can be: the DHT node asks the bootstrap addresses in every lookup
/// while its routing table holds fewer than 8 nodes, so a long list costs packets.
pub const TARGET_BOOTSTRAP_LEN: usize = 20;
/// Saved nodes always get at least this many places, however many addresses are configured.
pub const MIN_SAVED_IN_BOOTSTRAP: usize = 8;

/// Why a `--bootstrap` entry is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BootstrapError {
    #[error("bootstrap entry \"{0}\" is not HOST:PORT with a port from 1 to 65535")]
    Syntax(String),
    #[error("too many bootstrap entries: {0}, at most {MAX_CONFIGURED_BOOTSTRAP}")]
    TooMany(usize),
}

/// A validated `HOST:PORT` (host name, IPv4 address or `[IPv6]`; only IPv4 addresses are used, as the DHT node is
/// IPv4-only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootstrapEntry {
    /// The entry as given.
    pub text: String,
}

/// Checks the syntax of configured entries (no name resolution yet).
pub fn parse_bootstrap(entries: &[String]) -> Result<Vec<BootstrapEntry>, BootstrapError> {
    if entries.len() > MAX_CONFIGURED_BOOTSTRAP {
        return Err(BootstrapError::TooMany(entries.len()));
    }
    entries
        .iter()
        .map(|text| {
            let bad = || BootstrapError::Syntax(text.clone());
            let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
            let port: u16 = port.parse().map_err(|_| bad())?;
            let host_ok = !host.is_empty()
                && host.len() <= 253
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-_:[]".contains(&b));
            if port == 0 || !host_ok {
                return Err(bad());
            }
            Ok(BootstrapEntry { text: text.clone() })
        })
        .collect()
}

/// Resolves one entry to at most [`MAX_ADDRS_PER_HOST`] dialable IPv4 addresses. Failures are logged and give
/// an empty list: one dead name must not stop a node from starting.
pub async fn resolve(entry: &str) -> Vec<SocketAddrV4> {
    match tokio::net::lookup_host(entry).await {
        Ok(addrs) => {
            let mut out: Vec<SocketAddrV4> = Vec::new();
            for addr in addrs {
                if let SocketAddr::V4(v4) = addr
                    && crate::state::is_routable_node(&v4)
                    && !out.contains(&v4)
                    && out.len() < MAX_ADDRS_PER_HOST
                {
                    out.push(v4);
                }
            }
            if out.is_empty() {
                tracing::warn!(entry, "bootstrap entry has no usable IPv4 address");
            }
            out
        }
        Err(error) => {
            tracing::warn!(entry, %error, "cannot resolve bootstrap entry");
            Vec::new()
        }
    }
}

/// The three sources of bootstrap addresses, already resolved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BootstrapPlan {
    /// Routing-table nodes saved on the last run (already checked to be usable with this policy).
    pub saved: Vec<SocketAddrV4>,
    /// Addresses of the configured `--bootstrap` entries.
    pub configured: Vec<SocketAddrV4>,
    /// The public BitTorrent routers; empty when `no_default_bootstrap` is set.
    pub public: Vec<SocketAddrV4>,
}

impl BootstrapPlan {
    /// The list handed to the DHT node: saved nodes first, then configured, then public, without duplicates.
    /// Configured and public addresses are always all kept; saved nodes fill the room up to
    /// [`TARGET_BOOTSTRAP_LEN`], with at least [`MIN_SAVED_IN_BOOTSTRAP`] of them.
    pub fn list(&self) -> Vec<SocketAddrV4> {
        let fixed = self.configured.len() + self.public.len();
        let room_for_saved = TARGET_BOOTSTRAP_LEN
            .saturating_sub(fixed)
            .max(MIN_SAVED_IN_BOOTSTRAP);
        let mut out: Vec<SocketAddrV4> = Vec::new();
        let saved = self.saved.iter().take(room_for_saved);
        for addr in saved.chain(&self.configured).chain(&self.public) {
            if !out.contains(addr) {
                out.push(*addr);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn a(last: u8) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, last), 6881)
    }

    #[test]
    fn syntax() {
        let ok = [
            "127.0.0.1:6881",
            "router.example:1",
            "[::1]:6881",
            "a-b_c.d:65535",
        ];
        let ok: Vec<String> = ok.iter().map(|s| s.to_string()).collect();
        assert_eq!(parse_bootstrap(&ok).unwrap().len(), 4);
        for bad in [
            "",
            "host",
            "host:",
            ":6881",
            "host:0",
            "host:65536",
            "host:x",
            "ho st:1",
            "h/x:1",
        ] {
            assert_eq!(
                parse_bootstrap(&[bad.to_string()]),
                Err(BootstrapError::Syntax(bad.to_string())),
                "{bad}"
            );
        }
        let many = vec!["h:1".to_string(); MAX_CONFIGURED_BOOTSTRAP + 1];
        assert_eq!(parse_bootstrap(&many), Err(BootstrapError::TooMany(17)));
    }

    #[tokio::test]
    async fn resolves_literal_addresses_without_dns() {
        assert_eq!(
            resolve("127.0.0.1:6881").await,
            vec![SocketAddrV4::new(Ipv4Addr::LOCALHOST, 6881)]
        );
        assert!(
            resolve("[::1]:6881").await.is_empty(),
            "IPv6 is not usable by the DHT node"
        );
        assert!(resolve("0.0.0.0:6881").await.is_empty());
    }

    #[test]
    fn list_order_dedup_and_room() {
        let plan = BootstrapPlan {
            saved: (1..=30).map(a).collect(),
            configured: vec![a(100), a(1)],
            public: vec![],
        };
        let list = plan.list();
        assert_eq!(list.len(), 18 + 1, "18 saved (a(1) among them) + a(100)");
        assert_eq!(list[0], a(1));
        assert!(list.contains(&a(100)));

        let crowded = BootstrapPlan {
            saved: (1..=30).map(a).collect(),
            configured: (100..116).map(a).collect(),
            public: (200..204).map(a).collect(),
        };
        let list = crowded.list();
        assert_eq!(list.len(), MIN_SAVED_IN_BOOTSTRAP + 16 + 4);

        assert!(BootstrapPlan::default().list().is_empty());
    }
}
