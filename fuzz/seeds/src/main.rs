//! Writes the seed corpora of the fuzz targets: a few real, valid inputs per target, made with the same code a
//! node uses (signed records, encoded messages, honest reconciliation frames, a bundle written by `BundleWriter`).
//!
//! `cargo run --manifest-path fuzz/Cargo.toml -p kolokol-fuzz-seeds` (from the repository root) rewrites
//! `fuzz/corpus/<target>/seed-*`; the fuzzer's own finds are never written there (see `scripts/fuzz.sh`).
//! Keys are fixed, so records and messages come out the same on every run; a few inputs carry fresh random keys
//! (a bridge key, an invitation secret) and change.

use std::fs;
use std::path::{Path, PathBuf};

use kolokol_core::bencode::{self, Dict, Value};
use kolokol_core::reconcile::{Initiator, Item, ReconcileConfig, Responder, VecStorage};
use kolokol_core::record::{FileEntry, InfoHash, RecordBody, RecordId, Thumbnail, sign_record};
use kolokol_core::{Keypair, Magnet};
use sha1::{Digest, Sha1};

mod network;

const NOW: u64 = 1_750_000_000;
const PIECE: usize = 16 * 1024;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus");
    let author = Keypair::from_secret_bytes([3; 32]);
    let data = b"kolokol seed file: hello from the fuzzing corpus\n".repeat(500);
    let single = single_file_torrent("report.txt", &data);
    let multi = multi_file_torrent();
    let with_data = record(
        &author,
        "Отчёт",
        "report.txt",
        data.len() as u64,
        infohash(&single),
        true,
    );
    let plain = record(&author, "Photo", "album/a.jpg", 3, InfoHash([9; 20]), false);

    let mut seeds = Seeds { root };
    seeds.write("record", "signed", &with_data);
    seeds.write("record", "minimal", &plain);
    seeds.write("bencode", "record", &with_data);
    seeds.write("bencode", "torrent", &multi);
    seeds.write("bencode", "small", b"d1:ai1e1:bl4:spami-3eee");
    seeds.write("torrent", "single", &single);
    seeds.write("torrent", "multi-padded", &multi);
    seeds.write("torrent", "minimal", &minimal_torrent("листовка.pdf", &data));

    let magnet = Magnet {
        name: Some("Митинг 12 июня".to_owned()),
        peers: vec![
            "203.0.113.5:6881".parse().expect("address"),
            "[2001:db8::1]:51413".parse().expect("address"),
        ],
        trackers: vec!["udp://tracker.example:1337/announce".to_owned()],
        ..Magnet::new(infohash(&single))
    };
    seeds.write("magnet", "full", magnet.to_uri().as_bytes());
    seeds.write(
        "magnet",
        "bare",
        Magnet::new(InfoHash([0xab; 20])).to_uri().as_bytes(),
    );
    seeds.write(
        "detour",
        "rules",
        b"example.org\n*.example.org=bridge\nrutracker.org=bridge\n203.0.113.7\n[2001:db8::7]\n*=direct\nxn--80ak6aa92e.com=direct\n",
    );

    reconcile_seeds(&mut seeds);
    network::wire_seeds(&mut seeds, &with_data);
    network::discovery_seeds(&mut seeds);
    network::proxy_seeds(&mut seeds);
    bundle_seeds(&mut seeds, &with_data, &plain, &single, &data);
    scrub_seeds(&mut seeds);
}

/// Where seed files go.
pub struct Seeds {
    root: PathBuf,
}

impl Seeds {
    /// Writes `fuzz/corpus/<target>/seed-<name>`.
    pub fn write(&mut self, target: &str, name: &str, bytes: &[u8]) {
        let dir = self.root.join(target);
        fs::create_dir_all(&dir).expect("create the corpus directory");
        fs::write(dir.join(format!("seed-{name}")), bytes).expect("write a seed");
    }
}

/// The inverse of `kolokol_fuzz::chunks`: each message as a big-endian `u16` length and its bytes.
pub fn join_chunks<'a>(messages: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for message in messages {
        let len = u16::try_from(message.len()).expect("seed messages fit a u16 length");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(message);
    }
    out
}

