//! Many streams over one tunnel, with per-stream flow control.
//!
//! # Invariants
//! - A stream's receive buffer never holds more than [`WINDOW`] bytes: each side may send only as much as the other
//!   granted (initially [`WINDOW`], then [`Frame::Window`] increments for bytes the reader consumed). A peer that
//!   sends beyond its credit breaks the tunnel.
//! - The reader task never waits on the write queue (control answers use `try_send`), so two tunnels' ends cannot
//!   deadlock each other by both waiting to write.
//! - At most `max_streams` streams per tunnel; the write queue and the incoming-stream queue are bounded.
//! - When the tunnel ends, every stream sees a reset and every waiter wakes, also one waiting for room in the write
//!   queue. A write the peer does not read (it keeps the connection open but reads nothing) gives way when the tunnel
//!   ends, so the writer task and the socket end with it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rand::Rng;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::frame::{Frame, MAX_BODY, MAX_DATA, RefuseReason};
use super::handshake::Established;
use super::record::{RecordReader, RecordWriter};

/// Bytes a stream may have in flight in each direction before the reader grants more.
pub const WINDOW: u64 = 256 * 1024;
const WRITE_QUEUE: usize = 256;
const INCOMING_QUEUE: usize = 64;
const MAX_PENDING_PINGS: usize = 8;
/// How long the writer may spend ending the connection politely once the tunnel is over.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Which end of the tunnel this is: the client opens streams, the bridge accepts them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Client,
    Bridge,
}

/// Limits of one tunnel.
#[derive(Clone, Debug)]
pub struct MuxConfig {
    pub max_streams: usize,
    /// Close the tunnel when nothing at all arrives for this long (the client pings well within it).
    pub read_timeout: Duration,
}

/// Why a stream operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    #[error("the stream was reset")]
    Reset,
    #[error("the tunnel is closed")]
    TunnelClosed,
    #[error("the bridge refused: {0}")]
    Refused(RefuseReason),
    #[error("the tunnel is at its stream limit")]
    TooManyStreams,
}

struct Inbound {
    buf: BytesMut,
    fin: bool,
    reset: bool,
    consumed_unacked: u64,
}

struct StreamShared {
    id: u32,
    inbound: Mutex<Inbound>,
    inbound_notify: Notify,
    credit: Mutex<u64>,
    credit_notify: Notify,
    open_reply: Mutex<Option<oneshot::Sender<Result<(), RefuseReason>>>>,
}

impl StreamShared {
    fn new(id: u32) -> Arc<StreamShared> {
        Arc::new(StreamShared {
            id,
            inbound: Mutex::new(Inbound {
                buf: BytesMut::new(),
                fin: false,
                reset: false,
                consumed_unacked: 0,
            }),
            inbound_notify: Notify::new(),
            credit: Mutex::new(WINDOW),
            credit_notify: Notify::new(),
            open_reply: Mutex::new(None),
        })
    }

    fn reset(&self) {
        if let Ok(mut inbound) = self.inbound.lock() {
            inbound.reset = true;
        }
        if let Ok(mut reply) = self.open_reply.lock()
            && let Some(reply) = reply.take()
        {
            let _ = reply.send(Err(RefuseReason::Other));
        }
        self.inbound_notify.notify_one();
        self.credit_notify.notify_one();
    }

    fn is_reset(&self) -> bool {
        self.inbound.lock().map_or(true, |inbound| inbound.reset)
    }
}

struct Inner {
    role: Role,
    config: MuxConfig,
    out: mpsc::Sender<Frame>,
    streams: Mutex<HashMap<u32, Arc<StreamShared>>>,
    pings: Mutex<HashMap<u64, oneshot::Sender<()>>>,
    closed: CancellationToken,
    next_id: AtomicU32,
    opened_total: AtomicU64,
}

impl Inner {
    /// Queues a frame for the writer. Fails once the tunnel has ended, also while waiting for room: a peer that
    /// stops reading keeps the queue full, and no caller may wait on it for ever.
    async fn send(&self, frame: Frame) -> Result<(), StreamError> {
        tokio::select! {
            _ = self.closed.cancelled() => Err(StreamError::TunnelClosed),
            sent = self.out.send(frame) => sent.map_err(|_| StreamError::TunnelClosed),
        }
    }

