//! Encrypted framing: Noise transport frames on the socket, length-prefixed messages inside them.
//!
//! On the socket every frame is a `u16` big-endian length followed by that many bytes of Noise
//! ciphertext (plaintext plus a 16-byte tag). The decrypted frames form one byte stream that carries
//! application messages, each a `u32` big-endian length followed by that many payload bytes; a message
//! may span several frames and a frame may end anywhere. Each direction has its own Noise cipher and
//! nonce counter, so the reader and the writer are independent and can live in different tasks.

use std::sync::Arc;

use snow::StatelessTransportState;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{Duration, Instant};

use crate::config::WireConfig;
use crate::error::WireError;
use crate::message::Message;

/// Noise authentication tag length.
pub const TAG_BYTES: usize = 16;
/// Largest transport frame on the socket (the Noise maximum), excluding its 2-byte length.
pub const MAX_FRAME_BYTES: usize = 65535;
/// Most plaintext one frame carries.
pub const MAX_FRAME_PLAINTEXT: usize = MAX_FRAME_BYTES - TAG_BYTES;
/// Size of the length header before every application message.
pub const MESSAGE_HEADER_BYTES: usize = 4;

/// How much of an announced message body is reserved before its bytes arrive; the buffer grows with
/// the data, so a peer that announces a large message and then stalls costs little.
const INITIAL_BODY_CAPACITY: usize = 64 * 1024;

/// The receiving half of a connection.
///
/// [`WireReader::recv`] is cancel-safe: dropping the future (for example in `tokio::select!`) loses no
/// data, and the next call continues where it stopped.
pub struct WireReader<R> {
    inner: R,
    transport: Arc<StatelessTransportState>,
    nonce: u64,
    max_message_bytes: usize,
    idle_timeout: Duration,
    /// The ciphertext frame being read, header included; `frame_filled` bytes are valid.
    frame: Vec<u8>,
    frame_filled: usize,
    /// When the frame being waited for must have arrived; set when waiting starts.
    frame_deadline: Option<Instant>,
    /// Decrypted bytes of the last frame; `plain[plain_pos..plain_len]` is not yet consumed.
    plain: Vec<u8>,
    plain_pos: usize,
    plain_len: usize,
    /// The message being assembled: its length header, then its body once the header is complete.
    header: [u8; MESSAGE_HEADER_BYTES],
    header_filled: usize,
    body: Option<(usize, Vec<u8>)>,
    failed: bool,
}

impl<R> std::fmt::Debug for WireReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WireReader")
            .field("nonce", &self.nonce)
            .field("failed", &self.failed)
            .finish()
    }
}

impl<R: AsyncRead + Unpin> WireReader<R> {
    pub(crate) fn new(inner: R, transport: Arc<StatelessTransportState>, cfg: &WireConfig) -> Self {
        Self {
            inner,
            transport,
            nonce: 0,
            max_message_bytes: cfg.max_message_bytes,
            idle_timeout: cfg.idle_timeout,
            frame: vec![0; 2 + MAX_FRAME_BYTES],
            frame_filled: 0,
            frame_deadline: None,
            plain: vec![0; MAX_FRAME_BYTES],
            plain_pos: 0,
            plain_len: 0,
            header: [0; MESSAGE_HEADER_BYTES],
            header_filled: 0,
            body: None,
            failed: false,
        }
    }

    /// Receives and decodes the next message.
    ///
    /// [`WireError::Closed`] means the peer closed the connection between messages. Any error leaves the
    /// reader failed: close the connection.
    pub async fn recv(&mut self) -> Result<Message, WireError> {
        let bytes = self.recv_bytes().await?;
        Message::decode(&bytes).map_err(|error| {
            self.failed = true;
            WireError::Message(error)
        })
    }

    /// Receives the next message's raw bytes, at most `max_message_bytes` long.
    pub async fn recv_bytes(&mut self) -> Result<Vec<u8>, WireError> {
        if self.failed {
            return Err(WireError::Poisoned);
        }
        match self.next_message().await {
            Ok(bytes) => Ok(bytes),
            Err(error) => {
                self.failed = true;
                Err(error)
            }
        }
    }

