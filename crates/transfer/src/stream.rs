//! Reading one file of a torrent while it downloads.
//!
//! librqbit's reader (`ManagedTorrent::stream`) does the hard part: the piece picker serves every
//! open reader first, interleaving them, with the pieces from its read position up to 32 MiB
//! ahead; a read of a piece that is not here registers a waker that fires when that piece is
//! verified. What it does not do is give up: a piece that no peer has keeps the read pending
//! forever, and a torrent that the engine removed and added again (which [`Engine::add_peers`]
//! does to hand librqbit new peers) leaves the old reader waiting on a torrent that is gone.
//!
//! [`FileStream`] wraps it to add both: while a read waits, it looks once a second whether the
//! engine now runs the torrent under another handle (then it reopens the reader at the same
//! position), and a read that has produced nothing for the engine's stream timeout fails with
//! [`std::io::ErrorKind::TimedOut`] instead of hanging. Whoever serves the bytes (the HTTP
//! gateway) can then answer "not available" rather than keep a client waiting forever.
//!
//! [`Engine::add_peers`]: crate::Engine::add_peers

use std::future::Future;
use std::io::{self, SeekFrom};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncSeek, ReadBuf};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, Sleep};

use crate::backend::{self, Handle, RawStream};
use crate::engine::{Inner, Lookup};
use crate::error::TransferError;
use crate::fastresume::hex;

/// Most file streams open at once in one engine; [`crate::Engine::open_stream`] waits for a free
/// one (within the stream timeout).
pub const MAX_OPEN_STREAMS: usize = 16;

/// How often a waiting read checks whether the torrent was re-added under a new handle.
const RECHECK: Duration = Duration::from_secs(1);

type Reopen = Pin<Box<dyn Future<Output = Result<(Handle, RawStream), TransferError>> + Send>>;

enum State {
    Open {
        handle: Handle,
        reader: RawStream,
        /// Whether the reader's position is ours (false after a seek or a reopen).
        synced: bool,
    },
    Reopening(Reopen),
}

/// An `AsyncRead + AsyncSeek` reader over one file of a torrent, usable while the torrent
/// downloads (see the module documentation). Made by [`crate::Engine::open_stream`].
///
/// A read that gets no byte for the engine's stream timeout fails with
/// [`io::ErrorKind::TimedOut`]; any other failure of the torrent fails the read with another kind.
/// Reading at the end of the file returns 0 bytes.
pub struct FileStream {
    engine: Arc<Inner>,
    infohash: [u8; 20],
    /// librqbit's index of the file.
    file_id: usize,
    len: u64,
    position: u64,
    state: State,
    /// Since when the current read has waited without a byte.
    waiting_since: Option<Instant>,
    tick: Pin<Box<Sleep>>,
    stall_timeout: Duration,
    _slot: OwnedSemaphorePermit,
}

impl FileStream {
    pub(crate) fn new(
        engine: Arc<Inner>,
        infohash: [u8; 20],
        file_id: usize,
        len: u64,
        handle: Handle,
        reader: RawStream,
        slot: OwnedSemaphorePermit,
    ) -> FileStream {
        let stall_timeout = engine.stream_timeout;
        FileStream {
            engine,
            infohash,
            file_id,
            len,
            position: 0,
            state: State::Open {
                handle,
                reader,
                synced: true,
            },
            waiting_since: None,
            tick: Box::pin(tokio::time::sleep(RECHECK)),
            stall_timeout,
            _slot: slot,
        }
    }

    /// The file's size in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The next byte a read returns.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// How long a read may wait for its first byte before it fails (default: the engine's
    /// stream timeout).
    pub fn set_stall_timeout(&mut self, timeout: Duration) {
        self.stall_timeout = timeout;
    }

    /// Starts reopening the reader on the torrent's current handle.
    fn reopen(&mut self) {
        let engine = Arc::clone(&self.engine);
        let infohash = self.infohash;
        let file_id = self.file_id;
        tracing::debug!(infohash = %hex(&infohash), file_id, "torrent was re-added; reopening its stream");
        self.state = State::Reopening(Box::pin(async move {
            let (handle, _) = engine.wait_active(&infohash).await?;
            let reader = backend::open_stream(&handle, file_id).await?;
            Ok((handle, reader))
        }));
    }

