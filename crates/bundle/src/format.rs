//! The byte layout of a bundle (see `FORMAT.md`): constants, caps, and the hashing input and output that keep the
//! trailer's SHA-256 over everything except file contents.

use std::io::{self, Read, Write};

use sha2::{Digest, Sha256};

use crate::BundleError;

/// First bytes of every bundle.
pub const MAGIC: [u8; 8] = *b"KOLOBNDL";
/// The format version this code writes and reads.
pub const FORMAT_VERSION: u16 = 1;
/// Section tag: one publication (record, torrent, optional data).
pub(crate) const TAG_PUBLICATION: u8 = b'P';
/// Section tag: the trailer, always last.
pub(crate) const TAG_END: u8 = b'E';
/// Data flag: no file data follows the torrent.
pub(crate) const DATA_NONE: u8 = 0;
/// Data flag: every non-padding file of the torrent follows, in torrent order.
pub(crate) const DATA_FILES: u8 = 1;

/// Most publications in one bundle.
pub const MAX_PUBLICATIONS: u64 = 100_000;
/// Largest record (the record format's own cap).
pub const MAX_RECORD_BYTES: usize = kolokol_core::record::MAX_RECORD_BYTES;
/// Largest torrent (the engine's own cap).
pub const MAX_TORRENT_BYTES: usize = kolokol_transfer::metainfo::MAX_TORRENT_BYTES;
/// Most record and torrent bytes one bundle may carry in total: the reader keeps them until the trailer has been
/// checked, so this bounds its memory whatever the bundle says. File data is never held.
pub const MAX_METADATA_BYTES: u64 = 256 * 1024 * 1024;

/// Size of the copy buffer: the only buffer file data passes through.
pub(crate) const CHUNK: usize = 64 * 1024;

/// Reads a bundle, hashing every byte except file contents, and knowing its offset for error messages.
pub(crate) struct HashingReader<R> {
    inner: R,
    sha: Sha256,
    offset: u64,
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        HashingReader {
            inner,
            sha: Sha256::new(),
            offset: 0,
        }
    }

    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// Exactly `buf.len()` framing bytes, hashed. `what` names what was expected, for the truncation message.
    pub(crate) fn framing(
        &mut self,
        buf: &mut [u8],
        what: &'static str,
    ) -> Result<(), BundleError> {
        self.raw(buf, what)?;
        self.sha.update(&*buf);
        Ok(())
    }

    /// Exactly `buf.len()` content bytes, not hashed (piece hashes cover them).
    pub(crate) fn content(
        &mut self,
        buf: &mut [u8],
        what: &'static str,
    ) -> Result<(), BundleError> {
        self.raw(buf, what)
    }

    fn raw(&mut self, buf: &mut [u8], what: &'static str) -> Result<(), BundleError> {
        let mut done = 0;
        while done < buf.len() {
            match self.inner.read(&mut buf[done..]) {
                Ok(0) => {
                    return Err(BundleError::Truncated {
                        offset: self.offset + done as u64,
                        expected: what,
                    });
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(BundleError::Read(e)),
            }
        }
        self.offset += buf.len() as u64;
        Ok(())
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, BundleError> {
        let mut b = [0u8; 1];
        self.framing(&mut b, what)?;
        Ok(b[0])
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, BundleError> {
        let mut b = [0u8; 4];
        self.framing(&mut b, what)?;
        Ok(u32::from_be_bytes(b))
    }

    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64, BundleError> {
        let mut b = [0u8; 8];
        self.framing(&mut b, what)?;
        Ok(u64::from_be_bytes(b))
    }

    /// The SHA-256 of every framing byte read so far.
    pub(crate) fn digest(&self) -> [u8; 32] {
        self.sha.clone().finalize().into()
    }

    /// Whether the input has ended (one more byte read would be past the end).
    pub(crate) fn at_end(&mut self) -> Result<bool, BundleError> {
        let mut b = [0u8; 1];
        loop {
            match self.inner.read(&mut b) {
                Ok(0) => return Ok(true),
                Ok(_) => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(BundleError::Read(e)),
            }
        }
    }
}

/// Writes a bundle, hashing every byte except file contents.
pub(crate) struct HashingWriter<W> {
    inner: W,
    sha: Sha256,
}

impl<W: Write> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            sha: Sha256::new(),
        }
    }

    pub(crate) fn framing(&mut self, bytes: &[u8]) -> Result<(), BundleError> {
        self.sha.update(bytes);
        self.inner.write_all(bytes).map_err(BundleError::Write)
    }

    pub(crate) fn content(&mut self, bytes: &[u8]) -> Result<(), BundleError> {
        self.inner.write_all(bytes).map_err(BundleError::Write)
    }

    pub(crate) fn digest(&self) -> [u8; 32] {
        self.sha.clone().finalize().into()
    }

    pub(crate) fn into_inner(mut self) -> Result<W, BundleError> {
        self.inner.flush().map_err(BundleError::Write)?;
        Ok(self.inner)
    }
}
