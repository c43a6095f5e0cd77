//! Round trips, damage, truncation and hostile input, on real files in temporary directories.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use kolokol_core::keys::Keypair;
use kolokol_core::record::{FileEntry, InfoHash, RecordBody, ValidationContext, sign_record};
use rand::{RngCore, SeedableRng};
use sha1::{Digest, Sha1};

use super::*;

const NETWORK: &str = "test-net";
const NOW: u64 = 1_800_000_000;

/// One publication on disk: its data under `dir` (engine layout), its torrent and its signed record.
pub(crate) struct Fixture {
    pub dir: PathBuf,
    pub name: String,
    pub torrent: Vec<u8>,
    pub record: Vec<u8>,
    /// (record-style path, contents) of each real file.
    pub files: Vec<(String, Vec<u8>)>,
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(format!("{}:", b.len()).as_bytes());
    out.extend_from_slice(b);
}

fn put_int(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(format!("i{n}e").as_bytes());
}

pub(crate) fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut data = vec![0u8; len];
    rng.fill_bytes(&mut data);
    data
}

/// Files are (path inside the torrent, contents, is padding). A single entry without '/' and `single` makes the
/// single-file form.
pub(crate) fn fixture(
    root: &Path,
    name: &str,
    single: bool,
    files: &[(&str, Vec<u8>, bool)],
    piece_length: u32,
) -> Fixture {
    let dir = root.join(format!("src-{name}"));
    let mut all = Vec::new();
    let mut listed = Vec::new();
    for (path, data, padding) in files {
        all.extend_from_slice(data);
        if *padding {
            continue;
        }
        let (on_disk, record_path) = if single {
            (dir.join(name), name.to_owned())
        } else {
            (dir.join(name).join(path), format!("{name}/{path}"))
        };
        fs::create_dir_all(on_disk.parent().unwrap()).unwrap();
        fs::write(&on_disk, data).unwrap();
        listed.push((record_path, data.clone()));
    }
    let pieces: Vec<u8> = all
        .chunks(piece_length as usize)
        .flat_map(|c| <[u8; 20]>::from(Sha1::digest(c)))
        .collect();
    let mut info = b"d".to_vec();
    if single {
        put_bytes(&mut info, b"length");
        put_int(&mut info, files[0].1.len() as u64);
    } else {
        put_bytes(&mut info, b"files");
        info.push(b'l');
        for (path, data, padding) in files {
            info.push(b'd');
            if *padding {
                put_bytes(&mut info, b"attr");
                put_bytes(&mut info, b"p");
            }
            put_bytes(&mut info, b"length");
            put_int(&mut info, data.len() as u64);
            put_bytes(&mut info, b"path");
            info.push(b'l');
            for c in path.split('/') {
                put_bytes(&mut info, c.as_bytes());
            }
            info.extend_from_slice(b"ee");
        }
        info.push(b'e');
    }
    put_bytes(&mut info, b"name");
    put_bytes(&mut info, name.as_bytes());
    put_bytes(&mut info, b"piece length");
    put_int(&mut info, u64::from(piece_length));
    put_bytes(&mut info, b"pieces");
    put_bytes(&mut info, &pieces);
    info.push(b'e');
    let infohash: [u8; 20] = Sha1::digest(&info).into();
    let mut torrent = b"d4:info".to_vec();
    torrent.extend_from_slice(&info);
    torrent.push(b'e');

    let key = Keypair::from_secret_bytes([7; 32]);
    let body = RecordBody {
        network: NETWORK.into(),
        author: key.public(),
        created: NOW - 100,
        title: format!("title of {name}"),
        description: String::new(),
        tags: vec![],
        lang: None,
        files: listed
            .iter()
            .map(|(path, data)| FileEntry {
                path: path.clone(),
                size: data.len() as u64,
                mime: "application/octet-stream".into(),
            })
            .collect(),
        infohash: InfoHash(infohash),
        thumbnail: None,
    };
    let record = sign_record(body, &key).unwrap().bytes().to_vec();
    Fixture {
        dir,
        name: name.to_owned(),
        torrent,
        record,
        files: listed,
    }
}

pub(crate) fn ctx() -> ValidationContext {
    ValidationContext {
        network: NETWORK.into(),
        now_unix: NOW,
    }
}

