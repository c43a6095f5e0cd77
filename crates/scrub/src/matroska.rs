//! Matroska and WebM: the `Tags` elements of the segment (encoder, title, artist, any user tag) and the `Title` of
//! the segment's `Info` become `Void` elements of the same size, so nothing moves: the `SeekHead` and `Cues`
//! positions stay true and no cluster is touched.
//!
//! A child of the segment of unknown size (a live recording's clusters) cannot be stepped over without reading
//! inside it, so such a file fails closed as [`ScrubError::Unsupported`]. Not blanked: `MuxingApp` and `WritingApp`
//! in `Info` (mandatory; they name the software, e.g. `Lavf60.3.100`).

use std::io::{Read, Write};

use crate::input::{Input, Removed};
use crate::{FileKind, ScrubError};

const EBML_HEADER: u32 = 0x1A45_DFA3;
const SEGMENT: u32 = 0x1853_8067;
const TAGS: u32 = 0x1254_C367;
const INFO: u32 = 0x1549_A966;
const TITLE: u32 = 0x7BA9;
/// Largest `Info` element held in memory (it holds a few short fields).
const MAX_INFO: u64 = 1 << 20;

/// An element header: its ID (with the marker bits, as written in the specifications), the size of its data
/// (`None` when unknown) and how many bytes the header took.
struct Header {
    id: u32,
    size: Option<u64>,
    len: u64,
}

pub(crate) fn scrub<R: Read>(
    input: &mut Input<R>,
    out: &mut impl Write,
    removed: &mut Removed,
) -> Result<(), ScrubError> {
    let ebml = read_header(input, out)?;
    if ebml.id != EBML_HEADER {
        return Err(input.malformed_at(0, "not an EBML header"));
    }
    let size = known(input, ebml.size)?;
    input.copy(size, out, "the EBML header")?;
    while !input.at_eof()? {
        let top = read_header(input, out)?;
        if top.id != SEGMENT {
            let size = known(input, top.size)?;
            input.copy(size, out, "a top-level element")?;
            continue;
        }
        let mut remaining = top.size;
        while remaining != Some(0) && !input.at_eof()? {
            let mut header_bytes = Vec::with_capacity(12);
            let child = read_header(input, &mut header_bytes)?;
            let Some(size) = child.size else {
                return Err(ScrubError::Unsupported {
                    kind: FileKind::Matroska,
                    what: "a Matroska element of unknown size (a live recording): its tags cannot be checked",
                });
            };
            let total = child.len + size;
            if let Some(left) = remaining {
                remaining = Some(left.checked_sub(total).ok_or_else(|| {
                    input.malformed("an element runs past the end of its segment")
                })?);
            }
            match child.id {
                TAGS => {
                    input.skip(size, "a Tags element")?;
                    write_void(out, total)?;
                    removed.add("Matroska tags");
                }
                INFO => {
                    let mut info = input.read_vec(size, MAX_INFO, "the segment Info")?;
                    if blank_titles(&mut info).map_err(|reason| input.malformed(reason))? {
                        removed.add("Matroska title");
                    }
                    out.write_all(&header_bytes)?;
                    out.write_all(&info)?;
                }
                _ => {
                    out.write_all(&header_bytes)?;
                    input.copy(size, out, "a segment element")?;
                }
            }
        }
    }
    Ok(())
}

fn known<R: Read>(input: &Input<R>, size: Option<u64>) -> Result<u64, ScrubError> {
    size.ok_or_else(|| input.malformed("an element of unknown size where a size is needed"))
}

/// Reads an element header, copying its bytes to `out`.
fn read_header<R: Read>(input: &mut Input<R>, out: &mut impl Write) -> Result<Header, ScrubError> {
    let (id, id_len, _) = read_vint(input, out, 4, "an element ID")?;
    let (size, size_len, unknown) = read_vint(input, out, 8, "an element size")?;
    let marker = 1u64 << (7 * id_len);
    Ok(Header {
        id: u32::try_from(id | marker).map_err(|_| input.malformed("element ID too long"))?,
        size: (!unknown).then_some(size),
        len: u64::from(id_len + size_len),
    })
}

/// An EBML variable-length integer of at most `max` bytes: (value without the marker, length, all value bits set).
fn read_vint<R: Read>(
    input: &mut Input<R>,
    out: &mut impl Write,
    max: u32,
    what: &'static str,
) -> Result<(u64, u32, bool), ScrubError> {
    let first = input.read_u8(what)?;
    let len = first.leading_zeros() + 1;
    if first == 0 || len > max {
        return Err(input.malformed(format!("invalid {what}")));
    }
    out.write_all(&[first])?;
    let mut value = u64::from(first) & ((1u64 << (8 - len)) - 1);
    for _ in 1..len {
        let byte = input.read_u8(what)?;
        out.write_all(&[byte])?;
        value = (value << 8) | u64::from(byte);
    }
    let all_ones = value == (1u64 << (7 * len)) - 1;
    Ok((value, len, all_ones))
}

/// A `Void` element (ID 0xEC) of exactly `total` bytes (at least 2: an element header is at least that).
fn write_void(out: &mut impl Write, total: u64) -> Result<(), ScrubError> {
    let mut header = Vec::with_capacity(9);
    header.push(0xEC);
    if total >= (1u64 << 56) {
        return Err(ScrubError::Malformed {
            kind: FileKind::Matroska,
            offset: 0,
            reason: "an element too large to blank".into(),
        });
    }
    if total >= 9 {
        // An 8-byte size: 0x01 then the value in 7 bytes.
        header.push(0x01);
        header.extend_from_slice(&(total - 9).to_be_bytes()[1..]);
    } else {
        // The size takes the rest of the space and says 0.
        let len = (total - 1) as u32;
        header.push(0x80u8 >> (len - 1));
        header.resize(total as usize, 0);
    }
    out.write_all(&header)?;
    std::io::copy(
        &mut std::io::repeat(0).take(total - header.len() as u64),
        out,
    )?;
    Ok(())
}

/// Turns every `Title` child of an `Info` body into a `Void` of the same size. Returns whether one was found.
fn blank_titles(info: &mut [u8]) -> Result<bool, &'static str> {
    let mut at = 0usize;
    let mut found = false;
    while at < info.len() {
        let (id, id_len) = slice_vint(&info[at..], 4).ok_or("a broken element in Info")?;
        let (size, size_len) =
            slice_vint(&info[at + id_len..], 8).ok_or("a broken element in Info")?;
        let id = id | (1u64 << (7 * id_len));
        let total = id_len as u64 + size_len as u64 + size;
        let end = (at as u64)
            .checked_add(total)
            .filter(|end| *end <= info.len() as u64)
            .ok_or("an element runs past the end of Info")? as usize;
        if id == u64::from(TITLE) {
            let mut void = Vec::with_capacity(total as usize);
            write_void(&mut void, total).map_err(|_| "cannot write a Void element")?;
            info[at..end].copy_from_slice(&void);
            found = true;
        }
        at = end;
    }
    Ok(found)
}

/// A variable-length integer at the start of `bytes`: (value without the marker, length).
fn slice_vint(bytes: &[u8], max: u32) -> Option<(u64, usize)> {
    let first = *bytes.first()?;
    let len = first.leading_zeros() + 1;
    if first == 0 || len > max {
        return None;
    }
    let mut value = u64::from(first) & ((1u64 << (8 - len)) - 1);
    for i in 1..len as usize {
        value = (value << 8) | u64::from(*bytes.get(i)?);
    }
    Some((value, len as usize))
}
