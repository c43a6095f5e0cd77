//! The censor's filter: a transparent proxy in the censor namespace of a [`CensorNet`] that sees every TCP
//! connection the client opens, judges it by the rules switched on ([`CensorRules`]), and then relays it, freezes
//! it or black-holes it. UDP to port 443 with a QUIC long header is dropped by netfilter (`-m u32`).
//!
//! ```text
//!  client ──TCP──▶ censor ns: iptables REDIRECT ──▶ filter (this module) ──TCP──▶ outside
//!                                                     └─ prober: probes every new server it saw
//! ```
//!
//! How each rule acts (all silent: the censor never resets and never answers; a blocked connection is read and
//! ignored, as the filters measured in China and Russia do):
//! - fully encrypted (a): the client's first data ([`classify::fully_encrypted`]) blocked, and the (client address,
//!   server address, port) triple black-holed for [`CensorRules::residual`] (180 s in the paper);
//! - freeze (b): a connection to an address in [`CensorRules::foreign`] stops moving after
//!   [`CensorRules::freeze_after`] bytes in either direction;
//! - whitelist (c): only a ClientHello whose server name is listed, to an address in a listed range, is relayed;
//! - QUIC (d): netfilter drops the datagrams (see [`Censor::set_rules`]);
//! - prober (e): every server seen for the first time gets four probes from the censor: the client's first flight
//!   replayed, random bytes, a TLS ClientHello for an unrelated name, an HTTP GET; what comes back is recorded.
//!
//! The proxy's connections to the outside come from the censor's own address (198.18.2.1), not the client's, which
//! a real on-path filter would keep; no test here depends on the source address. Rules are read when a connection
//! starts: switching one on does not touch connections already relayed (as with a real filter's flow table).

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::classify::{self, Verdict};
use super::client_hello::{self, HelloError, MAX_HELLO_BYTES};
use super::probe::{self, ProbeRecord};
use crate::censor_net::{BLOCK_SERVER, CensorNet};
use crate::netns;

/// The filter's port in the censor namespace.
const FILTER_PORT: u16 = 15_001;
/// How long the filter waits for a client's first bytes before it relays without judging them (a protocol where
/// the server speaks first).
const FIRST_FLIGHT_WAIT: Duration = Duration::from_secs(10);
/// Longest a black-holed or frozen connection is held before the censor lets go of it (tests end sooner).
const HOLD_LIMIT: Duration = Duration::from_secs(180);
/// The netfilter rule of the QUIC drop: UDP to 443 whose first payload byte has the two top bits set.
const QUIC_RULE: &str =
    "FORWARD -p udp --dport 443 -m u32 --u32 0>>22&0x3C@8>>24&0xC0=0xC0 -j DROP";

/// An IPv4 range, `a.b.c.d/len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: Ipv4Addr,
    pub len: u8,
}

impl Cidr {
    /// Parses `a.b.c.d/len` or a bare address (a /32).
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (addr, len) = text.split_once('/').unwrap_or((text, "32"));
        let addr: Ipv4Addr = addr.parse().map_err(|e| format!("{text}: {e}"))?;
        let len: u8 = len.parse().map_err(|e| format!("{text}: {e}"))?;
        if len > 32 {
            return Err(format!("{text}: prefix longer than 32"));
        }
        Ok(Cidr { addr, len })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let IpAddr::V4(ip) = ip else { return false };
        let mask = u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0);
        u32::from(ip) & mask == u32::from(self.addr) & mask
    }
}

/// Whitelist mode (c): what may pass.
#[derive(Debug, Clone, Default)]
pub struct Whitelist {
    /// Server names (exact, lower case).
    pub names: Vec<String>,
    pub ranges: Vec<Cidr>,
}

/// The rules switched on. `Default`: none (the filter relays everything).
#[derive(Debug, Clone)]
pub struct CensorRules {
    /// (a) the fully-encrypted rule on the client's first data.
    pub fully_encrypted: bool,
    /// How long a triple stays black-holed after rule (a) fired.
    pub residual: Duration,
    /// (b) freeze connections to [`CensorRules::foreign`] after this many bytes in either direction.
    pub freeze_after: Option<u64>,
    /// Addresses marked foreign (for the freeze).
    pub foreign: Vec<Cidr>,
    /// (c) whitelist mode.
    pub whitelist: Option<Whitelist>,
    /// (d) drop UDP to port 443 that starts with a QUIC long header.
    pub drop_quic: bool,
    /// (e) probe every new server.
    pub prober: bool,
    /// How long each probe waits for an answer.
    pub probe_wait: Duration,
}

