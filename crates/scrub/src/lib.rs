//! Metadata scrubbing for publication: removes EXIF, XMP, IPTC and GPS data from JPEG, PNG and WebP images, the
//! metadata boxes (including location) from MP4/MOV files, the document info and XMP of PDF files, comments and XMP
//! from GIF, ID3 tags from MP3, Vorbis comments and pictures from FLAC, and tags and title from Matroska/WebM,
//! Vorbis comments and Opus tags from Ogg, without re-encoding anything. [`inspect`] is the dry run: whether a file would keep metadata, and what kind.
//!
//! The file kind is found from the magic bytes, never from the name. Every kind is handled as a stream with one
//! fixed buffer: the large parts (JPEG entropy-coded data, PNG IDAT chunks, MP4 `mdat`) pass straight through, and
//! only the small structures that must be inspected are held in memory, each under a cap. A file of a known kind
//! whose structure is broken gives a [`ScrubError`] (the output is then incomplete and must be thrown away); a file
//! of an unknown kind is copied unchanged and reported as [`FileKind::Unknown`] so the caller can warn.
//!
//! See the crate's README for what is removed and kept per format, and why.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Cursor, Read, Write};
use std::path::Path;

mod crc32;
mod error;
pub mod fixtures;
mod flac;
mod gif;
mod input;
mod inspect;
mod jpeg;
mod matroska;
mod mp3;
mod mp4;
mod ogg;
mod pdf;
mod png;
mod webp;

pub use error::ScrubError;
pub use flac::MAX_FLAC_METADATA;
use input::{Input, Removed};
pub use inspect::{Inspection, inspect};
pub use mp4::MAX_MOVIE_BOX;
pub use ogg::MAX_OGG_HEADERS;
pub use pdf::MAX_PDF;
pub use webp::MAX_WEBP_BODY;

/// The kind of a file, detected from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    Jpeg,
    Png,
    Webp,
    /// ISO base media files: MP4, MOV, M4A, 3GP.
    Mp4,
    /// GIF images: comments and application extensions (XMP) dropped.
    Gif,
    /// MP3 audio: ID3v2 and ID3v1 tags dropped.
    Mp3,
    /// FLAC audio: Vorbis comments emptied, pictures dropped.
    Flac,
    /// Matroska and WebM video: `Tags` and the segment title blanked.
    Matroska,
    /// Ogg Vorbis and Ogg Opus audio: the comment packet emptied.
    Ogg,
    /// PDF documents: the document info and XMP are blanked in place.
    Pdf,
    /// Not a kind the scrubber knows: copied unchanged.
    Unknown,
}

impl std::fmt::Display for FileKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FileKind::Jpeg => "JPEG",
            FileKind::Png => "PNG",
            FileKind::Webp => "WebP",
            FileKind::Mp4 => "MP4/MOV",
            FileKind::Pdf => "PDF",
            FileKind::Gif => "GIF",
            FileKind::Mp3 => "MP3",
            FileKind::Flac => "FLAC",
            FileKind::Matroska => "Matroska/WebM",
            FileKind::Ogg => "Ogg",
            FileKind::Unknown => "unknown",
        })
    }
}

/// What a successful scrub did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scrubbed {
    pub kind: FileKind,
    /// Human-readable names of the removed parts, each once, e.g. `"EXIF (APP1)"` or `"moov/udta"`.
    pub removed: Vec<String>,
}

/// How many leading bytes [`detect`] looks at.
pub const MAGIC_LEN: usize = 12;

