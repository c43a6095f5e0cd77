//! Ogg Vorbis and Ogg Opus: the comment packet (Vorbis comments, `OpusTags`) is replaced by an empty one (no
//! comments, an empty vendor string), without re-encoding. Only the pages that held the comment packet (and, for
//! Vorbis, the setup packet that may share its last page) are paginated anew; the setup packet's bytes, the
//! identification page and every audio page's bytes are kept, and the audio pages only get new sequence numbers
//! (the header pages may now be fewer) and the CRCs that go with them.
//!
//! Only a file holding one logical stream is scrubbed: a chained or multiplexed file (a second serial number, a
//! second beginning of stream) is refused as [`ScrubError::Unsupported`], as is a first stream of another codec
//! (Theora, FLAC in Ogg, Speex), so such files are reported as keeping metadata.

use std::io::{Read, Write};

use crate::input::{Input, Removed};
use crate::{FileKind, ScrubError};

/// The header packets kept in memory (the setup packet of Vorbis holds codebooks, normally a few kB).
pub const MAX_OGG_HEADERS: u64 = 16 * 1024 * 1024;

const CONTINUED: u8 = 0x01;
const BEGINNING: u8 = 0x02;
const END: u8 = 0x04;
/// Granule position of a page on which no packet ends.
const NO_GRANULE: u64 = u64::MAX;

/// Ogg's CRC-32: polynomial 0x04C11DB7, not reflected, initial value 0, no final xor (unlike PNG's [`crate::crc32`]).
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut n = 0;
    while n < 256 {
        let mut c = (n as u32) << 24;
        let mut k = 0;
        while k < 8 {
            c = if c & 0x8000_0000 != 0 {
                (c << 1) ^ 0x04C1_1DB7
            } else {
                c << 1
            };
            k += 1;
        }
        table[n] = c;
        n += 1;
    }
    table
};

/// The Ogg CRC of `bytes` (a whole page with its CRC field zeroed).
pub(crate) fn ogg_crc(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0u32, |crc, &b| {
        (crc << 8) ^ CRC_TABLE[(((crc >> 24) as u8) ^ b) as usize]
    })
}

/// One Ogg page.
pub(crate) struct Page {
    pub(crate) header_type: u8,
    pub(crate) granule: u64,
    pub(crate) serial: u32,
    pub(crate) sequence: u32,
    pub(crate) lacing: Vec<u8>,
    pub(crate) body: Vec<u8>,
}

impl Page {
    /// The page's bytes with its CRC computed.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(27 + self.lacing.len() + self.body.len());
        bytes.extend_from_slice(b"OggS\0");
        bytes.push(self.header_type);
        bytes.extend_from_slice(&self.granule.to_le_bytes());
        bytes.extend_from_slice(&self.serial.to_le_bytes());
        bytes.extend_from_slice(&self.sequence.to_le_bytes());
        bytes.extend_from_slice(&[0; 4]);
        // At most 255 segments: the fields are built so.
        bytes.push(self.lacing.len() as u8);
        bytes.extend_from_slice(&self.lacing);
        bytes.extend_from_slice(&self.body);
        let crc = ogg_crc(&bytes);
        bytes[22..26].copy_from_slice(&crc.to_le_bytes());
        bytes
    }

    /// Whether the last packet on this page goes on to the next page.
    fn ends_open(&self) -> bool {
        self.lacing.last() == Some(&255)
    }
}