/// Reads `bundle` into a fresh staging directory under `root`, wanting all data.
fn read(bundle: &[u8], root: &Path) -> (Result<BundleContents, BundleError>, PathBuf) {
    read_from(Cursor::new(bundle.to_vec()), root)
}

fn read_from(input: impl Read, root: &Path) -> (Result<BundleContents, BundleError>, PathBuf) {
    let staging = root.join(format!("staging-{}", rand::random::<u64>()));
    fs::create_dir_all(&staging).unwrap();
    let mut want = |_: &kolokol_core::record::SignedRecord| true;
    let result = read_bundle(
        input,
        &staging,
        ReadOptions {
            validation: ctx(),
            want_data: &mut want,
        },
    );
    (result, staging)
}

/// Three publications with data (a folder whose pieces straddle files, a single file, a folder with a padding
/// file) and one record without data.
fn sample(root: &Path) -> Vec<Fixture> {
    vec![
        fixture(
            root,
            "folder",
            false,
            &[
                ("a.bin", random_bytes(3000, 1), false),
                ("sub/b.bin", random_bytes(5000, 2), false),
                ("empty", Vec::new(), false),
                ("c.bin", random_bytes(2500, 3), false),
            ],
            1024,
        ),
        fixture(
            root,
            "video.mp4",
            true,
            &[("video.mp4", random_bytes(9000, 4), false)],
            2048,
        ),
        fixture(
            root,
            "padded",
            false,
            &[
                ("x", random_bytes(1000, 5), false),
                (".pad/24", vec![0; 24], true),
                ("y", random_bytes(1500, 6), false),
            ],
            1024,
        ),
        fixture(
            root,
            "record-only",
            true,
            &[("record-only", random_bytes(10, 7), false)],
            1024,
        ),
    ]
}

/// The bundle of `sample`, and the byte offset where each section and the trailer start.
fn write_sample(fixtures: &[Fixture]) -> (Vec<u8>, Vec<usize>) {
    let mut writer = BundleWriter::new(Vec::new()).unwrap();
    let mut boundaries = vec![0, MAGIC.len(), MAGIC.len() + 2];
    let mut written = MAGIC.len() + 2;
    for (i, f) in fixtures.iter().enumerate() {
        if i + 1 == fixtures.len() {
            writer.add_record(&f.record, Some(&f.torrent)).unwrap();
        } else {
            let checks = writer
                .add_publication(&f.record, &f.torrent, &f.dir)
                .unwrap();
            assert!(checks.iter().all(|c| c.good), "{checks:?}");
        }
        written += section_len(f, i + 1 == fixtures.len());
        boundaries.push(written);
    }
    let bundle = writer.finish().unwrap();
    assert_eq!(bundle.len(), written + 1 + 24 + 32);
    (bundle, boundaries)
}

fn section_len(f: &Fixture, record_only: bool) -> usize {
    let head = 1 + 4 + f.record.len() + 4 + f.torrent.len() + 1;
    if record_only {
        head
    } else {
        head + f.files.iter().map(|(_, d)| 8 + d.len()).sum::<usize>()
    }
}

#[test]
fn round_trip_stages_every_file_with_identical_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let fixtures = sample(tmp.path());
    let (bundle, _) = write_sample(&fixtures);
    let (result, _) = read(&bundle, tmp.path());
    let contents = result.unwrap();
    assert_eq!(contents.publications.len(), 4);
    for (f, p) in fixtures.iter().zip(&contents.publications) {
        assert_eq!(p.record_bytes, f.record);
        assert_eq!(p.torrent.as_deref(), Some(&f.torrent[..]));
        assert_eq!(p.name.as_deref(), Some(f.name.as_str()));
        let record = p.record.as_ref().unwrap();
        assert_eq!(record.bytes(), &f.record[..]);
    }
    for (f, p) in fixtures.iter().zip(&contents.publications).take(3) {
        let DataOutcome::Staged { dir, files } = &p.data else {
            panic!("not staged: {:?}", p.data)
        };
        assert!(p.data.all_good());
        let paths: Vec<_> = files.iter().map(|c| c.path.clone()).collect();
        let expected: Vec<_> = f.files.iter().map(|(p, _)| p.clone()).collect();
        assert_eq!(paths, expected);
        for (path, data) in &f.files {
            assert_eq!(&fs::read(dir.join(path)).unwrap(), data, "{path}");
        }
    }
    assert!(matches!(
        contents.publications[3].data,
        DataOutcome::NotInBundle
    ));
    let data: usize = fixtures[..3]
        .iter()
        .flat_map(|f| f.files.iter().map(|(_, d)| d.len()))
        .sum();
    assert_eq!(contents.data_bytes, data as u64);
}