fn record(
    author: &Keypair,
    title: &str,
    path: &str,
    size: u64,
    infohash: InfoHash,
    rich: bool,
) -> Vec<u8> {
    let body = RecordBody {
        network: "kolokol".to_owned(),
        author: author.public(),
        created: NOW,
        title: title.to_owned(),
        description: if rich {
            "Снято сегодня.\n\tВторая строка.".to_owned()
        } else {
            String::new()
        },
        tags: if rich {
            vec!["протест".to_owned(), "video".to_owned()]
        } else {
            Vec::new()
        },
        lang: rich.then(|| "ru".to_owned()),
        files: vec![FileEntry {
            path: path.to_owned(),
            size,
            mime: "text/plain".to_owned(),
        }],
        infohash,
        thumbnail: rich.then(|| Thumbnail {
            mime: "image/jpeg".to_owned(),
            bytes: vec![0xff, 0xd8, 0xff, 0xd9],
        }),
    };
    sign_record(body, author)
        .expect("a valid record")
        .bytes()
        .to_vec()
}

fn bytes(b: &[u8]) -> Value {
    Value::Bytes(b.to_vec())
}

fn pieces(data: &[u8]) -> Vec<u8> {
    data.chunks(PIECE)
        .flat_map(|p| Sha1::digest(p).to_vec())
        .collect()
}

fn torrent(info: Dict) -> Vec<u8> {
    let mut top = Dict::new();
    top.insert(
        b"announce".to_vec(),
        bytes(b"http://tracker.example/announce"),
    );
    top.insert(b"info".to_vec(), Value::Dict(info));
    bencode::encode(&Value::Dict(top))
}

fn single_file_info(name: &str, data: &[u8]) -> Dict {
    let mut info = Dict::new();
    info.insert(b"length".to_vec(), Value::Int(data.len() as i64));
    info.insert(b"name".to_vec(), bytes(name.as_bytes()));
    info.insert(b"piece length".to_vec(), Value::Int(PIECE as i64));
    info.insert(b"pieces".to_vec(), bytes(&pieces(data)));
    info
}

fn single_file_torrent(name: &str, data: &[u8]) -> Vec<u8> {
    torrent(single_file_info(name, data))
}

/// The form `kolokol torrent` writes: `d4:info<info>e` and nothing else.
fn minimal_torrent(name: &str, data: &[u8]) -> Vec<u8> {
    let mut top = Dict::new();
    top.insert(b"info".to_vec(), Value::Dict(single_file_info(name, data)));
    bencode::encode(&Value::Dict(top))
}

/// Two files with a BEP 47 padding file between them, so the second starts on a piece boundary.
fn multi_file_torrent() -> Vec<u8> {
    let first = vec![1u8; 1000];
    let second = vec![2u8; 20_000];
    let pad = PIECE - first.len();
    let mut all = first.clone();
    all.resize(PIECE, 0);
    all.extend_from_slice(&second);
    let file = |length: usize, path: &[&str], attr: Option<&str>| {
        let mut d = Dict::new();
        if let Some(attr) = attr {
            d.insert(b"attr".to_vec(), bytes(attr.as_bytes()));
        }
        d.insert(b"length".to_vec(), Value::Int(length as i64));
        d.insert(
            b"path".to_vec(),
            Value::List(path.iter().map(|c| bytes(c.as_bytes())).collect()),
        );
        Value::Dict(d)
    };
    let mut info = Dict::new();
    info.insert(
        b"files".to_vec(),
        Value::List(vec![
            file(first.len(), &["docs", "a.txt"], None),
            file(pad, &[".pad", &pad.to_string()], Some("p")),
            file(second.len(), &["b.bin"], Some("x")),
        ]),
    );
    info.insert(b"name".to_vec(), bytes("альбом".as_bytes()));
    info.insert(b"piece length".to_vec(), Value::Int(PIECE as i64));
    info.insert(b"pieces".to_vec(), bytes(&pieces(&all)));
    torrent(info)
}

fn infohash(torrent: &[u8]) -> InfoHash {
    let doc =
        bencode::decode(torrent, &bencode::DecodeLimits::default()).expect("our torrent decodes");
    let info = doc
        .as_dict()
        .and_then(|d| d.get(b"info".as_slice()))
        .expect("an info dictionary");
    InfoHash(Sha1::digest(bencode::encode(info)).into())
}