/// Reads one page, checking its capture pattern, version and CRC. `None` at the end of the file.
fn read_page<R: Read>(input: &mut Input<R>) -> Result<Option<Page>, ScrubError> {
    if input.at_eof()? {
        return Ok(None);
    }
    let start = input.offset();
    let header: [u8; 27] = input.read_array("an Ogg page header")?;
    if &header[0..4] != b"OggS" {
        return Err(input.malformed_at(start, "no Ogg capture pattern"));
    }
    if header[4] != 0 {
        return Err(input.malformed_at(start, "unknown Ogg version"));
    }
    let field = |at: usize| [header[at], header[at + 1], header[at + 2], header[at + 3]];
    let granule = u64::from_le_bytes([
        header[6], header[7], header[8], header[9], header[10], header[11], header[12], header[13],
    ]);
    let count = u64::from(header[26]);
    // A page is at most 27 + 255 + 255 * 255 bytes: these reads are bounded by the format.
    let lacing = input.read_vec(count, 255, "an Ogg segment table")?;
    let body_len: u64 = lacing.iter().map(|&l| u64::from(l)).sum();
    let body = input.read_vec(body_len, 255 * 255, "an Ogg page body")?;
    let page = Page {
        header_type: header[5],
        granule,
        serial: u32::from_le_bytes(field(14)),
        sequence: u32::from_le_bytes(field(18)),
        lacing,
        body,
    };
    if page.header_type & !(CONTINUED | BEGINNING | END) != 0 {
        return Err(input.malformed_at(start, "unknown Ogg page flags"));
    }
    let stored = u32::from_le_bytes(field(22));
    let bytes = page.to_bytes();
    if bytes[22..26] != stored.to_le_bytes() {
        return Err(input.malformed_at(start, "Ogg page CRC mismatch"));
    }
    Ok(Some(page))
}

fn unsupported(what: &'static str) -> ScrubError {
    ScrubError::Unsupported {
        kind: FileKind::Ogg,
        what,
    }
}

/// The codec of the first stream, from its identification packet.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Codec {
    Vorbis,
    Opus,
}

impl Codec {
    /// The header packets after the identification one: Vorbis comment and setup, Opus tags.
    fn later_headers(self) -> usize {
        match self {
            Codec::Vorbis => 2,
            Codec::Opus => 1,
        }
    }

    fn empty_comments(self) -> &'static [u8] {
        match self {
            // Vendor length 0, comment count 0 (little-endian), framing bit.
            Codec::Vorbis => b"\x03vorbis\0\0\0\0\0\0\0\0\x01",
            Codec::Opus => b"OpusTags\0\0\0\0\0\0\0\0",
        }
    }

    fn comment_magic(self) -> &'static [u8] {
        match self {
            Codec::Vorbis => b"\x03vorbis",
            Codec::Opus => b"OpusTags",
        }
    }
}

