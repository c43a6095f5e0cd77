//! Helpers shared by the scrubber's integration tests.
#![allow(dead_code)]

use kolokol_scrub::fixtures::GPS_MARKERS;

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// Panics naming the first location marker found in `bytes`.
pub fn assert_no_location(bytes: &[u8]) {
    for marker in GPS_MARKERS {
        assert!(
            !contains(bytes, marker),
            "location marker {:?} survived",
            String::from_utf8_lossy(marker)
        );
    }
}

/// Scrubs `input` in memory.
pub fn scrub_bytes(input: &[u8]) -> (kolokol_scrub::Scrubbed, Vec<u8>) {
    let mut output = Vec::new();
    let scrubbed = kolokol_scrub::scrub(input, &mut output).unwrap();
    (scrubbed, output)
}

/// Writes `input` to a file, scrubs it file to file, checks the source is untouched, returns the output.
pub fn scrub_through_files(input: &[u8]) -> (kolokol_scrub::Scrubbed, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("original");
    let dst = dir.path().join("scrubbed");
    std::fs::write(&src, input).unwrap();
    let scrubbed = kolokol_scrub::scrub_file(&src, &dst).unwrap();
    assert_eq!(
        std::fs::read(&src).unwrap(),
        input,
        "the source file was modified"
    );
    (scrubbed, std::fs::read(&dst).unwrap())
}

/// CRC-32 as PNG uses it (bitwise; the tests' own, independent of the crate's).
pub fn png_crc(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                0xEDB8_8320 ^ (crc >> 1)
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A PNG chunk with its length and CRC.
pub fn png_chunk(chunk_type: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut chunk = (data.len() as u32).to_be_bytes().to_vec();
    chunk.extend_from_slice(chunk_type);
    chunk.extend_from_slice(data);
    let crc = png_crc(&chunk[4..]);
    chunk.extend_from_slice(&crc.to_be_bytes());
    chunk
}

/// A JPEG marker segment.
pub fn jpeg_segment(marker: u8, payload: &[u8]) -> Vec<u8> {
    let mut segment = vec![0xFF, marker];
    segment.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    segment.extend_from_slice(payload);
    segment
}

/// The EXIF payload of the fixture JPEG's APP1 segment (taken from the fixture itself).
pub fn fixture_exif_app1() -> Vec<u8> {
    let jpeg = kolokol_scrub::fixtures::jpeg_with_gps();
    let start = jpeg.windows(6).position(|w| w == b"Exif\0\0").unwrap();
    let len = u16::from_be_bytes([jpeg[start - 2], jpeg[start - 1]]) as usize;
    jpeg[start..start - 2 + len].to_vec()
}
