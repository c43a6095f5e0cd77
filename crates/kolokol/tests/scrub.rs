//! Publishing removes location metadata: photos and a video carrying GPS coordinates are published, another node
//! fetches them over the network, and the fetched bytes hold no trace of the position while still decoding.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::path::Path;
use std::time::Duration;

use common::{NodeProcess, TestNode, wait_for};
use kolokol_scrub::fixtures;

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn betrays_location(bytes: &[u8]) -> Vec<String> {
    fixtures::GPS_MARKERS
        .iter()
        .filter(|m| contains(bytes, m))
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .collect()
}

fn write_originals(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("photo.jpg"), fixtures::jpeg_with_gps()).unwrap();
    std::fs::write(dir.join("screen.png"), fixtures::png_with_gps()).unwrap();
    std::fs::write(dir.join("sticker.webp"), fixtures::webp_with_gps()).unwrap();
    std::fs::write(dir.join("clip.mp4"), fixtures::mp4_with_location()).unwrap();
    std::fs::write(dir.join("notes.txt"), "встреча в 18:00").unwrap();
}

#[test]
fn published_photos_and_video_carry_no_location_and_still_decode() {
    let tmp = tempfile::tempdir().unwrap();
    let a = NodeProcess::start(&tmp.path().join("a"));
    let b = NodeProcess::start(&tmp.path().join("b"));
    let originals = tmp.path().join("march");
    write_originals(&originals);
    for name in ["photo.jpg", "screen.png", "sticker.webp", "clip.mp4"] {
        let bytes = std::fs::read(originals.join(name)).unwrap();
        assert!(
            !betrays_location(&bytes).is_empty(),
            "fixture {name} has no location to remove"
        );
    }

    let published = a.json(&["publish", originals.to_str().unwrap(), "--title", "Марш"]);
    let id = published["id"].as_str().unwrap().to_owned();
    let warnings: Vec<String> = published["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_owned())
        .collect();
    // Plain text hides nothing: no file keeps metadata, so nothing to warn about.
    assert_eq!(warnings, Vec::<String>::new());

    // The originals on disk are untouched.
    assert_eq!(
        std::fs::read(originals.join("photo.jpg")).unwrap(),
        fixtures::jpeg_with_gps()
    );
    assert_eq!(
        std::fs::read(originals.join("clip.mp4")).unwrap(),
        fixtures::mp4_with_location()
    );

    // B fetches over the network: these are the bytes everyone gets.
    b.json(&[
        "peer",
        "add",
        a.json(&["status"])["wire_addr"].as_str().unwrap(),
    ]);
    let got = wait_for(Duration::from_secs(30), || b.has_record(&id).then_some(()));
    assert!(got.is_some(), "{}", b.log());
    let out = tmp.path().join("out");
    let done = b.json(&["get", &id, "-o", out.to_str().unwrap(), "--timeout", "60"]);
    assert_eq!(done["finished"], true, "{done}");
    let fetched = out.join("march");
    for name in [
        "photo.jpg",
        "screen.png",
        "sticker.webp",
        "clip.mp4",
        "notes.txt",
    ] {
        let bytes = std::fs::read(fetched.join(name)).unwrap();
        assert_eq!(
            betrays_location(&bytes),
            Vec::<String>::new(),
            "{name} still betrays the location"
        );
    }
    let jpeg = image::load_from_memory(&std::fs::read(fetched.join("photo.jpg")).unwrap()).unwrap();
    assert_eq!((jpeg.width(), jpeg.height()), (16, 16));
    let png = image::load_from_memory(&std::fs::read(fetched.join("screen.png")).unwrap()).unwrap();
    assert_eq!(png.to_rgb8().into_raw(), fixtures::png_pixels());
    let webp =
        image::load_from_memory(&std::fs::read(fetched.join("sticker.webp")).unwrap()).unwrap();
    assert_eq!(webp.to_rgba8().into_raw(), fixtures::webp_pixels());
    let mp4 = std::fs::read(fetched.join("clip.mp4")).unwrap();
    assert_eq!(
        mp4.len(),
        fixtures::mp4_with_location().len(),
        "boxes keep their sizes"
    );
    assert!(
        contains(&mp4, &fixtures::mp4_sample()),
        "the video data is intact"
    );
    assert_eq!(
        std::fs::read(fetched.join("notes.txt")).unwrap(),
        "встреча в 18:00".as_bytes()
    );

    // --keep-metadata publishes the bytes as they are.
    let kept = tmp.path().join("kept");
    std::fs::create_dir_all(&kept).unwrap();
    std::fs::write(kept.join("photo.jpg"), fixtures::jpeg_with_gps()).unwrap();
    let published = a.json(&[
        "publish",
        kept.join("photo.jpg").to_str().unwrap(),
        "--title",
        "as is",
        "--keep-metadata",
    ]);
    let path = published["path"].as_str().unwrap();
    assert_eq!(std::fs::read(path).unwrap(), fixtures::jpeg_with_gps());

    // A file that claims to be a JPEG but is broken is refused, not published with whatever it holds.
    let broken = tmp.path().join("broken.jpg");
    let mut bytes = fixtures::jpeg_with_gps();
    bytes.truncate(40);
    std::fs::write(&broken, bytes).unwrap();
    let before = a.json(&["list"]).as_array().unwrap().len();
    let refused = a.cli(&["publish", broken.to_str().unwrap(), "--title", "broken"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--keep-metadata"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert_eq!(a.json(&["list"]).as_array().unwrap().len(), before);

    // An iPhone HEIC photo: its location cannot be removed yet, so it is refused rather than published with it.
    let heic = tmp.path().join("IMG_0001.HEIC");
    let mut bytes = vec![0, 0, 0, 24];
    bytes.extend_from_slice(b"ftypheic\0\0\0\0mif1heic");
    bytes.extend_from_slice(&[0; 64]);
    std::fs::write(&heic, bytes).unwrap();
    let refused = a
        .cli_defaults(&["publish", heic.to_str().unwrap(), "--title", "iphone"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("IMG_0001.HEIC") && stderr.contains("HEIF/AVIF"),
        "{stderr}"
    );
    assert_eq!(a.json(&["list"]).as_array().unwrap().len(), before);
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Issue 12 part 5: nothing is signed while a file would keep metadata the user was not told about. A folder with a
/// PDF naming its author, a phone photo `IMG_4471.JPG`, an Ogg Vorbis file naming its artist, a binary file of a
/// kind the scrubber does not know and a `.DS_Store`: a plain `publish` exits non-zero naming the binary file and
/// what it keeps, and changes nothing; with `--allow-metadata` the PDF, the photo and the Ogg file are clean, every
/// file is named by type, and the hidden file is left out.
#[test]
fn publishing_metadata_needs_confirmation_and_names_are_neutral() {
    let tmp = tempfile::tempdir().unwrap();
    let a = NodeProcess::start(&tmp.path().join("a"));
    let dir = tmp.path().join("Tverskaya 3 Nov");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("IMG_4471.JPG"), fixtures::jpeg_with_gps()).unwrap();
    std::fs::write(dir.join("Anna report.pdf"), fixtures::pdf_with_author()).unwrap();
    // An Ogg Vorbis file whose comment names the artist: scrubbed.
    let (ogg, _) = fixtures::ogg_with_artist(false, false);
    std::fs::write(dir.join("interview.ogg"), &ogg).unwrap();
    // A binary file of a kind the scrubber does not know, naming the author: kept only after the confirmation.
    let unknown = b"\x00\x01\x02\x03recorded by Anna Ivanova\xFF\xFE".to_vec();
    std::fs::write(dir.join("interview.bin"), &unknown).unwrap();
    std::fs::write(dir.join(".DS_Store"), b"\0\0\0\x01Bud1 /Users/anna").unwrap();
    let content = a.data_dir.join("content");
    let content_before = entries(&content);
    let list_before = a.json(&["list"]).as_array().unwrap().len();

    // Without the confirmation: refused before anything is copied or signed.
    let refused = a
        .cli_defaults(&["publish", dir.to_str().unwrap(), "--title", "Марш"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("interview.bin") && stderr.contains("unknown format"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("interview.ogg"),
        "the Ogg file is scrubbed, not a problem: {stderr}"
    );
    assert!(stderr.contains("--allow-metadata"), "{stderr}");
    assert!(
        stderr.contains(".DS_Store"),
        "the hidden file is said to be left out: {stderr}"
    );
    assert!(
        !stderr.contains("IMG_4471"),
        "the photo is scrubbed, not a problem: {stderr}"
    );
    assert_eq!(a.json(&["list"]).as_array().unwrap().len(), list_before);
    assert_eq!(
        entries(&content),
        content_before,
        "no copy left in content/"
    );

    // A single photo needs no confirmation and gets a neutral name.
    let photo = a
        .cli_defaults(&[
            "--json",
            "publish",
            dir.join("IMG_4471.JPG").to_str().unwrap(),
            "--title",
            "Фото",
        ])
        .output()
        .unwrap();
    assert!(
        photo.status.success(),
        "{}",
        String::from_utf8_lossy(&photo.stderr)
    );
    let photo: serde_json::Value = serde_json::from_slice(&photo.stdout).unwrap();
    let path = Path::new(photo["path"].as_str().unwrap());
    assert_eq!(path.file_name().unwrap(), "photo.jpg");
    assert!(betrays_location(&std::fs::read(path).unwrap()).is_empty());

    // With the confirmation.
    let published = a
        .cli_defaults(&[
            "--json",
            "publish",
            dir.to_str().unwrap(),
            "--title",
            "Марш",
            "--allow-metadata",
        ])
        .output()
        .unwrap();
    assert!(
        published.status.success(),
        "{}",
        String::from_utf8_lossy(&published.stderr)
    );
    let published: serde_json::Value = serde_json::from_slice(&published.stdout).unwrap();
    let root = Path::new(published["path"].as_str().unwrap());
    assert_eq!(
        root.file_name().unwrap(),
        "Марш",
        "the folder is named by the title"
    );
    assert_eq!(
        entries(root),
        ["audio.ogg", "document.pdf", "file.bin", "photo.jpg"]
    );
    let warnings = published["warnings"].to_string();
    assert!(
        warnings.contains("interview.bin") && warnings.contains(".DS_Store"),
        "{warnings}"
    );

    let pdf = std::fs::read(root.join("document.pdf")).unwrap();
    for marker in fixtures::PDF_MARKERS {
        assert!(
            !contains(&pdf, marker),
            "{:?} left in the PDF",
            String::from_utf8_lossy(marker)
        );
    }
    assert!(contains(&pdf, b"Hello page"), "the page is kept");
    assert!(betrays_location(&std::fs::read(root.join("photo.jpg")).unwrap()).is_empty());
    assert_eq!(
        std::fs::read(root.join("file.bin")).unwrap(),
        unknown,
        "confirmed: as it is"
    );
    let audio = std::fs::read(root.join("audio.ogg")).unwrap();
    assert!(
        contains(&ogg, fixtures::OGG_ARTIST) && !contains(&audio, b"Someone"),
        "the Ogg file's artist is removed"
    );
    qpdf_accepts(&root.join("document.pdf"));

    // The signed record names only the neutral files.
    let id = published["id"].as_str().unwrap();
    let record = a.json(&["show", id]).to_string();
    for private in ["IMG_4471", "Anna", "interview", "Tverskaya", "DS_Store"] {
        assert!(
            !record.contains(private),
            "{private} in the record: {record}"
        );
    }
}

/// `qpdf --check` on a scrubbed PDF (scripts/test.sh installs qpdf).
fn qpdf_accepts(path: &Path) {
    let out = std::process::Command::new("qpdf")
        .arg("--check")
        .arg(path)
        .output()
        .expect("qpdf is installed (apt-get install qpdf)");
    assert!(
        out.status.success(),
        "qpdf --check: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
