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
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("notes.txt"), "{warnings:?}");

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
    let refused = a.cli(&["publish", heic.to_str().unwrap(), "--title", "iphone"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("HEIC"));
    assert_eq!(a.json(&["list"]).as_array().unwrap().len(), before);
}