    /// Whether the engine runs the torrent under another handle than `ours` now; an error if
    /// the torrent is gone or failed.
    fn replaced(&self, ours: &Handle) -> io::Result<bool> {
        match self.engine.lookup(&self.infohash) {
            Lookup::Active(current) => Ok(!Arc::ptr_eq(&current, ours)),
            Lookup::Waiting => Ok(true),
            Lookup::Gone(error) => Err(io::Error::other(error)),
        }
    }

    /// The read waits: fail once it has waited too long, else wake up for the next check.
    fn poll_wait(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let now = Instant::now();
        let since = *self.waiting_since.get_or_insert(now);
        let deadline = since + self.stall_timeout;
        if now >= deadline {
            self.waiting_since = None;
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "no data at byte {} of this file for {} s: no connected peer has sent that piece",
                    self.position,
                    self.stall_timeout.as_secs()
                ),
            )));
        }
        self.tick.as_mut().reset((now + RECHECK).min(deadline));
        // Just reset into the future: this registers the waker and returns Pending.
        let _ = self.tick.as_mut().poll(cx);
        Poll::Pending
    }
}

impl AsyncRead for FileStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.position >= this.len || buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            let outcome = match &mut this.state {
                State::Reopening(future) => match future.as_mut().poll(cx) {
                    Poll::Ready(Ok((handle, reader))) => {
                        this.state = State::Open {
                            handle,
                            reader,
                            synced: false,
                        };
                        continue;
                    }
                    Poll::Ready(Err(error)) => return Poll::Ready(Err(io::Error::other(error))),
                    Poll::Pending => None,
                },
                State::Open { reader, synced, .. } => {
                    if !*synced {
                        reader.as_mut().start_seek(SeekFrom::Start(this.position))?;
                        ready!(reader.as_mut().poll_complete(cx))?;
                        *synced = true;
                    }
                    let before = buf.filled().len();
                    match reader.as_mut().poll_read(cx, buf) {
                        Poll::Ready(Ok(())) => {
                            let read = buf.filled().len() - before;
                            if read == 0 {
                                return Poll::Ready(Err(io::Error::new(
                                    io::ErrorKind::UnexpectedEof,
                                    "the torrent's file ended before its length",
                                )));
                            }
                            this.position += read as u64;
                            this.waiting_since = None;
                            return Poll::Ready(Ok(()));
                        }
                        Poll::Ready(Err(error)) => Some(error),
                        Poll::Pending => None,
                    }
                }
            };
            // The reader failed or waits: a re-added torrent explains both, and is recovered.
            if let State::Open { handle, .. } = &this.state {
                if this.replaced(handle)? {
                    this.reopen();
                    continue;
                }
                if let Some(error) = outcome {
                    return Poll::Ready(Err(error));
                }
            }
            return this.poll_wait(cx);
        }
    }
}

impl AsyncSeek for FileStream {
    fn start_seek(mut self: Pin<&mut Self>, position: SeekFrom) -> io::Result<()> {
        let target = match position {
            SeekFrom::Start(offset) => Some(offset),
            SeekFrom::End(delta) => self.len.checked_add_signed(delta),
            SeekFrom::Current(delta) => self.position.checked_add_signed(delta),
        };
        let target = target.filter(|&t| t <= self.len).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("seek outside the file ({} bytes)", self.len),
            )
        })?;
        self.position = target;
        self.waiting_since = None;
        if let State::Open { synced, .. } = &mut self.state {
            *synced = false;
        }
        Ok(())
    }

    fn poll_complete(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        Poll::Ready(Ok(self.position))
    }
}

impl std::fmt::Debug for FileStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStream")
            .field("infohash", &hex(&self.infohash))
            .field("file_id", &self.file_id)
            .field("len", &self.len)
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}
