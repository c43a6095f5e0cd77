//! Bundles end to end: node A publishes and exports; node B, which never had a network link to A, imports the file,
//! has the records and the data, and serves them to C over the network. A copy with one flipped byte imports
//! everything but the damaged file, which is named; a truncated copy is refused and changes nothing.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

/// The album's files: sizes chosen so that pieces (256 KiB) straddle file boundaries.
const ALBUM: [(&str, usize, u64); 3] = [
    ("a.bin", 1_500_000, 11),
    ("b.bin", 2_500_000, 12),
    ("c.bin", 3_000_000, 13),
];

/// Every file under `root` with its size and SHA-256, by relative path: what "the data directory did not change"
/// is checked against.
fn listing(root: &Path) -> BTreeMap<PathBuf, (u64, String)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.insert(
                    path.strip_prefix(root).unwrap().to_path_buf(),
                    (0, "dir".into()),
                );
                stack.push(path);
            } else {
                let size = std::fs::metadata(&path).unwrap().len();
                out.insert(
                    path.strip_prefix(root).unwrap().to_path_buf(),
                    (size, sha256_file(&path)),
                );
            }
        }
    }
    out
}

fn data_listing(node: &NodeProcess) -> BTreeMap<PathBuf, (u64, String)> {
    let mut all = listing(&node.data_dir.join("content"));
    all.extend(
        listing(&node.data_dir.join("downloads"))
            .into_iter()
            .map(|(p, v)| (Path::new("downloads").join(p), v)),
    );
    all
}