impl Default for CensorRules {
    fn default() -> Self {
        CensorRules {
            fully_encrypted: false,
            residual: Duration::from_secs(180),
            freeze_after: None,
            foreign: Vec::new(),
            whitelist: None,
            drop_quic: false,
            prober: false,
            probe_wait: Duration::from_secs(5),
        }
    }
}

/// What the filter did with one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Relayed (possibly frozen later: see [`Outcome::Frozen`], recorded when it happens).
    Relayed,
    /// Rule (a): the first data looked fully encrypted.
    BlockedFullyEncrypted,
    /// Rule (a)'s residual block of the triple.
    BlockedResidual,
    /// Rule (c): the destination is not in a listed range.
    BlockedRange,
    /// Rule (c): no ClientHello with a listed name.
    BlockedName,
    /// Rule (b): the connection stopped moving after the limit.
    Frozen,
    /// The censor could not reach the destination.
    Unreachable,
}

/// One decision of the filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowRecord {
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub outcome: Outcome,
    /// The first data's length (0 when the filter did not wait for it).
    pub first_len: usize,
}

pub(crate) struct Shared {
    pub rules: Mutex<CensorRules>,
    pub flows: Mutex<Vec<FlowRecord>>,
    pub probes: Mutex<Vec<ProbeRecord>>,
    residual: Mutex<HashMap<(IpAddr, SocketAddr), Instant>>,
    seen_servers: Mutex<HashSet<SocketAddr>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running filter; stopped (and its netfilter rules removed) when dropped.
pub struct Censor {
    censor_ns: String,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
    quic_rule_on: bool,
}

impl Censor {
    /// Starts the filter in `net`'s censor namespace with `rules`, and sends the client's TCP through it.
    pub fn start(net: &CensorNet, rules: CensorRules) -> Result<Censor, String> {
        let shared = Arc::new(Shared {
            rules: Mutex::new(CensorRules::default()),
            flows: Mutex::new(Vec::new()),
            probes: Mutex::new(Vec::new()),
            residual: Mutex::new(HashMap::new()),
            seen_servers: Mutex::new(HashSet::new()),
        });
        let (stop, stop_rx) = watch::channel(false);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let thread_shared = shared.clone();
        let thread = netns::spawn_in_namespace(&net.censor, move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = ready_tx.send(Err(format!("runtime: {e}")));
                    return;
                }
            };
            runtime.block_on(async move {
                let listener = match TcpListener::bind((Ipv4Addr::UNSPECIFIED, FILTER_PORT)).await {
                    Ok(listener) => listener,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("filter listen: {e}")));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                accept_loop(listener, thread_shared, stop_rx).await;
            });
        })?;
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| "the filter did not start".to_owned())??;
        // Every TCP connection from the client side, except to the censor's own block-page server, goes to the
        // filter. Appended after CensorNet's own NAT rule, which keeps its block-page redirect.
        netns::run(&[
            "ip",
            "netns",
            "exec",
            &net.censor,
            "iptables",
            "-t",
            "nat",
            "-A",
            "PREROUTING",
            "-i",
            "eth0",
            "-p",
            "tcp",
            "!",
            "-d",
            BLOCK_SERVER,
            "-j",
            "REDIRECT",
            "--to-ports",
            &FILTER_PORT.to_string(),
        ])?;
        let mut censor = Censor {
            censor_ns: net.censor.clone(),
            shared,
            stop,
            thread: Some(thread),
            quic_rule_on: false,
        };
        censor.set_rules(rules)?;
        Ok(censor)
    }

    /// Switches rules on or off. Connections already relayed keep the rules they started under.
    pub fn set_rules(&mut self, rules: CensorRules) -> Result<(), String> {
        if rules.drop_quic != self.quic_rule_on {
            let action = if rules.drop_quic { "-A" } else { "-D" };
            let mut args = vec!["ip", "netns", "exec", &self.censor_ns, "iptables", action];
            args.extend(QUIC_RULE.split(' '));
            netns::run(&args)?;
            self.quic_rule_on = rules.drop_quic;
        }
        *lock(&self.shared.rules) = rules;
        Ok(())
    }

    /// Forgets rule (a)'s residual blocks (so that a test can measure the same route again at once).
    pub fn clear_residual(&self) {
        lock(&self.shared.residual).clear();
    }

    /// Every decision so far, in order.
    pub fn flows(&self) -> Vec<FlowRecord> {
        lock(&self.shared.flows).clone()
    }

    /// Every finished probe so far.
    pub fn probes(&self) -> Vec<ProbeRecord> {
        lock(&self.shared.probes).clone()
    }
}

