//! MP4/MOV (ISO base media): blanks the boxes that carry metadata (`udta`, `meta`, `©xyz`, `loci`, `XMP_`, and
//! `uuid` boxes holding XMP) by turning each into a `free` box of the same size with a zeroed payload. Nothing moves,
//! so the chunk offsets in `stco`/`co64` stay valid and nothing is re-encoded; every other box is copied byte for
//! byte. `moov` and `moof` are held in memory (under [`MAX_MOVIE_BOX`]) to be walked; `mdat` and every other
//! top-level box are streamed.

use std::io::{Read, Write};

use crate::input::{Input, Removed, Zeroing};
use crate::{FileKind, ScrubError};

/// Largest `moov` or `moof` box the scrubber holds in memory.
pub const MAX_MOVIE_BOX: u64 = 64 * 1024 * 1024;

/// Deepest nesting of container boxes walked inside a movie box.
const MAX_DEPTH: usize = 16;

/// The usertype of the `uuid` box in which Adobe tools store an XMP packet.
pub(crate) const XMP_UUID: [u8; 16] = [
    0xBE, 0x7A, 0xCF, 0xCB, 0x97, 0xA9, 0x42, 0xE8, 0x9C, 0x71, 0x99, 0x94, 0x91, 0xE3, 0xAF, 0xAC,
];

/// Boxes that are blanked wherever they appear: user data, metadata, ISO 6709 location, 3GPP location, XMP.
const METADATA_BOXES: [&[u8; 4]; 5] = [b"udta", b"meta", b"\xA9xyz", b"loci", b"XMP_"];

/// Boxes whose payload is only child boxes, walked to find metadata inside tracks and fragments.
const CONTAINERS: [&[u8; 4]; 10] = [
    b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"dinf", b"mvex", b"moof", b"traf",
];

struct BoxHeader {
    box_type: [u8; 4],
    /// 8, or 16 with a 64-bit size.
    header_len: u64,
    /// The whole box, header included; `None` for size 0 (the box runs to the end of the file).
    total: Option<u64>,
}

pub(crate) fn scrub<R: Read>(
    input: &mut Input<R>,
    out: &mut impl Write,
    removed: &mut Removed,
) -> Result<(), ScrubError> {
    while !input.at_eof()? {
        let box_start = input.offset();
        let head: [u8; 8] = input.read_array("a box header")?;
        let mut header = head.to_vec();
        let parsed = parse_header(&head, box_start, || {
            let large: [u8; 8] = input.read_array("a 64-bit box size")?;
            header.extend_from_slice(&large);
            Ok(u64::from_be_bytes(large))
        })?;
        let payload_len = parsed.total.map(|total| total - parsed.header_len);
        let name = box_name(&parsed.box_type);
        match &parsed.box_type {
            b"moov" | b"moof" => {
                let mut payload = match payload_len {
                    Some(len) => input.read_vec(len, MAX_MOVIE_BOX, "movie box")?,
                    None => input.read_to_end_capped(MAX_MOVIE_BOX, "movie box")?,
                };
                scrub_children(
                    &mut payload,
                    box_start + parsed.header_len,
                    &name,
                    removed,
                    1,
                )?;
                out.write_all(&header)?;
                out.write_all(&payload)?;
            }
            box_type if METADATA_BOXES.contains(&box_type) => {
                header[4..8].copy_from_slice(b"free");
                out.write_all(&header)?;
                blank(input, payload_len, out)?;
                removed.add(name);
            }
            b"uuid" => {
                if payload_len.is_some_and(|len| len < 16) {
                    return Err(input.malformed_at(box_start, "uuid box shorter than its usertype"));
                }
                let usertype: [u8; 16] = input.read_array("a uuid box's usertype")?;
                let rest = payload_len.map(|len| len - 16);
                if usertype == XMP_UUID {
                    header[4..8].copy_from_slice(b"free");
                    out.write_all(&header)?;
                    out.write_all(&[0; 16])?;
                    blank(input, rest, out)?;
                    removed.add("uuid (XMP)");
                } else {
                    out.write_all(&header)?;
                    out.write_all(&usertype)?;
                    copy(input, rest, out)?;
                }
            }
            _ => {
                out.write_all(&header)?;
                copy(input, payload_len, out)?;
            }
        }
        if parsed.total.is_none() {
            break;
        }
    }
    Ok(())
}

fn copy<R: Read>(
    input: &mut Input<R>,
    len: Option<u64>,
    out: &mut impl Write,
) -> Result<(), ScrubError> {
    match len {
        Some(len) => input.copy(len, out, "a box"),
        None => input.copy_to_end(out).map(|_| ()),
    }
}

