//! JPEG: drops the APPn segments that carry metadata (EXIF, XMP, IPTC, MPF, ...) and comments; keeps every segment
//! that decoding needs (tables, frame and scan headers, JFIF, ICC profile, Adobe colour transform) and copies the
//! entropy-coded data byte for byte. Anything after the end-of-image marker (MPF secondary images, vendor
//! trailers) is dropped: it is not part of the image and may carry its own EXIF.

use std::io::{Read, Write};

use crate::ScrubError;
use crate::input::{Input, Removed};

const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;
const COM: u8 = 0xFE;
const TEM: u8 = 0x01;

/// Length of a JFIF APP0 payload without its thumbnail: identifier, version, units, densities, thumbnail size.
const JFIF_HEADER_LEN: usize = 14;

/// What to do with one marker segment.
#[derive(Debug, PartialEq, Eq)]
enum Action {
    Keep,
    /// Write this payload instead (a JFIF header without its thumbnail).
    Replace(Vec<u8>, &'static str),
    Drop(String),
}

pub(crate) fn scrub<R: Read>(
    input: &mut Input<R>,
    out: &mut impl Write,
    removed: &mut Removed,
) -> Result<(), ScrubError> {
    let soi: [u8; 2] = input.read_array("the start-of-image marker")?;
    if soi != [0xFF, SOI] {
        return Err(input.malformed_at(0, "no start-of-image marker"));
    }
    out.write_all(&soi)?;
    let mut pending_marker = None;
    loop {
        let marker = match pending_marker.take() {
            Some(marker) => marker,
            None => read_marker(input)?,
        };
        match marker {
            EOI => {
                out.write_all(&[0xFF, EOI])?;
                let trailing = input.skip_to_end()?;
                if trailing > 0 {
                    removed.add("data after the end of the image");
                }
                return Ok(());
            }
            SOI => return Err(input.malformed("a second start-of-image marker")),
            0xD0..=0xD7 | TEM => out.write_all(&[0xFF, marker])?,
            0x00 => return Err(input.malformed("marker 0x00 outside entropy-coded data")),
            _ => {
                let length_bytes: [u8; 2] = input.read_array("a segment length")?;
                let length = u16::from_be_bytes(length_bytes);
                if length < 2 {
                    return Err(
                        input.malformed(format!("segment 0x{marker:02X} has length {length}"))
                    );
                }
                // A segment is at most 65533 bytes: the u16 length is its own cap.
                let payload = input.read_vec(
                    u64::from(length - 2),
                    u64::from(u16::MAX),
                    "a marker segment",
                )?;
                match classify(marker, &payload) {
                    Action::Keep => write_segment(out, marker, &payload)?,
                    Action::Replace(replacement, what) => {
                        write_segment(out, marker, &replacement)?;
                        removed.add(what);
                    }
                    Action::Drop(what) => removed.add(what),
                }
                if marker == SOS {
                    pending_marker = Some(copy_entropy_coded_data(input, out)?);
                }
            }
        }
    }
}

/// Reads a marker: 0xFF, optional 0xFF fill bytes, then the marker code.
fn read_marker<R: Read>(input: &mut Input<R>) -> Result<u8, ScrubError> {
    let offset = input.offset();
    let first = input.read_u8("a marker")?;
    if first != 0xFF {
        return Err(input.malformed_at(
            offset,
            format!("expected a marker, found byte 0x{first:02X}"),
        ));
    }
    loop {
        let code = input.read_u8("a marker")?;
        if code != 0xFF {
            return Ok(code);
        }
    }
}

fn write_segment(out: &mut impl Write, marker: u8, payload: &[u8]) -> Result<(), ScrubError> {
    // The payload came from a segment or is shorter than one, so its length fits the u16 length field.
    let length = u16::try_from(payload.len() + 2).unwrap_or(u16::MAX);
    out.write_all(&[0xFF, marker])?;
    out.write_all(&length.to_be_bytes())?;
    out.write_all(payload)?;
    Ok(())
}

fn classify(marker: u8, payload: &[u8]) -> Action {
    let starts = |prefix: &[u8]| payload.starts_with(prefix);
    match marker {
        0xE0 if starts(b"JFIF\0") => {
            if payload.len() > JFIF_HEADER_LEN {
                let mut header = payload[..JFIF_HEADER_LEN].to_vec();
                header[12] = 0;
                header[13] = 0;
                Action::Replace(header, "JFIF thumbnail (APP0)")
            } else {
                Action::Keep
            }
        }
        0xE0 if starts(b"JFXX\0") => Action::Drop("JFXX thumbnail (APP0)".into()),
        0xE1 if starts(b"Exif\0") => Action::Drop("EXIF (APP1)".into()),
        0xE1 if starts(b"http://ns.adobe.com/xap/1.0/\0") => Action::Drop("XMP (APP1)".into()),
        0xE1 if starts(b"http://ns.adobe.com/xmp/extension/\0") => {
            Action::Drop("extended XMP (APP1)".into())
        }
        // The ICC profile describes the colours of the pixels: dropping it would change how the image looks.
        0xE2 if starts(b"ICC_PROFILE\0") => Action::Keep,
        0xE2 if starts(b"MPF\0") => Action::Drop("multi-picture index (APP2)".into()),
        0xED => Action::Drop("Photoshop/IPTC (APP13)".into()),
        // The Adobe segment says whether the decoder must convert from YCbCr/YCCK: decoding needs it.
        0xEE if starts(b"Adobe") => Action::Keep,
        0xE0..=0xEF => Action::Drop(format!("APP{} segment", marker - 0xE0)),
        COM => Action::Drop("comment (COM)".into()),
        _ => Action::Keep,
    }
}

/// Copies the entropy-coded data after a scan header, byte for byte, and returns the marker that ends it.
/// Inside the data, 0xFF is followed by 0x00 (a stuffed byte) or a restart marker; anything else is a marker.
fn copy_entropy_coded_data<R: Read>(
    input: &mut Input<R>,
    out: &mut impl Write,
) -> Result<u8, ScrubError> {
    let mut after_ff = false;
    loop {
        let available = input.buffered()?;
        if available.is_empty() {
            return Err(ScrubError::Truncated {
                kind: crate::FileKind::Jpeg,
                what: "entropy-coded data (no end-of-image marker)",
                offset: input.offset(),
            });
        }
        if after_ff {
            let code = available[0];
            input.consume(1);
            match code {
                0x00 | 0xD0..=0xD7 => {
                    out.write_all(&[0xFF, code])?;
                    after_ff = false;
                }
                // Fill bytes before a marker.
                0xFF => {}
                marker => return Ok(marker),
            }
            continue;
        }
        match available.iter().position(|&b| b == 0xFF) {
            Some(at) => {
                out.write_all(&available[..at])?;
                input.consume(at + 1);
                after_ff = true;
            }
            None => {
                let len = available.len();
                out.write_all(available)?;
                input.consume(len);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Action, classify};

    #[test]
    fn keeps_what_decoding_needs() {
        assert_eq!(classify(0xE2, b"ICC_PROFILE\0\x01\x01"), Action::Keep);
        assert_eq!(classify(0xEE, b"Adobe\0\x64"), Action::Keep);
        assert_eq!(
            classify(0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"),
            Action::Keep
        );
        assert_eq!(classify(0xDB, b"anything"), Action::Keep);
        assert_eq!(classify(0xC4, b"anything"), Action::Keep);
    }

    #[test]
    fn drops_metadata_segments() {
        for (marker, payload) in [
            (0xE1, &b"Exif\0\0MM"[..]),
            (0xE1, b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta"),
            (0xE2, b"MPF\0II"),
            (0xE2, b"FPXR\0"),
            (0xED, b"Photoshop 3.0\08BIM"),
            (0xEE, b"not adobe"),
            (0xEF, b""),
            (0xFE, b"a comment"),
        ] {
            assert!(
                matches!(classify(marker, payload), Action::Drop(_)),
                "marker {marker:02X}"
            );
        }
    }

    #[test]
    fn strips_the_jfif_thumbnail() {
        let mut payload = b"JFIF\0\x01\x02\0\0\x01\0\x01\x01\x01".to_vec();
        payload.extend_from_slice(&[9, 9, 9]);
        let Action::Replace(header, _) = classify(0xE0, &payload) else {
            panic!("not replaced")
        };
        assert_eq!(header, b"JFIF\0\x01\x02\0\0\x01\0\x01\0\0");
    }
}
