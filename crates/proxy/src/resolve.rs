//! Name resolution, pluggable so that the node can swap in another resolver later and tests can use fixed maps.
//!
//! The default, [`SystemResolver`], asks the operating system (`getaddrinfo` through tokio), so it honours
//! `/etc/hosts` and `/etc/resolv.conf`. The network-namespace tests rely on that: `ip netns exec` mounts
//! `/etc/netns/NAME/hosts` over `/etc/hosts`, which is how the simulated censor "poisons DNS" for the client while
//! the bridge outside resolves the same name correctly, with the production resolver on both sides.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;

/// A boxed resolution in progress.
pub type ResolveFuture<'a> = Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send + 'a>>;

/// Turns a DNS name into addresses.
pub trait Resolver: Send + Sync + 'static {
    /// Every address of `name` (a normalised host name, not an IP literal).
    fn resolve<'a>(&'a self, name: &'a str) -> ResolveFuture<'a>;
}

/// The operating system's resolver.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn resolve<'a>(&'a self, name: &'a str) -> ResolveFuture<'a> {
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((name, 0)).await?;
            let mut ips: Vec<IpAddr> = Vec::new();
            for addr in addrs {
                if !ips.contains(&addr.ip()) {
                    ips.push(addr.ip());
                }
            }
            Ok(ips)
        })
    }
}

/// A fixed name-to-address map, like a hosts file; names not in it do not resolve.
#[derive(Clone, Debug, Default)]
pub struct StaticResolver(HashMap<String, Vec<IpAddr>>);

impl StaticResolver {
    pub fn new() -> StaticResolver {
        StaticResolver::default()
    }

    /// Adds (or replaces) a name's addresses; the name is matched case-insensitively.
    pub fn insert(&mut self, name: &str, addrs: Vec<IpAddr>) -> &mut StaticResolver {
        self.0.insert(name.to_ascii_lowercase(), addrs);
        self
    }
}

impl Resolver for StaticResolver {
    fn resolve<'a>(&'a self, name: &'a str) -> ResolveFuture<'a> {
        let found = self.0.get(&name.to_ascii_lowercase()).cloned();
        Box::pin(async move {
            found.filter(|addrs| !addrs.is_empty()).ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, "name not in the static map")
            })
        })
    }
}