    async fn next_message(&mut self) -> Result<Vec<u8>, WireError> {
        loop {
            if let Some(message) = self.take_plaintext()? {
                return Ok(message);
            }
            self.read_frame().await?;
        }
    }

    /// Moves decrypted bytes into the message being assembled; returns it once complete.
    fn take_plaintext(&mut self) -> Result<Option<Vec<u8>>, WireError> {
        loop {
            if self.body.is_none() && self.header_filled == MESSAGE_HEADER_BYTES {
                let len = usize::try_from(u32::from_be_bytes(self.header)).unwrap_or(usize::MAX);
                // The cap is checked on the header alone, before any buffer for the body exists.
                if len > self.max_message_bytes {
                    return Err(WireError::MessageTooLarge {
                        len,
                        max: self.max_message_bytes,
                    });
                }
                self.body = Some((len, Vec::with_capacity(len.min(INITIAL_BODY_CAPACITY))));
            }
            if let Some((len, body)) = &self.body
                && body.len() == *len
            {
                self.header_filled = 0;
                return Ok(self.body.take().map(|(_, body)| body));
            }
            let available = &self.plain[self.plain_pos..self.plain_len];
            if available.is_empty() {
                return Ok(None);
            }
            let taken = match &mut self.body {
                Some((len, body)) => {
                    let take = available.len().min(*len - body.len());
                    // Grow by doubling as usual, but never past the announced length.
                    let target = (body.len() + take).max(body.capacity() * 2).min(*len);
                    body.reserve_exact(target - body.len());
                    body.extend_from_slice(&available[..take]);
                    take
                }
                None => {
                    let take = available
                        .len()
                        .min(MESSAGE_HEADER_BYTES - self.header_filled);
                    self.header[self.header_filled..self.header_filled + take]
                        .copy_from_slice(&available[..take]);
                    self.header_filled += take;
                    take
                }
            };
            self.plain_pos += taken;
        }
    }

    /// Reads and decrypts one transport frame into `plain`. Cancel-safe: progress lives in `self`.
    async fn read_frame(&mut self) -> Result<(), WireError> {
        loop {
            let needed = if self.frame_filled < 2 {
                2
            } else {
                let len = usize::from(u16::from_be_bytes([self.frame[0], self.frame[1]]));
                // A frame must carry at least one byte of plaintext: empty frames would let a peer
                // generate endless traffic that never advances a message.
                if len <= TAG_BYTES {
                    return Err(WireError::FrameTooShort(len));
                }
                2 + len
            };
            if self.frame_filled == needed && needed > 2 {
                let len = self
                    .transport
                    .read_message(self.nonce, &self.frame[2..needed], &mut self.plain)
                    .map_err(WireError::Noise)?;
                self.nonce += 1;
                self.frame_filled = 0;
                self.frame_deadline = None;
                self.plain_pos = 0;
                self.plain_len = len;
                return Ok(());
            }
            let deadline = *self
                .frame_deadline
                .get_or_insert_with(|| Instant::now() + self.idle_timeout);
            let read = tokio::time::timeout_at(
                deadline,
                self.inner.read(&mut self.frame[self.frame_filled..needed]),
            )
            .await
            .map_err(|_elapsed| WireError::IdleTimeout)??;
            if read == 0 {
                let between_messages = self.frame_filled == 0
                    && self.header_filled == 0
                    && self.body.is_none()
                    && self.plain_pos == self.plain_len;
                return Err(if between_messages {
                    WireError::Closed
                } else {
                    WireError::UnexpectedEof
                });
            }
            self.frame_filled += read;
        }
    }
}

/// The sending half of a connection.
///
/// A send that is cancelled half-way leaves the stream in an unknown state; the writer notices and
/// refuses further sends with [`WireError::Poisoned`].
pub struct WireWriter<W> {
    inner: W,
    transport: Arc<StatelessTransportState>,
    nonce: u64,
    max_message_bytes: usize,
    idle_timeout: Duration,
    frame: Vec<u8>,
    /// Set while a send is in progress and left set if it fails or is cancelled.
    failed: bool,
}

impl<W> std::fmt::Debug for WireWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WireWriter")
            .field("nonce", &self.nonce)
            .field("failed", &self.failed)
            .finish()
    }
}

