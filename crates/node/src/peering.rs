//! kolokol peers: the wire listener, dialling, and one task pair per connection that drives the catalog exchange
//! (`kolokol_wire::Exchange`) and stores what the peer sends, after validation. What to relay, serve and fetch is
//! decided by the record policy (`crate::record_policy`); the connections report to it and carry out its decisions.
//!
//! Bounds: at most [`MAX_CONNECTIONS`] connections and [`MAX_HANDSHAKES`] handshakes in progress; a bounded outbox
//! per connection (a full outbox drops pushes, which reconciliation repairs); a connection that sends more than
//! [`MAX_BAD_RECORDS`] invalid records is closed (the policy counts them). At most [`MAX_HANDSHAKES_PER_IP`] of the handshakes come from one
//! IP address. A peer cut off for misbehaving (invalid records, a protocol violation, an oversized or malformed
//! message) is refused after its next handshakes, inbound or outbound, for [`FIRST_BAN`], doubling per offence.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use kolokol_core::keys::NodeId;
use kolokol_core::overlay::Source;
use kolokol_core::penalty::PenaltyBox;
use kolokol_core::policy::{InEvent, Misbehaviour, OutEvent, Verdict};
use kolokol_core::record::RecordId;
use kolokol_wire::{
    Exchange, ExchangeAction, Message, Role, WireError, WireReader, WireWriter, handshake,
    pack_records,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::node::{Inner, unix_now};
use crate::views::PeerView;

/// Most simultaneous kolokol connections.
pub const MAX_CONNECTIONS: usize = 64;
/// Most handshakes in progress at once (a flood of connections cannot eat the node).
pub const MAX_HANDSHAKES: usize = 16;
/// Most handshakes in progress from one IP address, so that one host trickling bytes (slow-loris) or flooding
/// connects cannot take every handshake slot from everyone else.
pub const MAX_HANDSHAKES_PER_IP: usize = 4;
/// Invalid records a peer may send on one connection before it is disconnected.
pub const MAX_BAD_RECORDS: u32 = 16;
/// A peer cut off for misbehaving (invalid records, a protocol violation, an oversized or malformed message) is
/// refused after its next handshakes for this long, doubling with each offence up to [`LONGEST_BAN`].
pub const FIRST_BAN: Duration = Duration::from_secs(60);
/// The longest ban of a misbehaving peer.
pub const LONGEST_BAN: Duration = Duration::from_secs(3600);
/// Misbehaving peers remembered at once.
const MAX_OFFENDERS: usize = 1024;
/// Messages waiting to be sent on one connection.
const OUTBOX: usize = 64;
/// Messages read ahead of the connection task.
const INBOX: usize = 8;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often disconnected known peers are dialled again.
const REDIAL_INTERVAL: Duration = Duration::from_secs(30);

/// The connected peers.
pub(crate) struct PeerRegistry {
    connected: Mutex<HashMap<NodeId, Connected>>,
    handshakes: Arc<Semaphore>,
    /// Handshakes in progress per remote IP (entries exist only while a handshake runs: at most
    /// [`MAX_HANDSHAKES`] of them).
    handshakes_by_ip: Mutex<HashMap<IpAddr, usize>>,
    /// Peers cut off for misbehaving, by node id.
    penalties: Mutex<PenaltyBox<NodeId>>,
    bt_port: u16,
    /// The record policy (what to relay, serve and fetch), fed by every connection.
    policy: Mutex<crate::record_policy::Policy>,
    /// Wakes the policy's timer task when the policy asks for a new wake-up time.
    pub policy_wake: tokio::sync::Notify,
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
    pub fn new(bt_port: u16, policy: crate::record_policy::Policy) -> PeerRegistry {
        PeerRegistry {
            policy: Mutex::new(policy),
            policy_wake: tokio::sync::Notify::new(),
            connected: Mutex::new(HashMap::new()),
            handshakes: Arc::new(Semaphore::new(MAX_HANDSHAKES)),
            handshakes_by_ip: Mutex::new(HashMap::new()),
            penalties: Mutex::new(PenaltyBox::new(MAX_OFFENDERS, FIRST_BAN, LONGEST_BAN)),
            bt_port,
        }
    }

    /// Take a per-IP handshake slot for `ip`; `false` when that address already has [`MAX_HANDSHAKES_PER_IP`].
    fn begin_handshake(&self, ip: IpAddr) -> bool {
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

    fn end_handshake(&self, ip: IpAddr) {
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

    /// `peer` misbehaved at `now` (node time): refuse it for a while.
    fn punish(&self, peer: NodeId, now: Duration) -> Duration {
        self.penalties
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .punish(peer, now)
    }

    fn is_banned(&self, peer: &NodeId, now: Duration) -> bool {
        self.penalties
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_banned(peer, now)
    }

    /// The record policy, locked for one decision (never while the registry is locked).
    pub fn policy(&self) -> MutexGuard<'_, crate::record_policy::Policy> {
        self.policy.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Close the connection to a misbehaving peer and refuse it for a while.
    pub fn cut_off(&self, peer: &NodeId, now: Duration) {
        self.punish(*peer, now);
        if let Some(connected) = self.lock().get(peer) {
            connected.cancel.cancel();
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<NodeId, Connected>> {
        self.connected.lock().unwrap_or_else(|p| p.into_inner())
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

    /// Send a message to one connected peer (after its exchange is over). False if it is not connected or its outbox
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

    /// Send a request (a `Fetch`) to every connected peer; it goes out once that peer's exchange is over.
    pub fn request(&self, message: Message) {
        for peer in self.lock().values() {
            let _ = peer.outbox.try_send(message.clone());
        }
    }

    /// Ask the connection to `peer` to start a reconciliation session (once its exchange is over). False if it is
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

    pub fn close_all(&self) {
        for peer in self.lock().values() {
            peer.cancel.cancel();
        }
    }

    fn is_connected_to(&self, addr: &str) -> Option<NodeId> {
        self.lock()
            .iter()
            .find(|(_, c)| c.addr == addr)
            .map(|(id, _)| *id)
    }
}

/// Accept kolokol connections until shutdown.
pub(crate) fn spawn_listener(inner: Arc<Inner>, listener: TcpListener) {
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = inner.cancel.cancelled() => return,
                accepted = listener.accept() => accepted,
            };
            let (stream, remote) = match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    // Out of file descriptors and the like: wait a little instead of spinning.
                    tracing::warn!(%error, "accepting a kolokol connection failed");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            if inner.peers.connected_count() >= MAX_CONNECTIONS {
                tracing::debug!(%remote, "connection limit reached; refusing");
                continue;
            }
            let Ok(permit) = inner.peers.handshakes.clone().try_acquire_owned() else {
                tracing::debug!(%remote, "too many handshakes in progress; refusing");
                continue;
            };
            if !inner.peers.begin_handshake(remote.ip()) {
                tracing::debug!(%remote, "too many handshakes in progress from this address; refusing");
                continue;
            }
            let inner = inner.clone();
            tokio::spawn(async move {
                let result =
                    handshake(stream, Role::Responder, &inner.node_key, &inner.wire_config).await;
                inner.peers.end_handshake(remote.ip());
                drop(permit);
                match result {
                    Ok((_, _, remote_id)) if inner.peers.is_banned(&remote_id, inner.elapsed()) => {
                        tracing::debug!(%remote, peer = %remote_id, "refusing a banned peer");
                    }
                    Ok((reader, writer, remote_id)) => {
                        if let Err(refusal) = inner
                            .overlay()
                            .inbound_connected(remote_id, inner.elapsed())
                        {
                            tracing::debug!(%remote, ?refusal, "inbound connection not kept");
                            return;
                        }
                        inner
                            .reached_from_outside
                            .store(true, std::sync::atomic::Ordering::Relaxed);
                        if let Err(error) = start_connection(
                            &inner,
                            reader,
                            writer,
                            remote_id,
                            remote.to_string(),
                            false,
                        ) {
                            tracing::debug!(%remote, %error, "inbound connection not kept");
                        }
                    }
                    Err(error) => {
                        tracing::debug!(%remote, error = %chain(&error), "inbound handshake failed")
                    }
                }
            });
        }
    });
}

/// Tell the overlay about an address; wake the dialer if it was new.
pub(crate) fn heard_of(inner: &Inner, addr: SocketAddr, source: Source, node: Option<NodeId>) {
    let now = inner.elapsed();
    if inner.overlay().heard_of(addr, source, node, now).is_ok() {
        inner.dial_wake.notify_one();
    }
}

/// Put the peers remembered from earlier runs into the overlay, then dial what the overlay says, whenever it may
/// have something new to say (an address was heard, a connection closed, a backoff expired).
pub(crate) fn spawn_dialer(inner: Arc<Inner>) {
    let known = inner.catalog().list_peers().unwrap_or_default();
    for peer in known {
        if let Ok(addr) = peer.addr.parse::<SocketAddr>() {
            let source = if peer.by_user {
                Source::User
            } else {
                Source::Cache
            };
            let _ = inner
                .overlay()
                .heard_of(addr, source, peer.node_id, inner.elapsed());
        }
    }
    tokio::spawn(async move {
        loop {
            let now = inner.elapsed();
            let (dials, wakeup) = {
                let mut overlay = inner.overlay();
                let dials = overlay.dials(now);
                (dials, overlay.next_wakeup(now))
            };
            for addr in dials {
                let inner = inner.clone();
                tokio::spawn(async move {
                    if let Err(error) = dial(&inner, addr, false).await {
                        inner.overlay().dial_failed(&addr, inner.elapsed());
                        tracing::info!(%addr, %error, "dial failed");
                    }
                });
            }
            let sleep = wakeup
                .map_or(REDIAL_INTERVAL, |at| at.saturating_sub(now))
                .clamp(Duration::from_millis(50), REDIAL_INTERVAL);
            tokio::select! {
                _ = inner.cancel.cancelled() => return,
                _ = inner.dial_wake.notified() => {}
                _ = tokio::time::sleep(sleep) => {}
            }
        }
    });
}

/// `peer add`: connect now, remember the address, and report the peer.
pub(crate) async fn add_peer(inner: &Arc<Inner>, addr: &str) -> Result<PeerView, ApiError> {
    let addr = addr.trim();
    let resolved = resolve(addr).await?;
    let canonical = resolved.to_string();
    inner.catalog().add_peer(&canonical, true)?;
    let _ = inner
        .overlay()
        .heard_of(resolved, Source::User, None, inner.elapsed());
    if let Some(id) = inner.peers.is_connected_to(&canonical) {
        return Ok(view_connected(inner, &canonical, id));
    }
    let id = dial(inner, resolved, true).await?;
    Ok(view_connected(inner, &canonical, id))
}

async fn resolve(addr: &str) -> Result<SocketAddr, ApiError> {
    if let Ok(addr) = addr.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let invalid = || ApiError::Invalid(format!("{addr:?} is not a HOST:PORT address"));
    let (host, port) = addr.rsplit_once(':').ok_or_else(invalid)?;
    if host.is_empty() || port.parse::<u16>().is_err() || host.contains(char::is_whitespace) {
        return Err(invalid());
    }
    tokio::net::lookup_host(addr)
        .await
        .map_err(|e| ApiError::Unreachable(format!("cannot resolve {addr}: {e}")))?
        .next()
        .ok_or_else(|| ApiError::Unreachable(format!("{addr} resolves to no address")))
}

/// Connect, handshake and start the connection tasks. Returns the peer's node id. `by_user`: the user asked for
/// this connection, so it is kept even when the overlay has no room for it.
async fn dial(inner: &Arc<Inner>, addr: SocketAddr, by_user: bool) -> Result<NodeId, ApiError> {
    let text = addr.to_string();
    let result = dial_inner(inner, addr, by_user).await;
    match &result {
        Ok(id) => {
            let mut catalog = inner.catalog();
            let _ = catalog.add_peer(&text, by_user);
            let _ = catalog.peer_seen(&text, id, unix_now());
        }
        Err(error) => {
            let _ = inner.catalog().peer_failed(&text, &error.to_string());
        }
    }
    result
}

async fn dial_inner(
    inner: &Arc<Inner>,
    addr: SocketAddr,
    by_user: bool,
) -> Result<NodeId, ApiError> {
    if inner.peers.connected_count() >= MAX_CONNECTIONS {
        return Err(ApiError::Unreachable(format!(
            "already connected to {MAX_CONNECTIONS} peers, the most this node keeps"
        )));
    }
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| ApiError::Unreachable(format!("cannot connect to {addr}: timed out")))?
        .map_err(|e| ApiError::Unreachable(format!("cannot connect to {addr}: {e}")))?;
    let (reader, writer, remote_id) = handshake(stream, Role::Initiator, &inner.node_key, &inner.wire_config)
        .await
        .map_err(|e| {
            ApiError::Unreachable(format!(
                "{addr} did not complete the kolokol handshake (another network, or not a kolokol node?): {}",
                chain(&e)
            ))
        })?;
    if remote_id == inner.node_key.public() {
        inner.overlay().forget(&addr);
        return Err(ApiError::Invalid(format!("{addr} is this node itself")));
    }
    if inner.peers.is_banned(&remote_id, inner.elapsed()) {
        return Err(ApiError::Unreachable(format!(
            "{addr} misbehaved earlier and is refused for a while"
        )));
    }
    if inner.peers.lock().contains_key(&remote_id) {
        // Already connected to that node through another address: keep the existing connection.
        inner.overlay().dial_failed(&addr, inner.elapsed());
        return Ok(remote_id);
    }
    let admitted = inner
        .overlay()
        .outbound_connected(addr, remote_id, inner.elapsed());
    if let Err(refusal) = admitted
        && !by_user
    {
        return Err(ApiError::Unreachable(format!(
            "{addr}: not kept ({refusal:?})"
        )));
    }
    start_connection(inner, reader, writer, remote_id, addr.to_string(), true)
        .map_err(|e| ApiError::Unreachable(format!("{addr}: {e}")))?;
    Ok(remote_id)
}

static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Register a connection that finished its handshake and spawn its tasks.
fn start_connection<R, W>(
    inner: &Arc<Inner>,
    reader: WireReader<R>,
    writer: WireWriter<W>,
    remote_id: NodeId,
    addr: String,
    outbound: bool,
) -> Result<(), String>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    if remote_id == inner.node_key.public() {
        return Err("connection to this node itself".into());
    }
    let (outbox_tx, outbox_rx) = mpsc::channel(OUTBOX);
    let reconcile_now = Arc::new(tokio::sync::Notify::new());
    let cancel = inner.cancel.child_token();
    let serial = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    {
        let mut connected = inner.peers.lock();
        if connected.contains_key(&remote_id) {
            return Err("already connected to that node".into());
        }
        if connected.len() >= MAX_CONNECTIONS {
            return Err("connection limit reached".into());
        }
        connected.insert(
            remote_id,
            Connected {
                addr: addr.clone(),
                outbound,
                bt_addr: None,
                outbox: outbox_tx,
                reconcile_now: reconcile_now.clone(),
                cancel: cancel.clone(),
                serial,
            },
        );
    }
    tracing::info!(peer = %remote_id, %addr, outbound, "kolokol peer connected");
    // The policy may ask for a reconciliation at once (we dialled): it starts when the exchange is over.
    let decisions = crate::record_policy::feed(
        inner,
        InEvent::PeerUp {
            peer: remote_id,
            outbound,
        },
    );
    crate::record_policy::carry_out(inner, None, decisions);
    let inner = inner.clone();
    tokio::spawn(async move {
        let result = run_connection(
            &inner,
            reader,
            writer,
            remote_id,
            &addr,
            Control {
                outbox: outbox_rx,
                reconcile_now,
                cancel: cancel.clone(),
            },
        )
        .await;
        cancel.cancel();
        let removed = {
            let mut connected = inner.peers.lock();
            let ours = connected
                .get(&remote_id)
                .is_some_and(|c| c.serial == serial);
            if ours {
                connected.remove(&remote_id);
            }
            ours
        };
        // Never hold the registry lock while taking the overlay lock.
        if removed {
            let decisions =
                crate::record_policy::feed(&inner, InEvent::PeerDown { peer: remote_id });
            crate::record_policy::carry_out(&inner, None, decisions);
            inner.overlay().disconnected(&remote_id, inner.elapsed());
            inner.dial_wake.notify_one();
        }
        match result {
            Ok(()) => tracing::info!(peer = %remote_id, %addr, "kolokol peer disconnected"),
            Err(error) => {
                tracing::info!(peer = %remote_id, %addr, %error, "kolokol peer disconnected")
            }
        }
    });
    Ok(())
}

