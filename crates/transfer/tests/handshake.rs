//! What a peer (or a DPI box on the path) sees of our engine: a raw TCP client on 127.0.0.1 connects to a seeding
//! engine, sends a plain BitTorrent handshake, and decodes the handshake and the BEP 10 extension handshake that come
//! back. Nothing in them may name kolokol or librqbit; the peer id and `v` must be Transmission's, consistently.
// Test set-up helpers panic on failure: that is the test failing.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::STEP;
use kolokol_transfer::fingerprint::{CLIENT_NAME_AND_VERSION, PEER_ID_PREFIX};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

const PSTR: &[u8] = b"BitTorrent protocol";

/// A decoded bencode value, just enough for the extension handshake.
#[derive(Debug, Clone, PartialEq)]
enum Ben {
    Int(i64),
    Bytes(Vec<u8>),
    List(Vec<Ben>),
    Dict(BTreeMap<Vec<u8>, Ben>),
}

fn decode(input: &[u8], pos: &mut usize) -> Ben {
    match input[*pos] {
        b'i' => {
            let end = *pos + input[*pos..].iter().position(|&b| b == b'e').unwrap();
            let n = std::str::from_utf8(&input[*pos + 1..end])
                .unwrap()
                .parse()
                .unwrap();
            *pos = end + 1;
            Ben::Int(n)
        }
        b'l' => {
            *pos += 1;
            let mut items = Vec::new();
            while input[*pos] != b'e' {
                items.push(decode(input, pos));
            }
            *pos += 1;
            Ben::List(items)
        }
        b'd' => {
            *pos += 1;
            let mut map = BTreeMap::new();
            while input[*pos] != b'e' {
                let Ben::Bytes(key) = decode(input, pos) else {
                    panic!("dictionary key is not a string")
                };
                let value = decode(input, pos);
                map.insert(key, value);
            }
            *pos += 1;
            Ben::Dict(map)
        }
        _ => {
            let colon = *pos + input[*pos..].iter().position(|&b| b == b':').unwrap();
            let len: usize = std::str::from_utf8(&input[*pos..colon])
                .unwrap()
                .parse()
                .unwrap();
            let bytes = input[colon + 1..colon + 1 + len].to_vec();
            *pos = colon + 1 + len;
            Ben::Bytes(bytes)
        }
    }
}

/// Reads one length-prefixed peer message: (id, payload).
async fn read_message(stream: &mut TcpStream) -> (u8, Vec<u8>) {
    loop {
        let len = stream.read_u32().await.unwrap() as usize;
        if len == 0 {
            continue; // keep-alive
        }
        assert!(len < 1 << 20, "message of {len} bytes");
        let mut body = vec![0u8; len];
        stream.read_exact(&mut body).await.unwrap();
        return (body[0], body[1..].to_vec());
    }
}

/// Connects to `addr`, sends a plain handshake for `infohash` offering only BEP 10, and returns the 68-byte handshake
/// and the extension handshake's dictionary that come back.
async fn exchange(addr: std::net::SocketAddr, infohash: [u8; 20]) -> ([u8; 68], Vec<u8>) {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let mut hello = vec![19u8];
        hello.extend_from_slice(PSTR);
        hello.extend_from_slice(&[0, 0, 0, 0, 0, 0x10, 0, 0]);
        hello.extend_from_slice(&infohash);
        hello.extend_from_slice(b"-TR4060-abcdefghijkl");
        stream.write_all(&hello).await.unwrap();

        let mut answer = [0u8; 68];
        stream.read_exact(&mut answer).await.unwrap();
        let mut extended = None;
        // The extension handshake comes first or after the bitfield (and a few other messages).
        for _ in 0..8 {
            let (id, payload) = read_message(&mut stream).await;
            if id == 20 && payload.first() == Some(&0) {
                extended = Some(payload[1..].to_vec());
                break;
            }
        }
        (answer, extended.expect("no extension handshake"))
    };
    timeout(Duration::from_secs(30), exchange).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_name_transmission_and_nothing_of_kolokol_or_librqbit() {
    let tmp = tempfile::tempdir().unwrap();
    let seeder = common::engine(&tmp.path().join("seeder")).await;
    let content = tmp.path().join("content");
    let path = content.join("notes.txt");
    common::random_file(&path, 100_000);
    let created = seeder.create_torrent(&path).await.unwrap();
    seeder.seed(&created.torrent, &content).await.unwrap();
    timeout(STEP, seeder.wait_finished(&created.infohash))
        .await
        .unwrap()
        .unwrap();

    let (answer, extended) = exchange(seeder.listen_addr(), created.infohash).await;

    assert_eq!(answer[0], 19);
    assert_eq!(&answer[1..20], PSTR);
    let reserved = &answer[20..28];
    assert_eq!(&answer[28..48], &created.infohash);
    let peer_id = &answer[48..68];
    println!(
        "handshake: reserved {} peer id {:?}",
        hex::encode(reserved),
        String::from_utf8_lossy(peer_id)
    );
    println!(
        "extension handshake: {}",
        String::from_utf8_lossy(&extended)
    );

    // The peer id: Transmission 4.0.6's prefix, then 12 characters of [0-9a-z].
    assert_eq!(&peer_id[..8], PEER_ID_PREFIX);
    assert!(
        peer_id[8..]
            .iter()
            .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
    );
    // Reserved bits: only the extension protocol bit. This is librqbit's hard-coded value (a real Transmission also
    // sets the fast-extension bit 0x04 of the last byte, and 0x01 when its DHT is on): SECURITY.md says so.
    assert_eq!(reserved, [0, 0, 0, 0, 0, 0x10, 0, 0]);

    let mut pos = 0;
    let Ben::Dict(dict) = decode(&extended, &mut pos) else {
        panic!("extension handshake is not a dictionary")
    };
    assert_eq!(pos, extended.len());
    let keys: Vec<String> = dict
        .keys()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    // Exactly these keys, each also in Transmission's extension handshake.
    assert_eq!(keys, ["m", "metadata_size", "v", "yourip"], "{keys:?}");
    assert_eq!(
        dict.get(&b"v"[..]),
        Some(&Ben::Bytes(CLIENT_NAME_AND_VERSION.as_bytes().to_vec()))
    );
    assert_eq!(CLIENT_NAME_AND_VERSION, "Transmission 4.0.6");
    // Transmission's extension message ids (libtorrent would say ut_metadata 2).
    let Some(Ben::Dict(m)) = dict.get(&b"m"[..]) else {
        panic!("no m dictionary")
    };
    let mut expected_m = BTreeMap::new();
    expected_m.insert(b"ut_metadata".to_vec(), Ben::Int(3));
    expected_m.insert(b"ut_pex".to_vec(), Ben::Int(1));
    assert_eq!(m, &expected_m);
    // `yourip` is our own address as the seeder saw it (127.0.0.1), as every common client sends it.
    assert_eq!(
        dict.get(&b"yourip"[..]),
        Some(&Ben::Bytes(vec![127, 0, 0, 1]))
    );

    // Nowhere a trace of kolokol or the library.
    let all = [&answer[..], &extended[..]].concat().to_ascii_lowercase();
    for word in [&b"kolokol"[..], b"rqbit", b"-rq"] {
        assert!(
            !all.windows(word.len()).any(|w| w == word),
            "{:?} found",
            String::from_utf8_lossy(word)
        );
    }
    seeder.shutdown().await;
}

