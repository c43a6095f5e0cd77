//! GIF: drops comment extensions and application extensions other than the looping ones (`NETSCAPE2.0`,
//! `ANIMEXTS1.0`), which removes XMP (`XMP DataXMP`) and vendor data; drops anything after the trailer. The colour
//! tables, graphic control and plain-text extensions and the image data are copied byte for byte.

use std::io::{Read, Write};

use crate::ScrubError;
use crate::input::{Input, Removed};

/// Application extensions that only say how an animation loops.
const LOOPING: [&[u8; 11]; 2] = [b"NETSCAPE2.0", b"ANIMEXTS1.0"];

pub(crate) fn scrub<R: Read>(
    input: &mut Input<R>,
    out: &mut impl Write,
    removed: &mut Removed,
) -> Result<(), ScrubError> {
    let header: [u8; 13] = input.read_array("the GIF header")?;
    if &header[0..6] != b"GIF87a" && &header[0..6] != b"GIF89a" {
        return Err(input.malformed_at(0, "not a GIF header"));
    }
    out.write_all(&header)?;
    let packed = header[10];
    if packed & 0x80 != 0 {
        input.copy(color_table_len(packed), out, "the global colour table")?;
    }
    loop {
        let introducer = input.read_u8("a block introducer")?;
        match introducer {
            0x21 => {
                let label = input.read_u8("an extension label")?;
                match label {
                    0xFE => {
                        skip_sub_blocks(input)?;
                        removed.add("GIF comment");
                    }
                    0xFF => {
                        let size = input.read_u8("an application extension")?;
                        if size != 11 {
                            return Err(
                                input.malformed("an application extension header is not 11 bytes")
                            );
                        }
                        let ident: [u8; 11] = input.read_array("an application identifier")?;
                        if LOOPING.contains(&&ident) {
                            out.write_all(&[0x21, 0xFF, 11])?;
                            out.write_all(&ident)?;
                            copy_sub_blocks(input, out)?;
                        } else {
                            skip_sub_blocks(input)?;
                            removed.add(if &ident == b"XMP DataXMP" {
                                "GIF XMP"
                            } else {
                                "GIF application extension"
                            });
                        }
                    }
                    _ => {
                        out.write_all(&[0x21, label])?;
                        copy_sub_blocks(input, out)?;
                    }
                }
            }
            0x2C => {
                let descriptor: [u8; 9] = input.read_array("an image descriptor")?;
                out.write_all(&[0x2C])?;
                out.write_all(&descriptor)?;
                if descriptor[8] & 0x80 != 0 {
                    input.copy(color_table_len(descriptor[8]), out, "a local colour table")?;
                }
                let code_size = input.read_u8("the LZW code size")?;
                out.write_all(&[code_size])?;
                copy_sub_blocks(input, out)?;
            }
            0x3B => {
                out.write_all(&[0x3B])?;
                if input.skip_to_end()? > 0 {
                    removed.add("data after the GIF trailer");
                }
                return Ok(());
            }
            other => {
                return Err(input.malformed(format!("unknown block introducer 0x{other:02X}")));
            }
        }
    }
}

/// Bytes of a colour table whose size field is the low three bits of `packed`.
fn color_table_len(packed: u8) -> u64 {
    3 * (1u64 << ((packed & 0x07) + 1))
}

fn copy_sub_blocks<R: Read>(input: &mut Input<R>, out: &mut impl Write) -> Result<(), ScrubError> {
    loop {
        let size = input.read_u8("a data sub-block")?;
        out.write_all(&[size])?;
        if size == 0 {
            return Ok(());
        }
        input.copy(u64::from(size), out, "a data sub-block")?;
    }
}

fn skip_sub_blocks<R: Read>(input: &mut Input<R>) -> Result<(), ScrubError> {
    loop {
        let size = input.read_u8("a data sub-block")?;
        if size == 0 {
            return Ok(());
        }
        input.skip(u64::from(size), "a data sub-block")?;
    }
}