    fn close(&self) {
        self.closed.cancel();
        let streams: Vec<Arc<StreamShared>> = match self.streams.lock() {
            Ok(mut streams) => streams.drain().map(|(_, s)| s).collect(),
            Err(_) => Vec::new(),
        };
        for stream in streams {
            stream.reset();
        }
    }

    fn stream(&self, id: u32) -> Option<Arc<StreamShared>> {
        self.streams.lock().ok()?.get(&id).cloned()
    }

    fn remove(&self, id: u32) {
        if let Ok(mut streams) = self.streams.lock() {
            streams.remove(&id);
        }
    }
}

/// A new stream the client asked the bridge to open.
pub struct Incoming {
    pub stream: MuxStream,
    pub host: String,
    pub port: u16,
}

/// One end of a multiplexed tunnel. Cloning gives another handle to the same tunnel.
#[derive(Clone)]
pub struct Mux {
    inner: Arc<Inner>,
}

impl Mux {
    /// Starts the reader and writer tasks over an established connection. For the bridge role the second value
    /// yields the streams clients open.
    pub fn start<R, W>(
        read: R,
        write: W,
        established: Established,
        role: Role,
        config: MuxConfig,
    ) -> (Mux, mpsc::Receiver<Incoming>)
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let Established {
            noise,
            send_mask,
            recv_mask,
        } = established;
        let noise = Arc::new(noise);
        let (out_tx, out_rx) = mpsc::channel(WRITE_QUEUE);
        let (incoming_tx, incoming_rx) = mpsc::channel(INCOMING_QUEUE);
        let inner = Arc::new(Inner {
            role,
            config,
            out: out_tx,
            streams: Mutex::new(HashMap::new()),
            pings: Mutex::new(HashMap::new()),
            closed: CancellationToken::new(),
            next_id: AtomicU32::new(1),
            opened_total: AtomicU64::new(0),
        });
        let writer = RecordWriter::new(write, noise.clone(), send_mask);
        let reader = RecordReader::new(read, noise, recv_mask);
        tokio::spawn(write_loop(inner.clone(), writer, out_rx));
        tokio::spawn(read_loop(inner.clone(), reader, incoming_tx));
        (Mux { inner }, incoming_rx)
    }

    /// Opens a stream to `host:port` through the bridge. Data may be written at once (the bridge keeps it until
    /// the connection is up); [`MuxStream::wait_opened`] tells whether the bridge could connect.
    pub async fn open(&self, host: &str, port: u16) -> Result<MuxStream, StreamError> {
        if self.inner.closed.is_cancelled() {
            return Err(StreamError::TunnelClosed);
        }
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let shared = StreamShared::new(id);
        let (reply_tx, reply_rx) = oneshot::channel();
        if let Ok(mut reply) = shared.open_reply.lock() {
            *reply = Some(reply_tx);
        }
        {
            let mut streams = self
                .inner
                .streams
                .lock()
                .map_err(|_| StreamError::TunnelClosed)?;
            if streams.len() >= self.inner.config.max_streams {
                return Err(StreamError::TooManyStreams);
            }
            streams.insert(id, shared.clone());
        }
        self.inner.opened_total.fetch_add(1, Ordering::Relaxed);
        let stream = MuxStream::new(shared, self.inner.clone(), Some(reply_rx));
        let frame = Frame::Open {
            id,
            host: host.to_owned(),
            port,
        };
        self.inner.send(frame).await?;
        Ok(stream)
    }

    /// Sends a ping and waits for its pong; the round-trip time measures the bridge's latency.
    pub async fn ping(&self, timeout: Duration) -> Result<Duration, StreamError> {
        let nonce: u64 = rand::rng().random();
        let (tx, rx) = oneshot::channel();
        {
            let mut pings = self
                .inner
                .pings
                .lock()
                .map_err(|_| StreamError::TunnelClosed)?;
            if pings.len() >= MAX_PENDING_PINGS {
                pings.clear();
            }
            pings.insert(nonce, tx);
        }
        let started = tokio::time::Instant::now();
        self.inner.send(Frame::Ping { nonce }).await?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(())) => Ok(started.elapsed()),
            _ => Err(StreamError::TunnelClosed),
        }
    }

    /// Whether the tunnel has ended.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.is_cancelled()
    }

    /// Waits until the tunnel ends.
    pub async fn closed(&self) {
        self.inner.closed.cancelled().await;
    }

    /// Ends the tunnel and every stream in it.
    pub fn close(&self) {
        self.inner.close();
    }

    /// Streams open now.
    pub fn stream_count(&self) -> usize {
        self.inner.streams.lock().map_or(0, |s| s.len())
    }

    /// Streams opened (client) or accepted (bridge) since the tunnel started.
    pub fn opened_total(&self) -> u64 {
        self.inner.opened_total.load(Ordering::Relaxed)
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    inner: Arc<Inner>,
    mut writer: RecordWriter<W>,
    mut out: mpsc::Receiver<Frame>,
) {
    let mut carried: Option<Frame> = None;
    loop {
        let first = match carried.take() {
            Some(frame) => frame,
            None => tokio::select! {
                _ = inner.closed.cancelled() => break,
                frame = out.recv() => match frame {
                    Some(frame) => frame,
                    None => break,
                },
            },
        };
        // Coalesce whatever else is queued into the same record, up to its capacity.
        let mut body = Vec::with_capacity(first.encoded_len());
        first.encode_into(&mut body);
        while let Ok(next) = out.try_recv() {
            if body.len() + next.encoded_len() > MAX_BODY {
                carried = Some(next);
                break;
            }
            next.encode_into(&mut body);
        }
        // A peer that stops reading blocks the write for as long as it keeps the connection open: the write gives
        // way when the tunnel ends (read time-out, protocol error, `close`), so the task and the socket go with it.
        tokio::select! {
            _ = inner.closed.cancelled() => break,
            written = writer.write_body(&body) => if let Err(error) = written {
                tracing::debug!(%error, "tunnel write failed");
                break;
            },
        }
    }
    inner.close();
    // The polite end (flush, then FIN) is worth a moment, not a hang on a peer that reads nothing.
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, writer.shutdown()).await;
}