#[test]
fn a_flipped_byte_names_the_damaged_file_and_keeps_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let fixtures = sample(tmp.path());
    let (mut bundle, _) = write_sample(&fixtures);
    // The middle of folder/sub/b.bin: bytes [3000, 8000) of its torrent, pieces of 1024; byte 5500 is in piece 5
    // = [5120, 6144), inside b.bin alone.
    let needle = &fixtures[0].files[1].1[..32];
    let at = bundle.windows(32).position(|w| w == needle).unwrap();
    bundle[at + 2500] ^= 0x40;
    let (result, _) = read(&bundle, tmp.path());
    let contents = result.unwrap();
    let DataOutcome::Staged { dir, files } = &contents.publications[0].data else {
        panic!("not staged")
    };
    let damaged: Vec<_> = files
        .iter()
        .filter(|c| !c.good)
        .map(|c| c.path.as_str())
        .collect();
    assert_eq!(damaged, vec!["folder/sub/b.bin"]);
    assert!(
        !dir.join("folder/sub/b.bin").exists(),
        "damaged data left staged"
    );
    assert_eq!(
        fs::read(dir.join("folder/a.bin")).unwrap(),
        fixtures[0].files[0].1
    );
    assert_eq!(
        fs::read(dir.join("folder/c.bin")).unwrap(),
        fixtures[0].files[3].1
    );
    assert!(contents.publications[1].data.all_good());
    assert!(contents.publications[2].data.all_good());
}

#[test]
fn a_flip_where_a_piece_straddles_two_files_taints_both() {
    let tmp = tempfile::tempdir().unwrap();
    let fixtures = sample(tmp.path());
    let (mut bundle, _) = write_sample(&fixtures);
    // a.bin is torrent bytes [0, 3000); piece 2 = [2048, 3072) also holds b.bin's first 72 bytes.
    let needle = &fixtures[0].files[0].1[..32];
    let at = bundle.windows(32).position(|w| w == needle).unwrap();
    bundle[at + 2999] ^= 1;
    let (result, _) = read(&bundle, tmp.path());
    let DataOutcome::Staged { files, .. } = &result.unwrap().publications[0].data else {
        panic!("not staged")
    };
    let damaged: Vec<_> = files
        .iter()
        .filter(|c| !c.good)
        .map(|c| c.path.as_str())
        .collect();
    assert_eq!(damaged, vec!["folder/a.bin", "folder/sub/b.bin"]);
}

#[test]
fn truncation_anywhere_is_refused_as_truncated() {
    let tmp = tempfile::tempdir().unwrap();
    let fixtures = sample(tmp.path());
    let (bundle, boundaries) = write_sample(&fixtures);
    let trailer = *boundaries.last().unwrap();
    let mut cuts: Vec<usize> = boundaries.clone();
    // Inside every part of the trailer, and a spread of offsets through sections and file data.
    cuts.extend([
        trailer + 1,
        trailer + 9,
        trailer + 17,
        trailer + 25,
        bundle.len() - 1,
    ]);
    cuts.extend((1..bundle.len()).step_by(331));
    for cut in cuts {
        let (result, _) = read(&bundle[..cut], tmp.path());
        match result {
            Err(BundleError::Truncated { offset, .. }) => assert_eq!(offset, cut as u64),
            other => panic!("cut at {cut} of {}: {other:?}", bundle.len()),
        }
    }
    let message = read(&bundle[..boundaries[3]], tmp.path())
        .0
        .unwrap_err()
        .to_string();
    assert!(message.contains("truncated"), "{message}");
}

