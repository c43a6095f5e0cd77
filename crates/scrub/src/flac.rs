//! FLAC: the Vorbis comment block is emptied (no comments, an empty vendor string: both are allowed by the format,
//! and the vendor names the encoding software), picture and application blocks are dropped. Stream info, seek
//! table, cue sheet and padding blocks and every audio frame are copied byte for byte; seek points count from the
//! first frame, so removing metadata before it moves nothing they point at.

use std::io::{Read, Write};

use crate::input::{Input, Removed};
use crate::{FileKind, ScrubError};

/// Metadata blocks kept in memory before the audio frames, in total (a block is at most 16 MiB by its format).
pub const MAX_FLAC_METADATA: u64 = 64 * 1024 * 1024;

const STREAMINFO: u8 = 0;
const PADDING: u8 = 1;
const SEEKTABLE: u8 = 3;
const VORBIS_COMMENT: u8 = 4;
const CUESHEET: u8 = 5;

pub(crate) fn scrub<R: Read>(
    input: &mut Input<R>,
    out: &mut impl Write,
    removed: &mut Removed,
) -> Result<(), ScrubError> {
    let magic: [u8; 4] = input.read_array("the FLAC signature")?;
    if &magic != b"fLaC" {
        return Err(input.malformed_at(0, "not a FLAC signature"));
    }
    // Kept blocks (type, body): the last one's header gets the "last block" flag, known only at the end.
    let mut kept: Vec<(u8, Vec<u8>)> = Vec::new();
    let mut held = 0u64;
    loop {
        let header: [u8; 4] = input.read_array("a metadata block header")?;
        let last = header[0] & 0x80 != 0;
        let kind = header[0] & 0x7F;
        let len = u64::from(u32::from_be_bytes([0, header[1], header[2], header[3]]));
        if kind == 127 {
            return Err(input.malformed("invalid metadata block type 127"));
        }
        if kept.is_empty() && kind != STREAMINFO {
            return Err(input.malformed("the first metadata block is not STREAMINFO"));
        }
        match kind {
            STREAMINFO | PADDING | SEEKTABLE | CUESHEET => {
                held += len;
                if held > MAX_FLAC_METADATA {
                    return Err(ScrubError::TooLarge {
                        kind: FileKind::Flac,
                        what: "metadata",
                        size: held,
                        limit: MAX_FLAC_METADATA,
                    });
                }
                let body = input.read_vec(len, MAX_FLAC_METADATA, "a metadata block")?;
                kept.push((kind, body));
            }
            VORBIS_COMMENT => {
                // Vendor string length 0, comment count 0 (both little-endian, as in Vorbis).
                let empty = [0u8; 8];
                if len == empty.len() as u64 {
                    let body: [u8; 8] = input.read_array("the Vorbis comment block")?;
                    if body != empty {
                        removed.add("FLAC Vorbis comments");
                    }
                } else {
                    input.skip(len, "the Vorbis comment block")?;
                    removed.add("FLAC Vorbis comments");
                }
                kept.push((VORBIS_COMMENT, empty.to_vec()));
            }
            6 => {
                input.skip(len, "a picture block")?;
                removed.add("FLAC picture");
            }
            _ => {
                input.skip(len, "a metadata block")?;
                removed.add("FLAC application or unknown block");
            }
        }
        if last {
            break;
        }
    }
    out.write_all(b"fLaC")?;
    let count = kept.len();
    for (i, (kind, body)) in kept.into_iter().enumerate() {
        let flag = if i + 1 == count { 0x80 } else { 0 };
        let len = u32::try_from(body.len())
            .map_err(|_| input.malformed("metadata block too long"))?
            .to_be_bytes();
        out.write_all(&[flag | kind, len[1], len[2], len[3]])?;
        out.write_all(&body)?;
    }
    input.copy_to_end(out)?;
    Ok(())
}
