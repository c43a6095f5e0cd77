//! A buffered reader that counts its position and turns an early end of file into [`ScrubError::Truncated`].
//!
//! Every format parser reads through it, so every "the file ended here" error names the format, the structure and
//! the offset, and no parser needs its own buffer for the streamed parts.

use std::io::{BufRead, BufReader, Read, Write};

use crate::{FileKind, ScrubError};

/// Size of the one fixed buffer used to stream the large parts of a file.
pub(crate) const STREAM_BUFFER: usize = 64 * 1024;

pub(crate) struct Input<R: Read> {
    inner: BufReader<R>,
    offset: u64,
    kind: FileKind,
}

impl<R: Read> Input<R> {
    pub(crate) fn new(reader: R, kind: FileKind) -> Self {
        Self {
            inner: BufReader::with_capacity(STREAM_BUFFER, reader),
            offset: 0,
            kind,
        }
    }

    /// Offset of the next byte to be read, from the start of the file.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    pub(crate) fn malformed(&self, reason: impl Into<String>) -> ScrubError {
        self.malformed_at(self.offset, reason)
    }

    pub(crate) fn malformed_at(&self, offset: u64, reason: impl Into<String>) -> ScrubError {
        ScrubError::Malformed {
            kind: self.kind,
            offset,
            reason: reason.into(),
        }
    }

    fn truncated(&self, what: &'static str) -> ScrubError {
        ScrubError::Truncated {
            kind: self.kind,
            what,
            offset: self.offset,
        }
    }

    /// The buffered bytes, refilling when empty; an empty slice means end of file.
    pub(crate) fn buffered(&mut self) -> Result<&[u8], ScrubError> {
        Ok(self.inner.fill_buf()?)
    }

    pub(crate) fn consume(&mut self, count: usize) {
        self.inner.consume(count);
        self.offset += count as u64;
    }

    pub(crate) fn at_eof(&mut self) -> Result<bool, ScrubError> {
        Ok(self.buffered()?.is_empty())
    }

    pub(crate) fn read_exact(
        &mut self,
        out: &mut [u8],
        what: &'static str,
    ) -> Result<(), ScrubError> {
        let mut filled = 0;
        while filled < out.len() {
            let available = self.buffered()?;
            if available.is_empty() {
                return Err(self.truncated(what));
            }
            let take = available.len().min(out.len() - filled);
            out[filled..filled + take].copy_from_slice(&available[..take]);
            self.consume(take);
            filled += take;
        }
        Ok(())
    }

    pub(crate) fn read_array<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<[u8; N], ScrubError> {
        let mut bytes = [0u8; N];
        self.read_exact(&mut bytes, what)?;
        Ok(bytes)
    }

    pub(crate) fn read_u8(&mut self, what: &'static str) -> Result<u8, ScrubError> {
        Ok(self.read_array::<1>(what)?[0])
    }

    /// Reads `len` bytes into memory, refusing before allocating if `len` is above `limit`.
    pub(crate) fn read_vec(
        &mut self,
        len: u64,
        limit: u64,
        what: &'static str,
    ) -> Result<Vec<u8>, ScrubError> {
        if len > limit {
            return Err(ScrubError::TooLarge {
                kind: self.kind,
                what,
                size: len,
                limit,
            });
        }
        let len =
            usize::try_from(len).map_err(|_| self.malformed("length does not fit in memory"))?;
        let mut bytes = vec![0u8; len];
        self.read_exact(&mut bytes, what)?;
        Ok(bytes)
    }

    /// Reads everything up to the end of the file into memory, refusing once more than `limit` bytes came.
    pub(crate) fn read_to_end_capped(
        &mut self,
        limit: u64,
        what: &'static str,
    ) -> Result<Vec<u8>, ScrubError> {
        let mut bytes = Vec::new();
        loop {
            let available = self.buffered()?;
            if available.is_empty() {
                return Ok(bytes);
            }
            let take = available.len();
            if (bytes.len() + take) as u64 > limit {
                return Err(ScrubError::TooLarge {
                    kind: self.kind,
                    what,
                    size: (bytes.len() + take) as u64,
                    limit,
                });
            }
            bytes.extend_from_slice(available);
            self.consume(take);
        }
    }

    /// Streams exactly `len` bytes to `out`, handing each piece to `inspect` first (for checksums).
    pub(crate) fn copy_inspect(
        &mut self,
        mut len: u64,
        out: &mut impl Write,
        what: &'static str,
        mut inspect: impl FnMut(&[u8]),
    ) -> Result<(), ScrubError> {
        while len > 0 {
            let available = self.buffered()?;
            if available.is_empty() {
                return Err(self.truncated(what));
            }
            let take = available
                .len()
                .min(usize::try_from(len).unwrap_or(usize::MAX));
            let piece = &available[..take];
            inspect(piece);
            out.write_all(piece)?;
            self.consume(take);
            len -= take as u64;
        }
        Ok(())
    }

    pub(crate) fn copy(
        &mut self,
        len: u64,
        out: &mut impl Write,
        what: &'static str,
    ) -> Result<(), ScrubError> {
        self.copy_inspect(len, out, what, |_| {})
    }

    /// Reads and drops exactly `len` bytes.
    pub(crate) fn skip(&mut self, len: u64, what: &'static str) -> Result<(), ScrubError> {
        self.copy(len, &mut std::io::sink(), what)
    }

    /// Reads and drops everything up to the end of the file; returns how many bytes that was.
    pub(crate) fn skip_to_end(&mut self) -> Result<u64, ScrubError> {
        self.copy_to_end(&mut std::io::sink())
    }

    /// Streams everything up to the end of the file; returns how many bytes that was.
    pub(crate) fn copy_to_end(&mut self, out: &mut impl Write) -> Result<u64, ScrubError> {
        let start = self.offset;
        loop {
            let available = self.buffered()?;
            if available.is_empty() {
                return Ok(self.offset - start);
            }
            let take = available.len();
            out.write_all(available)?;
            self.consume(take);
        }
    }
}

/// The list of removed parts, each named once however often it occurred.
#[derive(Default)]
pub(crate) struct Removed(Vec<String>);

impl Removed {
    pub(crate) fn add(&mut self, what: impl Into<String>) {
        let what = what.into();
        if !self.0.contains(&what) {
            self.0.push(what);
        }
    }

    pub(crate) fn into_vec(self) -> Vec<String> {
        self.0
    }
}

/// A writer that writes zeros in place of what it is given: blanks a streamed payload without buffering it.
pub(crate) struct Zeroing<'a, W: Write>(pub(crate) &'a mut W);

impl<W: Write> Write for Zeroing<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        const ZEROS: [u8; 4096] = [0; 4096];
        let len = buf.len().min(ZEROS.len());
        self.0.write_all(&ZEROS[..len])?;
        Ok(len)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}