/// For comparison, what a common client sends on the same probe: Debian's libtorrent (the engine of qBittorrent and
/// Deluge). It names itself in `v` and sets the fast-extension and DHT bits that librqbit's handshake lacks (SECURITY.md
/// §10 lists those differences).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_handshake_for_comparison() {
    use kolokol_testkit::libtorrent::{self, PeerArgs, Seeder};
    kolokol_testkit::peers::require_libtorrent();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let path = src.join("notes.txt");
    common::random_file(&path, 100_000);
    let torrent_path = tmp.path().join("notes.torrent");
    libtorrent::make_torrent(&path, &torrent_path, 16).unwrap();
    let torrent = std::fs::read(&torrent_path).unwrap();
    let infohash = kolokol_transfer::metainfo::infohash_of(&torrent).unwrap();
    let seeder = Seeder::start(&PeerArgs::seed(&torrent_path, &src).tcp_only()).unwrap();

    // libtorrent closes connections for a torrent it has not finished adding yet: knock until it answers.
    let mut attempt = 0;
    let (answer, extended) = loop {
        attempt += 1;
        let probe = tokio::spawn(exchange(seeder.addr(), infohash));
        match probe.await {
            Ok(answer) => break answer,
            Err(error) if attempt < 40 => {
                println!("attempt {attempt}: {error}");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(error) => panic!(
                "libtorrent never answered: {error}\n{}",
                seeder.transcript()
            ),
        }
    };
    println!(
        "libtorrent handshake: reserved {} peer id {:?}",
        hex::encode(&answer[20..28]),
        String::from_utf8_lossy(&answer[48..68])
    );
    println!(
        "libtorrent extension handshake: {}",
        String::from_utf8_lossy(&extended)
    );
    assert_eq!(&answer[28..48], &infohash);
    assert_eq!(answer[25] & 0x10, 0x10, "extension protocol");
    assert_eq!(answer[27] & 0x04, 0x04, "fast extension");
    let mut pos = 0;
    let Ben::Dict(dict) = decode(&extended, &mut pos) else {
        panic!("extension handshake is not a dictionary")
    };
    let Some(Ben::Bytes(v)) = dict.get(&b"v"[..]) else {
        panic!("libtorrent sent no v")
    };
    // (Our driver sets libtorrent's user agent to "kolokol-testkit/libtorrent-<version>"; a stock one says
    // "libtorrent/<version>", qBittorrent "qBittorrent/<version>".)
    assert!(
        String::from_utf8_lossy(v).contains("libtorrent"),
        "{}",
        String::from_utf8_lossy(v)
    );
    assert_eq!(&answer[48..51], b"-LT", "libtorrent's peer id prefix");
    for key in ["m", "metadata_size", "reqq", "upload_only", "yourip"] {
        assert!(
            dict.contains_key(key.as_bytes()),
            "libtorrent sent no {key}"
        );
    }
    drop(seeder);
}