async fn read_loop<R: AsyncRead + Unpin>(
    inner: Arc<Inner>,
    mut reader: RecordReader<R>,
    incoming: mpsc::Sender<Incoming>,
) {
    loop {
        let frames = tokio::select! {
            _ = inner.closed.cancelled() => break,
            read = tokio::time::timeout(inner.config.read_timeout, reader.read_frames()) => match read {
                Ok(Ok(Some(frames))) => frames,
                Ok(Ok(None)) => break,
                Ok(Err(error)) => {
                    tracing::debug!(%error, "tunnel read failed");
                    break;
                }
                Err(_) => {
                    tracing::debug!("tunnel silent for too long");
                    break;
                }
            },
        };
        for frame in frames {
            if let Err(error) = handle_frame(&inner, frame, &incoming) {
                tracing::debug!(%error, "tunnel protocol violation");
                inner.close();
                return;
            }
        }
    }
    inner.close();
}

#[derive(Debug, thiserror::Error)]
enum Violation {
    #[error("stream {0} sent beyond its flow-control window")]
    Overrun(u32),
    #[error("frame type not allowed in this direction")]
    WrongDirection,
    #[error("window increment overflow on stream {0}")]
    WindowOverflow(u32),
}

fn handle_frame(
    inner: &Arc<Inner>,
    frame: Frame,
    incoming: &mpsc::Sender<Incoming>,
) -> Result<(), Violation> {
    match frame {
        Frame::Data { id, data } => {
            if let Some(stream) = inner.stream(id) {
                let mut buffered = match stream.inbound.lock() {
                    Ok(inbound) => inbound,
                    Err(_) => return Ok(()),
                };
                if buffered.reset || buffered.fin {
                    return Ok(());
                }
                if (buffered.buf.len() + data.len()) as u64 > WINDOW {
                    return Err(Violation::Overrun(id));
                }
                buffered.buf.extend_from_slice(&data);
                drop(buffered);
                stream.inbound_notify.notify_one();
            }
        }
        Frame::Window { id, increment } => {
            if let Some(stream) = inner.stream(id) {
                if let Ok(mut credit) = stream.credit.lock() {
                    *credit = credit.saturating_add(u64::from(increment));
                    if *credit > 4 * WINDOW {
                        return Err(Violation::WindowOverflow(id));
                    }
                }
                stream.credit_notify.notify_one();
            }
        }
        Frame::Fin { id } => {
            if let Some(stream) = inner.stream(id) {
                if let Ok(mut inbound) = stream.inbound.lock() {
                    inbound.fin = true;
                }
                stream.inbound_notify.notify_one();
            }
        }
        Frame::Reset { id } => {
            if let Some(stream) = inner.stream(id) {
                inner.remove(id);
                stream.reset();
            }
        }
        Frame::Ping { nonce } => {
            let _ = inner.out.try_send(Frame::Pong { nonce });
        }
        Frame::Pong { nonce } => {
            if let Ok(mut pings) = inner.pings.lock()
                && let Some(waiter) = pings.remove(&nonce)
            {
                let _ = waiter.send(());
            }
        }
        Frame::Open { id, host, port } => {
            if inner.role != Role::Bridge {
                return Err(Violation::WrongDirection);
            }
            let shared = StreamShared::new(id);
            let admitted = match inner.streams.lock() {
                Ok(mut streams)
                    if streams.len() < inner.config.max_streams && !streams.contains_key(&id) =>
                {
                    streams.insert(id, shared.clone());
                    true
                }
                _ => false,
            };
            if !admitted {
                let _ = inner.out.try_send(Frame::Refused {
                    id,
                    reason: RefuseReason::Busy,
                });
                return Ok(());
            }
            inner.opened_total.fetch_add(1, Ordering::Relaxed);
            let stream = MuxStream::new(shared, inner.clone(), None);
            if let Err(
                mpsc::error::TrySendError::Full(rejected)
                | mpsc::error::TrySendError::Closed(rejected),
            ) = incoming.try_send(Incoming { stream, host, port })
            {
                rejected.stream.refuse(RefuseReason::Busy);
            }
        }
        Frame::Opened { id } | Frame::Refused { id, .. } => {
            if inner.role != Role::Client {
                return Err(Violation::WrongDirection);
            }
            let result = match frame {
                Frame::Refused { reason, .. } => Err(reason),
                _ => Ok(()),
            };
            if let Some(stream) = inner.stream(id) {
                if result.is_err() {
                    inner.remove(id);
                }
                if let Ok(mut reply) = stream.open_reply.lock()
                    && let Some(reply) = reply.take()
                {
                    let _ = reply.send(result);
                }
            }
        }
    }
    Ok(())
}

