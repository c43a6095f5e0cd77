//! The peers and connections owner: who is connected (each connection's outbox and controls), the overlay that decides
//! whom to dial and keep, the handshake slots, the bans. Everything else reaches peers only through its methods
//! (`send_to`, `request`, `reconcile_with`, `cut_off`, `heard_of`, ...); `peering` drives the connections themselves.
//! What to relay and to whom is not decided here but by the record policy (the `record_policy` owner).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use kolokol_core::keys::NodeId;
use kolokol_core::overlay::{Overlay, Source};
use kolokol_wire::Message;
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use kolokol_core::penalty::PenaltyBox;

/// Most handshakes in progress at once (a flood of connections cannot eat the node).
pub const MAX_HANDSHAKES: usize = 16;
/// Most handshakes in progress from one IP address, so that one host trickling bytes (slow-loris) or flooding
/// connects cannot take every handshake slot from everyone else.
pub const MAX_HANDSHAKES_PER_IP: usize = 4;
/// Most simultaneous kolokol connections.
pub const MAX_CONNECTIONS: usize = 64;

/// Why a connection was not registered.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("already connected to that node")]
    AlreadyConnected,
    #[error("connection limit reached")]
    Limit,
}

/// What the rest of the node steers a connection with: where its messages go, how to start a reconciliation on it,
/// how to end it.
pub(crate) struct Steering {
    pub outbox: mpsc::Sender<Message>,
    pub reconcile_now: Arc<Notify>,
    pub cancel: CancellationToken,
}

/// A connected peer, as `peer list` shows it.
pub(crate) struct ConnectionView {
    pub id: NodeId,
    pub addr: String,
    pub outbound: bool,
    pub bt_addr: Option<SocketAddr>,
}

/// The connected peers.
pub(crate) struct PeerRegistry {
    connected: Mutex<HashMap<NodeId, Connected>>,
    handshakes: Arc<Semaphore>,
    /// Handshakes in progress per remote IP (entries exist only while a handshake runs: at most
    /// [`MAX_HANDSHAKES`] of them).
    handshakes_by_ip: Mutex<HashMap<IpAddr, usize>>,
    /// Peers cut off for misbehaving, by node id.
    bans: Bans,
    bt_port: u16,
    /// The peer-set policy: whom to dial, whom to keep (`kolokol_core::overlay`).
    overlay: Mutex<Overlay>,
    /// Woken when the overlay may want to dial.
    dial_wake: Notify,
    /// Set once another node has connected to us.
    reached_from_outside: AtomicBool,
    /// Distinguishes a connection from a later one to the same node.
    next_serial: AtomicU64,
}

struct Connected {
    /// The address we dialled (outbound) or the remote socket address (inbound).
    addr: String,
    outbound: bool,
    bt_addr: Option<SocketAddr>,
    outbox: mpsc::Sender<Message>,
    /// Notified when this connection should start a reconciliation session.
    reconcile_now: Arc<tokio::sync::Notify>,
    cancel: CancellationToken,
    /// Distinguishes this connection from a later one to the same node.
    serial: u64,
}

impl PeerRegistry {
    pub fn new(bt_port: u16, overlay: Overlay) -> PeerRegistry {
        PeerRegistry {
            connected: Mutex::new(HashMap::new()),
            handshakes: Arc::new(Semaphore::new(MAX_HANDSHAKES)),
            handshakes_by_ip: Mutex::new(HashMap::new()),
            bans: Bans::default(),
            bt_port,
            overlay: Mutex::new(overlay),
            dial_wake: Notify::new(),
            reached_from_outside: AtomicBool::new(false),
            next_serial: AtomicU64::new(0),
        }
    }

    /// The overlay (peer-set policy), locked for one short decision. Never taken while the connected map is locked.
    pub(crate) fn overlay(&self) -> MutexGuard<'_, Overlay> {
        self.overlay.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tell the overlay about an address (from the DHT, the LAN, the cache, the user); wake the dialer if it was new.
    pub fn heard_of(&self, addr: SocketAddr, source: Source, node: Option<NodeId>, now: Duration) {
        if self.overlay().heard_of(addr, source, node, now).is_ok() {
            self.wake_dialer();
        }
    }