#[test]
fn altered_framing_or_records_fail_the_checksum() {
    let tmp = tempfile::tempdir().unwrap();
    let fixtures = sample(tmp.path());
    let (bundle, boundaries) = write_sample(&fixtures);
    // A byte inside the first record (after tag and length).
    let mut altered = bundle.clone();
    altered[boundaries[3] + 1 + 4 + 10] ^= 1;
    assert!(matches!(
        read(&altered, tmp.path()).0,
        Err(BundleError::Checksum)
    ));
    // A byte of the stored checksum itself.
    let mut altered = bundle.clone();
    let last = altered.len() - 1;
    altered[last] ^= 1;
    assert!(matches!(
        read(&altered, tmp.path()).0,
        Err(BundleError::Checksum)
    ));
    // Bytes after the trailer.
    let mut longer = bundle.clone();
    longer.push(0);
    assert!(matches!(
        read(&longer, tmp.path()).0,
        Err(BundleError::Malformed { .. })
    ));
}

fn header() -> Vec<u8> {
    let mut b = MAGIC.to_vec();
    b.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
    b
}

#[test]
fn hostile_headers_and_lengths_are_refused_before_allocating() {
    let tmp = tempfile::tempdir().unwrap();
    let refused = |bytes: Vec<u8>| read(&bytes, tmp.path()).0.unwrap_err();

    assert!(matches!(
        refused(b"NOTABNDL\0\x01E".to_vec()),
        BundleError::NotABundle
    ));
    let mut v = MAGIC.to_vec();
    v.extend_from_slice(&2u16.to_be_bytes());
    assert!(matches!(refused(v), BundleError::Version(2)));
    let mut v = header();
    v.push(b'Z');
    assert!(matches!(refused(v), BundleError::Malformed { .. }));

    // A 4 GiB record length in a 15-byte file: refused by its cap, not by a failed 4 GiB allocation.
    let mut v = header();
    v.push(b'P');
    v.extend_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        refused(v),
        BundleError::TooLarge { what: "record", .. }
    ));
    // Same for a torrent length.
    let mut v = header();
    v.push(b'P');
    v.extend_from_slice(&1u32.to_be_bytes());
    v.push(b'x');
    v.extend_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        refused(v),
        BundleError::TooLarge {
            what: "torrent",
            ..
        }
    ));
    // An empty record.
    let mut v = header();
    v.push(b'P');
    v.extend_from_slice(&0u32.to_be_bytes());
    assert!(matches!(refused(v), BundleError::Malformed { .. }));

    // Data announced without a torrent; an unknown data flag.
    let f = fixture(
        tmp.path(),
        "f",
        true,
        &[("f", random_bytes(100, 9), false)],
        1024,
    );
    for (torrent, flag) in [(&[][..], 1u8), (&f.torrent[..], 7u8)] {
        let mut v = header();
        v.push(b'P');
        v.extend_from_slice(&(f.record.len() as u32).to_be_bytes());
        v.extend_from_slice(&f.record);
        v.extend_from_slice(&(torrent.len() as u32).to_be_bytes());
        v.extend_from_slice(torrent);
        v.push(flag);
        assert!(matches!(refused(v), BundleError::Malformed { .. }));
    }
    // A file framed with another length than its torrent's, e.g. a huge one.
    let mut v = header();
    v.push(b'P');
    v.extend_from_slice(&(f.record.len() as u32).to_be_bytes());
    v.extend_from_slice(&f.record);
    v.extend_from_slice(&(f.torrent.len() as u32).to_be_bytes());
    v.extend_from_slice(&f.torrent);
    v.push(1);
    v.extend_from_slice(&u64::MAX.to_be_bytes());
    assert!(matches!(refused(v), BundleError::Malformed { .. }));
    // A torrent that is not one.
    let mut v = header();
    v.push(b'P');
    v.extend_from_slice(&(f.record.len() as u32).to_be_bytes());
    v.extend_from_slice(&f.record);
    v.extend_from_slice(&3u32.to_be_bytes());
    v.extend_from_slice(b"i1e");
    assert!(matches!(refused(v), BundleError::Malformed { .. }));
}

