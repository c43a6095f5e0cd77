//! GIF, FLAC, MP3 and Matroska/WebM: comments, XMP, Vorbis comments, pictures, ID3 tags, Matroska tags and titles
//! are removed and every other byte is
//! kept exactly; broken files are errors, hostile bytes never panic.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use kolokol_scrub::{FileKind, ScrubError, fixtures, inspect, scrub};
use proptest::prelude::*;

/// A kind, a file of it with metadata, and the bytes the scrubber must leave.
type Fixture = (FileKind, (Vec<u8>, Vec<u8>));

fn all() -> [Fixture; 4] {
    [
        (FileKind::Matroska, fixtures::matroska_with_author()),
        (FileKind::Gif, fixtures::gif_with_author()),
        (FileKind::Flac, fixtures::flac_with_author()),
        (FileKind::Mp3, fixtures::mp3_with_author()),
    ]
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn the_author_is_removed_and_everything_else_kept_byte_for_byte() {
    for (kind, (with, without)) in all() {
        assert!(contains(&with, b"Anna Ivanova"), "{kind} fixture");
        let mut out = Vec::new();
        let scrubbed = scrub(with.as_slice(), &mut out).unwrap();
        assert_eq!(scrubbed.kind, kind);
        assert_eq!(out, without, "{kind}: {:?}", scrubbed.removed);
        assert!(!scrubbed.removed.is_empty(), "{kind}");
        // Scrubbing twice changes nothing more.
        let mut again = Vec::new();
        let second = scrub(out.as_slice(), &mut again).unwrap();
        assert_eq!(again, out, "{kind}");
        assert!(second.removed.is_empty(), "{kind}: {:?}", second.removed);
        let found = inspect(with.as_slice()).unwrap();
        assert_eq!((found.kind, found.kept), (kind, None));
    }
}

#[test]
fn broken_files_are_errors() {
    let (gif, _) = fixtures::gif_with_author();
    // Cut before the trailer: truncated.
    let cut = gif.iter().rposition(|&b| b == 0x3B).unwrap();
    assert!(matches!(
        scrub(&gif[..cut], Vec::new()),
        Err(ScrubError::Truncated { .. })
    ));
    let mut bad = gif.clone();
    bad[19] = 0x99; // the first block introducer
    assert!(matches!(
        scrub(bad.as_slice(), Vec::new()),
        Err(ScrubError::Malformed { .. })
    ));

    let (flac, _) = fixtures::flac_with_author();
    assert!(scrub(&flac[..20], Vec::new()).is_err());
    let mut bad = flac.clone();
    bad[4] = 4; // the first block is not STREAMINFO
    assert!(matches!(
        scrub(bad.as_slice(), Vec::new()),
        Err(ScrubError::Malformed { .. })
    ));

    let (mp3, _) = fixtures::mp3_with_author();
    assert!(matches!(
        scrub(&mp3[..12], Vec::new()),
        Err(ScrubError::Truncated { .. })
    ));
    let mut bad = mp3.clone();
    bad[9] = 0x80; // not syncsafe
    assert!(matches!(
        scrub(bad.as_slice(), Vec::new()),
        Err(ScrubError::Malformed { .. })
    ));
    // A tag the scrubber does not remove fails closed.
    let mut ape = mp3.clone();
    ape.extend_from_slice(b"APETAGEX\xD0\x07\x00\x00");
    ape.extend_from_slice(&[0; 20]);
    assert!(matches!(
        scrub(ape.as_slice(), Vec::new()),
        Err(ScrubError::Unsupported { .. })
    ));
}

#[test]
fn every_truncation_answers_without_panicking() {
    for (_, (with, _)) in all() {
        for cut in 0..with.len() {
            let _ = scrub(&with[..cut], Vec::new());
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
        let mut file = all()[which].1.0.clone();
        for (at, byte) in changes {
            let at = at.index(file.len());
            file[at] = byte;
        }
        if let Some((at, bytes)) = insert {
            let at = at.index(file.len());
            file.splice(at..at, bytes);
        }
        let _ = inspect(file.as_slice());
        let mut output = Vec::new();
        if let Ok(scrubbed) = scrub(file.as_slice(), &mut output)
            && scrubbed.kind == FileKind::Unknown
        {
            prop_assert_eq!(output, file);
        }
    }
}

/// A real WebM from ffmpeg with a title and an artist: after scrubbing, ffprobe still reads it (same streams and
/// duration) and finds neither.
#[test]
fn a_webm_from_ffmpeg_loses_its_tags_and_still_plays() {
    let dir = tempfile::tempdir().unwrap();
    let original = dir.path().join("clip.webm");
    let status = std::process::Command::new("ffmpeg")
        .args([
            "-loglevel",
            "error",
            "-nostdin",
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=1:size=64x64:rate=10",
        ])
        .args([
            "-c:v",
            "libvpx",
            "-metadata",
            "title=Anna Ivanova",
            "-metadata",
            "artist=Anna Ivanova",
        ])
        .arg(&original)
        .status()
        .expect("ffmpeg is installed (scripts/test.sh installs it)");
    assert!(status.success());
    let bytes = std::fs::read(&original).unwrap();
    assert!(contains(&bytes, b"Anna Ivanova"));
    let mut out = Vec::new();
    let scrubbed = scrub(bytes.as_slice(), &mut out).unwrap();
    assert_eq!(scrubbed.kind, FileKind::Matroska);
    assert_eq!(out.len(), bytes.len(), "nothing moves");
    assert!(!contains(&out, b"Anna Ivanova"), "{:?}", scrubbed.removed);
    let clean = dir.path().join("clean.webm");
    std::fs::write(&clean, &out).unwrap();
    let probe = |path: &std::path::Path| {
        let out = std::process::Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_entries",
                "format=duration:stream=codec_name,width,height:format_tags",
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
    assert_eq!(before["streams"], after["streams"]);
    assert_eq!(before["format"]["duration"], after["format"]["duration"]);
    assert!(!after.to_string().contains("Anna"), "{after}");
    assert!(before.to_string().contains("Anna"), "{before}");
}
