//! LAN discovery: kolokol nodes on one local network find each other by UDP multicast, with no DHT and no
//! Internet (two laptops on one Wi-Fi).
//!
//! Every node sends a 40-byte [`Announce`] (its wire port, a hash of its network name and its instance: random
//! bytes that are new with each wire identity, never the node id; see `message.rs`) to an
//! administratively scoped multicast group ([`DEFAULT_GROUP`], port [`DEFAULT_PORT`]) every
//! [`LanConfig::interval`] with jitter, with TTL 1 so it never leaves the link. It listens on the same group and
//! yields a [`LanPeer`] for every announce of the same network that is not its own. Anything malformed is
//! ignored (logged at debug level, since a LAN can be noisy). Memory is bounded: a small table of recently
//! heard nodes, and a bounded channel that drops announces when the node does not keep up.
//!
//! A node that hears a node it did not know answers with an announce of its own soon after (at most once per
//! [`MIN_ANNOUNCE_GAP`]), so both sides learn of each other without waiting a whole interval.
//!
//! When the node renews its wire identity it gives LAN discovery a new instance ([`Lan::set_instance`]), which is
//! announced at once; nothing in an announce then ties it to the ones before.
//!
//! To turn LAN discovery off (`--no-lan`), do not start it.

mod message;

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use message::{ANNOUNCE_LEN, Announce, AnnounceError, network_hint};

/// Multicast group: in 239.192.0.0/14, the organisation-local scope of RFC 2365, which routers do not forward
/// off the site.
pub const DEFAULT_GROUP: Ipv4Addr = Ipv4Addr::new(239, 193, 74, 11);
/// UDP port of the group.
pub const DEFAULT_PORT: u16 = 7419;
/// Shortest time between two announces of one node.
pub const MIN_ANNOUNCE_GAP: Duration = Duration::from_secs(1);
/// A node already yielded is yielded again only after this long (unless its address or instance changed).
pub const REPEAT_AFTER: Duration = Duration::from_secs(300);
/// Most nodes remembered in the recently-heard table.
const MAX_RECENT: usize = 256;
/// Most interfaces used.
pub const MAX_INTERFACES: usize = 32;
/// Announces waiting for the node to take them; more are dropped.
const CHANNEL_CAPACITY: usize = 64;

/// Which interfaces to announce and listen on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LanInterfaces {
    /// Every non-loopback IPv4 interface, checked again before each announce (Wi-Fi comes and goes).
    Auto,
    /// Exactly these interface addresses (tests use 127.0.0.1 inside a network namespace).
    Only(Vec<Ipv4Addr>),
}

/// Options of LAN discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LanConfig {
    /// Our network: only announces of the same network are yielded.
    pub network: String,
    /// Our instance (see [`Announce::instance`]): our own announces (looped back by the kernel) are ignored.
    pub instance: [u8; 16],
    /// Our kolokol wire port, announced.
    pub wire_port: u16,
    /// Multicast group.
    pub group: Ipv4Addr,
    /// UDP port of the group.
    pub port: u16,
    /// Interfaces to use.
    pub interfaces: LanInterfaces,
    /// Time between announces: 30 s.
    pub interval: Duration,
}

impl LanConfig {
    /// The defaults for a node.
    pub fn new(network: &str, instance: [u8; 16], wire_port: u16) -> LanConfig {
        LanConfig {
            network: network.to_owned(),
            instance,
            wire_port,
            group: DEFAULT_GROUP,
            port: DEFAULT_PORT,
            interfaces: LanInterfaces::Auto,
            interval: Duration::from_secs(30),
        }
    }
}

/// A kolokol node heard on the LAN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LanPeer {
    /// Where its wire protocol listens: the announce's source IP and the announced port. Who it is, the wire
    /// handshake tells.
    pub addr: SocketAddr,
}