#[test]
fn invalid_records_and_unwanted_data_are_read_past_not_staged() {
    let tmp = tempfile::tempdir().unwrap();
    let fixtures = sample(tmp.path());
    let (bundle, _) = write_sample(&fixtures);
    let staging = tmp.path().join("s");
    fs::create_dir_all(&staging).unwrap();
    let mut asked = 0;
    let mut want = |_: &kolokol_core::record::SignedRecord| {
        asked += 1;
        asked != 2
    };
    let contents = read_bundle(
        Cursor::new(&bundle),
        &staging,
        ReadOptions {
            validation: ValidationContext {
                network: NETWORK.into(),
                now_unix: NOW,
            },
            want_data: &mut want,
        },
    )
    .unwrap();
    assert!(contents.publications[0].data.all_good());
    assert!(matches!(
        contents.publications[1].data,
        DataOutcome::Skipped(SkipReason::NotWanted)
    ));
    assert!(!staging.join("1").exists());

    // On another network every record is invalid: nothing is staged, the bundle itself is still intact.
    let staging = tmp.path().join("s2");
    fs::create_dir_all(&staging).unwrap();
    let mut want = |_: &kolokol_core::record::SignedRecord| true;
    let contents = read_bundle(
        Cursor::new(&bundle),
        &staging,
        ReadOptions {
            validation: ValidationContext {
                network: "other".into(),
                now_unix: NOW,
            },
            want_data: &mut want,
        },
    )
    .unwrap();
    assert!(contents.publications.iter().all(|p| p.record.is_err()));
    assert!(matches!(
        contents.publications[0].data,
        DataOutcome::Skipped(SkipReason::InvalidRecord)
    ));
    assert_eq!(fs::read_dir(&staging).unwrap().count(), 0);
}

#[test]
fn a_torrent_that_is_not_the_records_is_not_staged() {
    let tmp = tempfile::tempdir().unwrap();
    let a = fixture(
        tmp.path(),
        "a",
        true,
        &[("a", random_bytes(500, 1), false)],
        1024,
    );
    let b = fixture(
        tmp.path(),
        "b",
        true,
        &[("b", random_bytes(500, 2), false)],
        1024,
    );
    let mut writer = BundleWriter::new(Vec::new()).unwrap();
    writer
        .add_publication(&a.record, &b.torrent, &b.dir)
        .unwrap();
    let bundle = writer.finish().unwrap();
    let contents = read(&bundle, tmp.path()).0.unwrap();
    assert!(matches!(
        contents.publications[0].data,
        DataOutcome::Skipped(SkipReason::TorrentMismatch)
    ));
}

#[test]
fn the_writer_refuses_missing_or_resized_files_and_reports_damage() {
    let tmp = tempfile::tempdir().unwrap();
    let f = fixture(
        tmp.path(),
        "d",
        false,
        &[
            ("a", random_bytes(2000, 1), false),
            ("b", random_bytes(2000, 2), false),
        ],
        1024,
    );
    let mut writer = BundleWriter::new(Vec::new()).unwrap();
    fs::write(f.dir.join("d/b"), b"short").unwrap();
    assert!(matches!(
        writer.add_publication(&f.record, &f.torrent, &f.dir),
        Err(BundleError::SizeMismatch { .. })
    ));
    let mut changed = f.files[1].1.clone();
    changed[1500] ^= 1;
    fs::write(f.dir.join("d/b"), &changed).unwrap();
    let checks = writer
        .add_publication(&f.record, &f.torrent, &f.dir)
        .unwrap();
    assert_eq!(
        checks.iter().map(|c| c.good).collect::<Vec<_>>(),
        vec![true, false]
    );
    fs::remove_file(f.dir.join("d/a")).unwrap();
    assert!(matches!(
        writer.add_publication(&f.record, &f.torrent, &f.dir),
        Err(BundleError::File { .. })
    ));
}

/// Hands the bundle to the reader in small reads, and at every read inside a file's data checks that what was
/// consumed is already on disk, less at most one copy buffer: the reader holds no file in memory.
struct WatchingInput {
    bundle: Cursor<Vec<u8>>,
    content: std::ops::Range<u64>,
    staged: PathBuf,
    checks: usize,
}

impl Read for WatchingInput {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let pos = self.bundle.position();
        if self.content.contains(&pos) && pos > self.content.start {
            let on_disk = fs::metadata(&self.staged).map(|m| m.len()).unwrap_or(0);
            let consumed = pos - self.content.start;
            assert!(
                consumed <= on_disk + crate::format::CHUNK as u64,
                "{consumed} bytes read, {on_disk} written"
            );
            self.checks += 1;
        }
        let n = buf.len().min(10_000);
        self.bundle.read(&mut buf[..n])
    }
}

