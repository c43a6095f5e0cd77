//! kolokol peers: the wire listener, dialling, and one task pair per connection that drives the catalog exchange
//! (`kolokol_wire::Exchange`) and stores what the peer sends, after validation.
//!
//! Parts: this file accepts and dials; the connected peers are the owner `crate::peers`'s (reached through its
//! methods); `connection.rs` drives one connection; `serve.rs` has one handler per exchange action, which reports
//! to the record policy (`crate::record_policy`, carried out by `crate::relaying`) and writes its answers;
//! `conduct.rs` turns misbehaviour into bans.
//!
//! Bounds: at most `peers::MAX_CONNECTIONS` connections and `peers::MAX_HANDSHAKES` handshakes in progress; a bounded
//! outbox per connection (a full outbox drops pushes, which reconciliation repairs); a connection that sends more
//! than `conduct::MAX_BAD_RECORDS` invalid records is closed (the record policy counts them). At most `peers::MAX_HANDSHAKES_PER_IP` of the
//! handshakes come from one IP address. A peer cut off for misbehaving (invalid records, a protocol violation, an
//! oversized or malformed message) is refused after its next handshakes, inbound or outbound, for
//! `peers::FIRST_BAN`, doubling per offence.

mod conduct;
mod connection;
mod incoming;
mod serve;
mod views;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kolokol_core::keys::NodeId;
use kolokol_core::overlay::Source;
use kolokol_core::policy::InEvent;
use kolokol_wire::{Role, WireError, WireReader, WireWriter, handshake};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::peers::MAX_CONNECTIONS;

pub(crate) use conduct::MAX_BAD_RECORDS;
use conduct::Misconduct;
pub(crate) use views::peer_views;

use connection::{Control, run_connection};
use views::view_connected;

use crate::peers::Steering;

use crate::admission::Admission;
use crate::catalog::CatalogService;
use crate::clock::unix_now;
use crate::error::ApiError;
use crate::fetch::Fetcher;
use crate::peers::PeerRegistry;
use crate::record_policy::RecordPolicyOwner;
use crate::relaying::Relayer;
use crate::replication::Replicator;
use crate::tasks::Tasks;
use crate::views::PeerView;
use crate::wire_identity::{Identity, WireIdentity};
use kolokol_wire::WireConfig;
use std::time::Instant;

/// What the listener, the dialer and every connection use: the peers registry, the catalog served and stored into,
/// admission and the record policy, and the drivers a connection hands work to. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Peering {
    pub tasks: Tasks,
    pub peers: Arc<PeerRegistry>,
    pub catalog: Arc<CatalogService>,
    pub admission: Arc<Admission>,
    pub policy: Arc<RecordPolicyOwner>,
    /// The wire identity every handshake proves: the current one, read at each handshake (it is renewed while the
    /// node runs; see `rotation.rs`).
    pub identity: Arc<WireIdentity>,
    pub network: String,
    pub wire_config: WireConfig,
    /// When the node started: the overlay's and the policy's clock.
    pub started: Instant,
    pub relayer: Relayer,
    pub replicator: Replicator,
    pub fetcher: Fetcher,
}

/// Messages waiting to be sent on one connection.
const OUTBOX: usize = 64;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often disconnected known peers are dialled again.
const REDIAL_INTERVAL: Duration = Duration::from_secs(30);