/// Why LAN discovery could not start.
#[derive(Debug, thiserror::Error)]
pub enum LanError {
    #[error("{0} is not a multicast group address")]
    NotMulticast(Ipv4Addr),
    #[error("LAN port and wire port must not be 0")]
    Port,
    #[error("at most {MAX_INTERFACES} interfaces, got {0}")]
    TooManyInterfaces(usize),
    #[error("LAN socket: {0}")]
    Socket(#[from] std::io::Error),
    #[error("cannot join {group} on interface {interface}: {source}")]
    Join {
        group: Ipv4Addr,
        interface: Ipv4Addr,
        source: std::io::Error,
    },
}

/// Running LAN discovery. Dropping it (or [`Lan::stop`]) stops it.
#[derive(Debug)]
pub struct Lan {
    peers: mpsc::Receiver<LanPeer>,
    instance: watch::Sender<[u8; 16]>,
    wake: Arc<Notify>,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Lan {
    /// Opens the sockets, joins the group and starts announcing and listening.
    pub async fn start(config: LanConfig) -> Result<Lan, LanError> {
        if !config.group.is_multicast() {
            return Err(LanError::NotMulticast(config.group));
        }
        if config.port == 0 || config.wire_port == 0 {
            return Err(LanError::Port);
        }
        if let LanInterfaces::Only(list) = &config.interfaces
            && list.len() > MAX_INTERFACES
        {
            return Err(LanError::TooManyInterfaces(list.len()));
        }
        let receiver = Arc::new(receive_socket(config.group, config.port)?);
        let sender = send_socket()?;
        let mut joined = BTreeSet::new();
        if let LanInterfaces::Only(list) = &config.interfaces {
            // Interfaces given explicitly must work: report a failure instead of running deaf.
            for interface in list {
                receiver
                    .join_multicast_v4(config.group, *interface)
                    .map_err(|source| LanError::Join {
                        group: config.group,
                        interface: *interface,
                        source,
                    })?;
                joined.insert(*interface);
            }
        }
        let (tx, peers) = mpsc::channel(CHANNEL_CAPACITY);
        let wake = Arc::new(Notify::new());
        let cancel = CancellationToken::new();
        let instance = watch::Sender::new(config.instance);
        let listen = tokio::spawn(listen(
            receiver.clone(),
            config.clone(),
            instance.subscribe(),
            tx,
            wake.clone(),
            cancel.clone(),
        ));
        let announce = tokio::spawn(announce(
            receiver,
            sender,
            config,
            instance.subscribe(),
            joined,
            wake.clone(),
            cancel.clone(),
        ));
        Ok(Lan {
            peers,
            instance,
            wake,
            cancel,
            tasks: vec![listen, announce],
        })
    }

    /// The next node heard. `None` once stopped.
    pub async fn next(&mut self) -> Option<LanPeer> {
        self.peers.recv().await
    }

    /// Sends an announce now (at most once per [`MIN_ANNOUNCE_GAP`]).
    pub fn announce_now(&self) {
        self.wake.notify_one();
    }

    /// The node renewed its wire identity: announce `instance` from now on (and at once), and ignore announces of
    /// this one as our own.
    pub fn set_instance(&self, instance: [u8; 16]) {
        self.instance.send_replace(instance);
        self.wake.notify_one();
    }

    /// Stops both tasks and waits for them.
    pub async fn stop(mut self) {
        self.cancel.cancel();
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// The listening socket: bound to the group and port, shared with other processes on this host.
fn receive_socket(group: Ipv4Addr, port: u16) -> Result<UdpSocket, LanError> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    // Several kolokol nodes on one machine all listen on the same group and port.
    socket.set_reuse_address(true)?;
    // Binding to the group address (not 0.0.0.0) means only datagrams sent to the group arrive (Linux).
    let bind_ip = if cfg!(target_os = "linux") {
        group
    } else {
        Ipv4Addr::UNSPECIFIED
    };
    socket.bind(&SocketAddrV4::new(bind_ip, port).into())?;
    socket.set_nonblocking(true)?;
    Ok(UdpSocket::from_std(socket.into())?)
}

/// The sending socket: TTL 1 (the announce never leaves the link), loopback on (nodes on one host hear each
/// other).
fn send_socket() -> Result<UdpSocket, LanError> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_multicast_ttl_v4(1)?;
    socket.set_multicast_loop_v4(true)?;
    socket.bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0).into())?;
    socket.set_nonblocking(true)?;
    Ok(UdpSocket::from_std(socket.into())?)
}

/// The node's own addresses now: every address of every interface except loopback and unspecified ones, IPv4 and
/// IPv6, and IPv6 link-local ones (`fe80::/10`: the kernel drops and adds them with the link's state, and they are
/// the same on every network, so they would only renew the identity when a link flaps). The node renews its wire
/// identity when this set changes (another network); an empty set means offline (or that the interfaces cannot be
/// listed, which is logged).
pub fn local_addresses() -> BTreeSet<IpAddr> {
    use network_interface::{NetworkInterface, NetworkInterfaceConfig};
    let interfaces = match NetworkInterface::show() {
        Ok(list) => list,
        Err(error) => {
            tracing::debug!(%error, "cannot list network interfaces");
            return BTreeSet::new();
        }
    };
    interfaces
        .iter()
        .filter(|i| !i.internal)
        .flat_map(|i| i.addr.iter().map(|a| a.ip()))
        .filter(|ip| !ip.is_loopback() && !ip.is_unspecified() && !is_ipv6_link_local(ip))
        .take(MAX_ADDRESSES)
        .collect()
}

fn is_ipv6_link_local(ip: &IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80)
}

/// Most addresses [`local_addresses`] reports (a bound, not a limit any real machine reaches).
const MAX_ADDRESSES: usize = 256;