fn catalog(ids: impl IntoIterator<Item = u8>) -> VecStorage {
    VecStorage::from_items(ids.into_iter().map(|i| {
        let mut id = [0u8; 32];
        id[0] = i;
        id[31] = 1;
        Item::new(NOW + u64::from(i / 3), RecordId(id))
    }))
    .expect("distinct items")
}

/// Honest sessions between two catalogs that overlap: the frames each side would receive.
fn reconcile_seeds(seeds: &mut Seeds) {
    let config = ReconcileConfig {
        frame_size_limit: kolokol_core::reconcile::MIN_FRAME_SIZE_LIMIT,
        buckets: 4,
        id_list_threshold: 8,
        max_rounds: 16,
        ..ReconcileConfig::default()
    };
    // The fuzz target's own catalog for a size byte `n` (see fuzz_targets/reconcile.rs) differs from these; the
    // frames are still well-formed and steer the sessions through every mode.
    let ours = catalog(0..40);
    let theirs = catalog(20..90);
    let mut initiator = Initiator::new(config.clone()).expect("valid config");
    let mut responder = Responder::new(config).expect("valid config");
    let mut to_responder = vec![initiator.initiate(&ours).expect("in memory")];
    let mut to_initiator = Vec::new();
    for _ in 0..16 {
        let Some(last) = to_responder.last() else {
            break;
        };
        let answer = responder.handle(&theirs, last).expect("honest frames");
        to_initiator.push(answer.clone());
        match initiator
            .handle(&ours, &answer)
            .expect("honest frames")
            .reply
        {
            Some(reply) => to_responder.push(reply),
            None => break,
        }
    }
    let mut as_initiator = vec![40u8];
    as_initiator.extend(join_chunks(to_responder.iter().map(Vec::as_slice)));
    seeds.write("reconcile", "initiator-frames", &as_initiator);
    let mut as_responder = vec![40u8];
    as_responder.extend(join_chunks(to_initiator.iter().map(Vec::as_slice)));
    seeds.write("reconcile", "responder-frames", &as_responder);
}

fn bundle_seeds(seeds: &mut Seeds, with_data: &[u8], plain: &[u8], torrent: &[u8], data: &[u8]) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    fs::write(dir.path().join("report.txt"), data).expect("write the data");
    let mut writer = kolokol_bundle::BundleWriter::new(Vec::new()).expect("in memory");
    writer
        .add_publication(with_data, torrent, dir.path())
        .expect("add a publication");
    writer.add_record(plain, None).expect("add a record");
    seeds.write(
        "bundle",
        "two-publications",
        &writer.finish().expect("in memory"),
    );
    let empty = kolokol_bundle::BundleWriter::new(Vec::new()).expect("in memory");
    seeds.write("bundle", "empty", &empty.finish().expect("in memory"));
}

fn scrub_seeds(seeds: &mut Seeds) {
    use kolokol_scrub::fixtures;
    seeds.write("scrub", "jpeg-gps", &fixtures::jpeg_with_gps());
    seeds.write("scrub", "png-gps", &fixtures::png_with_gps());
    seeds.write("scrub", "webp-gps", &fixtures::webp_with_gps());
    seeds.write("scrub", "mp4-location", &fixtures::mp4_with_location());
    seeds.write("scrub", "pdf-author", &fixtures::pdf_with_author());
    seeds.write("scrub", "gif-author", &fixtures::gif_with_author().0);
    seeds.write("scrub", "flac-author", &fixtures::flac_with_author().0);
    seeds.write("scrub", "mp3-author", &fixtures::mp3_with_author().0);
    seeds.write("scrub", "matroska-author", &fixtures::matroska_with_author().0);
    seeds.write("scrub", "ogg-vorbis-artist", &fixtures::ogg_with_artist(false, false).0);
    seeds.write("scrub", "ogg-opus-artist", &fixtures::ogg_with_artist(true, false).0);
    seeds.write("scrub", "unknown", b"plain text, not a known kind\n");
}