/// Why a connection ended or could not start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectionError {
    #[error("{}", chain(.0))]
    Wire(#[from] WireError),
    #[error("packing records: {0}")]
    Pack(#[from] kolokol_wire::PackError),
    #[error("catalog: {0}")]
    Catalog(#[from] crate::catalog::CatalogError),
    #[error(transparent)]
    Reconcile(#[from] crate::reconciling::SessionError),
    /// The peer broke the protocol or kept sending invalid records; it is refused for `ban`.
    #[error("{misconduct}; refused for {} s", .ban.as_secs())]
    Misbehaved {
        #[source]
        misconduct: Misconduct,
        ban: Duration,
    },
    #[error("connection to this node itself")]
    ToSelf,
    #[error(transparent)]
    Register(#[from] crate::peers::RegisterError),
}

/// Accept kolokol connections until shutdown.
pub(crate) fn spawn_listener(peering: Peering, listener: TcpListener) {
    let tasks = peering.tasks.clone();
    tasks.spawn("wire listener", async move {
        loop {
            let accepted = tokio::select! {
                _ = peering.tasks.cancelled() => return,
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
            if peering.peers.connected_count() >= MAX_CONNECTIONS {
                tracing::debug!(%remote, "connection limit reached; refusing");
                continue;
            }
            let Some(permit) = peering.peers.try_handshake() else {
                tracing::debug!(%remote, "too many handshakes in progress; refusing");
                continue;
            };
            if !peering.peers.begin_handshake(remote.ip()) {
                tracing::debug!(%remote, "too many handshakes in progress from this address; refusing");
                continue;
            }
            let peering = peering.clone();
            let tasks = peering.tasks.clone();
            tasks.spawn("inbound handshake", async move {
                let identity = peering.identity.current();
                let result =
                    handshake(stream, Role::Responder, &identity.key, &peering.wire_config).await;
                peering.peers.end_handshake(remote.ip());
                drop(permit);
                match result {
                    Ok(_) if !peering.identity.is_current(&identity) => {
                        // Renewed while this handshake ran: the old identity is not used for a new connection.
                        tracing::debug!(%remote, "handshake made with a renewed identity; closed");
                    }
                    Ok((_, _, remote_id)) if peering.peers.bans().is_banned(&remote_id, peering.started.elapsed()) => {
                        tracing::debug!(%remote, peer = %remote_id, "refusing a banned peer");
                    }
                    Ok((reader, writer, remote_id)) => {
                        if let Err(refusal) = peering
                            .peers.overlay()
                            .inbound_connected(remote_id, peering.started.elapsed())
                        {
                            tracing::debug!(%remote, ?refusal, "inbound connection not kept");
                            return;
                        }
                        peering.peers.reached();
                        if let Err(error) = start_connection(
                            &peering,
                            &identity,
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

/// Put the peers remembered from earlier runs into the overlay, then dial what the overlay says, whenever it may
/// have something new to say (an address was heard, a connection closed, a backoff expired).
pub(crate) async fn spawn_dialer(peering: Peering) {
    let known = match peering.catalog.run(|c| c.list_peers()).await {
        Ok(known) => known,
        Err(error) => {
            tracing::warn!(%error, "cannot read the remembered peers");
            Vec::new()
        }
    };
    for peer in known {
        if let Ok(addr) = peer.addr.parse::<SocketAddr>() {
            let source = if peer.by_user {
                Source::User
            } else {
                Source::Cache
            };
            let _ = peering
                .peers
                .overlay()
                .heard_of(addr, source, None, peering.started.elapsed());
        }
    }
    let tasks = peering.tasks.clone();
    tasks.spawn("dialer", async move {
        loop {
            let now = peering.started.elapsed();
            let (dials, wakeup) = {
                let mut overlay = peering.peers.overlay();
                let dials = overlay.dials(now);
                (dials, overlay.next_wakeup(now))
            };
            for addr in dials {
                let peering = peering.clone();
                let tasks = peering.tasks.clone();
                tasks.spawn("dial", async move {
                    if let Err(error) = dial(&peering, addr, false).await {
                        peering
                            .peers
                            .overlay()
                            .dial_failed(&addr, peering.started.elapsed());
                        // Peers' addresses only at debug level: a log kept on a seized device must not list who
                        // this node talked to (SECURITY §9).
                        tracing::debug!(%addr, %error, "dial failed");
                    }
                });
            }
            let sleep = wakeup
                .map_or(REDIAL_INTERVAL, |at| at.saturating_sub(now))
                .clamp(Duration::from_millis(50), REDIAL_INTERVAL);
            tokio::select! {
                _ = peering.tasks.cancelled() => return,
                _ = peering.peers.dialer_woken() => {}
                _ = tokio::time::sleep(sleep) => {}
            }
        }
    });
}

/// `peer add`: connect now, remember the address, and report the peer.
pub(crate) async fn add_peer(peering: &Peering, addr: &str) -> Result<PeerView, ApiError> {
    let addr = addr.trim();
    let resolved = resolve(addr).await?;
    let canonical = resolved.to_string();
    let remembered = canonical.clone();
    peering
        .catalog
        .run(move |c| c.add_peer(&remembered, true))
        .await?;
    let _ =
        peering
            .peers
            .overlay()
            .heard_of(resolved, Source::User, None, peering.started.elapsed());
    if let Some(id) = peering.peers.is_connected_to(&canonical) {
        return Ok(view_connected(peering, &canonical, id));
    }
    let id = dial(peering, resolved, true).await?;
    Ok(view_connected(peering, &canonical, id))
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
async fn dial(peering: &Peering, addr: SocketAddr, by_user: bool) -> Result<NodeId, ApiError> {
    let text = addr.to_string();
    let result = dial_inner(peering, addr, by_user).await;
    let noted = match &result {
        Ok(_) => {
            // The address only: the peer cache keeps no node ids (they are renewed; see kolokol-store's peers.rs).
            peering
                .catalog
                .run(move |catalog| {
                    catalog.add_peer(&text, by_user)?;
                    catalog.peer_seen(&text, unix_now())
                })
                .await
        }
        Err(error) => {
            let error = error.to_string();
            peering
                .catalog
                .run(move |catalog| catalog.peer_failed(&text, &error))
                .await
        }
    };
    if let Err(error) = noted {
        tracing::debug!(%error, "cannot note a dial's outcome");
    }
    result
}

async fn dial_inner(
    peering: &Peering,
    addr: SocketAddr,
    by_user: bool,
) -> Result<NodeId, ApiError> {
    if peering.peers.connected_count() >= MAX_CONNECTIONS {
        return Err(ApiError::Unreachable(format!(
            "already connected to {MAX_CONNECTIONS} peers, the most this node keeps"
        )));
    }
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| ApiError::Unreachable(format!("cannot connect to {addr}: timed out")))?
        .map_err(|e| ApiError::Unreachable(format!("cannot connect to {addr}: {e}")))?;
    let identity = peering.identity.current();
    let (reader, writer, remote_id) = handshake(stream, Role::Initiator, &identity.key, &peering.wire_config)
        .await
        .map_err(|e| {
            ApiError::Unreachable(format!(
                "{addr} did not complete the kolokol handshake (another network, or not a kolokol node?): {}",
                chain(&e)
            ))
        })?;
    if !peering.identity.is_current(&identity) {
        // Renewed while this handshake ran: the old identity is not used for a new connection (dialled again later).
        return Err(ApiError::Unreachable(format!(
            "{addr}: this node renewed its identity during the handshake; try again"
        )));
    }
    if remote_id == identity.id() {
        peering.peers.overlay().forget(&addr);
        return Err(ApiError::Invalid(format!("{addr} is this node itself")));
    }
    if peering
        .peers
        .bans()
        .is_banned(&remote_id, peering.started.elapsed())
    {
        return Err(ApiError::Unreachable(format!(
            "{addr} misbehaved earlier and is refused for a while"
        )));
    }
    if peering.peers.is_connected(&remote_id) {
        // Already connected to that node through another address: keep the existing connection.
        peering
            .peers
            .overlay()
            .dial_failed(&addr, peering.started.elapsed());
        return Ok(remote_id);
    }
    let admitted =
        peering
            .peers
            .overlay()
            .outbound_connected(addr, remote_id, peering.started.elapsed());
    if let Err(refusal) = admitted
        && !by_user
    {
        return Err(ApiError::Unreachable(format!(
            "{addr}: not kept ({refusal:?})"
        )));
    }
    start_connection(
        peering,
        &identity,
        reader,
        writer,
        remote_id,
        addr.to_string(),
        true,
    )
    .map_err(|e| ApiError::Unreachable(format!("{addr}: {e}")))?;
    Ok(remote_id)
}

/// Register a connection that finished its handshake (proving `identity`) and spawn its tasks.
fn start_connection<R, W>(
    peering: &Peering,
    identity: &Arc<Identity>,
    reader: WireReader<R>,
    writer: WireWriter<W>,
    remote_id: NodeId,
    addr: String,
    outbound: bool,
) -> Result<(), ConnectionError>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    if remote_id == peering.identity.id() {
        return Err(ConnectionError::ToSelf);
    }
    let (outbox_tx, outbox_rx) = mpsc::channel(OUTBOX);
    let reconcile_now = Arc::new(tokio::sync::Notify::new());
    let cancel = peering.tasks.token().child_token();
    let steering = Steering {
        outbox: outbox_tx,
        reconcile_now: reconcile_now.clone(),
        cancel: cancel.clone(),
    };
    let serial = peering
        .peers
        .register(remote_id, addr.clone(), outbound, steering)?;
    // A renewal replaces the identity and then closes every registered connection: a connection registered after
    // that close sees here that its identity is no longer the node's, and ends at once.
    if !peering.identity.is_current(identity) {
        cancel.cancel();
    }
    tracing::info!(outbound, "kolokol peer connected");
    tracing::debug!(peer = %remote_id, %addr, outbound, "kolokol peer connected");
    let peering = peering.clone();
    let tasks = peering.tasks.clone();
    // Graceful: the connection shuts its writer down and leaves the registry when the token fires.
    tasks.spawn_graceful("connection", async move {
        // The policy may ask for a reconciliation at once (we dialled): it starts when the connection is open.
        crate::relaying::report(
            &peering.relayer,
            [InEvent::PeerUp {
                peer: remote_id,
                outbound,
            }],
        )
        .await;
        let result = run_connection(
            &peering,
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
        if peering
            .peers
            .unregister(&remote_id, serial, peering.started.elapsed())
        {
            peering.replicator.replication.peer_gone(&remote_id);
            crate::relaying::report(&peering.relayer, [InEvent::PeerDown { peer: remote_id }])
                .await;
        }
        match result {
            Ok(()) => tracing::debug!(peer = %remote_id, %addr, "kolokol peer disconnected"),
            Err(error) => {
                tracing::debug!(peer = %remote_id, %addr, %error, "kolokol peer disconnected")
            }
        }
    });
    Ok(())
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
