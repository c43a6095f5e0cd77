//! .torrent files through the real CLI and `kolokol up` processes on loopback: `kolokol torrent ID -o FILE` writes a
//! file that libtorrent reads with the record's info-hash (and downloads from the kolokol seeder); `kolokol get
//! FILE.torrent` downloads a publication from a seeder; bad files are refused with a clear error and change nothing.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use kolokol_testkit::libtorrent::{self, PeerArgs};
use kolokol_testkit::peers;

fn stderr_of(node: &NodeProcess, args: &[&str]) -> String {
    let out = node.cli(args);
    assert!(
        !out.status.success(),
        "kolokol {args:?} should have failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn torrent_file_is_read_by_libtorrent_and_get_downloads_from_it() {
    peers::require_libtorrent();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("листовка.pdf");
    random_file(&file, 3 * 1024 * 1024 + 777, 11);
    let a = NodeProcess::start(&tmp.path().join("a"));
    let published = a.json(&["publish", file.to_str().unwrap(), "--title", "Листовка"]);
    let id = published["id"].as_str().unwrap().to_owned();
    let infohash = a.json(&["show", &id])["infohash"]
        .as_str()
        .unwrap()
        .to_owned();

    let torrent = tmp.path().join("leaflet.torrent");
    let written = a.json(&["torrent", &id, "-o", torrent.to_str().unwrap()]);
    assert_eq!(written["path"], torrent.to_str().unwrap());
    let bytes = std::fs::read(&torrent).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&torrent).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "the file names the publication's files"
        );
    }
    // Nothing but the info dictionary: no tracker, creator, date or comment naming kolokol or the machine.
    assert!(bytes.starts_with(b"d4:infod") && bytes.ends_with(b"ee"));
    for word in [
        &b"announce"[..],
        b"created by",
        b"creation date",
        b"comment",
        b"kolokol",
        b"rqbit",
        b"url-list",
    ] {
        assert!(
            !contains(&bytes, word),
            "{:?} in the .torrent",
            String::from_utf8_lossy(word)
        );
    }
    // An existing file is never overwritten.
    let again = stderr_of(&a, &["torrent", &id, "-o", torrent.to_str().unwrap()]);
    assert!(again.contains("not overwritten"), "{again}");
    assert_eq!(std::fs::read(&torrent).unwrap(), bytes);

    // libtorrent reads it, with the record's info-hash, and downloads the publication from the kolokol seeder.
    let info = libtorrent::torrent_info(&torrent).unwrap();
    assert_eq!(info.infohash, infohash);
    assert_eq!(info.name, "листовка.pdf");
    assert_eq!(
        info.files,
        vec![(3 * 1024 * 1024 + 777, "листовка.pdf".to_owned())]
    );
    assert_eq!((info.trackers, info.creation_date), (0, 0));
    assert!(info.creator.is_empty() && info.comment.is_empty());
    let bt_addr = a.json(&["status"])["bt_addr"].as_str().unwrap().to_owned();
    let save = tmp.path().join("lt");
    std::fs::create_dir_all(&save).unwrap();
    let leech = PeerArgs::leech_torrent(&torrent, &save)
        .peer(&bt_addr)
        .seconds(90)
        .tcp_only()
        .verify(&file);
    let out = libtorrent::leech(&leech).unwrap();
    assert!(
        out.passed(),
        "libtorrent leech failed:\n{}",
        out.transcript()
    );

    // B knows A (and so its record) but has no data: it cannot write the .torrent yet, and says why.
    let b = NodeProcess::start(&tmp.path().join("b"));
    let a_wire = a.json(&["status"])["wire_addr"]
        .as_str()
        .unwrap()
        .to_owned();
    b.json(&["peer", "add", &a_wire]);
    wait_for(Duration::from_secs(30), || b.has_record(&id).then_some(()))
        .unwrap_or_else(|| panic!("record never reached B\nB log:\n{}", b.log()));
    let missing = stderr_of(
        &b,
        &[
            "torrent",
            &id,
            "-o",
            tmp.path().join("b.torrent").to_str().unwrap(),
        ],
    );
    assert!(missing.contains("does not have the metadata"), "{missing}");
    assert!(!tmp.path().join("b.torrent").exists());

    // `get FILE.torrent` downloads it from A; the record with that info-hash names the transfer.
    let out_dir = tmp.path().join("out");
    let got = b.json(&[
        "get",
        torrent.to_str().unwrap(),
        "-o",
        out_dir.to_str().unwrap(),
        "--timeout",
        "120",
    ]);
    assert_eq!(got["id"], id.as_str(), "{got}");
    assert_eq!(got["infohash"], infohash.as_str());
    assert_eq!(
        sha256_file(&out_dir.join("листовка.pdf")),
        sha256_file(&file)
    );
    // Now B holds the metadata: its .torrent is byte for byte A's.
    let from_b = tmp.path().join("from-b.torrent");
    b.json(&["torrent", &id, "-o", from_b.to_str().unwrap()]);
    assert_eq!(std::fs::read(&from_b).unwrap(), bytes);
}

