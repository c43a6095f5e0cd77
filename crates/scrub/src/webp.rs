//! WebP (RIFF): drops the EXIF and XMP chunks and any chunk it does not know, clears the EXIF and XMP flags of the
//! VP8X header and writes the new RIFF size. The image chunks are copied byte for byte.
//!
//! The RIFF size comes first in the file but depends on what is dropped after the image data, so the whole RIFF
//! body is held in memory: WebP files are limited to 4 GiB by their format and are small in practice, and a body
//! larger than [`MAX_WEBP_BODY`] is refused rather than buffered.

use std::io::{Read, Write};

use crate::input::{Input, Removed};
use crate::{FileKind, ScrubError};

/// Largest RIFF body the scrubber holds in memory.
pub const MAX_WEBP_BODY: u64 = 64 * 1024 * 1024;

const VP8X_FLAG_EXIF: u8 = 0x08;
const VP8X_FLAG_XMP: u8 = 0x04;

/// Chunks that hold the image or how to show it, kept.
const KEPT: [&[u8; 4]; 7] = [
    b"VP8X", b"ICCP", b"ANIM", b"ANMF", b"ALPH", b"VP8 ", b"VP8L",
];
const IMAGE_DATA: [&[u8; 4]; 3] = [b"VP8 ", b"VP8L", b"ANMF"];

pub(crate) fn scrub<R: Read>(
    input: &mut Input<R>,
    out: &mut impl Write,
    removed: &mut Removed,
) -> Result<(), ScrubError> {
    let header: [u8; 12] = input.read_array("the RIFF header")?;
    if &header[0..4] != b"RIFF" || &header[8..12] != b"WEBP" {
        return Err(input.malformed_at(0, "not a RIFF WEBP header"));
    }
    let riff_size = u64::from(u32::from_le_bytes([
        header[4], header[5], header[6], header[7],
    ]));
    // The RIFF size counts the "WEBP" tag and the chunks.
    let Some(mut remaining) = riff_size.checked_sub(4) else {
        return Err(input.malformed_at(4, format!("RIFF size {riff_size} is too small")));
    };
    if remaining > MAX_WEBP_BODY {
        return Err(ScrubError::TooLarge {
            kind: FileKind::Webp,
            what: "RIFF body",
            size: remaining,
            limit: MAX_WEBP_BODY,
        });
    }
    // Each kept chunk: its type, its declared size, its payload with the pad byte.
    let mut kept: Vec<([u8; 4], u32, Vec<u8>)> = Vec::new();
    while remaining > 0 {
        let chunk_start = input.offset();
        if remaining < 8 {
            return Err(input.malformed_at(chunk_start, "RIFF size ends inside a chunk header"));
        }
        let chunk_header: [u8; 8] = input.read_array("a chunk header")?;
        let fourcc = [
            chunk_header[0],
            chunk_header[1],
            chunk_header[2],
            chunk_header[3],
        ];
        let declared = u32::from_le_bytes([
            chunk_header[4],
            chunk_header[5],
            chunk_header[6],
            chunk_header[7],
        ]);
        let size = u64::from(declared);
        let padded = size + (size & 1);
        if 8 + padded > remaining {
            let name = String::from_utf8_lossy(&fourcc).into_owned();
            return Err(input.malformed_at(
                chunk_start,
                format!("chunk {name:?} of {size} bytes overruns the RIFF size"),
            ));
        }
        remaining -= 8 + padded;
        if KEPT.contains(&&fourcc) {
            // Bounded: the whole body was checked against MAX_WEBP_BODY.
            let mut payload = input.read_vec(padded, MAX_WEBP_BODY, "chunk data")?;
            if &fourcc == b"VP8X" {
                let Some(flags) = payload.first_mut().filter(|_| size >= 10) else {
                    return Err(input.malformed_at(chunk_start, "VP8X chunk shorter than 10 bytes"));
                };
                *flags &= !(VP8X_FLAG_EXIF | VP8X_FLAG_XMP);
            }
            kept.push((fourcc, declared, payload));
        } else {
            input.skip(padded, "chunk data")?;
            removed.add(match &fourcc {
                b"EXIF" => "EXIF chunk".to_string(),
                b"XMP " => "XMP chunk".to_string(),
                _ => format!("{} chunk (unknown)", String::from_utf8_lossy(&fourcc)),
            });
        }
    }
    if !kept
        .iter()
        .any(|(fourcc, _, _)| IMAGE_DATA.contains(&fourcc))
    {
        return Err(input.malformed("no image data chunk"));
    }
    let body: u64 = kept
        .iter()
        .map(|(_, _, payload)| 8 + payload.len() as u64)
        .sum();
    // Smaller than the input's RIFF size, which fitted in a u32.
    let new_riff_size = u32::try_from(body + 4).unwrap_or(u32::MAX);
    out.write_all(b"RIFF")?;
    out.write_all(&new_riff_size.to_le_bytes())?;
    out.write_all(b"WEBP")?;
    for (fourcc, size, payload) in &kept {
        out.write_all(fourcc)?;
        out.write_all(&size.to_le_bytes())?;
        out.write_all(payload)?;
    }
    if input.skip_to_end()? > 0 {
        removed.add("data after the RIFF body");
    }
    Ok(())
}
