//! JPEG, PNG and WebP files carrying GPS data: after scrubbing no location is left and the pixels are unchanged.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::io::Cursor;

use common::{
    assert_no_location, contains, fixture_exif_app1, jpeg_segment, png_chunk, scrub_bytes,
    scrub_through_files,
};
use image::{ImageFormat, RgbImage};
use kolokol_scrub::{FileKind, fixtures};

fn decode(bytes: &[u8], format: ImageFormat) -> image::DynamicImage {
    image::load_from_memory_with_format(bytes, format).unwrap()
}

fn assert_same_pixels(before: &[u8], after: &[u8], format: ImageFormat) {
    let (before, after) = (decode(before, format), decode(after, format));
    assert_eq!(before.color(), after.color());
    assert_eq!(before.as_bytes(), after.as_bytes(), "pixels changed");
}

fn test_image() -> RgbImage {
    RgbImage::from_fn(32, 24, |x, y| {
        image::Rgb([(x * 8) as u8, (y * 10) as u8, ((x + y) * 3) as u8])
    })
}

fn encode(format: ImageFormat) -> Vec<u8> {
    let mut bytes = Vec::new();
    test_image()
        .write_to(&mut Cursor::new(&mut bytes), format)
        .unwrap();
    bytes
}

#[test]
fn fixtures_are_real_images_with_location() {
    let jpeg = fixtures::jpeg_with_gps();
    let decoded = decode(&jpeg, ImageFormat::Jpeg).into_luma8();
    assert_eq!(decoded.dimensions(), (16, 16));
    for (got, want) in decoded.as_raw().iter().zip(fixtures::jpeg_pixels()) {
        assert!(got.abs_diff(want) <= 2, "JPEG pixel {got} far from {want}");
    }
    let png = fixtures::png_with_gps();
    assert_eq!(
        decode(&png, ImageFormat::Png).into_rgb8().into_raw(),
        fixtures::png_pixels()
    );
    let webp = fixtures::webp_with_gps();
    assert_eq!(
        decode(&webp, ImageFormat::WebP).into_rgba8().into_raw(),
        fixtures::webp_pixels()
    );
    for file in [&jpeg, &png, &webp] {
        for marker in [
            &fixtures::GPS_LATITUDE_RATIONALS[..],
            &fixtures::GPS_LONGITUDE_RATIONALS,
            fixtures::XMP_LATITUDE,
        ] {
            assert!(contains(file, marker));
        }
    }
}

#[test]
fn jpeg_loses_exif_xmp_iptc_and_comment_and_keeps_its_pixels() {
    let original = fixtures::jpeg_with_gps();
    let (scrubbed, clean) = scrub_through_files(&original);
    assert_eq!(scrubbed.kind, FileKind::Jpeg);
    assert_eq!(
        scrubbed.removed,
        [
            "EXIF (APP1)",
            "XMP (APP1)",
            "Photoshop/IPTC (APP13)",
            "comment (COM)"
        ]
    );
    assert_no_location(&clean);
    for signature in [
        &b"Exif\0\0"[..],
        b"http://ns.adobe.com/xap",
        b"Photoshop 3.0",
        b"8BIM",
        b"Red Square",
    ] {
        assert!(
            !contains(&clean, signature),
            "{:?} survived",
            String::from_utf8_lossy(signature)
        );
    }
    assert!(
        clean.starts_with(b"\xFF\xD8\xFF\xE0\x00\x10JFIF\0"),
        "JFIF header kept first"
    );
    // The scan (from SOS to EOI) is copied byte for byte.
    let scan =
        |file: &[u8]| file[file.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap()..].to_vec();
    assert_eq!(scan(&original), scan(&clean));
    assert_same_pixels(&original, &clean, ImageFormat::Jpeg);
}

#[test]
fn jpeg_from_a_real_encoder_keeps_icc_and_adobe_segments_and_drops_trailing_data() {
    let encoded = encode(ImageFormat::Jpeg);
    let icc = jpeg_segment(0xE2, b"ICC_PROFILE\0\x01\x01colour profile bytes");
    let adobe = jpeg_segment(0xEE, b"Adobe\0\x64\0\0\0\0\x01");
    let mut original = encoded[..2].to_vec();
    original.extend(jpeg_segment(0xE1, &fixture_exif_app1()));
    original.extend_from_slice(&icc);
    original.extend_from_slice(&adobe);
    original.extend(jpeg_segment(0xE2, b"MPF\0II*\0"));
    original.extend_from_slice(&encoded[2..]);
    // What a phone appends after EOI: a second picture with its own EXIF.
    original.extend_from_slice(b"\xFF\xD8\xFF\xE1\x00\x0AExif\0\0MM");
    original.extend_from_slice(&fixtures::GPS_LATITUDE_RATIONALS);

    let (scrubbed, clean) = scrub_bytes(&original);
    assert_eq!(
        scrubbed.removed,
        [
            "EXIF (APP1)",
            "multi-picture index (APP2)",
            "data after the end of the image"
        ]
    );
    assert_no_location(&clean);
    assert!(contains(&clean, &icc) && contains(&clean, &adobe));
    assert!(clean.ends_with(&[0xFF, 0xD9]));
    assert_same_pixels(&original, &clean, ImageFormat::Jpeg);
    // Without the added segments the file is exactly what the encoder wrote.
    let mut expected = encoded[..2].to_vec();
    expected.extend_from_slice(&icc);
    expected.extend_from_slice(&adobe);
    expected.extend_from_slice(&encoded[2..]);
    assert_eq!(clean, expected);
}