impl<W: AsyncWrite + Unpin> WireWriter<W> {
    pub(crate) fn new(inner: W, transport: Arc<StatelessTransportState>, cfg: &WireConfig) -> Self {
        Self {
            inner,
            transport,
            nonce: 0,
            max_message_bytes: cfg.max_message_bytes,
            idle_timeout: cfg.idle_timeout,
            frame: vec![0; 2 + MAX_FRAME_BYTES],
            failed: false,
        }
    }

    /// Encodes and sends one message. An invalid or oversized message is refused before anything is
    /// written and leaves the writer usable.
    pub async fn send(&mut self, message: &Message) -> Result<(), WireError> {
        let bytes = message.encode()?;
        self.send_bytes(&bytes).await
    }

    /// Sends raw message bytes (at most `max_message_bytes`) as one application message.
    pub async fn send_bytes(&mut self, payload: &[u8]) -> Result<(), WireError> {
        if payload.len() > self.max_message_bytes {
            return Err(WireError::MessageTooLarge {
                len: payload.len(),
                max: self.max_message_bytes,
            });
        }
        let header = u32::try_from(payload.len())
            .map_err(|_| WireError::MessageTooLarge {
                len: payload.len(),
                max: self.max_message_bytes,
            })?
            .to_be_bytes();
        let mut stream = Vec::with_capacity(MESSAGE_HEADER_BYTES + payload.len());
        stream.extend_from_slice(&header);
        stream.extend_from_slice(payload);
        self.write_plaintext(&stream).await
    }

    /// Encrypts `plaintext` into as many frames as needed and writes them. The bytes are taken as they
    /// are, so tests can use this to put arbitrary (also malformed) message headers on the wire.
    pub(crate) async fn write_plaintext(&mut self, plaintext: &[u8]) -> Result<(), WireError> {
        if self.failed {
            return Err(WireError::Poisoned);
        }
        self.failed = true;
        for chunk in plaintext.chunks(MAX_FRAME_PLAINTEXT) {
            let len = self.seal(chunk)?;
            let frame = &self.frame[..len];
            tokio::time::timeout(self.idle_timeout, self.inner.write_all(frame))
                .await
                .map_err(|_elapsed| WireError::IdleTimeout)??;
        }
        tokio::time::timeout(self.idle_timeout, self.inner.flush())
            .await
            .map_err(|_elapsed| WireError::IdleTimeout)??;
        self.failed = false;
        Ok(())
    }

    /// Writes raw bytes to the socket, outside the encryption. For tests of hostile framing only.
    #[cfg(test)]
    pub(crate) async fn write_raw(&mut self, bytes: &[u8]) -> Result<(), WireError> {
        self.inner.write_all(bytes).await?;
        self.inner.flush().await?;
        Ok(())
    }

    /// Encrypts one frame and returns it with its length header instead of writing it, so tests can
    /// tamper with it. Consumes a nonce like a real send.
    #[cfg(test)]
    pub(crate) fn seal_frame(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, WireError> {
        let len = self.seal(plaintext)?;
        Ok(self.frame[..len].to_vec())
    }

    /// Encrypts `chunk` (at most [`MAX_FRAME_PLAINTEXT`] bytes) into `self.frame` with its length
    /// header, consuming one nonce; returns the frame's total length.
    fn seal(&mut self, chunk: &[u8]) -> Result<usize, WireError> {
        let len = self
            .transport
            .write_message(self.nonce, chunk, &mut self.frame[2..])
            .map_err(WireError::Noise)?;
        self.nonce += 1;
        // Noise never produces more than 65535 bytes, so this cannot fail; mapped for totality.
        let header = u16::try_from(len).map_err(|_| WireError::Noise(snow::Error::Input))?;
        self.frame[..2].copy_from_slice(&header.to_be_bytes());
        Ok(2 + len)
    }

    /// The largest message this writer sends; pack records for it with [`crate::RecordPacker`].
    pub fn max_message_bytes(&self) -> usize {
        self.max_message_bytes
    }

    /// Flushes and shuts down the sending direction; the peer's reader then sees a clean close.
    pub async fn shutdown(&mut self) -> Result<(), WireError> {
        self.inner.shutdown().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
