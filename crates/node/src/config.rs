//! What a node is told at start.

use std::net::SocketAddr;
use std::time::Duration;

/// Default network name: nodes of different networks never exchange records.
pub const DEFAULT_NETWORK: &str = "kolokol";
/// Default HTTP API address.
pub const DEFAULT_API_ADDR: &str = "127.0.0.1:7411";

/// Options of a node. The data directory is passed separately, already locked (see [`crate::DataDir`]).
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Network name; records of another network are refused.
    pub network: String,
    /// BitTorrent listen address. `None`: all interfaces, on the port chosen on first start and kept.
    pub bt_listen: Option<SocketAddr>,
    /// kolokol wire protocol listen address. `None`: all interfaces, on the port chosen on first start and kept.
    pub wire_listen: Option<SocketAddr>,
    /// Address the HTTP API was bound to by the caller; reported by `status`.
    pub api_addr: SocketAddr,
    /// Discovery: DHT, rendezvous, LAN, feeds.
    pub discovery: DiscoveryConfig,
    /// Connected peers that learn of a new record: sent whole when published here, announced by id (`have`) when
    /// received and relayed. The record policy (`kolokol_core::policy`) picks them at random.
    pub push_fanout: usize,
    /// Connections the node tries to keep (the overlay's target degree).
    pub target_peers: usize,
    /// Most inbound kolokol connections accepted.
    pub max_inbound: usize,
    /// The local proxy and the bridge (default: neither; `kolokol up` turns the proxy on).
    pub proxy: crate::proxy::ProxyOptions,
    /// Limits on records from other nodes.
    pub admission: crate::admission::AdmissionConfig,
    /// How often the node reconciles its catalog with a random connected peer.
    pub reconcile_interval: Duration,
    /// Proof-of-work difficulty of the network, in bits: records this node publishes carry at least this much work,
    /// and records from others with less are refused. All nodes of a network should use the same value.
    pub work_bits: u8,
    /// Most bytes per second the BitTorrent engine downloads (`None`: no limit; at least 64 KiB/s).
    pub download_limit: Option<u64>,
    /// Most bytes per second the BitTorrent engine uploads (`None`: no limit; at least 64 KiB/s).
    pub upload_limit: Option<u64>,
    /// How long the streaming gateway waits for data that does not come (no peer has the piece or the torrent's
    /// metadata) before it answers that the file is not available.
    pub stream_timeout: Duration,
    /// Publisher push: peers asked to replicate a fresh publication before it is announced.
    pub replication: ReplicationConfig,
    /// What this node keeps of others' publications (mirror mode, viewer cache) and under what quota.
    pub cache: CacheOptions,
    /// Passphrases tried on author keys sealed with one (`kolokol up` asks for them, or reads `KOLOKOL_PASSPHRASE`);
    /// a sealed identity none of them opens stops the start. Never printed (see [`crate::Passphrase`]).
    pub passphrases: Vec<crate::keyfile::Passphrase>,
}

/// Publisher push (design decision 5): the publisher must not be the first and only seeder.
#[derive(Debug, Clone)]
pub struct ReplicationConfig {
    /// Connected peers asked to hold a full copy before the publication is announced; 0 announces at once.
    pub replicas: usize,
    /// Announce anyway after this long without any confirmed replica.
    pub announce_timeout: Duration,
    /// A peer that has not confirmed a replica within this long is replaced by another.
    pub ask_timeout: Duration,
    /// A peer challenged to prove a `Holding` claim must answer within this long, or it is cut off: 60 s (an honest
    /// answer reads 16 KiB from disk).
    pub proof_deadline: Duration,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        ReplicationConfig {
            replicas: 3,
            announce_timeout: Duration::from_secs(600),
            ask_timeout: Duration::from_secs(300),
            proof_deadline: Duration::from_secs(60),
        }
    }
}

