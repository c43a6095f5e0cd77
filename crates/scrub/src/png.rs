//! PNG: keeps the critical chunks and the ancillary chunks that change how the pixels look or animate; drops every
//! other ancillary chunk (eXIf, tEXt, zTXt, iTXt with its XMP, tIME, and chunks it does not know, which may carry
//! anything). Kept chunks are streamed byte for byte and their CRC is checked, so the output is a valid PNG.

use std::io::{Read, Write};

use crate::ScrubError;
use crate::crc32::Crc32;
use crate::input::{Input, Removed};

pub(crate) const SIGNATURE: &[u8; 8] = b"\x89PNG\r\n\x1a\n";

/// Largest chunk length the PNG specification allows.
const MAX_CHUNK_LEN: u32 = 0x7FFF_FFFF;

/// Ancillary chunks that affect rendering (colour, transparency, pixel size, animation), kept.
const KEPT_ANCILLARY: [&[u8; 4]; 15] = [
    b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT", b"bKGD", b"hIST", b"pHYs", b"sPLT",
    b"cICP", b"mDCV", b"cLLI", b"acTL", b"fcTL",
];
/// APNG frame data: ancillary by its name, but it is image data and may be large, so it is kept and streamed.
const APNG_FRAME_DATA: &[u8; 4] = b"fdAT";

pub(crate) fn scrub<R: Read>(
    input: &mut Input<R>,
    out: &mut impl Write,
    removed: &mut Removed,
) -> Result<(), ScrubError> {
    let signature: [u8; 8] = input.read_array("the signature")?;
    if &signature != SIGNATURE {
        return Err(input.malformed_at(0, "bad signature"));
    }
    out.write_all(&signature)?;
    let mut first = true;
    loop {
        let chunk_start = input.offset();
        let header: [u8; 8] = input.read_array("a chunk header (no IEND chunk)")?;
        let length = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let chunk_type: [u8; 4] = [header[4], header[5], header[6], header[7]];
        let name = String::from_utf8_lossy(&chunk_type).into_owned();
        if length > MAX_CHUNK_LEN {
            return Err(
                input.malformed_at(chunk_start, format!("chunk {name:?} claims {length} bytes"))
            );
        }
        if !chunk_type.iter().all(u8::is_ascii_alphabetic) {
            return Err(
                input.malformed_at(chunk_start, format!("invalid chunk type {chunk_type:02X?}"))
            );
        }
        if first && (&chunk_type != b"IHDR" || length != 13) {
            return Err(input.malformed_at(chunk_start, "the first chunk is not a 13-byte IHDR"));
        }
        first = false;
        if keep(&chunk_type) {
            out.write_all(&header)?;
            let mut crc = Crc32::new();
            crc.update(&chunk_type);
            input.copy_inspect(u64::from(length), out, "chunk data", |piece| {
                crc.update(piece)
            })?;
            let stored: [u8; 4] = input.read_array("a chunk CRC")?;
            if u32::from_be_bytes(stored) != crc.finish() {
                return Err(
                    input.malformed_at(chunk_start, format!("CRC mismatch in chunk {name:?}"))
                );
            }
            out.write_all(&stored)?;
        } else {
            input.skip(u64::from(length) + 4, "chunk data")?;
            removed.add(describe_dropped(&chunk_type, &name));
        }
        if &chunk_type == b"IEND" {
            if input.skip_to_end()? > 0 {
                removed.add("data after IEND");
            }
            return Ok(());
        }
    }
}

fn keep(chunk_type: &[u8; 4]) -> bool {
    let critical = chunk_type[0].is_ascii_uppercase();
    critical || chunk_type == APNG_FRAME_DATA || KEPT_ANCILLARY.contains(&chunk_type)
}

fn describe_dropped(chunk_type: &[u8; 4], name: &str) -> String {
    match chunk_type {
        b"eXIf" => "eXIf (EXIF)".into(),
        b"iTXt" => "iTXt (text, XMP)".into(),
        b"tEXt" | b"zTXt" => format!("{name} (text)"),
        b"tIME" => "tIME (modification time)".into(),
        _ => format!("{name} (unknown ancillary chunk)"),
    }
}

#[cfg(test)]
mod tests {
    use super::keep;

    #[test]
    fn keeps_critical_and_rendering_chunks_only() {
        for kept in [
            b"IHDR", b"PLTE", b"IDAT", b"IEND", b"iCCP", b"sRGB", b"tRNS", b"acTL", b"fdAT",
        ] {
            assert!(keep(kept), "{kept:?}");
        }
        for dropped in [
            b"eXIf", b"tEXt", b"zTXt", b"iTXt", b"tIME", b"caBX", b"prVt",
        ] {
            assert!(!keep(dropped), "{dropped:?}");
        }
    }
}