    /// Good addresses worth remembering for the next start (the peer cache), at most `max`.
    pub fn cacheable(&self, max: usize) -> Vec<SocketAddr> {
        self.overlay().cacheable(max)
    }

    /// The overlay may want to dial (an address was heard, a connection closed).
    pub(crate) fn wake_dialer(&self) {
        self.dial_wake.notify_one();
    }

    pub(crate) async fn dialer_woken(&self) {
        self.dial_wake.notified().await
    }

    /// Another node has connected to us: we are reachable from outside.
    pub(crate) fn reached(&self) {
        self.reached_from_outside.store(true, Ordering::Relaxed);
    }

    /// Whether another node has ever connected to us.
    pub fn was_reached(&self) -> bool {
        self.reached_from_outside.load(Ordering::Relaxed)
    }

    /// Take a per-IP handshake slot for `ip`; `false` when that address already has [`MAX_HANDSHAKES_PER_IP`].
    pub(crate) fn begin_handshake(&self, ip: IpAddr) -> bool {
        let mut by_ip = self
            .handshakes_by_ip
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let count = by_ip.entry(ip).or_insert(0);
        if *count >= MAX_HANDSHAKES_PER_IP {
            return false;
        }
        *count += 1;
        true
    }

    pub(crate) fn end_handshake(&self, ip: IpAddr) {
        let mut by_ip = self
            .handshakes_by_ip
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(count) = by_ip.get_mut(&ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                by_ip.remove(&ip);
            }
        }
    }

    /// The peers refused for misbehaving.
    pub fn bans(&self) -> &Bans {
        &self.bans
    }

    /// The BitTorrent port this node tells its peers.
    pub fn bt_port(&self) -> u16 {
        self.bt_port
    }

    /// A connected peer told us its BitTorrent address.
    pub fn set_bt_addr(&self, peer: &NodeId, bt_addr: SocketAddr) {
        if let Some(connected) = self.lock().get_mut(peer) {
            connected.bt_addr = Some(bt_addr);
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<NodeId, Connected>> {
        self.connected.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A handshake slot (at most [`MAX_HANDSHAKES`] at once), or `None` when all are taken.
    pub fn try_handshake(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.handshakes.clone().try_acquire_owned().ok()
    }

    /// Register a connection that finished its handshake. Returns its serial, which [`PeerRegistry::unregister`]
    /// needs (a later connection to the same node must not be removed by this one's end).
    pub fn register(
        &self,
        peer: NodeId,
        addr: String,
        outbound: bool,
        steering: Steering,
    ) -> Result<u64, RegisterError> {
        let serial = self.next_serial.fetch_add(1, Ordering::Relaxed);
        let mut connected = self.lock();
        if connected.contains_key(&peer) {
            return Err(RegisterError::AlreadyConnected);
        }
        if connected.len() >= MAX_CONNECTIONS {
            return Err(RegisterError::Limit);
        }
        connected.insert(
            peer,
            Connected {
                addr,
                outbound,
                bt_addr: None,
                outbox: steering.outbox,
                reconcile_now: steering.reconcile_now,
                cancel: steering.cancel,
                serial,
            },
        );
        Ok(serial)
    }

    /// Connection `serial` to `peer` ended at `now`: forget it (unless a later one replaced it) and let the overlay
    /// dial again. Whether it was forgotten (false: a later connection to that node replaced it).
    pub fn unregister(&self, peer: &NodeId, serial: u64, now: Duration) -> bool {
        let removed = {
            let mut connected = self.lock();
            let ours = connected.get(peer).is_some_and(|c| c.serial == serial);
            if ours {
                connected.remove(peer);
            }
            ours
        };
        // Never hold the connected map's lock while taking the overlay's.
        if removed {
            self.overlay().disconnected(peer, now);
            self.wake_dialer();
        }
        removed
    }

    pub fn is_connected(&self, peer: &NodeId) -> bool {
        self.lock().contains_key(peer)
    }

    /// The connected peers, for `peer list`.
    pub fn connections(&self) -> Vec<ConnectionView> {
        self.lock()
            .iter()
            .map(|(id, c)| ConnectionView {
                id: *id,
                addr: c.addr.clone(),
                outbound: c.outbound,
                bt_addr: c.bt_addr,
            })
            .collect()
    }

    pub fn connected_count(&self) -> usize {
        self.lock().len()
    }

    /// BitTorrent addresses of connected peers: where to look for a publication's data.
    pub fn bt_addrs(&self) -> Vec<SocketAddr> {
        self.lock().values().filter_map(|c| c.bt_addr).collect()
    }

    /// Ids of the connected peers.
    pub fn connected_ids(&self) -> Vec<NodeId> {
        self.lock().keys().copied().collect()
    }

    /// Send a message to one connected peer (once its connection is open). False if it is not connected or its outbox
    /// is full.
    pub fn send_to(&self, peer: &NodeId, message: Message) -> bool {
        self.lock()
            .get(peer)
            .is_some_and(|c| c.outbox.try_send(message).is_ok())
    }

    /// The BitTorrent address a connected peer told us.
    pub fn bt_addr_of(&self, peer: &NodeId) -> Option<SocketAddr> {
        self.lock().get(peer).and_then(|c| c.bt_addr)
    }

    /// Send a request (a `Fetch`) to every connected peer; it goes out once that peer's connection is open.
    pub fn request(&self, message: Message) {
        for peer in self.lock().values() {
            let _ = peer.outbox.try_send(message.clone());
        }
    }

    /// Ask the connection to `peer` to start a reconciliation session (once its connection is open). False if it is
    /// not connected.
    pub fn reconcile_with(&self, peer: &NodeId) -> bool {
        match self.lock().get(peer) {
            Some(connected) => {
                connected.reconcile_now.notify_one();
                true
            }
            None => false,
        }
    }

    /// Close the connection to a misbehaving peer and refuse it for a while.
    pub fn cut_off(&self, peer: &NodeId, now: Duration) {
        self.bans.punish(*peer, now);
        if let Some(connected) = self.lock().get(peer) {
            connected.cancel.cancel();
        }
    }

    pub fn close_all(&self) {
        for peer in self.lock().values() {
            peer.cancel.cancel();
        }
    }

    pub(crate) fn is_connected_to(&self, addr: &str) -> Option<NodeId> {
        self.lock()
            .iter()
            .find(|(_, c)| c.addr == addr)
            .map(|(id, _)| *id)
    }
}

/// A peer cut off for misbehaving (invalid records, a protocol violation, an oversized or malformed message) is
/// refused after its next handshakes for this long, doubling with each offence up to [`LONGEST_BAN`].
pub const FIRST_BAN: Duration = Duration::from_secs(60);
/// The longest ban of a misbehaving peer.
pub const LONGEST_BAN: Duration = Duration::from_secs(3600);
/// Misbehaving peers remembered at once.
const MAX_OFFENDERS: usize = 1024;

/// The misbehaving peers this node refuses for now, by node id.
pub struct Bans {
    penalties: Mutex<PenaltyBox<NodeId>>,
}

impl Default for Bans {
    fn default() -> Self {
        Bans {
            penalties: Mutex::new(PenaltyBox::new(MAX_OFFENDERS, FIRST_BAN, LONGEST_BAN)),
        }
    }
}

impl Bans {
    /// `peer` misbehaved at `now` (node time): refuse it for a while. Returns for how long.
    pub fn punish(&self, peer: NodeId, now: Duration) -> Duration {
        self.penalties
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .punish(peer, now)
    }

    pub fn is_banned(&self, peer: &NodeId, now: Duration) -> bool {
        self.penalties
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_banned(peer, now)
    }
}