/// Mirror mode and the viewer cache.
#[derive(Debug, Clone)]
pub struct CacheOptions {
    /// Fetch new publications on our own (a volunteer's mirror), newest, rarest and followed first.
    pub mirror: bool,
    /// Bytes of others' publications this node keeps (pinned data and own publications are not counted out:
    /// pins always win). Over it, the least recently requested unpinned data is evicted.
    pub quota: u64,
    /// Advertise what the user watched (downloaded, streamed, imported) in the DHT and to peers, as a seeder of it.
    /// `None`: the setting saved from the web UI, or else on only for a mirror. Off, such data is still served to a
    /// peer that asks for it, but nobody is told that this node holds it.
    pub share_watched: Option<bool>,
}

/// Default quota: what a viewer keeps seeding of what they watched, or a mirror holds.
pub const DEFAULT_CACHE_QUOTA: u64 = 5 * 1024 * 1024 * 1024;

impl Default for CacheOptions {
    fn default() -> Self {
        CacheOptions {
            mirror: false,
            quota: DEFAULT_CACHE_QUOTA,
            share_watched: None,
        }
    }
}

/// How the node finds others with no server.
#[derive(Debug, Clone)]
pub struct DiscoveryConfig {
    /// DHT UDP address (IPv4). `None`: all interfaces, on the port chosen on first start and kept.
    pub dht_listen: Option<SocketAddr>,
    /// Extra DHT bootstrap nodes, `HOST:PORT`.
    pub bootstrap: Vec<String>,
    /// Never contact the public BitTorrent bootstrap routers (a private network, or a test).
    pub no_default_bootstrap: bool,
    /// Answer other DHT nodes' queries from the start, also on the public DHT. Otherwise the rule of
    /// `kolokol_discovery::policy::answers_from_start`: from the start when the public routers are off (a network
    /// of kolokol nodes only), else once found reachable.
    pub dht_server: bool,
    /// How long to wait for one DHT node's answer (`kolokol_discovery::policy::DEFAULT_REQUEST_TIMEOUT`: 1 s).
    pub dht_request_timeout: Duration,
    /// Announce and look up the rendezvous this often while connected to a kolokol peer; with none, after 1 s,
    /// then twice as long each time up to 30 s (or this interval, if shorter).
    pub rendezvous_interval: Duration,
    /// Announce on the LAN by multicast and connect to what is heard.
    pub lan: bool,
    /// LAN interfaces (their IPv4 addresses); empty: every non-loopback interface.
    pub lan_interfaces: Vec<std::net::Ipv4Addr>,
    /// Read followed authors' feed heads this often.
    pub feed_poll_interval: Duration,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            dht_listen: None,
            bootstrap: Vec::new(),
            no_default_bootstrap: false,
            dht_server: false,
            dht_request_timeout: kolokol_discovery::policy::DEFAULT_REQUEST_TIMEOUT,
            rendezvous_interval: Duration::from_secs(600),
            lan: true,
            lan_interfaces: Vec::new(),
            feed_poll_interval: Duration::from_secs(300),
        }
    }
}

impl DiscoveryConfig {
    /// Only loopback and what the caller configures: no public routers (so the DHT answers from the start), no LAN
    /// multicast. For tests and private networks on one machine.
    pub fn private_loopback() -> Self {
        DiscoveryConfig {
            dht_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            no_default_bootstrap: true,
            lan: false,
            ..DiscoveryConfig::default()
        }
    }
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            network: DEFAULT_NETWORK.to_owned(),
            bt_listen: None,
            wire_listen: None,
            api_addr: SocketAddr::from(([127, 0, 0, 1], 7411)),
            discovery: DiscoveryConfig::default(),
            push_fanout: 8,
            target_peers: 8,
            max_inbound: 32,
            admission: crate::admission::AdmissionConfig::default(),
            reconcile_interval: Duration::from_secs(60),
            work_bits: kolokol_core::record::DEFAULT_WORK_BITS,
            download_limit: None,
            upload_limit: None,
            stream_timeout: kolokol_transfer::DEFAULT_STREAM_TIMEOUT,
            replication: ReplicationConfig::default(),
            cache: CacheOptions::default(),
            passphrases: Vec::new(),
            proxy: crate::proxy::ProxyOptions::default(),
        }
    }
}
