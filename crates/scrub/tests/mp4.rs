//! MP4/MOV files carrying location: after scrubbing the box tree still parses, nothing moved, `mdat` is
//! byte-identical and no location is left.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::{assert_no_location, contains, scrub_bytes, scrub_through_files};
use kolokol_scrub::{FileKind, ScrubError, fixtures};

/// One box found by the tests' own walker (independent of the crate's).
#[derive(Debug, Clone, Copy)]
struct Found {
    start: usize,
    header_len: usize,
    end: usize,
    box_type: [u8; 4],
}

impl Found {
    fn payload<'a>(&self, file: &'a [u8]) -> &'a [u8] {
        &file[self.start + self.header_len..self.end]
    }
}

/// The boxes laid end to end in `file[start..end]`; panics if they do not tile it exactly.
fn boxes(file: &[u8], start: usize, end: usize) -> Vec<Found> {
    let mut found = Vec::new();
    let mut pos = start;
    while pos < end {
        let size = u32::from_be_bytes(file[pos..pos + 4].try_into().unwrap()) as usize;
        let box_type: [u8; 4] = file[pos + 4..pos + 8].try_into().unwrap();
        let (header_len, size) = match size {
            0 => (8, end - pos),
            1 => (
                16,
                u64::from_be_bytes(file[pos + 8..pos + 16].try_into().unwrap()) as usize,
            ),
            size => (8, size),
        };
        assert!(
            size >= header_len && pos + size <= end,
            "box {box_type:?} at {pos} does not fit"
        );
        found.push(Found {
            start: pos,
            header_len,
            end: pos + size,
            box_type,
        });
        pos += size;
    }
    assert_eq!(pos, end);
    found
}

fn find(file: &[u8], path: &[&[u8; 4]]) -> Option<Found> {
    let mut level = boxes(file, 0, file.len());
    let (last, containers) = path.split_last()?;
    for step in containers {
        let next = *level.iter().find(|b| &b.box_type == *step)?;
        level = boxes(file, next.start + next.header_len, next.end);
    }
    level.iter().find(|b| &b.box_type == *last).copied()
}

fn types(found: &[Found]) -> Vec<String> {
    found
        .iter()
        .map(|b| String::from_utf8_lossy(&b.box_type).into_owned())
        .collect()
}

#[test]
fn the_fixture_carries_location_where_phones_put_it() {
    let file = fixtures::mp4_with_location();
    let location = find(&file, &[b"moov", b"udta", b"\xA9xyz"]).unwrap();
    assert!(contains(
        location.payload(&file),
        fixtures::ISO6709_LOCATION
    ));
    let meta = find(&file, &[b"moov", b"meta"]).unwrap().payload(&file);
    assert!(
        contains(meta, b"com.apple.quicktime.location.ISO6709")
            && contains(meta, fixtures::ISO6709_LOCATION)
    );
    assert!(find(&file, &[b"moov", b"trak", b"udta"]).is_some());
}

