//! The dry run before publishing: which files would still carry metadata after [`crate::scrub`], and what kind.
//!
//! It fails closed: a file is clean only if it is of a kind the scrubber handles, or plain UTF-8 text (which has no
//! hidden structure at all: everything in it is visible to whoever opens it). Every other file is reported as
//! keeping metadata, with the most precise description its first bytes allow, so that the user can decide.
//!
//! Only the first bytes are read, except for text, which is checked to the end (a file that starts as text and
//! turns binary later is not text).

use std::io::Read;

use crate::{FileKind, MAGIC_LEN, ScrubError, detect};

/// What the dry run found about one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// The kind the scrubber will treat it as.
    pub kind: FileKind,
    /// Plain UTF-8 text (no hidden structure to scrub).
    pub text: bool,
    /// `Some(what)` when publishing would keep metadata: a description for the user, e.g.
    /// `"PDF XMP metadata that is compressed: not scrubbed"`.
    pub kept: Option<&'static str>,
    /// A short word for the kind of content, used for neutral file names: `photo`, `video`, `audio`, `document`,
    /// `text` or `file`.
    pub category: &'static str,
    /// The usual file extension of the detected kind, if it is known (`"jpg"`, `"pdf"`...).
    pub extension: Option<&'static str>,
}

/// How many bytes of a text candidate are checked per read.
const TEXT_CHUNK: usize = 64 * 1024;

