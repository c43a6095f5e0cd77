//! Driving one connection: the reader task, the keepalive, the outbox, the exchange's state machine
//! (`kolokol_wire::Exchange`), and nothing else. What to do with each thing the exchange reports is `serve.rs`'s
//! (which asks the record policy); banning a peer that misbehaved is `conduct.rs`'s.

use std::sync::Arc;

use kolokol_core::keys::NodeId;
use kolokol_wire::{Exchange, Message, WireError, WireReader, WireWriter};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Peering;
use super::conduct::Misconduct;
use super::{ConnectionError, OUTBOX};

/// Messages read ahead of the connection task.
const INBOX: usize = 8;

/// How the rest of the node steers one connection.
pub(super) struct Control {
    /// Pushes and requests to send once the connection is open.
    pub outbox: mpsc::Receiver<Message>,
    /// Start a reconciliation session.
    pub reconcile_now: Arc<tokio::sync::Notify>,
    pub cancel: CancellationToken,
}

/// One live connection, as the policy handlers (`serve.rs`) see it: where to write, whom to, and the per-connection
/// state they keep.
pub(super) struct Link<W> {
    pub peering: Peering,
    pub writer: WireWriter<W>,
    pub remote_id: NodeId,
    /// The address we dialled (outbound) or the remote socket address (inbound).
    pub addr: String,
    pub sessions: crate::reconciling::Sessions,
    /// Pushes and fetches held until the peer's hello has opened the connection.
    pub deferred: Vec<Message>,
}

impl<W: AsyncWrite + Unpin> Link<W> {
    pub async fn send(&mut self, message: &Message) -> Result<(), ConnectionError> {
        Ok(self.writer.send(message).await?)
    }
}

/// Drive one connection until it ends. The reader runs in its own task (a wire read is not cancel-safe), feeding a
/// small bounded channel; this task owns the writer, the exchange and the keepalive.
pub(super) async fn run_connection<R, W>(
    peering: &Peering,
    mut reader: WireReader<R>,
    writer: WireWriter<W>,
    remote_id: NodeId,
    addr: &str,
    control: Control,
) -> Result<(), ConnectionError>
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
    peering.tasks.spawn("connection reader", async move {
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

    let mut link = Link {
        peering: peering.clone(),
        writer,
        remote_id,
        addr: addr.to_owned(),
        sessions: crate::reconciling::Sessions::default(),
        deferred: Vec::new(),
    };
    // The catalog travels by range reconciliation (O(d log n) bytes for d differences), which the record policy has
    // the dialing side start as soon as the peer's hello has opened the connection.
    let mut exchange = Exchange::new().with_bt_port(peering.peers.bt_port());
    for message in exchange.start() {
        link.send(&message).await?;
    }
    let mut keepalive = tokio::time::interval(peering.wire_config.keepalive_interval());
    keepalive.tick().await;
    let mut nonce = 0u64;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => {
                let _ = link.writer.shutdown().await;
                return Ok(());
            }
            _ = keepalive.tick() => {
                nonce += 1;
                link.send(&Message::Ping { nonce }).await?;
            }
            _ = reconcile_now.notified(), if exchange.is_open() => {
                link.start_reconcile().await?;
            }
            pushed = outbox.recv() => {
                let Some(message) = pushed else { return Ok(()) };
                if exchange.is_open() {
                    link.send(&message).await?;
                } else if link.deferred.len() < OUTBOX {
                    link.deferred.push(message);
                }
            }
            received = inbox.recv() => {
                let message = match received {
                    Some(Ok(message)) => message,
                    Some(Err(error @ (WireError::MessageTooLarge { .. } | WireError::Message(_)))) => {
                        return Err(link.misbehaved(Misconduct::Malformed(error)));
                    }
                    Some(Err(error)) => return Err(error.into()),
                    None => return Ok(()),
                };
                let had_hello = exchange.peer_hello().is_some();
                let actions = exchange
                    .handle(message)
                    .map_err(|e| link.misbehaved(Misconduct::Protocol(e)))?;
                if !had_hello && let Some(hello) = exchange.peer_hello() {
                    link.note_hello(hello.bt_port).await;
                }
                for action in actions {
                    link.act(action).await?;
                }
            }
        }
    }
}