pub(crate) fn scrub<R: Read>(
    input: &mut Input<R>,
    out: &mut impl Write,
    removed: &mut Removed,
) -> Result<(), ScrubError> {
    let first = read_page(input)?.ok_or_else(|| input.malformed("empty Ogg file"))?;
    if first.header_type != BEGINNING {
        return Err(input.malformed_at(0, "the first Ogg page does not begin a stream"));
    }
    let codec = if first.body.starts_with(b"\x01vorbis") {
        Codec::Vorbis
    } else if first.body.starts_with(b"OpusHead") {
        Codec::Opus
    } else {
        return Err(unsupported(
            "an Ogg stream that is neither Vorbis nor Opus (its comments are not scrubbed)",
        ));
    };
    // The identification packet is alone on the first page (both codecs require it).
    if first.ends_open() || first.lacing.iter().filter(|&&l| l < 255).count() != 1 {
        return Err(input.malformed_at(0, "the identification packet is not alone on its page"));
    }
    let serial = first.serial;
    out.write_all(&first.to_bytes())?;

    // Collect the later header packets: the comment packet only up to 16 bytes (enough to
    // recognise an already empty one; the rest is dropped), the setup
    // packet whole.
    let wanted = codec.later_headers();
    let mut packets: Vec<Vec<u8>> = vec![Vec::new()];
    let mut comment_len = 0u64;
    let mut held = 0u64;
    let mut open = false;
    while packets.len() <= wanted {
        let page = read_page(input)?.ok_or_else(|| input.malformed("the Ogg headers end early"))?;
        if page.serial != serial || page.header_type & BEGINNING != 0 {
            return Err(unsupported(
                "a chained or multiplexed Ogg file (more than one stream): not scrubbed",
            ));
        }
        if (page.header_type & CONTINUED != 0) != open {
            return Err(input.malformed("Ogg page continuation flag does not match"));
        }
        if page.header_type & END != 0 {
            return Err(input.malformed("the Ogg stream ends inside its headers"));
        }
        let mut at = 0usize;
        for (i, &len) in page.lacing.iter().enumerate() {
            let count = packets.len();
            let Some(current) = packets.last_mut() else {
                break;
            };
            let segment = page.body.get(at..at + usize::from(len)).unwrap_or_default();
            at += usize::from(len);
            if count == 1 {
                comment_len += u64::from(len);
                let room = 16usize.saturating_sub(current.len()).min(segment.len());
                current.extend_from_slice(&segment[..room]);
            } else {
                held += u64::from(len);
                if held > MAX_OGG_HEADERS {
                    return Err(ScrubError::TooLarge {
                        kind: FileKind::Ogg,
                        what: "header packet",
                        size: held,
                        limit: MAX_OGG_HEADERS,
                    });
                }
                current.extend_from_slice(segment);
            }
            if len < 255 {
                if count == wanted {
                    if i + 1 != page.lacing.len() {
                        return Err(
                            input.malformed("Ogg audio data shares a page with the headers")
                        );
                    }
                    packets.push(Vec::new());
                    break;
                }
                packets.push(Vec::new());
            }
        }
        open = page.ends_open();
    }
    packets.truncate(wanted);
    let comment = packets.first().map(Vec::as_slice).unwrap_or_default();
    if !comment.starts_with(codec.comment_magic()) {
        return Err(input.malformed("the second Ogg packet is not a comment header"));
    }
    let empty = codec.empty_comments();
    if comment_len != empty.len() as u64 || comment != &empty[..comment.len()] {
        removed.add(match codec {
            Codec::Vorbis => "Ogg Vorbis comments",
            Codec::Opus => "Opus tags",
        });
    }
    packets[0] = empty.to_vec();

    let mut sequence = first.sequence;
    for page in paginate(&packets, serial) {
        sequence = sequence.wrapping_add(1);
        out.write_all(&Page { sequence, ..page }.to_bytes())?;
    }
    let mut ended = false;
    while let Some(page) = read_page(input)? {
        if page.serial != serial || page.header_type & BEGINNING != 0 || ended {
            return Err(unsupported(
                "a chained or multiplexed Ogg file (more than one stream): not scrubbed",
            ));
        }
        ended = page.header_type & END != 0;
        sequence = sequence.wrapping_add(1);
        out.write_all(&Page { sequence, ..page }.to_bytes())?;
    }
    Ok(())
}

/// Lays `packets` out on pages of at most 255 segments; each packet ends with a segment shorter than 255. Sequence
/// numbers are left 0 for the caller.
fn paginate(packets: &[Vec<u8>], serial: u32) -> Vec<Page> {
    // (segment length, packet index, offset in packet)
    let mut segments: Vec<(u8, usize, usize)> = Vec::new();
    for (index, packet) in packets.iter().enumerate() {
        let mut at = 0;
        loop {
            let len = (packet.len() - at).min(255);
            segments.push((len as u8, index, at));
            at += len;
            if len < 255 {
                break;
            }
        }
    }
    let mut pages = Vec::new();
    let mut continued = false;
    for chunk in segments.chunks(255) {
        let mut page = Page {
            header_type: if continued { CONTINUED } else { 0 },
            granule: NO_GRANULE,
            serial,
            sequence: 0,
            lacing: Vec::with_capacity(chunk.len()),
            body: Vec::new(),
        };
        for &(len, index, at) in chunk {
            page.lacing.push(len);
            page.body
                .extend_from_slice(&packets[index][at..at + usize::from(len)]);
            if len < 255 {
                // Header packets have granule position 0.
                page.granule = 0;
            }
        }
        continued = page.ends_open();
        pages.push(page);
    }
    pages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crc_is_ogg_s() {
        // CRC-32 with polynomial 0x04C11DB7, init 0, no reflection, no final xor: "123456789" gives the
        // complement of the POSIX cksum check value 0x765E7680.
        assert_eq!(ogg_crc(b"123456789"), 0x89A1_897F);
    }
}