/// Inspects a file's content (never its name) and tells whether scrubbing leaves metadata in it.
pub fn inspect<R: Read>(mut input: R) -> Result<Inspection, ScrubError> {
    let mut head = [0u8; 64];
    let mut len = 0;
    while len < head.len() {
        match input.read(&mut head[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
    }
    let head = &head[..len];
    let kind = detect(&head[..len.min(MAGIC_LEN)]);
    let scrubbed = |category, extension| Inspection {
        kind,
        text: false,
        kept: None,
        category,
        extension: Some(extension),
    };
    match kind {
        FileKind::Jpeg => return Ok(scrubbed("photo", "jpg")),
        FileKind::Png => return Ok(scrubbed("photo", "png")),
        FileKind::Webp => return Ok(scrubbed("photo", "webp")),
        FileKind::Mp4 => return Ok(scrubbed("video", "mp4")),
        FileKind::Gif => return Ok(scrubbed("photo", "gif")),
        FileKind::Flac => return Ok(scrubbed("audio", "flac")),
        FileKind::Pdf | FileKind::Mp3 | FileKind::Matroska | FileKind::Ogg => {
            // Whether a PDF can be blanked, an MP3 ends in a tag the scrubber leaves, or an Ogg file holds more
            // than one stream, is only known from all of the file: run the scrubber into nothing.
            let kept = match crate::scrub(
                std::io::Cursor::new(head.to_vec()).chain(input),
                std::io::sink(),
            ) {
                Ok(_) => None,
                Err(ScrubError::Unsupported { what, .. }) => Some(what),
                Err(ScrubError::TooLarge { .. }) => Some(
                    "a metadata structure larger than the scrubber holds in memory: not scrubbed",
                ),
                Err(error) => return Err(error),
            };
            let (category, extension) = match kind {
                FileKind::Pdf => ("document", "pdf"),
                FileKind::Mp3 => ("audio", "mp3"),
                FileKind::Ogg if head.windows(8).any(|w| w == b"OpusHead") => ("audio", "opus"),
                FileKind::Ogg => ("audio", "ogg"),
                _ if head.windows(4).any(|w| w == b"webm") => ("video", "webm"),
                _ => ("video", "mkv"),
            };
            return Ok(Inspection {
                kept,
                ..scrubbed(category, extension)
            });
        }
        FileKind::Unknown => {}
    }
    if let Some((kept, category, extension)) = known_unscrubbed(head) {
        return Ok(Inspection {
            kind,
            text: false,
            kept: Some(kept),
            category,
            extension,
        });
    }
    if is_text(head, input)? {
        return Ok(Inspection {
            kind,
            text: true,
            kept: markup(head),
            category: "text",
            extension: None,
        });
    }
    Ok(Inspection {
        kind,
        text: false,
        kept: Some("unknown format: not scrubbed"),
        category: "file",
        extension: None,
    })
}

/// Kinds recognised by their first bytes that the scrubber does not clean (yet): what they keep, their category and
/// their usual extension.
fn known_unscrubbed(head: &[u8]) -> Option<(&'static str, &'static str, Option<&'static str>)> {
    let at = |offset: usize, magic: &[u8]| head.get(offset..offset + magic.len()) == Some(magic);
    Some(if at(4, b"ftyp") {
        // ISO base media that `detect` left out: HEIF/HEIC and AVIF photos.
        (
            "HEIF/AVIF photo: EXIF with location, not scrubbed",
            "photo",
            Some("heic"),
        )
    } else if at(0, b"II*\0") || at(0, b"MM\0*") {
        (
            "TIFF/raw photo: EXIF with location, not scrubbed",
            "photo",
            None,
        )
    } else if at(0, b"PK\x03\x04") {
        (
            "ZIP archive or office document (DOCX/ODT author and properties): not scrubbed",
            "document",
            None,
        )
    } else if at(0, &[0xD0, 0xCF, 0x11, 0xE0]) {
        (
            "old office document (DOC/XLS author and properties): not scrubbed",
            "document",
            None,
        )
    } else {
        return None;
    })
}

/// Text that is markup carries structure a reader does not see: an SVG from an editor holds the author's file paths
/// (`sodipodi:docname`, `inkscape:export-filename`) and `<metadata>`, HTML `<meta name="author">`, RTF `{\author}`.
fn markup(head: &[u8]) -> Option<&'static str> {
    let start = head
        .strip_prefix("\u{feff}".as_bytes())
        .unwrap_or(head)
        .trim_ascii_start();
    if start.starts_with(b"<") {
        Some(
            "SVG/HTML/XML markup: may hold author names, file paths and editor metadata; not scrubbed",
        )
    } else if start.starts_with(b"{\\rtf") {
        Some("RTF document: author and editing information not scrubbed")
    } else {
        None
    }
}

/// Whether the whole file is UTF-8 text without control characters other than tab, line feed, form feed and
/// carriage return. `head` holds the bytes already read from `rest`.
fn is_text<R: Read>(head: &[u8], mut rest: R) -> Result<bool, ScrubError> {
    let mut buffer = vec![0u8; TEXT_CHUNK];
    // Bytes of a UTF-8 sequence cut by the end of the previous chunk (at most 3).
    let mut carry_len = head.len();
    buffer[..head.len()].copy_from_slice(head);
    loop {
        let read = loop {
            match rest.read(&mut buffer[carry_len..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
        };
        let filled = carry_len + read;
        let (valid, cut) = match std::str::from_utf8(&buffer[..filled]) {
            Ok(text) => (text, 0),
            // A sequence cut by the chunk's end (error_len None) is completed by the next read.
            Err(e) if e.error_len().is_none() && read > 0 => {
                let upto = e.valid_up_to();
                // from_utf8 just validated these bytes.
                let text = std::str::from_utf8(&buffer[..upto]).unwrap_or_default();
                (text, filled - upto)
            }
            Err(_) => return Ok(false),
        };
        if valid
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\x0c'))
        {
            return Ok(false);
        }
        if read == 0 {
            return Ok(cut == 0);
        }
        buffer.copy_within(filled - cut..filled, 0);
        carry_len = cut;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn scrubbed_kinds_keep_nothing() {
        let jpeg = crate::fixtures::jpeg_with_gps();
        let found = inspect(jpeg.as_slice()).unwrap();
        assert_eq!(found.kind, FileKind::Jpeg);
        assert_eq!(found.kept, None);
        assert_eq!((found.category, found.extension), ("photo", Some("jpg")));
    }

    #[test]
    fn text_is_clean_and_binary_is_not() {
        assert!(inspect("встреча в 18:00\n".as_bytes()).unwrap().text);
        // A long text whose multi-byte characters straddle the chunk boundaries.
        let long = "ж".repeat(100_001);
        assert!(inspect(long.as_bytes()).unwrap().text);
        let mut binary = long.clone().into_bytes();
        binary.push(0);
        let found = inspect(binary.as_slice()).unwrap();
        assert!(!found.text);
        assert_eq!(found.kept, Some("unknown format: not scrubbed"));
        // Cut in the middle of a character: not text.
        let cut = &long.as_bytes()[..3];
        assert!(!inspect(cut).unwrap().text);
        let svg = "<?xml version=\"1.0\"?>\n<svg sodipodi:docname=\"/home/anna/x.svg\"/>";
        let found = inspect(svg.as_bytes()).unwrap();
        assert!(found.text && found.kept.unwrap().contains("SVG"));
        assert!(
            inspect(&b"{\\rtf1 {\\author Anna}}"[..])
                .unwrap()
                .kept
                .is_some()
        );
        assert_eq!(
            inspect(&[][..]).unwrap().kept,
            None,
            "an empty file hides nothing"
        );
    }

    #[test]
    fn known_kinds_we_cannot_scrub_are_named() {
        let pdf = crate::fixtures::pdf_with_author();
        let found = inspect(pdf.as_slice()).unwrap();
        assert_eq!(found.kept, None, "the fixture's metadata can be blanked");
        assert_eq!((found.category, found.extension), ("document", Some("pdf")));
        let encrypted = b"%PDF-1.4\ntrailer << /Encrypt 5 0 R /Info 1 0 R >>";
        assert!(
            inspect(&encrypted[..])
                .unwrap()
                .kept
                .unwrap()
                .contains("encrypted")
        );
        assert!(
            inspect(&b"%PDF-1.4\ntrailer << /Info 1 0 R >>"[..]).is_err(),
            "malformed"
        );
        assert!(
            inspect(&b"OggS\0\x02"[..]).is_err(),
            "a truncated Ogg file is broken"
        );
        // An MP3 ending in an APE tag keeps it: the dry run says so.
        let mut ape = b"ID3\x04\0\0\0\0\0\0\xFF\xFB\x90\0".to_vec();
        ape.extend_from_slice(b"APETAGEX\xD0\x07\0\0");
        ape.extend_from_slice(&[0; 40]);
        assert!(
            inspect(ape.as_slice())
                .unwrap()
                .kept
                .unwrap()
                .contains("APE")
        );
        assert!(inspect(&b"PK\x03\x04xxxx"[..]).unwrap().kept.is_some());
    }
}
