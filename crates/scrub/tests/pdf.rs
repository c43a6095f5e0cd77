//! PDF: the document info and XMP are blanked in place, the file keeps its length (so its cross-reference offsets
//! stay true) and `qpdf --check` still accepts it; what cannot be blanked is an error, never a silent pass.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use kolokol_scrub::{FileKind, ScrubError, fixtures, inspect, scrub};
use proptest::prelude::*;

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn the_author_is_gone_and_the_pdf_is_still_valid() {
    let original = fixtures::pdf_with_author();
    for marker in fixtures::PDF_MARKERS {
        assert!(contains(&original, marker), "the fixture lacks {marker:?}");
    }
    let mut out = Vec::new();
    let scrubbed = scrub(original.as_slice(), &mut out).unwrap();
    assert_eq!(scrubbed.kind, FileKind::Pdf);
    assert_eq!(out.len(), original.len(), "nothing moves");
    for marker in fixtures::PDF_MARKERS {
        assert!(
            !contains(&out, marker),
            "{:?} left",
            String::from_utf8_lossy(marker)
        );
    }
    assert!(contains(&out, b"Hello page"), "the page's text is kept");
    assert!(
        scrubbed.removed.iter().any(|r| r.contains("document info"))
            && scrubbed.removed.iter().any(|r| r.contains("XMP")),
        "{:?}",
        scrubbed.removed
    );

    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in [("original.pdf", &original), ("scrubbed.pdf", &out)] {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let check = std::process::Command::new("qpdf")
            .arg("--check")
            .arg(&path)
            .output()
            .expect("qpdf is installed (scripts/test.sh installs it)");
        assert!(
            check.status.success(),
            "qpdf --check {name}: {}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
    }
}

#[test]
fn what_cannot_be_blanked_is_an_error_and_the_dry_run_says_so() {
    let encrypted =
        b"%PDF-1.4\n1 0 obj << /Author (Anna) >> endobj\ntrailer << /Encrypt 5 0 R /Info 1 0 R >>";
    assert!(matches!(
        scrub(&encrypted[..], Vec::new()),
        Err(ScrubError::Unsupported { .. })
    ));
    assert!(inspect(&encrypted[..]).unwrap().kept.is_some());
    let compressed_xmp =
        b"%PDF-1.4\n6 0 obj << /Type /Metadata /Subtype /XML /Filter /FlateDecode /Length 2 >>\nstream\nxx\nendstream\nendobj\n";
    assert!(matches!(
        scrub(&compressed_xmp[..], Vec::new()),
        Err(ScrubError::Unsupported { .. })
    ));
    let unterminated = b"%PDF-1.4\n7 0 obj << /Author (Anna >> endobj trailer << /Info 7 0 R >>";
    assert!(matches!(
        scrub(&unterminated[..], Vec::new()),
        Err(ScrubError::Malformed { .. })
    ));
    assert!(inspect(&unterminated[..]).is_err());
}

#[test]
fn every_truncation_answers_without_panicking() {
    let file = fixtures::pdf_with_author();
    for cut in 0..file.len() {
        let _ = scrub(&file[..cut], Vec::new());
        let _ = inspect(&file[..cut]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Random changes to the fixture: scrub and inspect answer without panicking, and a successful scrub never
    /// changes the file's length (the cross-reference offsets stay true).
    #[test]
    fn mutated_pdfs_never_panic_and_keep_their_length(
        changes in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        insert in proptest::option::of((any::<prop::sample::Index>(), proptest::collection::vec(any::<u8>(), 1..16))),
    ) {
        let mut file = fixtures::pdf_with_author();
        for (at, byte) in changes {
            let at = at.index(file.len());
            file[at] = byte;
        }
        if let Some((at, bytes)) = insert {
            let at = at.index(file.len());
            file.splice(at..at, bytes);
        }
        let _ = inspect(&file[..]);
        let mut output = Vec::new();
        if let Ok(scrubbed) = scrub(&file[..], &mut output)
            && scrubbed.kind == FileKind::Pdf
        {
            prop_assert_eq!(output.len(), file.len());
        }
    }
}
