//! Broken and unknown inputs: a file that claims a known kind but is truncated or lies about a length gives an
//! error (never a panic, never a huge allocation) and leaves no output file; an unknown file is copied unchanged.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::{jpeg_segment, png_chunk, scrub_bytes};
use kolokol_scrub::{FileKind, ScrubError, fixtures, scrub, scrub_file};
use proptest::prelude::*;

fn all_fixtures() -> [(FileKind, Vec<u8>); 4] {
    [
        (FileKind::Jpeg, fixtures::jpeg_with_gps()),
        (FileKind::Png, fixtures::png_with_gps()),
        (FileKind::Webp, fixtures::webp_with_gps()),
        (FileKind::Mp4, fixtures::mp4_with_location()),
    ]
}

fn scrub_error(input: &[u8]) -> ScrubError {
    scrub(input, Vec::new()).unwrap_err()
}

#[test]
fn every_truncation_of_an_image_is_an_error() {
    for (kind, file) in all_fixtures().into_iter().take(3) {
        for len in 1..file.len() {
            // Cut before its magic bytes are complete, a file is not recognised, so copied as unknown.
            match scrub(&file[..len], Vec::new()) {
                Ok(scrubbed) => assert!(
                    scrubbed.kind == FileKind::Unknown && len < kolokol_scrub::MAGIC_LEN,
                    "{kind} truncated to {len} of {} bytes was accepted",
                    file.len()
                ),
                Err(ScrubError::Truncated { .. } | ScrubError::Malformed { .. }) => {}
                Err(other) => panic!("{kind} truncated to {len}: unexpected {other}"),
            }
        }
    }
}

#[test]
fn an_mp4_truncated_inside_a_box_is_an_error() {
    let file = fixtures::mp4_with_location();
    // Box boundaries at the top level: ftyp | mdat | moov | uuid | free.
    let mut boundaries = vec![0];
    while let Some(&last) = boundaries.last() {
        if last >= file.len() {
            break;
        }
        let size = match u32::from_be_bytes(file[last..last + 4].try_into().unwrap()) {
            1 => u64::from_be_bytes(file[last + 8..last + 16].try_into().unwrap()) as usize,
            size => size as usize,
        };
        boundaries.push(last + size);
    }
    for len in 8..file.len() {
        let result = scrub(&file[..len], Vec::new());
        assert_eq!(
            result.is_ok(),
            boundaries.contains(&len),
            "truncated to {len}: {result:?}"
        );
    }
}

#[test]
fn a_failed_scrub_leaves_no_output_file_and_an_existing_output_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("broken.jpg");
    let dst = dir.path().join("out.jpg");
    let file = fixtures::jpeg_with_gps();
    std::fs::write(&src, &file[..file.len() / 2]).unwrap();
    let error = scrub_file(&src, &dst).unwrap_err();
    assert!(
        matches!(
            error,
            ScrubError::Truncated {
                kind: FileKind::Jpeg,
                ..
            }
        ),
        "{error}"
    );
    assert!(!dst.exists(), "partial output left behind");

    std::fs::write(&src, &file).unwrap();
    std::fs::write(&dst, b"someone else's file").unwrap();
    let error = scrub_file(&src, &dst).unwrap_err();
    assert!(
        matches!(&error, ScrubError::Io(e) if e.kind() == std::io::ErrorKind::AlreadyExists),
        "{error}"
    );
    assert_eq!(std::fs::read(&dst).unwrap(), b"someone else's file");
}

#[test]
fn lying_lengths_are_errors() {
    // JPEG: a segment longer than the rest of the file.
    let mut jpeg = b"\xFF\xD8".to_vec();
    jpeg.extend_from_slice(b"\xFF\xE1\xFF\xF0Exif\0\0");
    assert!(matches!(scrub_error(&jpeg), ScrubError::Truncated { .. }));
    // JPEG: a segment length below the 2 bytes of the length itself.
    assert!(matches!(
        scrub_error(b"\xFF\xD8\xFF\xDB\x00\x01\x00"),
        ScrubError::Malformed { .. }
    ));
    // JPEG: garbage where a marker should be.
    assert!(matches!(
        scrub_error(b"\xFF\xD8\xFF\xE0\x00\x02\x12\x34"),
        ScrubError::Malformed { .. }
    ));

    // PNG: a chunk claiming more than the 2^31 - 1 bytes PNG allows.
    let png = fixtures::png_with_gps();
    let mut lying = png[..33].to_vec();
    lying.extend_from_slice(&0xFFFF_FFF0u32.to_be_bytes());
    lying.extend_from_slice(b"IDAT");
    assert!(matches!(scrub_error(&lying), ScrubError::Malformed { .. }));
    // PNG: a chunk whose CRC does not match.
    let mut bad_crc = png[..33].to_vec();
    let mut idat = png_chunk(b"IDAT", b"data");
    let last = idat.len() - 1;
    idat[last] ^= 1;
    bad_crc.extend_from_slice(&idat);
    assert!(matches!(
        scrub_error(&bad_crc),
        ScrubError::Malformed { .. }
    ));

    // WebP: a chunk larger than the RIFF size, and a RIFF size above what the scrubber holds in memory.
    let webp = fixtures::webp_with_gps();
    let mut lying = webp.clone();
    lying[16..20].copy_from_slice(&0x00FF_FFFFu32.to_le_bytes());
    assert!(matches!(scrub_error(&lying), ScrubError::Malformed { .. }));
    let mut huge = webp.clone();
    huge[4..8].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    assert!(matches!(
        scrub_error(&huge),
        ScrubError::TooLarge {
            kind: FileKind::Webp,
            ..
        }
    ));

    // MP4: a child box larger than its parent, a 64-bit size below 16, a box size below 8.
    let mp4 = fixtures::mp4_with_location();
    let moov = mp4.windows(4).position(|w| w == b"moov").unwrap() - 4;
    let mut lying = mp4.clone();
    lying[moov + 8..moov + 12].copy_from_slice(&0x0010_0000u32.to_be_bytes());
    assert!(matches!(
        scrub_error(&lying),
        ScrubError::Malformed {
            kind: FileKind::Mp4,
            ..
        }
    ));
    assert!(matches!(
        scrub_error(b"\0\0\0\x01ftyp\0\0\0\0\0\0\0\x08isom"),
        ScrubError::Malformed {
            kind: FileKind::Mp4,
            ..
        }
    ));
    assert!(matches!(
        scrub_error(b"\0\0\0\x08ftyp\0\0\0\x04moov"),
        ScrubError::Malformed { .. }
    ));
}