fn record_ids(node: &NodeProcess) -> Vec<String> {
    let mut ids: Vec<String> = node
        .json(&["list", "--limit", "1000"])
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

fn import(node: &NodeProcess, bundle: &Path) -> serde_json::Value {
    node.json(&["bundle", "import", bundle.to_str().unwrap()])
}

/// A GET on the node's API (with its token, as every API request), over a plain loopback socket.
fn api_get(node: &NodeProcess, path: &str) -> serde_json::Value {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(&node.api).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {}\r\nX-Kolokol-Token: {}\r\nConnection: close\r\n\r\n",
        node.api,
        node.token()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let body = answer.split_once("\r\n\r\n").unwrap().1;
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"))
}

/// Run `kolokol` expecting failure: returns stderr.
fn fails(node: &NodeProcess, args: &[&str]) -> String {
    let out = node.cli(args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "kolokol {args:?} should fail: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `get` a publication and check every file of the album (or the clip) against the originals.
fn get_and_compare(node: &NodeProcess, id: &str, originals: &[(String, PathBuf)]) {
    let got = node.json(&["get", id, "--timeout", "120"]);
    let path = PathBuf::from(got["path"].as_str().unwrap());
    for (relative, original) in originals {
        let file = if relative.is_empty() {
            path.clone()
        } else {
            path.join(relative)
        };
        assert_eq!(
            sha256_file(&file),
            sha256_file(original),
            "{} differs\nnode log:\n{}",
            file.display(),
            node.log()
        );
    }
}

#[test]
fn bundle_moves_publications_without_a_network_link_and_refuses_damage() {
    let tmp = tempfile::tempdir().unwrap();
    let album = tmp.path().join("album");
    std::fs::create_dir_all(&album).unwrap();
    for (name, len, seed) in ALBUM {
        random_file(&album.join(name), len, seed);
    }
    let clip = tmp.path().join("clip.bin");
    random_file(&clip, 1_000_000, 14);
    let album_files: Vec<(String, PathBuf)> = ALBUM
        .iter()
        .map(|(name, _, _)| (name.to_string(), album.join(name)))
        .collect();
    let clip_files = vec![(String::new(), clip.clone())];

    // A publishes and exports.
    let a = NodeProcess::start(&tmp.path().join("a"));
    let album_id = a.json(&["publish", album.to_str().unwrap(), "--title", "Альбом"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let clip_id = a.json(&["publish", clip.to_str().unwrap(), "--title", "Clip"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let bundle = tmp.path().join("usb").join("a.bundle");
    std::fs::create_dir_all(bundle.parent().unwrap()).unwrap();
    let exported = a.json(&["bundle", "export", "-o", bundle.to_str().unwrap()]);
    assert_eq!(exported["publications"], 2, "{exported}");
    assert_eq!(exported["with_data"], 2, "{exported}");
    assert!(exported["record_only"].as_array().unwrap().is_empty());
    assert!(exported["damaged"].as_array().unwrap().is_empty());
    let total: u64 = ALBUM.iter().map(|(_, len, _)| *len as u64).sum::<u64>() + 1_000_000;
    assert_eq!(exported["data_bytes"], total);
    assert_eq!(
        exported["bytes"].as_u64().unwrap(),
        std::fs::metadata(&bundle).unwrap().len()
    );
    // An existing file is never overwritten; a filter selects.
    let message = fails(&a, &["bundle", "export", "-o", bundle.to_str().unwrap()]);
    assert!(message.contains("already exists"), "{message}");
    let only_clip = tmp.path().join("usb").join("clip.bundle");
    let exported = a.json(&[
        "bundle",
        "export",
        "-o",
        only_clip.to_str().unwrap(),
        "--id",
        &clip_id,
    ]);
    assert_eq!(exported["publications"], 1, "{exported}");
    assert!(a.stop(), "A did not shut down cleanly");

    // B never had a link to A: the bundle alone brings records and data.
    let b = NodeProcess::start(&tmp.path().join("b"));
    let imported = import(&b, &bundle);
    assert_eq!(imported["publications"], 2, "{imported}");
    assert_eq!(imported["new_records"], 2, "{imported}");
    assert_eq!(imported["imported_data"], 2, "{imported}");
    assert_eq!(imported["data_bytes"], total, "{imported}");
    assert!(
        imported["damaged"].as_array().unwrap().is_empty(),
        "{imported}"
    );
    let mut expected_ids = vec![album_id.clone(), clip_id.clone()];
    expected_ids.sort();
    assert_eq!(record_ids(&b), expected_ids);
    get_and_compare(&b, &album_id, &album_files);
    get_and_compare(&b, &clip_id, &clip_files);

    // Importing the same bundle again changes nothing.
    let ids_before = record_ids(&b);
    let data_before = data_listing(&b);
    let again = import(&b, &bundle);
    assert_eq!(again["new_records"], 0, "{again}");
    assert_eq!(again["known_records"], 2, "{again}");
    assert_eq!(again["imported_data"], 0, "{again}");
    assert_eq!(again["data_bytes"], 0, "{again}");
    assert_eq!(record_ids(&b), ids_before);
    assert_eq!(data_listing(&b), data_before);

    // A truncated copy (cut inside file data, and inside the trailer) is refused and changes nothing.
    let bytes = std::fs::read(&bundle).unwrap();
    for (name, cut) in [("half", bytes.len() / 2), ("tail", bytes.len() - 10)] {
        let truncated = tmp.path().join(format!("{name}.bundle"));
        std::fs::write(&truncated, &bytes[..cut]).unwrap();
        let message = fails(&b, &["bundle", "import", truncated.to_str().unwrap()]);
        assert!(message.contains("truncated"), "{message}");
        assert_eq!(record_ids(&b), ids_before);
        assert_eq!(data_listing(&b), data_before);
    }
    let garbage = tmp.path().join("garbage.bundle");
    std::fs::write(&garbage, b"this is not a bundle at all").unwrap();
    let message = fails(&b, &["bundle", "import", garbage.to_str().unwrap()]);
    assert!(message.contains("not a kolokol bundle"), "{message}");
    assert_eq!(data_listing(&b), data_before);

    // C, peered only with B, gets identical bytes over the network.
    let c = NodeProcess::start(&tmp.path().join("c"));
    let b_wire = b.json(&["status"])["wire_addr"]
        .as_str()
        .unwrap()
        .to_owned();
    c.json(&["peer", "add", &b_wire]);
    wait_for(Duration::from_secs(60), || {
        c.has_record(&album_id).then_some(())
    })
    .unwrap_or_else(|| panic!("record never reached C\nC log:\n{}", c.log()));
    get_and_compare(&c, &album_id, &album_files);

    // One flipped byte in the middle of b.bin: D imports everything else and names the damaged file.
    let b_data = std::fs::read(album.join("b.bin")).unwrap();
    let at = bytes
        .windows(64)
        .position(|w| w == &b_data[..64])
        .expect("b.bin's data is in the bundle");
    let mut flipped = bytes.clone();
    flipped[at + 1_250_000] ^= 0x20;
    let flipped_path = tmp.path().join("flipped.bundle");
    std::fs::write(&flipped_path, &flipped).unwrap();
    let d = NodeProcess::start(&tmp.path().join("d"));
    let report = import(&d, &flipped_path);
    let damaged = report["damaged"].as_array().unwrap();
    assert_eq!(damaged.len(), 1, "{report}");
    assert_eq!(damaged[0]["id"], album_id.as_str(), "{report}");
    assert_eq!(damaged[0]["path"], "album/b.bin", "{report}");
    assert_eq!(report["new_records"], 2, "{report}");
    assert_eq!(report["imported_data"], 1, "{report}");
    assert_eq!(report["partial_data"], 1, "{report}");
    assert_eq!(
        report["data_bytes"],
        total - 2_500_000,
        "only verified bytes are stored: {report}"
    );
    assert_eq!(record_ids(&d), expected_ids);
    get_and_compare(&d, &clip_id, &clip_files);
    // The album's good files are in place; its torrent is not complete and waits for the network.
    let infohash = d.json(&["show", &album_id])["infohash"]
        .as_str()
        .unwrap()
        .to_owned();
    let partial = d.data_dir.join("downloads").join(&infohash).join("album");
    for name in ["a.bin", "c.bin"] {
        assert_eq!(
            sha256_file(&partial.join(name)),
            sha256_file(&album.join(name)),
            "{name}"
        );
    }
    let transfer = api_get(&d, &format!("/api/v1/transfers/{infohash}"));
    assert_eq!(transfer["finished"], false, "{transfer}");

    // A blocked author's records are refused from a bundle as from a peer, and none of their data is stored.
    let author = c.json(&["show", &album_id])["author"]
        .as_str()
        .unwrap()
        .to_owned();
    drop(c);
    drop(d);
    b.json(&["block", &author]);
    assert!(record_ids(&b).is_empty());
    let data_blocked = data_listing(&b);
    let refused = import(&b, &bundle);
    assert_eq!(refused["refused_records"], 2, "{refused}");
    assert_eq!(refused["new_records"], 0, "{refused}");
    assert_eq!(refused["items"][0]["record"], "refused", "{refused}");
    assert!(
        refused["items"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("blocked"),
        "{refused}"
    );
    assert!(record_ids(&b).is_empty());
    assert_eq!(data_listing(&b), data_blocked);
}