#[test]
fn the_reader_streams_file_data_to_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let big = random_bytes(3 * 1024 * 1024 + 17, 11);
    let f = fixture(
        tmp.path(),
        "big.bin",
        true,
        &[("big.bin", big.clone(), false)],
        256 * 1024,
    );
    let mut writer = BundleWriter::new(Vec::new()).unwrap();
    writer
        .add_publication(&f.record, &f.torrent, &f.dir)
        .unwrap();
    let bundle = writer.finish().unwrap();
    let start = bundle.windows(32).position(|w| w == &big[..32]).unwrap() as u64;
    let staging = tmp.path().join("staging");
    fs::create_dir_all(&staging).unwrap();
    let mut input = WatchingInput {
        bundle: Cursor::new(bundle),
        content: start..start + big.len() as u64,
        staged: staging.join("0/big.bin"),
        checks: 0,
    };
    let mut want = |_: &kolokol_core::record::SignedRecord| true;
    let contents = read_bundle(
        &mut input,
        &staging,
        ReadOptions {
            validation: ctx(),
            want_data: &mut want,
        },
    )
    .unwrap();
    assert!(contents.publications[0].data.all_good());
    assert!(input.checks > 100, "only {} checks", input.checks);
    assert_eq!(fs::read(staging.join("0/big.bin")).unwrap(), big);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Any set of file sizes and any piece length round-trips; one flipped data byte damages exactly the files
        /// its piece touches, and a cut anywhere is refused as truncated.
        #[test]
        fn round_trip_flip_and_cut(
            sizes in proptest::collection::vec(0usize..5000, 1..5),
            piece_shift in 10u32..13,
            seed in any::<u64>(),
            flip in any::<prop::sample::Index>(),
            cut in any::<prop::sample::Index>(),
        ) {
            prop_assume!(sizes.iter().sum::<usize>() > 0);
            let tmp = tempfile::tempdir().unwrap();
            let files: Vec<(String, Vec<u8>, bool)> = sizes
                .iter()
                .enumerate()
                .map(|(i, &n)| (format!("f{i}"), random_bytes(n, seed.wrapping_add(i as u64)), false))
                .collect();
            let refs: Vec<(&str, Vec<u8>, bool)> =
                files.iter().map(|(p, d, x)| (p.as_str(), d.clone(), *x)).collect();
            let piece_length = 1u32 << piece_shift;
            let f = fixture(tmp.path(), "p", false, &refs, piece_length);
            let mut writer = BundleWriter::new(Vec::new()).unwrap();
            writer.add_publication(&f.record, &f.torrent, &f.dir).unwrap();
            let bundle = writer.finish().unwrap();

            let contents = read(&bundle, tmp.path()).0.unwrap();
            prop_assert!(contents.publications[0].data.all_good());

            // Flip one byte of the concatenated data and predict the damaged files.
            let total: usize = sizes.iter().sum();
            let target = flip.index(total);
            let mut offset = 0usize;
            let mut data_start_in_bundle = None;
            let head = 1 + MAGIC.len() + 2 + 4 + f.record.len() + 4 + f.torrent.len() + 1;
            let mut pos = head;
            for (i, &n) in sizes.iter().enumerate() {
                pos += 8;
                if target >= offset && target < offset + n {
                    data_start_in_bundle = Some((i, pos + (target - offset)));
                }
                pos += n;
                offset += n;
            }
            let (_, at) = data_start_in_bundle.unwrap();
            let mut flipped = bundle.clone();
            flipped[at] ^= 0x80;
            let bad_piece = target / piece_length as usize;
            let mut expected = Vec::new();
            let mut start = 0usize;
            for &n in &sizes {
                let touches = n > 0 && start / piece_length as usize <= bad_piece
                    && (start + n - 1) / piece_length as usize >= bad_piece;
                expected.push(!touches);
                start += n;
            }
            let contents = read(&flipped, tmp.path()).0.unwrap();
            let DataOutcome::Staged { files, .. } = &contents.publications[0].data else {
                panic!("not staged")
            };
            prop_assert_eq!(files.iter().map(|c| c.good).collect::<Vec<_>>(), expected);

            let cut = cut.index(bundle.len());
            let truncated = matches!(
                read(&bundle[..cut], tmp.path()).0,
                Err(BundleError::Truncated { .. })
            );
            prop_assert!(truncated);
        }
    }
}