#[test]
fn png_loses_exif_text_time_and_xmp_and_keeps_its_pixels() {
    let original = fixtures::png_with_gps();
    let (scrubbed, clean) = scrub_through_files(&original);
    assert_eq!(scrubbed.kind, FileKind::Png);
    assert_eq!(
        scrubbed.removed,
        [
            "eXIf (EXIF)",
            "tEXt (text)",
            "tIME (modification time)",
            "iTXt (text, XMP)"
        ]
    );
    assert_no_location(&clean);
    for signature in [
        &b"eXIf"[..],
        b"tEXt",
        b"tIME",
        b"iTXt",
        b"XML:com.adobe.xmp",
        b"MM\0\x2A",
    ] {
        assert!(
            !contains(&clean, signature),
            "{:?} survived",
            String::from_utf8_lossy(signature)
        );
    }
    assert!(contains(&clean, b"sRGB"), "colour chunk kept");
    assert_eq!(
        decode(&clean, ImageFormat::Png).into_rgb8().into_raw(),
        fixtures::png_pixels()
    );
}

#[test]
fn png_from_a_real_encoder_loses_inserted_chunks_only() {
    let encoded = encode(ImageFormat::Png);
    let after_ihdr = 8 + 25;
    let mut original = encoded[..after_ihdr].to_vec();
    original.extend(png_chunk(b"eXIf", &fixture_exif_app1()[6..]));
    original.extend(png_chunk(b"zTXt", b"Location\0\0compressed-looking bytes"));
    original.extend(png_chunk(b"prVt", b"a private chunk no one documents"));
    original.extend(png_chunk(b"pHYs", &[0, 0, 0x0B, 0x13, 0, 0, 0x0B, 0x13, 1]));
    original.extend_from_slice(&encoded[after_ihdr..]);
    original.extend_from_slice(b"trailing bytes after IEND");

    let (scrubbed, clean) = scrub_bytes(&original);
    assert_eq!(
        scrubbed.removed,
        [
            "eXIf (EXIF)",
            "zTXt (text)",
            "prVt (unknown ancillary chunk)",
            "data after IEND"
        ]
    );
    assert_no_location(&clean);
    let mut expected = encoded[..after_ihdr].to_vec();
    expected.extend(png_chunk(b"pHYs", &[0, 0, 0x0B, 0x13, 0, 0, 0x0B, 0x13, 1]));
    expected.extend_from_slice(&encoded[after_ihdr..]);
    assert_eq!(clean, expected);
    assert_eq!(decode(&clean, ImageFormat::Png).into_rgb8(), test_image());
}

#[test]
fn webp_loses_exif_and_xmp_chunks_and_flags_and_keeps_its_pixels() {
    let original = fixtures::webp_with_gps();
    let (scrubbed, clean) = scrub_through_files(&original);
    assert_eq!(scrubbed.kind, FileKind::Webp);
    assert_eq!(scrubbed.removed, ["EXIF chunk", "XMP chunk"]);
    assert_no_location(&clean);
    for signature in [&b"EXIF"[..], b"XMP ", b"MM\0\x2A", b"xmpmeta"] {
        assert!(
            !contains(&clean, signature),
            "{:?} survived",
            String::from_utf8_lossy(signature)
        );
    }
    let riff_size = u32::from_le_bytes(clean[4..8].try_into().unwrap()) as usize;
    assert_eq!(riff_size + 8, clean.len(), "RIFF size rewritten");
    assert_eq!(&clean[12..16], b"VP8X");
    assert_eq!(clean[20] & 0x0C, 0, "EXIF and XMP flags cleared");
    assert_eq!(
        decode(&clean, ImageFormat::WebP).into_rgba8().into_raw(),
        fixtures::webp_pixels()
    );
}

#[test]
fn webp_from_a_real_encoder_in_simple_format_loses_an_appended_exif_chunk() {
    let encoded = encode(ImageFormat::WebP);
    let exif = &fixture_exif_app1()[6..];
    let mut original = encoded.clone();
    original.extend_from_slice(b"EXIF");
    original.extend_from_slice(&(exif.len() as u32).to_le_bytes());
    original.extend_from_slice(exif);
    if exif.len() % 2 == 1 {
        original.push(0);
    }
    let riff_size = (original.len() - 8) as u32;
    original[4..8].copy_from_slice(&riff_size.to_le_bytes());

    let (scrubbed, clean) = scrub_bytes(&original);
    assert_eq!(scrubbed.removed, ["EXIF chunk"]);
    assert_eq!(clean, encoded, "back to exactly what the encoder wrote");
    assert_eq!(decode(&clean, ImageFormat::WebP).into_rgb8(), test_image());
}

#[test]
fn a_clean_file_passes_unchanged() {
    for (format, kind) in [
        (ImageFormat::Png, FileKind::Png),
        (ImageFormat::WebP, FileKind::Webp),
    ] {
        let encoded = encode(format);
        let (scrubbed, clean) = scrub_bytes(&encoded);
        assert_eq!(scrubbed.kind, kind);
        assert!(scrubbed.removed.is_empty(), "{:?}", scrubbed.removed);
        assert_eq!(clean, encoded);
    }
}