/// Box types that can open an ISO base media file (MOV files from old QuickTime may start with any of these).
const MP4_FIRST_BOXES: [&[u8; 4]; 6] = [b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip"];

/// Major brands of HEIF and AVIF still images and image sequences.
const HEIF_BRANDS: [&[u8; 4]; 11] = [
    b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis",
    b"avio",
];

/// Detects the kind of a file from its first bytes (up to [`MAGIC_LEN`]).
pub fn detect(head: &[u8]) -> FileKind {
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        FileKind::Jpeg
    } else if head.starts_with(png::SIGNATURE) {
        FileKind::Png
    } else if head.starts_with(b"%PDF-") {
        FileKind::Pdf
    } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        FileKind::Gif
    } else if head.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        FileKind::Matroska
    } else if head.starts_with(b"OggS") {
        FileKind::Ogg
    } else if head.starts_with(b"fLaC") {
        FileKind::Flac
    } else if head.starts_with(b"ID3")
        // An MPEG audio frame sync with a layer (layer bits 00 would be AAC's ADTS).
        || (head.len() >= 2 && head[0] == 0xFF && head[1] & 0xE0 == 0xE0 && head[1] & 0x06 != 0)
    {
        FileKind::Mp3
    } else if head.len() >= 12 && &head[0..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        FileKind::Webp
    } else if head.len() >= 8 && MP4_FIRST_BOXES.iter().any(|t| &head[4..8] == *t) {
        // HEIF and AVIF images are ISO base media too, but their pictures are items of the top-level `meta` box
        // that the MP4 scrubber would blank: they are a kind this crate does not know.
        if &head[4..8] == b"ftyp"
            && head.len() >= 12
            && HEIF_BRANDS.iter().any(|b| &head[8..12] == *b)
        {
            return FileKind::Unknown;
        }
        FileKind::Mp4
    } else {
        FileKind::Unknown
    }
}

/// Scrubs `input` into `output`, streaming. On error, what was written to `output` is incomplete.
pub fn scrub<R: Read, W: Write>(mut input: R, output: W) -> Result<Scrubbed, ScrubError> {
    let mut head = [0u8; MAGIC_LEN];
    let mut head_len = 0;
    while head_len < MAGIC_LEN {
        match input.read(&mut head[head_len..]) {
            Ok(0) => break,
            Ok(n) => head_len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
    }
    let kind = detect(&head[..head_len]);
    let whole = Cursor::new(&head[..head_len]).chain(input);
    let mut source = Input::new(whole, kind);
    let mut out = BufWriter::with_capacity(input::STREAM_BUFFER, output);
    let mut removed = Removed::default();
    match kind {
        FileKind::Jpeg => jpeg::scrub(&mut source, &mut out, &mut removed)?,
        FileKind::Png => png::scrub(&mut source, &mut out, &mut removed)?,
        FileKind::Webp => webp::scrub(&mut source, &mut out, &mut removed)?,
        FileKind::Mp4 => mp4::scrub(&mut source, &mut out, &mut removed)?,
        FileKind::Gif => gif::scrub(&mut source, &mut out, &mut removed)?,
        FileKind::Flac => flac::scrub(&mut source, &mut out, &mut removed)?,
        FileKind::Matroska => matroska::scrub(&mut source, &mut out, &mut removed)?,
        FileKind::Mp3 => mp3::scrub(&mut source, &mut out, &mut removed)?,
        FileKind::Ogg => ogg::scrub(&mut source, &mut out, &mut removed)?,
        FileKind::Pdf => {
            let mut bytes = source.read_to_end_capped(MAX_PDF, "PDF file")?;
            for what in pdf::blank_metadata(&mut bytes).map_err(pdf_error)? {
                removed.add(what);
            }
            out.write_all(&bytes)?;
        }
        FileKind::Unknown => {
            source.copy_to_end(&mut out)?;
        }
    }
    out.flush()?;
    Ok(Scrubbed {
        kind,
        removed: removed.into_vec(),
    })
}

fn pdf_error(error: pdf::PdfError) -> ScrubError {
    match error {
        pdf::PdfError::Malformed { offset, reason } => ScrubError::Malformed {
            kind: FileKind::Pdf,
            offset: offset as u64,
            reason: reason.to_owned(),
        },
        pdf::PdfError::Unsupported(what) => ScrubError::Unsupported {
            kind: FileKind::Pdf,
            what,
        },
    }
}

/// Scrubs the file at `src` into a new file at `dst`, which must not exist. `src` is only ever opened for reading.
/// On error `dst` is removed, so a half-written file is never left behind.
pub fn scrub_file(src: &Path, dst: &Path) -> Result<Scrubbed, ScrubError> {
    let input = File::open(src)?;
    let output = OpenOptions::new().write(true).create_new(true).open(dst)?;
    let result = scrub(input, &output).and_then(|scrubbed| {
        output.sync_all()?;
        Ok(scrubbed)
    });
    if result.is_err() {
        drop(output);
        // The scrub error is the one to report; failing to remove the partial file does not change it.
        let _ = std::fs::remove_file(dst);
    }
    result
}