/// One multiplexed stream: bytes in order, in both directions, with half-close.
pub struct MuxStream {
    shared: Arc<StreamShared>,
    inner: Arc<Inner>,
    open_reply: Mutex<Option<oneshot::Receiver<Result<(), RefuseReason>>>>,
    sent_fin: AtomicBool,
    got_fin: AtomicBool,
}

impl MuxStream {
    fn new(
        shared: Arc<StreamShared>,
        inner: Arc<Inner>,
        open_reply: Option<oneshot::Receiver<Result<(), RefuseReason>>>,
    ) -> MuxStream {
        MuxStream {
            shared,
            inner,
            open_reply: Mutex::new(open_reply),
            sent_fin: AtomicBool::new(false),
            got_fin: AtomicBool::new(false),
        }
    }

    /// The stream id within its tunnel.
    pub fn id(&self) -> u32 {
        self.shared.id
    }

    /// Client side: waits for the bridge's answer to the open.
    pub async fn wait_opened(&self) -> Result<(), StreamError> {
        let reply = self
            .open_reply
            .lock()
            .ok()
            .and_then(|mut reply| reply.take());
        let Some(reply) = reply else {
            return Ok(());
        };
        tokio::select! {
            _ = self.inner.closed.cancelled() => Err(StreamError::TunnelClosed),
            answer = reply => match answer {
                Ok(Ok(())) => Ok(()),
                Ok(Err(reason)) => Err(StreamError::Refused(reason)),
                Err(_) => Err(StreamError::TunnelClosed),
            },
        }
    }

    /// Bridge side: tells the client the connection is up.
    pub fn accept(&self) {
        send_control(&self.inner, Frame::Opened { id: self.shared.id });
    }

