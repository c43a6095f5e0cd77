//! MP3: ID3v2 tags at the start (each of them, with their footer if any) and the ID3v1 tag (`TAG`, and the
//! extended `TAG+` before it) in the last bytes are removed; the audio frames are copied byte for byte. Tags this
//! does not remove fail closed: an APEv2 tag or an appended ID3v2 tag (`3DI` footer) at the end is
//! [`ScrubError::Unsupported`].

use std::io::{Read, Write};

use crate::input::{Input, Removed};
use crate::{FileKind, ScrubError};

/// ID3v1 (128 bytes) plus the extended `TAG+` block before it (227 bytes).
const TAIL: usize = 128 + 227;

pub(crate) fn scrub<R: Read>(
    input: &mut Input<R>,
    out: &mut impl Write,
    removed: &mut Removed,
) -> Result<(), ScrubError> {
    // The rest streams through, holding back the last bytes where ID3v1 lives.
    let mut tail: Vec<u8> = Vec::with_capacity(2 * TAIL);
    // ID3v2 tags at the start (a file may carry several, one after the other).
    loop {
        let mut probe = [0u8; 3];
        let got = read_up_to(input, &mut probe)?;
        if got < 3 || &probe != b"ID3" {
            tail.extend_from_slice(&probe[..got]);
            break;
        }
        let header: [u8; 7] = input.read_array("an ID3v2 header")?;
        let size = syncsafe(&header[3..7])
            .ok_or_else(|| input.malformed_at(input.offset() - 4, "ID3v2 size is not syncsafe"))?;
        let footer = if header[2] & 0x10 != 0 { 10 } else { 0 };
        input.skip(size + footer, "an ID3v2 tag")?;
        removed.add("ID3v2 tag");
    }
    loop {
        let available = input.buffered()?;
        if available.is_empty() {
            break;
        }
        let take = available.len();
        tail.extend_from_slice(available);
        input.consume(take);
        if tail.len() > TAIL {
            let flush = tail.len() - TAIL;
            out.write_all(&tail[..flush])?;
            tail.drain(..flush);
        }
    }
    let mut keep = tail.len();
    if keep >= 128 && tail[keep - 128..].starts_with(b"TAG") {
        keep -= 128;
        removed.add("ID3v1 tag");
        if keep >= 227 && tail[keep - 227..].starts_with(b"TAG+") {
            keep -= 227;
        }
    }
    let end = &tail[..keep];
    if end.windows(8).any(|w| w == b"APETAGEX") {
        return Err(ScrubError::Unsupported {
            kind: FileKind::Mp3,
            what: "an APEv2 tag at the end of the MP3",
        });
    }
    if end.len() >= 10 && end[end.len() - 10..].starts_with(b"3DI") {
        return Err(ScrubError::Unsupported {
            kind: FileKind::Mp3,
            what: "an ID3v2 tag at the end of the MP3",
        });
    }
    out.write_all(end)?;
    Ok(())
}

/// Reads up to `buf.len()` bytes; fewer only at the end of the file.
fn read_up_to<R: Read>(input: &mut Input<R>, buf: &mut [u8]) -> Result<usize, ScrubError> {
    let mut got = 0;
    while got < buf.len() {
        let available = input.buffered()?;
        if available.is_empty() {
            break;
        }
        let take = available.len().min(buf.len() - got);
        buf[got..got + take].copy_from_slice(&available[..take]);
        input.consume(take);
        got += take;
    }
    Ok(got)
}

/// A 28-bit ID3 "syncsafe" integer (7 bits per byte).
fn syncsafe(bytes: &[u8]) -> Option<u64> {
    bytes.iter().try_fold(0u64, |acc, &b| {
        (b & 0x80 == 0).then_some((acc << 7) | u64::from(b))
    })
}