#[test]
fn bad_torrent_files_get_a_clear_error_and_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let a = NodeProcess::start(&tmp.path().join("a"));
    let write = |name: &str, bytes: &[u8]| {
        let path = tmp.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let oversized = tmp.path().join("huge.torrent");
    std::fs::File::create(&oversized)
        .unwrap()
        .set_len(kolokol_node::MAX_TORRENT_FILE_BYTES as u64 + 1)
        .unwrap();
    let cases: Vec<(std::path::PathBuf, &str)> = vec![
        (write("text.torrent", b"hello, I am not a torrent"), "bencode"),
        (write("cut.torrent", b"d4:infod6:lengthi10e4:name1:x"), "bencode"),
        (write("noinfo.torrent", b"d8:announce9:http://t/e"), "no info dictionary"),
        (
            write(
                "escape.torrent",
                b"d4:infod5:filesld6:lengthi10e4:pathl2:..6:passwdeee4:name1:x12:piece lengthi16384e6:pieces20:01234567890123456789ee",
            ),
            "unsafe",
        ),
        (
            write(
                "pieces.torrent",
                b"d4:infod6:lengthi99999e4:name1:x12:piece lengthi16384e6:pieces20:01234567890123456789ee",
            ),
            "piece hashes",
        ),
        (oversized, "at most"),
        (tmp.path().join("missing.torrent"), "cannot open"),
    ];
    for (path, why) in &cases {
        let error = stderr_of(&a, &["get", path.to_str().unwrap(), "--timeout", "5"]);
        assert!(
            error.contains(why),
            "{}: {error:?} should say {why:?}",
            path.display()
        );
        assert!(error.lines().count() <= 2, "not one clear line: {error}");
    }
    assert_eq!(a.json(&["status"])["transfers"], 0);
    let downloads = a.data_dir.join("downloads");
    let empty = !downloads.exists() || std::fs::read_dir(&downloads).unwrap().next().is_none();
    assert!(
        empty,
        "a refused .torrent left something in {}",
        downloads.display()
    );
    // A valid .torrent that no record in the catalog has: downloaded all the same (here nobody seeds it), and the CLI
    // says that no signed record vouches for it.
    let orphan = write(
        "orphan.torrent",
        b"d8:announce20:http://tracker.test/4:infod6:lengthi10e4:name5:x.bin12:piece lengthi16384e6:pieces20:01234567890123456789ee",
    );
    let note = stderr_of(&a, &["get", orphan.to_str().unwrap(), "--timeout", "1"]);
    assert!(
        note.contains("no publication in this node's catalog has info-hash")
            && note.contains("without a signed record"),
        "{note}"
    );
    assert!(note.contains("not complete after 1 s"), "{note}");
    assert_eq!(a.json(&["status"])["transfers"], 1);
    // Writing a .torrent of an unknown publication fails the same way.
    let unknown = stderr_of(
        &a,
        &[
            "torrent",
            &"ab".repeat(32),
            "-o",
            tmp.path().join("u.torrent").to_str().unwrap(),
        ],
    );
    assert!(unknown.contains("unknown publication"), "{unknown}");
    assert!(!Path::new(&tmp.path().join("u.torrent")).exists());
}