#[test]
fn deeply_nested_boxes_are_refused() {
    let mut inner = Vec::new();
    for _ in 0..40 {
        let mut outer = ((inner.len() + 8) as u32).to_be_bytes().to_vec();
        outer.extend_from_slice(b"trak");
        outer.extend_from_slice(&inner);
        inner = outer;
    }
    let mut file = b"\0\0\0\x08ftyp".to_vec();
    file.extend_from_slice(&((inner.len() + 8) as u32).to_be_bytes());
    file.extend_from_slice(b"moov");
    file.extend_from_slice(&inner);
    assert!(matches!(scrub_error(&file), ScrubError::Malformed { .. }));
}

#[test]
fn unknown_files_are_copied_unchanged() {
    let mut text = b"Just a text file, not an image.\n".repeat(5000);
    text.extend_from_slice(&fixtures::GPS_LATITUDE_RATIONALS);
    for input in [
        &b""[..],
        b"x",
        b"RIFF\0\0\0\0AVI LIST",
        b"\xFF\xD8",
        &text,
        &fixtures::png_with_gps()[1..],
    ] {
        let (scrubbed, output) = scrub_bytes(input);
        assert_eq!(scrubbed.kind, FileKind::Unknown);
        assert!(scrubbed.removed.is_empty());
        assert_eq!(output, input);
    }
}

#[test]
fn heif_and_avif_images_are_not_treated_as_movies() {
    // Their pictures live in the top-level meta box that the MP4 scrubber would blank.
    for brand in [b"heic", b"avif", b"mif1"] {
        let mut file = b"\0\0\0\x18ftyp".to_vec();
        file.extend_from_slice(brand);
        file.extend_from_slice(b"\0\0\0\0mif1heic\0\0\0\x10meta\0\0\0\0item");
        let (scrubbed, output) = scrub_bytes(&file);
        assert_eq!(scrubbed.kind, FileKind::Unknown);
        assert_eq!(output, file);
    }
}

#[test]
fn the_kind_comes_from_the_bytes_not_the_name() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("holiday.txt");
    std::fs::write(&src, fixtures::jpeg_with_gps()).unwrap();
    let scrubbed = scrub_file(&src, &dir.path().join("out.txt")).unwrap();
    assert_eq!(scrubbed.kind, FileKind::Jpeg);
    assert!(!scrubbed.removed.is_empty());
}

#[test]
fn a_jpeg_segment_list_without_a_scan_still_needs_an_end_marker() {
    let mut jpeg = b"\xFF\xD8".to_vec();
    jpeg.extend(jpeg_segment(0xFE, b"comment"));
    assert!(matches!(scrub_error(&jpeg), ScrubError::Truncated { .. }));
    jpeg.extend_from_slice(b"\xFF\xD9");
    let (scrubbed, output) = scrub_bytes(&jpeg);
    assert_eq!(scrubbed.removed, ["comment (COM)"]);
    assert_eq!(output, b"\xFF\xD8\xFF\xD9");
}

/// A reader that hands out at most a few bytes per call, as a pipe or socket may.
struct Trickle<'a>(&'a [u8]);

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.0.len()).min(3);
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[test]
fn short_reads_give_the_same_result() {
    for (_, file) in all_fixtures() {
        let (expected_report, expected) = scrub_bytes(&file);
        let mut output = Vec::new();
        let report = scrub(Trickle(&file), &mut output).unwrap();
        assert_eq!((report, output), (expected_report, expected));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Random byte changes, insertions and a random cut: the scrubber answers (Ok or Err) and never panics.
    #[test]
    fn mutated_fixtures_never_panic(
        which in 0usize..4,
        changes in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        insert in proptest::option::of((any::<prop::sample::Index>(), proptest::collection::vec(any::<u8>(), 1..16))),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let mut file = all_fixtures()[which].1.clone();
        for (at, byte) in changes {
            let at = at.index(file.len());
            file[at] = byte;
        }
        if let Some((at, bytes)) = insert {
            let at = at.index(file.len());
            file.splice(at..at, bytes);
        }
        if let Some(cut) = cut {
            file.truncate(cut.index(file.len()));
        }
        let mut output = Vec::new();
        match scrub(&file[..], &mut output) {
            Ok(scrubbed) if scrubbed.kind == FileKind::Unknown => prop_assert_eq!(output, file),
            Ok(_) | Err(_) => {}
        }
    }
}