/// Drive one connection until it ends. The reader runs in its own task (a wire read is not cancel-safe), feeding a
/// small bounded channel; this task owns the writer, the exchange and the keepalive.
/// How the rest of the node steers one connection.
struct Control {
    /// Pushes and requests to send once the exchange is over.
    outbox: mpsc::Receiver<Message>,
    /// Start a reconciliation session.
    reconcile_now: Arc<tokio::sync::Notify>,
    cancel: CancellationToken,
}

async fn run_connection<R, W>(
    inner: &Arc<Inner>,
    mut reader: WireReader<R>,
    mut writer: WireWriter<W>,
    remote_id: NodeId,
    addr: &str,
    control: Control,
) -> Result<(), String>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let Control {
        mut outbox,
        reconcile_now,
        cancel,
    } = control;
    let (inbox_tx, mut inbox) = mpsc::channel(INBOX);
    let read_cancel = cancel.clone();
    tokio::spawn(async move {
        loop {
            let message = tokio::select! {
                _ = read_cancel.cancelled() => return,
                message = reader.recv() => message,
            };
            let failed = message.is_err();
            if inbox_tx.send(message).await.is_err() || failed {
                return;
            }
        }
    });

    // The catalog travels by range reconciliation (O(d log n) bytes for d differences), which the dialing side starts
    // as soon as the exchange is over; the exchange itself advertises nothing and only carries the hello. (A peer
    // that still sends a full inventory is served as before.)
    let mut exchange = Exchange::new(BTreeSet::new()).with_bt_port(inner.peers.bt_port);
    for message in exchange.start() {
        writer.send(&message).await.map_err(|e| chain(&e))?;
    }
    let mut deferred: Vec<Message> = Vec::new();
    let mut sessions = crate::reconciling::Sessions::default();
    let mut keepalive = tokio::time::interval(inner.wire_config.keepalive_interval());
    keepalive.tick().await;
    let mut nonce = 0u64;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => {
                let _ = writer.shutdown().await;
                return Ok(());
            }
            _ = keepalive.tick() => {
                nonce += 1;
                writer.send(&Message::Ping { nonce }).await.map_err(|e| chain(&e))?;
            }
            _ = reconcile_now.notified(), if exchange.is_done() => {
                start_reconcile(inner, remote_id, &mut sessions, &mut writer).await?;
            }
            pushed = outbox.recv() => {
                let Some(message) = pushed else { return Ok(()) };
                // Pushes and fetches before the exchange is over would break its accounting: hold them until Done.
                if exchange.is_done() {
                    writer.send(&message).await.map_err(|e| chain(&e))?;
                } else if deferred.len() < OUTBOX {
                    deferred.push(message);
                }
            }
            received = inbox.recv() => {
                let message = match received {
                    Some(Ok(message)) => message,
                    Some(Err(error @ (WireError::MessageTooLarge { .. } | WireError::Message(_)))) => {
                        return Err(misbehaved(inner, remote_id, chain(&error)));
                    }
                    Some(Err(error)) => return Err(chain(&error)),
                    None => return Ok(()),
                };
                let had_hello = exchange.peer_hello().is_some();
                let actions = exchange
                    .handle(message)
                    .map_err(|e| misbehaved(inner, remote_id, format!("protocol violation: {e}")))?;
                if !had_hello && let Some(hello) = exchange.peer_hello() {
                    note_hello(inner, &remote_id, addr, hello.bt_port);
                }
                for action in actions {
                    match action {
                        ExchangeAction::Send(message) => writer.send(&message).await.map_err(|e| chain(&e))?,
                        ExchangeAction::SendRecords(ids) => {
                            let found = inner.catalog().record_bytes(&ids).map_err(|e| e.to_string())?;
                            let found_ids: std::collections::BTreeSet<_> = found
                                .iter()
                                .map(|b| kolokol_core::record::RecordId::of_signed_bytes(b))
                                .collect();
                            let missing: Vec<_> = ids.into_iter().filter(|id| !found_ids.contains(id)).collect();
                            let messages = pack_records(found, inner.wire_config.max_message_bytes)
                                .map_err(|e| e.to_string())?;
                            for message in messages.iter().chain(&kolokol_wire::missing_messages(&missing)) {
                                writer.send(message).await.map_err(|e| chain(&e))?;
                            }
                        }
                        ExchangeAction::Received(records) => {
                            let decisions: Vec<_> = crate::admission::store_incoming(inner, &remote_id, records)
                                .into_iter()
                                .flat_map(|arrival| {
                                    crate::record_policy::feed(inner, InEvent::Received {
                                        from: remote_id,
                                        id: arrival.id,
                                        age: arrival.age,
                                        verdict: arrival.verdict,
                                    })
                                })
                                .collect();
                            act(inner, remote_id, decisions, &mut writer).await?;
                        }
                        ExchangeAction::ServeFetch(ids) => {
                            let decisions =
                                crate::record_policy::feed(inner, InEvent::Requested { from: remote_id, ids });
                            act(inner, remote_id, decisions, &mut writer).await?;
                        }
                        ExchangeAction::Announced(ids) => {
                            let missing = inner.catalog().missing_ids(&ids).map_err(|e| e.to_string())?;
                            let decisions: Vec<_> = missing
                                .into_iter()
                                .flat_map(|id| {
                                    crate::record_policy::feed(inner, InEvent::Announced { from: remote_id, id })
                                })
                                .collect();
                            act(inner, remote_id, decisions, &mut writer).await?;
                        }
                        ExchangeAction::ServeAuthor(author) => {
                            let found = inner
                                .catalog()
                                .author_record_bytes(&author, kolokol_wire::message::MAX_AUTHOR_RECORDS as u32)
                                .map_err(|e| e.to_string())?;
                            let found: Vec<Vec<u8>> = {
                                // Held-back publications are not served.
                                let policy = inner.peers.policy();
                                found
                                    .into_iter()
                                    .filter(|b| !policy.is_held_back(&RecordId::of_signed_bytes(b)))
                                    .collect()
                            };
                            send_records(&mut writer, found, inner.wire_config.max_message_bytes).await?;
                        }
                        ExchangeAction::Reconcile { session, frame } => {
                            // A peer that breaks the reconciliation protocol is disconnected, like any violation.
                            let outcome = sessions
                                .handle(inner, session, &frame)
                                .map_err(|e| misbehaved(inner, remote_id, format!("reconciliation: {e}")))?;
                            if let Some((session, frame)) = outcome.reply {
                                writer
                                    .send(&Message::Reconcile { session, frame })
                                    .await
                                    .map_err(|e| chain(&e))?;
                            }
                            // A hostile peer can make reconciliation name records we hold: only what we lack is needed.
                            let need = inner.catalog().missing_ids(&outcome.need).map_err(|e| e.to_string())?;
                            let mut decisions = crate::record_policy::feed(
                                inner,
                                InEvent::Reconciled { peer: remote_id, have: outcome.have, need },
                            );
                            if outcome.ours_ended {
                                decisions.extend(crate::record_policy::feed(
                                    inner,
                                    InEvent::ReconcileEnded { peer: remote_id },
                                ));
                            }
                            act(inner, remote_id, decisions, &mut writer).await?;
                        }
                        ExchangeAction::Replicate(record) => {
                            let id = RecordId::of_signed_bytes(&record);
                            if !crate::replication::on_replicate(inner, &remote_id, record) {
                                let decisions = crate::record_policy::feed(inner, InEvent::Received {
                                    from: remote_id,
                                    id,
                                    age: Duration::ZERO,
                                    verdict: Verdict::Invalid,
                                });
                                act(inner, remote_id, decisions, &mut writer).await?;
                            }
                        }
                        ExchangeAction::Declined(infohash) => {
                            crate::replication::on_declined(inner, &remote_id, infohash);
                        }
                        ExchangeAction::Holding(infohashes) => {
                            crate::replication::on_holding(inner, &remote_id, infohashes);
                        }
                        ExchangeAction::Done => {
                            tracing::info!(peer = %remote_id, "catalog exchange complete");
                            for message in crate::replication::holding_messages(inner) {
                                writer.send(&message).await.map_err(|e| chain(&e))?;
                            }
                            for message in deferred.drain(..) {
                                writer.send(&message).await.map_err(|e| chain(&e))?;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Carry out the record policy's decisions: this connection's part here, in order; the rest through the other
/// peers' outboxes.
async fn act<W: AsyncWrite + Unpin>(
    inner: &Inner,
    remote_id: NodeId,
    decisions: Vec<OutEvent<NodeId>>,
    writer: &mut WireWriter<W>,
) -> Result<(), String> {
    let own = crate::record_policy::carry_out(inner, Some(&remote_id), decisions);
    for message in &own.messages {
        writer.send(message).await.map_err(|e| chain(&e))?;
    }
    match own.disconnect {
        Some(Misbehaviour::InvalidRecords(count)) => Err(misbehaved(
            inner,
            remote_id,
            format!("sent {count} invalid records"),
        )),
        None => Ok(()),
    }
}

/// The peer broke the protocol or kept sending invalid records: ban it for a while and return why, for the log.
fn misbehaved(inner: &Inner, peer: NodeId, reason: String) -> String {
    let ban = inner.peers.punish(peer, inner.elapsed());
    format!("{reason}; refused for {} s", ban.as_secs())
}

fn note_hello(inner: &Arc<Inner>, remote_id: &NodeId, addr: &str, bt_port: u16) {
    if bt_port == 0 {
        return;
    }
    let ip = match addr.parse::<SocketAddr>() {
        Ok(a) => a.ip(),
        Err(_) => return,
    };
    let bt_addr = SocketAddr::new(ip, bt_port);
    if let Some(peer) = inner.peers.lock().get_mut(remote_id) {
        peer.bt_addr = Some(bt_addr);
    }
    crate::fetch::offer_peer_to_downloads(inner, bt_addr);
}

async fn start_reconcile<W: AsyncWrite + Unpin>(
    inner: &Inner,
    remote_id: NodeId,
    sessions: &mut crate::reconciling::Sessions,
    writer: &mut WireWriter<W>,
) -> Result<(), String> {
    match sessions.start(inner) {
        Ok((session, frame)) => writer
            .send(&Message::Reconcile { session, frame })
            .await
            .map_err(|e| chain(&e)),
        Err(error) => {
            tracing::warn!(%error, "cannot start a reconciliation");
            let decisions =
                crate::record_policy::feed(inner, InEvent::ReconcileEnded { peer: remote_id });
            crate::record_policy::carry_out(inner, None, decisions);
            Ok(())
        }
    }
}

async fn send_records<W: AsyncWrite + Unpin>(
    writer: &mut WireWriter<W>,
    records: Vec<Vec<u8>>,
    max_message_bytes: usize,
) -> Result<(), String> {
    for message in pack_records(records, max_message_bytes).map_err(|e| e.to_string())? {
        writer.send(&message).await.map_err(|e| chain(&e))?;
    }
    Ok(())
}

fn view_connected(inner: &Inner, addr: &str, id: NodeId) -> PeerView {
    let connected = inner.peers.lock();
    let peer = connected.get(&id);
    PeerView {
        addr: addr.to_owned(),
        node_id: Some(id.to_string()),
        connected: peer.is_some(),
        direction: peer.map(|p| direction(p.outbound)),
        bt_addr: peer.and_then(|p| p.bt_addr).map(|a| a.to_string()),
        added_by_user: true,
        last_seen: Some(unix_now()),
        last_error: None,
    }
}

/// Every known peer (from the catalog) and every connected one.
pub(crate) fn peer_views(inner: &Inner) -> Result<Vec<PeerView>, ApiError> {
    let known = inner.catalog().list_peers()?;
    let connected = inner.peers.lock();
    let mut views = Vec::new();
    let mut shown = std::collections::HashSet::new();
    for row in known {
        let live = row
            .node_id
            .and_then(|id| connected.get(&id).map(|c| (id, c)))
            .or_else(|| {
                connected
                    .iter()
                    .find(|(_, c)| c.addr == row.addr)
                    .map(|(id, c)| (*id, c))
            });
        if let Some((id, _)) = live {
            shown.insert(id);
        }
        views.push(PeerView {
            addr: row.addr,
            node_id: row.node_id.map(|id| id.to_string()),
            connected: live.is_some(),
            direction: live.map(|(_, c)| direction(c.outbound)),
            bt_addr: live.and_then(|(_, c)| c.bt_addr).map(|a| a.to_string()),
            added_by_user: row.by_user,
            last_seen: row.last_seen,
            last_error: if live.is_some() { None } else { row.last_error },
        });
    }
    for (id, c) in connected.iter().filter(|(id, _)| !shown.contains(*id)) {
        views.push(PeerView {
            addr: c.addr.clone(),
            node_id: Some(id.to_string()),
            connected: true,
            direction: Some(direction(c.outbound)),
            bt_addr: c.bt_addr.map(|a| a.to_string()),
            added_by_user: false,
            last_seen: Some(unix_now()),
            last_error: None,
        });
    }
    Ok(views)
}

fn direction(outbound: bool) -> String {
    if outbound { "outbound" } else { "inbound" }.to_owned()
}

/// An error and its sources on one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}