#[test]
fn location_boxes_become_free_boxes_of_the_same_size_and_nothing_moves() {
    let original = fixtures::mp4_with_location();
    let (scrubbed, clean) = scrub_through_files(&original);
    assert_eq!(scrubbed.kind, FileKind::Mp4);
    assert_eq!(
        scrubbed.removed,
        ["moov/trak/udta", "moov/udta", "moov/meta", "uuid (XMP)"]
    );
    assert_eq!(clean.len(), original.len());
    assert_no_location(&clean);
    for signature in [
        &b"\xA9xyz"[..],
        b"com.apple.quicktime",
        b"xmpmeta",
        b"KolokolCam",
    ] {
        assert!(
            !contains(&clean, signature),
            "{:?} survived",
            String::from_utf8_lossy(signature)
        );
    }

    let top = boxes(&clean, 0, clean.len());
    assert_eq!(types(&top), ["ftyp", "mdat", "moov", "free", "free"]);
    let moov = find(&clean, &[b"moov"]).unwrap();
    let children = boxes(&clean, moov.start + moov.header_len, moov.end);
    assert_eq!(types(&children), ["mvhd", "trak", "free", "free"]);
    let original_moov = find(&original, &[b"moov"]).unwrap();
    for (before, after) in boxes(&original, original_moov.start + 8, original_moov.end)
        .iter()
        .zip(&children)
    {
        assert_eq!(
            (before.start, before.end),
            (after.start, after.end),
            "a box moved"
        );
        if after.box_type == *b"free" {
            assert!(
                after.payload(&clean).iter().all(|&b| b == 0),
                "free payload zeroed"
            );
        } else if after.box_type != *b"trak" {
            assert_eq!(
                &original[before.start..before.end],
                &clean[after.start..after.end]
            );
        }
    }
    let trak = find(&clean, &[b"moov", b"trak"]).unwrap();
    let track_children = boxes(&clean, trak.start + 8, trak.end);
    assert_eq!(types(&track_children), ["tkhd", "mdia", "free"]);
    // The track's header and media (with the sample tables) are untouched.
    assert_eq!(
        &clean[trak.start + 8..track_children[2].start],
        &original[trak.start + 8..track_children[2].start]
    );

    // mdat (with its 64-bit size header) is byte-identical, and the chunk offset still points at the sample.
    let mdat = find(&clean, &[b"mdat"]).unwrap();
    assert_eq!(mdat.header_len, 16);
    assert_eq!(
        &clean[mdat.start..mdat.end],
        &original[mdat.start..mdat.end]
    );
    let stco = find(
        &clean,
        &[b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stco"],
    )
    .unwrap()
    .payload(&clean);
    let chunk_offset = u32::from_be_bytes(stco[8..12].try_into().unwrap()) as usize;
    let sample = fixtures::mp4_sample();
    assert_eq!(
        &clean[chunk_offset..chunk_offset + sample.len()],
        &sample[..]
    );
}

#[test]
fn top_level_meta_is_blanked_and_a_size_zero_mdat_is_streamed_to_the_end() {
    let original = fixtures::mp4_with_location();
    let ftyp = find(&original, &[b"ftyp"]).unwrap();
    let meta = find(&original, &[b"moov", b"meta"]).unwrap();
    let mut file = original[ftyp.start..ftyp.end].to_vec();
    file.extend_from_slice(&original[meta.start..meta.end]);
    file.extend_from_slice(b"\0\0\0\0mdat");
    file.extend_from_slice(&fixtures::mp4_sample());

    let (scrubbed, clean) = scrub_bytes(&file);
    assert_eq!(scrubbed.removed, ["meta"]);
    assert_no_location(&clean);
    assert_eq!(
        types(&boxes(&clean, 0, clean.len())),
        ["ftyp", "free", "mdat"]
    );
    assert!(clean.ends_with(&fixtures::mp4_sample()));
    assert_eq!(clean.len(), file.len());
}

#[test]
fn a_movie_box_above_the_cap_is_refused_before_it_is_read() {
    // A 2 GiB moov in a file of a few bytes: the cap is checked before any allocation or read.
    let mut file = b"\0\0\0\x10ftypisom\0\0\0\0".to_vec();
    file.extend_from_slice(&0x8000_0000u32.to_be_bytes());
    file.extend_from_slice(b"moov");
    let error = kolokol_scrub::scrub(&file[..], Vec::new()).unwrap_err();
    assert!(
        matches!(
            error,
            ScrubError::TooLarge {
                kind: FileKind::Mp4,
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn a_container_ending_in_a_zero_terminator_is_accepted() {
    // QuickTime may end a container's child list with four zero bytes.
    let original = fixtures::mp4_with_location();
    let moov = find(&original, &[b"moov"]).unwrap();
    let mut payload = original[moov.start + 8..moov.end].to_vec();
    payload.extend_from_slice(&[0; 4]);
    let mut file = original[..moov.start].to_vec();
    file.extend_from_slice(&((payload.len() + 8) as u32).to_be_bytes());
    file.extend_from_slice(b"moov");
    file.extend_from_slice(&payload);
    let (_, clean) = scrub_bytes(&file);
    assert_no_location(&clean);
    assert_eq!(clean.len(), file.len());
}

/// Produces an MP4 whose `mdat` is larger than the in-memory cap for movie boxes, without holding it in memory.
struct LargeMovie {
    head: Vec<u8>,
    mdat_len: u64,
    tail: Vec<u8>,
    position: u64,
}

impl std::io::Read for LargeMovie {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let head_len = self.head.len() as u64;
        let body_end = head_len + self.mdat_len;
        let total = body_end + self.tail.len() as u64;
        let mut n = 0;
        while n < buf.len() && self.position < total {
            buf[n] = if self.position < head_len {
                self.head[self.position as usize]
            } else if self.position < body_end {
                ((self.position - head_len) % 251) as u8
            } else {
                self.tail[(self.position - body_end) as usize]
            };
            n += 1;
            self.position += 1;
        }
        Ok(n)
    }
}

/// Checks the output as it streams by: the mdat payload is the same pattern, the tail is kept for inspection.
struct CheckingSink {
    head_len: u64,
    mdat_len: u64,
    position: u64,
    tail: Vec<u8>,
}

impl std::io::Write for CheckingSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        for &byte in buf {
            let body_offset = self.position.wrapping_sub(self.head_len);
            if self.position >= self.head_len && body_offset < self.mdat_len {
                assert_eq!(
                    byte,
                    (body_offset % 251) as u8,
                    "mdat byte {body_offset} changed"
                );
            } else if self.position >= self.head_len {
                self.tail.push(byte);
            }
            self.position += 1;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn an_mdat_larger_than_the_movie_box_cap_is_streamed_through() {
    let mdat_len = kolokol_scrub::MAX_MOVIE_BOX + 8 * 1024 * 1024;
    let mut head = b"\0\0\0\x10ftypisom\0\0\0\0\0\0\0\x01mdat".to_vec();
    head.extend_from_slice(&(mdat_len + 16).to_be_bytes());
    let fixture = fixtures::mp4_with_location();
    let moov = find(&fixture, &[b"moov"]).unwrap();
    let tail = fixture[moov.start..moov.end].to_vec();
    let input = LargeMovie {
        head: head.clone(),
        mdat_len,
        tail: tail.clone(),
        position: 0,
    };
    let mut sink = CheckingSink {
        head_len: head.len() as u64,
        mdat_len,
        position: 0,
        tail: Vec::new(),
    };
    let scrubbed = kolokol_scrub::scrub(input, &mut sink).unwrap();
    assert_eq!(
        sink.position,
        head.len() as u64 + mdat_len + tail.len() as u64
    );
    assert_eq!(
        scrubbed.removed,
        ["moov/trak/udta", "moov/udta", "moov/meta"]
    );
    assert_eq!(sink.tail.len(), tail.len());
    assert_no_location(&sink.tail);
}