    /// Bridge side: tells the client the connection failed, and forgets the stream.
    pub fn refuse(self, reason: RefuseReason) {
        let id = self.shared.id;
        self.inner.remove(id);
        // Marked finished both ways so that Drop does not also send a reset.
        self.sent_fin.store(true, Ordering::Relaxed);
        self.got_fin.store(true, Ordering::Relaxed);
        send_control(&self.inner, Frame::Refused { id, reason });
    }

    /// The next bytes from the other end; `Ok(None)` once it finished sending.
    pub async fn read(&self) -> Result<Option<Bytes>, StreamError> {
        loop {
            let grant = {
                let mut inbound = self.shared.inbound.lock().map_err(|_| StreamError::Reset)?;
                if !inbound.buf.is_empty() {
                    let data = inbound.buf.split().freeze();
                    inbound.consumed_unacked += data.len() as u64;
                    let grant = if inbound.consumed_unacked >= WINDOW / 4 {
                        std::mem::take(&mut inbound.consumed_unacked)
                    } else {
                        0
                    };
                    Some((data, grant))
                } else if inbound.reset {
                    return Err(StreamError::Reset);
                } else if inbound.fin {
                    self.got_fin.store(true, Ordering::Relaxed);
                    return Ok(None);
                } else {
                    None
                }
            };
            if let Some((data, grant)) = grant {
                if grant > 0 {
                    let increment = u32::try_from(grant).unwrap_or(u32::MAX);
                    let frame = Frame::Window {
                        id: self.shared.id,
                        increment,
                    };
                    self.inner.send(frame).await?;
                }
                return Ok(Some(data));
            }
            tokio::select! {
                _ = self.shared.inbound_notify.notified() => {}
                _ = self.inner.closed.cancelled() => {
                    if self.shared.inbound.lock().map_or(true, |i| i.buf.is_empty()) {
                        return Err(StreamError::TunnelClosed);
                    }
                }
            }
        }
    }

    /// Sends all of `data`, waiting for flow-control credit as needed.
    pub async fn write(&self, mut data: &[u8]) -> Result<(), StreamError> {
        while !data.is_empty() {
            let allowed = loop {
                if self.shared.is_reset() {
                    return Err(StreamError::Reset);
                }
                if self.inner.closed.is_cancelled() {
                    return Err(StreamError::TunnelClosed);
                }
                let taken = {
                    let mut credit = self.shared.credit.lock().map_err(|_| StreamError::Reset)?;
                    let n = (*credit).min(data.len() as u64).min(MAX_DATA as u64);
                    *credit -= n;
                    n as usize
                };
                if taken > 0 {
                    break taken;
                }
                tokio::select! {
                    _ = self.shared.credit_notify.notified() => {}
                    _ = self.inner.closed.cancelled() => {}
                }
            };
            let (chunk, rest) = data.split_at(allowed);
            let frame = Frame::Data {
                id: self.shared.id,
                data: Bytes::copy_from_slice(chunk),
            };
            self.inner.send(frame).await?;
            data = rest;
        }
        Ok(())
    }

    /// Says that no more data will be written (half-close); reading goes on.
    pub async fn finish(&self) -> Result<(), StreamError> {
        if self.sent_fin.swap(true, Ordering::Relaxed) {
            return Ok(());
        }
        self.inner.send(Frame::Fin { id: self.shared.id }).await
    }
}

impl Drop for MuxStream {
    fn drop(&mut self) {
        let id = self.shared.id;
        self.inner.remove(id);
        let finished =
            self.sent_fin.load(Ordering::Relaxed) && self.got_fin.load(Ordering::Relaxed);
        if finished || self.shared.is_reset() || self.inner.closed.is_cancelled() {
            return;
        }
        // Abandoned before both sides finished: tell the other end to stop.
        send_control(&self.inner, Frame::Reset { id });
    }
}

/// Queues a control frame without waiting; if the queue is full, a task sends it once there is room (the caller
/// may be the reader task, which must never wait on the writer).
fn send_control(inner: &Inner, frame: Frame) {
    if let Err(mpsc::error::TrySendError::Full(frame)) = inner.out.try_send(frame) {
        let out = inner.out.clone();
        let closed = inner.closed.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                // A peer that stops reading keeps the queue full: the task ends with the tunnel.
                tokio::select! {
                    _ = closed.cancelled() => {}
                    _ = out.send(frame) => {}
                }
            });
        }
    }
}