/// Current IPv4 addresses of non-loopback interfaces, at most [`MAX_INTERFACES`].
fn auto_interfaces() -> Vec<Ipv4Addr> {
    use network_interface::{Addr, NetworkInterface, NetworkInterfaceConfig};
    let interfaces = match NetworkInterface::show() {
        Ok(list) => list,
        Err(error) => {
            tracing::debug!(%error, "cannot list network interfaces");
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for interface in interfaces.iter().filter(|i| !i.internal) {
        for addr in &interface.addr {
            if let Addr::V4(v4) = addr
                && !v4.ip.is_loopback()
                && !v4.ip.is_unspecified()
                && !out.contains(&v4.ip)
                && out.len() < MAX_INTERFACES
            {
                out.push(v4.ip);
            }
        }
    }
    out
}

async fn announce(
    receiver: Arc<UdpSocket>,
    sender: UdpSocket,
    config: LanConfig,
    instance: watch::Receiver<[u8; 16]>,
    mut joined: BTreeSet<Ipv4Addr>,
    wake: Arc<Notify>,
    cancel: CancellationToken,
) {
    let group = SocketAddr::V4(SocketAddrV4::new(config.group, config.port));
    loop {
        // Read each time: a renewed identity is announced with its new instance.
        let message = Announce::new(&config.network, *instance.borrow(), config.wire_port).encode();
        let interfaces = match &config.interfaces {
            LanInterfaces::Only(list) => list.clone(),
            LanInterfaces::Auto => auto_interfaces(),
        };
        for interface in &interfaces {
            if joined.len() < MAX_INTERFACES && !joined.contains(interface) {
                match receiver.join_multicast_v4(config.group, *interface) {
                    Ok(()) => {
                        joined.insert(*interface);
                    }
                    Err(error) => tracing::debug!(%interface, %error, "cannot join the LAN group"),
                }
            }
            if let Err(error) = SockRef::from(&sender).set_multicast_if_v4(interface) {
                tracing::debug!(%interface, %error, "cannot select interface for LAN announce");
                continue;
            }
            if let Err(error) = sender.send_to(&message, group).await {
                tracing::debug!(%interface, %error, "LAN announce not sent");
            }
        }
        let wait = crate::rendezvous::jittered(config.interval, 10);
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
            _ = wake.notified() => {
                // Rate limit: an announce answered by many new nodes still sends one packet per gap.
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(MIN_ANNOUNCE_GAP) => {}
                }
            }
        }
    }
}

async fn listen(
    socket: Arc<UdpSocket>,
    config: LanConfig,
    own: watch::Receiver<[u8; 16]>,
    tx: mpsc::Sender<LanPeer>,
    wake: Arc<Notify>,
    cancel: CancellationToken,
) {
    let hint = network_hint(&config.network);
    // Keyed by the sender's instance: a node that renewed its identity is a new node here too.
    let mut recent: HashMap<[u8; 16], (SocketAddr, Instant)> = HashMap::new();
    // One byte more than an announce, so that a longer datagram is seen as longer, not truncated to fit.
    let mut buf = [0u8; ANNOUNCE_LEN + 1];
    loop {
        let (len, from) = tokio::select! {
            _ = cancel.cancelled() => return,
            received = socket.recv_from(&mut buf) => match received {
                Ok(r) => r,
                Err(error) => {
                    tracing::debug!(%error, "LAN receive failed");
                    // Errors such as ICMP-induced ones are transient; do not spin.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let announce = match Announce::decode(&buf[..len]) {
            Ok(a) => a,
            Err(error) => {
                tracing::debug!(%from, %error, "ignoring a malformed LAN datagram");
                continue;
            }
        };
        if announce.network != hint || announce.instance == *own.borrow() {
            continue;
        }
        let IpAddr::V4(ip) = from.ip() else { continue };
        if ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast() {
            continue;
        }
        let peer = LanPeer {
            addr: SocketAddr::new(from.ip(), announce.wire_port),
        };
        let now = Instant::now();
        let is_new = match recent.get(&announce.instance) {
            Some((addr, at)) if *addr == peer.addr && now.duration_since(*at) < REPEAT_AFTER => {
                continue;
            }
            Some(_) => false,
            None => true,
        };
        match tx.try_send(peer) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                // Not remembered, so the next announce of this node is offered again.
                tracing::debug!("LAN peer dropped: the node is not taking them fast enough");
                continue;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
        if recent.len() >= MAX_RECENT
            && is_new
            && let Some(oldest) = recent
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| *k)
        {
            recent.remove(&oldest);
        }
        recent.insert(announce.instance, (peer.addr, now));
        if is_new {
            wake.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_addresses_leave_out_loopback_and_ipv6_link_local() {
        let parse = |s: &str| {
            s.parse::<IpAddr>()
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
        };
        assert!(is_ipv6_link_local(&parse("fe80::1")));
        assert!(is_ipv6_link_local(&parse("febf::1")));
        assert!(!is_ipv6_link_local(&parse("fec0::1")));
        assert!(!is_ipv6_link_local(&parse("2001:db8::1")));
        assert!(!is_ipv6_link_local(&parse("169.254.3.4")));
        for ip in local_addresses() {
            assert!(
                !ip.is_loopback() && !ip.is_unspecified() && !is_ipv6_link_local(&ip),
                "{ip}"
            );
        }
    }
}