impl Drop for Censor {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        let accepted = tokio::select! {
            _ = stop.changed() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((client, peer)) = accepted else {
            continue;
        };
        let Ok(server) = socket2::SockRef::from(&client).original_dst_v4() else {
            continue;
        };
        let Some(server) = server.as_socket() else {
            continue;
        };
        tokio::spawn(handle(client, peer, server, shared.clone()));
    }
}

fn record(
    shared: &Shared,
    client: SocketAddr,
    server: SocketAddr,
    outcome: Outcome,
    first_len: usize,
) {
    lock(&shared.flows).push(FlowRecord {
        client,
        server,
        outcome,
        first_len,
    });
}

async fn handle(mut client: TcpStream, peer: SocketAddr, server: SocketAddr, shared: Arc<Shared>) {
    let rules = lock(&shared.rules).clone();
    let triple = (peer.ip(), server);
    let residual = lock(&shared.residual)
        .get(&triple)
        .is_some_and(|until| Instant::now() < *until);
    if residual {
        record(&shared, peer, server, Outcome::BlockedResidual, 0);
        return black_hole(client).await;
    }
    if let Some(whitelist) = &rules.whitelist
        && !whitelist.ranges.iter().any(|r| r.contains(server.ip()))
    {
        record(&shared, peer, server, Outcome::BlockedRange, 0);
        return black_hole(client).await;
    }
    let first = read_first_flight(&mut client, rules.whitelist.is_some()).await;
    let Some(first) = first else {
        return; // the client closed before sending anything
    };
    if rules.fully_encrypted
        && !first.is_empty()
        && classify::fully_encrypted(&first) == Verdict::Blocked
    {
        lock(&shared.residual).insert(triple, Instant::now() + rules.residual);
        record(
            &shared,
            peer,
            server,
            Outcome::BlockedFullyEncrypted,
            first.len(),
        );
        return black_hole(client).await;
    }
    if let Some(whitelist) = &rules.whitelist {
        let listed = matches!(client_hello::server_name(&first),
            Ok(Some(name)) if whitelist.names.iter().any(|n| n.eq_ignore_ascii_case(&name)));
        if !listed {
            record(&shared, peer, server, Outcome::BlockedName, first.len());
            return black_hole(client).await;
        }
    }
    let upstream = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(server)).await;
    let Ok(Ok(mut upstream)) = upstream else {
        record(&shared, peer, server, Outcome::Unreachable, first.len());
        return;
    };
    record(&shared, peer, server, Outcome::Relayed, first.len());
    if rules.prober && !first.is_empty() && lock(&shared.seen_servers).insert(server) {
        tokio::spawn(probe::probe_server(
            server,
            first.clone(),
            rules.probe_wait,
            shared.clone(),
        ));
    }
    let limit = rules
        .freeze_after
        .filter(|_| rules.foreign.iter().any(|r| r.contains(server.ip())));
    let sent = first
        .len()
        .min(limit.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX)));
    if upstream.write_all(&first[..sent]).await.is_err() {
        return;
    }
    if sent < first.len() {
        record(&shared, peer, server, Outcome::Frozen, first.len());
        return freeze(client, upstream).await;
    }
    if relay(&mut client, &mut upstream, limit, sent as u64).await {
        record(&shared, peer, server, Outcome::Frozen, first.len());
        freeze(client, upstream).await;
    }
}

