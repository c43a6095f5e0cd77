//! Ogg Vorbis and Ogg Opus: the comment packet is emptied, every page's CRC is valid, sequence numbers stay
//! contiguous, and the audio pages are kept byte for byte apart from their sequence number and CRC; files the
//! scrubber cannot clean (other codecs, several streams) fail closed; hostile bytes never panic.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use kolokol_scrub::{FileKind, ScrubError, fixtures, inspect, scrub};
use proptest::prelude::*;

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Ogg's CRC, computed bit by bit here (independently of the scrubber's table).
fn crc(bytes: &[u8]) -> u32 {
    let mut crc = 0u32;
    for &b in bytes {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// Splits a file into pages, checking each page's CRC.
fn pages(file: &[u8]) -> Vec<Vec<u8>> {
    let mut pages = Vec::new();
    let mut at = 0;
    while at < file.len() {
        assert_eq!(&file[at..at + 4], b"OggS", "page at {at}");
        let count = usize::from(file[at + 26]);
        let body: usize = file[at + 27..at + 27 + count]
            .iter()
            .map(|&l| usize::from(l))
            .sum();
        let page = file[at..at + 27 + count + body].to_vec();
        let mut zeroed = page.clone();
        zeroed[22..26].fill(0);
        assert_eq!(
            crc(&zeroed).to_le_bytes(),
            page[22..26],
            "CRC of page at {at}"
        );
        at += page.len();
        pages.push(page);
    }
    pages
}

fn all() -> Vec<(bool, bool)> {
    vec![(false, false), (false, true), (true, false), (true, true)]
}

#[test]
fn the_comments_are_emptied_and_the_audio_pages_kept() {
    for (opus, long) in all() {
        let (with, audio) = fixtures::ogg_with_artist(opus, long);
        let before = pages(&with);
        assert!(contains(&with, fixtures::OGG_ARTIST));
        let mut out = Vec::new();
        let scrubbed = scrub(with.as_slice(), &mut out).unwrap();
        assert_eq!(scrubbed.kind, FileKind::Ogg);
        assert!(!scrubbed.removed.is_empty(), "opus {opus} long {long}");
        assert!(!contains(&out, b"Someone"), "opus {opus} long {long}");
        assert!(!contains(&out, b"Lavf"), "the vendor string is gone too");
        let after = pages(&out);
        for (i, page) in after.iter().enumerate() {
            assert_eq!(
                page[18..22],
                (i as u32).to_le_bytes(),
                "sequence of page {i}"
            );
        }
        // The identification page is unchanged.
        assert_eq!(after[0], before[0]);
        if long {
            assert!(
                after.len() < before.len(),
                "the two comment pages became one"
            );
        }
        let kept = &after[after.len() - audio.len()..];
        for (old, new) in audio.iter().zip(kept) {
            assert_eq!(old[..18], new[..18]);
            assert_eq!(old[26..], new[26..]);
        }
        let empty: &[u8] = if opus {
            b"OpusTags\0\0\0\0\0\0\0\0"
        } else {
            b"\x03vorbis\0\0\0\0\0\0\0\0\x01"
        };
        assert!(contains(&after[1], empty));
        if !opus {
            // The setup packet follows the new comment packet unchanged.
            let setup_start = with.windows(7).position(|w| w == b"\x05vorbis").unwrap();
            assert!(contains(&out, &with[setup_start..setup_start + 407]));
        }
        // Scrubbing twice changes nothing more.
        let mut again = Vec::new();
        let second = scrub(out.as_slice(), &mut again).unwrap();
        assert_eq!(again, out);
        assert!(second.removed.is_empty(), "{:?}", second.removed);
        let found = inspect(with.as_slice()).unwrap();
        assert_eq!((found.kind, found.kept), (FileKind::Ogg, None));
        let extension = if opus { "opus" } else { "ogg" };
        assert_eq!(
            (found.category, found.extension),
            ("audio", Some(extension))
        );
    }
}

#[test]
fn broken_and_unsupported_files_are_errors() {
    let (ogg, _) = fixtures::ogg_with_artist(false, false);
    assert!(matches!(
        scrub(&ogg[..40], Vec::new()),
        Err(ScrubError::Truncated { .. })
    ));
    let mut bad = ogg.clone();
    bad[40] ^= 1; // inside the identification packet: the CRC no longer matches
    assert!(matches!(
        scrub(bad.as_slice(), Vec::new()),
        Err(ScrubError::Malformed { .. })
    ));
    // A second stream after the first: chained, refused, and the dry run says it keeps metadata.
    let (opus, _) = fixtures::ogg_with_artist(true, false);
    let mut chained = ogg.clone();
    chained.extend_from_slice(&opus);
    assert!(matches!(
        scrub(chained.as_slice(), Vec::new()),
        Err(ScrubError::Unsupported { .. })
    ));
    assert!(inspect(chained.as_slice()).unwrap().kept.is_some());
    // A second stream beginning among the headers (multiplexed, e.g. video and audio): refused.
    let first_page_len = 27 + 1 + usize::from(ogg[27]);
    let mut other = opus[..27 + 1 + usize::from(opus[27])].to_vec();
    other[14..18].copy_from_slice(&7u32.to_le_bytes());
    other[22..26].fill(0);
    let other_crc = crc(&other);
    other[22..26].copy_from_slice(&other_crc.to_le_bytes());
    let mut multiplexed = ogg[..first_page_len].to_vec();
    multiplexed.extend_from_slice(&other);
    multiplexed.extend_from_slice(&ogg[first_page_len..]);
    assert!(matches!(
        scrub(multiplexed.as_slice(), Vec::new()),
        Err(ScrubError::Unsupported { .. })
    ));
    assert!(inspect(multiplexed.as_slice()).unwrap().kept.is_some());
    // A first stream of another codec (Theora here): refused.
    let mut theora = ogg.clone();
    theora[28..35].copy_from_slice(b"\x80theora");
    let mut zeroed = theora.clone();
    zeroed[22..26].fill(0);
    let page_len = 27 + 1 + usize::from(theora[27]);
    theora[22..26].copy_from_slice(&crc(&zeroed[..page_len]).to_le_bytes());
    assert!(matches!(
        scrub(theora.as_slice(), Vec::new()),
        Err(ScrubError::Unsupported { .. })
    ));
    assert!(
        inspect(theora.as_slice())
            .unwrap()
            .kept
            .unwrap()
            .contains("Ogg")
    );
}

#[test]
fn every_truncation_answers_without_panicking() {
    for (opus, long) in [(false, false), (true, false)] {
        let (with, _) = fixtures::ogg_with_artist(opus, long);
        for cut in 0..with.len() {
            // A cut at a page boundary after the headers is still a valid (shorter) stream.
            let mut out = Vec::new();
            if scrub(&with[..cut], &mut out).is_ok() {
                assert!(!contains(&out, b"Someone"), "cut at {cut}");
            }
            let _ = inspect(&with[..cut]);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn mutated_files_never_panic(
        which in 0usize..4,
        changes in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        insert in proptest::option::of((any::<prop::sample::Index>(), proptest::collection::vec(any::<u8>(), 1..16))),
    ) {
        let (opus, long) = all()[which];
        let mut file = fixtures::ogg_with_artist(opus, long).0;
        for (at, byte) in changes {
            let at = at.index(file.len());
            file[at] = byte;
        }
        if let Some((at, bytes)) = insert {
            let at = at.index(file.len());
            file.splice(at..at, bytes);
        }
        let _ = inspect(file.as_slice());
        let _ = scrub(file.as_slice(), Vec::new());
    }

    #[test]
    fn garbage_after_the_capture_pattern_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut file = b"OggS".to_vec();
        file.extend(bytes);
        let _ = inspect(file.as_slice());
        prop_assert!(scrub(file.as_slice(), Vec::new()).is_err());
    }
}

/// Real Ogg Vorbis and Ogg Opus files from ffmpeg with an artist: after scrubbing, ffprobe reads the same streams
/// and duration without complaint and finds no artist.
#[test]
fn files_from_ffmpeg_lose_their_artist_and_still_play() {
    let encoders = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-encoders"])
        .output()
        .expect("ffmpeg is installed (scripts/test.sh installs it)");
    let encoders = String::from_utf8_lossy(&encoders.stdout).into_owned();
    let mut checked = 0;
    for (codec, extension) in [("libvorbis", "ogg"), ("libopus", "opus")] {
        if !encoders.contains(codec) {
            eprintln!("SKIPPED: ffmpeg has no {codec} encoder; the {extension} check did not run");
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        let original = dir.path().join(format!("clip.{extension}"));
        let status = std::process::Command::new("ffmpeg")
            .args([
                "-loglevel",
                "error",
                "-nostdin",
                "-f",
                "lavfi",
                "-i",
                "sine=d=1",
            ])
            .args(["-c:a", codec, "-metadata", "artist=Someone"])
            .arg(&original)
            .status()
            .unwrap();
        assert!(status.success(), "{codec}");
        let bytes = std::fs::read(&original).unwrap();
        assert!(contains(&bytes, b"Someone"), "{codec}");
        let mut out = Vec::new();
        let scrubbed = scrub(bytes.as_slice(), &mut out).unwrap();
        assert_eq!(scrubbed.kind, FileKind::Ogg);
        assert!(
            !contains(&out, b"Someone"),
            "{codec}: {:?}",
            scrubbed.removed
        );
        pages(&out);
        let clean = dir.path().join(format!("clean.{extension}"));
        std::fs::write(&clean, &out).unwrap();
        let probe = |path: &std::path::Path| {
            let out = std::process::Command::new("ffprobe")
                .args([
                    "-v",
                    "error",
                    "-show_entries",
                    "format=duration:stream=codec_name,sample_rate,channels:format_tags:stream_tags",
                    "-of",
                    "json",
                ])
                .arg(path)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                out.stderr.is_empty(),
                "ffprobe complains: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
        };
        let before = probe(&original);
        let after = probe(&clean);
        assert!(before.to_string().contains("Someone"), "{before}");
        assert!(!after.to_string().contains("Someone"), "{after}");
        assert_eq!(
            before["streams"][0]["codec_name"],
            after["streams"][0]["codec_name"]
        );
        assert_eq!(
            before["streams"][0]["sample_rate"],
            after["streams"][0]["sample_rate"]
        );
        assert_eq!(before["format"]["duration"], after["format"]["duration"]);
        checked += 1;
    }
    assert!(
        checked > 0,
        "neither libvorbis nor libopus is in ffmpeg: nothing was checked"
    );
}
