//! Encrypted, padded records on the wire: `masked length (u16) || Noise ciphertext of a padded plaintext`.
//!
//! The length is XORed with the direction's keystream, and the ciphertext is one of four sizes, so the byte
//! stream is random-looking and the record sizes do not follow the traffic inside.

use std::sync::Arc;

use snow::StatelessTransportState;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::frame::{BUCKETS, Frame, FrameError, MAX_PLAINTEXT, decode_record, pad_body};
use super::obfs::Mask;

const TAG_LEN: usize = 16;

/// Why the tunnel stopped.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("tunnel connection failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("tunnel record does not decrypt: {0}")]
    Crypto(#[from] snow::Error),
    #[error("record length {0} is not one of the padded sizes")]
    BadLength(usize),
    #[error("bad frame in tunnel: {0}")]
    Frame(#[from] FrameError),
}

/// Writes records to one direction of a tunnel.
pub struct RecordWriter<W> {
    io: W,
    noise: Arc<StatelessTransportState>,
    nonce: u64,
    mask: Mask,
    buf: Vec<u8>,
}

impl<W: AsyncWrite + Unpin> RecordWriter<W> {
    pub fn new(io: W, noise: Arc<StatelessTransportState>, mask: Mask) -> RecordWriter<W> {
        RecordWriter {
            io,
            noise,
            nonce: 0,
            mask,
            buf: Vec::with_capacity(2 + MAX_PLAINTEXT + TAG_LEN),
        }
    }

    /// Encrypts and sends one record holding `body` (at most [`super::frame::MAX_BODY`] bytes).
    pub async fn write_body(&mut self, body: &[u8]) -> Result<(), RecordError> {
        let plaintext = pad_body(body);
        self.buf.clear();
        self.buf.resize(2 + plaintext.len() + TAG_LEN, 0);
        let len = self
            .noise
            .write_message(self.nonce, &plaintext, &mut self.buf[2..])?;
        self.nonce += 1;
        let mut header = u16::try_from(len)
            .map_err(|_| RecordError::BadLength(len))?
            .to_be_bytes();
        self.mask.apply(&mut header);
        self.buf[..2].copy_from_slice(&header);
        self.io.write_all(&self.buf[..2 + len]).await?;
        Ok(())
    }

    /// Encodes and sends `frames` in one record (their total size must fit a record).
    pub async fn write_frames(&mut self, frames: &[Frame]) -> Result<(), RecordError> {
        let mut body = Vec::new();
        for frame in frames {
            frame.encode_into(&mut body);
        }
        self.write_body(&body).await
    }

    /// Pushes buffered bytes out.
    pub async fn flush(&mut self) -> Result<(), RecordError> {
        self.io.flush().await?;
        Ok(())
    }

    /// Closes the write side.
    pub async fn shutdown(&mut self) -> Result<(), RecordError> {
        self.io.shutdown().await?;
        Ok(())
    }
}

/// Reads records from one direction of a tunnel.
pub struct RecordReader<R> {
    io: R,
    noise: Arc<StatelessTransportState>,
    nonce: u64,
    mask: Mask,
    ciphertext: Vec<u8>,
    plaintext: Vec<u8>,
}

impl<R: AsyncRead + Unpin> RecordReader<R> {
    pub fn new(io: R, noise: Arc<StatelessTransportState>, mask: Mask) -> RecordReader<R> {
        RecordReader {
            io,
            noise,
            nonce: 0,
            mask,
            ciphertext: vec![0; MAX_PLAINTEXT + TAG_LEN],
            plaintext: vec![0; MAX_PLAINTEXT],
        }
    }

    /// Reads, checks and decrypts the next record; `Ok(None)` at a clean end of the connection.
    pub async fn read_frames(&mut self) -> Result<Option<Vec<Frame>>, RecordError> {
        let mut header = [0; 2];
        match self.io.read_exact(&mut header).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        self.mask.apply(&mut header);
        let len = usize::from(u16::from_be_bytes(header));
        // The length is checked against the known sizes before anything is read into the buffers.
        if len < TAG_LEN || !BUCKETS.contains(&(len - TAG_LEN)) {
            return Err(RecordError::BadLength(len));
        }
        self.io.read_exact(&mut self.ciphertext[..len]).await?;
        let n =
            self.noise
                .read_message(self.nonce, &self.ciphertext[..len], &mut self.plaintext)?;
        self.nonce += 1;
        Ok(Some(decode_record(&self.plaintext[..n])?))
    }
}
