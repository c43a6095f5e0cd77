//! The censored network of the proxy tests: a client behind a censoring router, and the outside world.
//!
//! ```text
//!  client ns 198.18.1.2 --- censor ns (router) 198.18.1.1 | 198.18.2.1 --- outside ns 198.18.2.2
//!                                                                           + SITES, BRIDGE (/32 each)
//! ```
//!
//! The censor blocks [`SITES`] 1 to 5 each a different way (see [`CensorNet::create`]); site 0 is open. Names
//! `site0.test` to `site5.test` resolve through `/etc/hosts` in each namespace, the client's poisoned for site 3. No
//! resolver is reachable. The addresses (198.18.0.0/15, reserved for network tests) exist only inside the
//! namespaces, which are removed when the [`CensorNet`] is dropped.

use crate::netns::Namespaces;

/// The outside web sites: site 0 open, sites 1 to 5 blocked.
pub const SITES: [&str; 6] = [
    "198.18.2.10",
    "198.18.2.11",
    "198.18.2.12",
    "198.18.2.13",
    "198.18.2.14",
    "198.18.2.15",
];
/// The address the client's poisoned name resolution gives for site 3.
pub const BOGUS: &str = "198.18.2.99";
/// An outside address for a bridge.
pub const BRIDGE: &str = "198.18.2.50";
/// The censor's own address on the client side, where its block page is served (port 8080, by the test).
pub const BLOCK_SERVER: &str = "198.18.1.1";
/// The block page's text.
pub const BLOCK_TEXT: &str = "Access to this resource is restricted by the regulator";

/// How each site's direct route fails under the censor, in the words of `proxy status` (site 0 does not fail).
pub const FAILURES: [&str; 6] = [
    "",
    "reset",
    "connect timeout",
    "bogus DNS answer",
    "block page",
    "no first byte",
];

/// The three namespaces, removed with their `/etc/netns` files when dropped, even if the test failed.
pub struct CensorNet {
    /// The client's namespace.
    pub client: String,
    /// The censoring router's namespace.
    pub censor: String,
    /// The outside world's namespace (sites and bridges).
    pub outside: String,
    _namespaces: Namespaces,
}

impl CensorNet {
    /// Builds the network. `prefixes` name the client, censor and outside namespaces (a few letters each, distinct
    /// per test file). The censor: site 1's connections are reset after the handshake, site 2's packets dropped,
    /// site 3's name poisoned on the client, site 4's port 80 redirected to the block page at
    /// [`BLOCK_SERVER`]:8080, site 5's data packets dropped after the handshake (no first byte).
    pub fn create(prefixes: [&str; 3]) -> Result<CensorNet, String> {
        let namespaces = Namespaces::create(&prefixes)?;
        let (c, r, o) = (0, 1, 2);
        namespaces.link(c, "eth0", r, "eth0")?;
        namespaces.link(r, "eth1", o, "eth0")?;
        namespaces.sh(
            c,
            "ip link set lo up; ip link set eth0 up; ip addr add 198.18.1.2/24 dev eth0; \
             ip route add default via 198.18.1.1",
        )?;
        namespaces.sh(
            r,
            "ip link set lo up; ip link set eth0 up; ip link set eth1 up; ip addr add 198.18.1.1/24 dev eth0; \
             ip addr add 198.18.2.1/24 dev eth1; sysctl -qw net.ipv4.ip_forward=1",
        )?;
        let mut outside = String::from(
            "ip link set lo up; ip link set eth0 up; ip addr add 198.18.2.2/24 dev eth0; \
             ip route add default via 198.18.2.1;",
        );
        for ip in SITES.iter().chain([&BRIDGE]) {
            outside.push_str(&format!(" ip addr add {ip}/32 dev eth0;"));
        }
        namespaces.sh(o, &outside)?;
        namespaces.sh(
            r,
            &format!(
                "iptables -A FORWARD -p tcp -d {s1} ! --syn -m length --length 53:65535 -j REJECT --reject-with tcp-reset; \
                 iptables -A FORWARD -d {s2} -j DROP; \
                 iptables -t nat -A PREROUTING -p tcp -d {s4} --dport 80 -j DNAT --to-destination {BLOCK_SERVER}:8080; \
                 iptables -A FORWARD -p tcp -d {s5} ! --syn -m length --length 53:65535 -j DROP",
                s1 = SITES[1],
                s2 = SITES[2],
                s4 = SITES[4],
                s5 = SITES[5]
            ),
        )?;
        for (ns, poisoned) in [(c, true), (o, false), (r, false)] {
            let mut hosts = String::from("127.0.0.1 localhost\n");
            for (i, ip) in SITES.iter().enumerate() {
                let ip = if poisoned && i == 3 { BOGUS } else { ip };
                hosts.push_str(&format!("{ip} site{i}.test\n"));
            }
            namespaces.etc_file(ns, "hosts", &hosts)?;
            namespaces.etc_file(ns, "resolv.conf", "nameserver 127.0.0.1\n")?;
        }
        Ok(CensorNet {
            client: namespaces.name(c).to_owned(),
            censor: namespaces.name(r).to_owned(),
            outside: namespaces.name(o).to_owned(),
            _namespaces: namespaces,
        })
    }
}