/// The client's first data: one read (what its first segment carried), or, in whitelist mode, as much as a whole
/// ClientHello needs. `Some(empty)` when the client sent nothing within [`FIRST_FLIGHT_WAIT`]; `None` if it closed.
async fn read_first_flight(client: &mut TcpStream, whole_hello: bool) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; MAX_HELLO_BYTES];
    let mut len = 0;
    let deadline = tokio::time::Instant::now() + FIRST_FLIGHT_WAIT;
    loop {
        match tokio::time::timeout_at(deadline, client.read(&mut buf[len..])).await {
            Err(_) => break,
            Ok(Ok(0)) | Ok(Err(_)) => {
                if len == 0 {
                    return None;
                }
                break;
            }
            Ok(Ok(n)) => len += n,
        }
        if !whole_hello
            || len == buf.len()
            || client_hello::server_name(&buf[..len]) != Err(HelloError::Incomplete)
        {
            break;
        }
    }
    buf.truncate(len);
    Some(buf)
}

/// Relays both ways until either side closes. With a `limit`, stops once either direction has carried that many
/// bytes and returns `true` (the caller then freezes the connection). `up_start`: bytes already sent upstream.
async fn relay(
    client: &mut TcpStream,
    upstream: &mut TcpStream,
    limit: Option<u64>,
    up_start: u64,
) -> bool {
    let limit = limit.unwrap_or(u64::MAX);
    let (mut up_count, mut down_count) = (up_start, 0u64);
    let (mut client_read, mut client_write) = client.split();
    let (mut server_read, mut server_write) = upstream.split();
    let mut up_buf = vec![0u8; 16 * 1024];
    let mut down_buf = vec![0u8; 16 * 1024];
    let (mut up_open, mut down_open) = (true, true);
    while up_open || down_open {
        tokio::select! {
            read = client_read.read(&mut up_buf), if up_open => match read {
                Ok(0) | Err(_) => { up_open = false; let _ = server_write.shutdown().await; }
                Ok(n) => {
                    let room = usize::try_from(limit - up_count).unwrap_or(usize::MAX).min(n);
                    if server_write.write_all(&up_buf[..room]).await.is_err() { return false; }
                    up_count += room as u64;
                    if room < n || up_count >= limit { return true; }
                }
            },
            read = server_read.read(&mut down_buf), if down_open => match read {
                Ok(0) | Err(_) => { down_open = false; let _ = client_write.shutdown().await; }
                Ok(n) => {
                    let room = usize::try_from(limit - down_count).unwrap_or(usize::MAX).min(n);
                    if client_write.write_all(&down_buf[..room]).await.is_err() { return false; }
                    down_count += room as u64;
                    if room < n || down_count >= limit { return true; }
                }
            },
        }
    }
    false
}

/// Reads and ignores what the client sends until it closes or [`HOLD_LIMIT`]: a connection that just stops.
async fn black_hole(mut client: TcpStream) {
    let mut sink = vec![0u8; 16 * 1024];
    let _ = tokio::time::timeout(HOLD_LIMIT, async {
        while let Ok(n) = client.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

/// A frozen connection: nothing moves either way any more, both ends are held open and ignored.
async fn freeze(client: TcpStream, mut upstream: TcpStream) {
    let upstream_side = async move {
        let mut sink = vec![0u8; 16 * 1024];
        while let Ok(n) = upstream.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(HOLD_LIMIT, async {
        tokio::join!(black_hole(client), upstream_side);
    })
    .await;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn cidr() {
        let range = Cidr::parse("198.18.2.0/24").unwrap();
        assert!(range.contains("198.18.2.50".parse().unwrap()));
        assert!(!range.contains("198.18.1.2".parse().unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("1.2.3.4".parse().unwrap())
        );
        let one = Cidr::parse("198.18.2.10").unwrap();
        assert!(one.contains("198.18.2.10".parse().unwrap()));
        assert!(!one.contains("198.18.2.11".parse().unwrap()));
        assert!(Cidr::parse("1.2.3.4/33").is_err());
        assert!(!range.contains("::1".parse().unwrap()));
    }
}