fn blank<R: Read>(
    input: &mut Input<R>,
    len: Option<u64>,
    out: &mut impl Write,
) -> Result<(), ScrubError> {
    copy(input, len, &mut Zeroing(out))
}

fn malformed(offset: u64, reason: String) -> ScrubError {
    ScrubError::Malformed {
        kind: FileKind::Mp4,
        offset,
        reason,
    }
}

/// Parses the 8 header bytes of the box at `offset`; `read_large` supplies the 64-bit size when the 32-bit size
/// is 1.
fn parse_header(
    head: &[u8; 8],
    offset: u64,
    read_large: impl FnOnce() -> Result<u64, ScrubError>,
) -> Result<BoxHeader, ScrubError> {
    let size = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    let box_type = [head[4], head[5], head[6], head[7]];
    let (header_len, total) = match size {
        0 => (8, None),
        1 => {
            let large = read_large()?;
            if large < 16 {
                return Err(malformed(
                    offset,
                    format!("box {} has 64-bit size {large}", box_name(&box_type)),
                ));
            }
            (16, Some(large))
        }
        small if small < 8 => {
            return Err(malformed(
                offset,
                format!("box {} has size {small}", box_name(&box_type)),
            ));
        }
        size => (8, Some(u64::from(size))),
    };
    Ok(BoxHeader {
        box_type,
        header_len,
        total,
    })
}

/// Walks the child boxes in `payload` (the payload of the container at `path`, starting at file offset `base`),
/// blanking metadata boxes and descending into containers.
fn scrub_children(
    payload: &mut [u8],
    base: u64,
    path: &str,
    removed: &mut Removed,
    depth: usize,
) -> Result<(), ScrubError> {
    let mut pos = 0usize;
    while pos < payload.len() {
        let offset = base + pos as u64;
        let rest = &payload[pos..];
        if rest.len() < 8 {
            // QuickTime may end a container with a 32-bit zero terminator.
            if rest.iter().all(|&b| b == 0) {
                break;
            }
            return Err(malformed(
                offset,
                format!("{} stray bytes at the end of {path}", rest.len()),
            ));
        }
        let head = [
            rest[0], rest[1], rest[2], rest[3], rest[4], rest[5], rest[6], rest[7],
        ];
        let parsed = parse_header(&head, offset, || match rest.get(8..16) {
            Some(large) => Ok(u64::from_be_bytes([
                large[0], large[1], large[2], large[3], large[4], large[5], large[6], large[7],
            ])),
            None => Err(malformed(
                offset,
                format!("64-bit box size cut off at the end of {path}"),
            )),
        })?;
        let total = match parsed.total {
            // Size 0 inside a container: the box runs to the end of its parent.
            None => rest.len() as u64,
            Some(total) => total,
        };
        let name = box_name(&parsed.box_type);
        if total > rest.len() as u64 || parsed.header_len > total {
            return Err(malformed(
                offset,
                format!(
                    "box {name} of {total} bytes overruns {path}, which has {} bytes left",
                    rest.len()
                ),
            ));
        }
        // Both fit in `rest`, whose length is a usize.
        let total = total as usize;
        let header_len = parsed.header_len as usize;
        let child = &mut payload[pos..pos + total];
        let child_path = format!("{path}/{name}");
        let is_xmp_uuid = &parsed.box_type == b"uuid"
            && child.get(header_len..header_len + 16) == Some(&XMP_UUID[..]);
        if METADATA_BOXES.contains(&&parsed.box_type) || is_xmp_uuid {
            child[4..8].copy_from_slice(b"free");
            child[header_len..].fill(0);
            removed.add(if is_xmp_uuid {
                format!("{child_path} (XMP)")
            } else {
                child_path
            });
        } else if CONTAINERS.contains(&&parsed.box_type) {
            if depth >= MAX_DEPTH {
                return Err(malformed(
                    offset,
                    format!("boxes nested deeper than {MAX_DEPTH} levels"),
                ));
            }
            scrub_children(
                &mut child[header_len..],
                offset + parsed.header_len,
                &child_path,
                removed,
                depth + 1,
            )?;
        }
        pos += total;
    }
    Ok(())
}

/// A box type as text; the © of QuickTime's user-data keys is shown as such.
fn box_name(box_type: &[u8; 4]) -> String {
    box_type
        .iter()
        .map(|&b| match b {
            0xA9 => '©',
            b if b.is_ascii_graphic() || b == b' ' => char::from(b),
            _ => '?',
        })
        .collect()
}
