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

    let exchange = async {
        let mut stream = TcpStream::connect(seeder.listen_addr()).await.unwrap();
        let mut hello = vec![19u8];
        hello.extend_from_slice(PSTR);
        // We offer only the extension protocol (BEP 10), like the seeder's own handshake will show.
        hello.extend_from_slice(&[0, 0, 0, 0, 0, 0x10, 0, 0]);
        hello.extend_from_slice(&created.infohash);
        hello.extend_from_slice(b"-TR4060-abcdefghijkl");
        stream.write_all(&hello).await.unwrap();

        let mut answer = [0u8; 68];
        stream.read_exact(&mut answer).await.unwrap();
        let mut extended = None;
        // The extension handshake comes first or right after the bitfield.
        for _ in 0..4 {
            let (id, payload) = read_message(&mut stream).await;
            if id == 20 && payload.first() == Some(&0) {
                extended = Some(payload[1..].to_vec());
                break;
            }
        }
        (answer, extended.expect("no extension handshake"))
    };
    let (answer, extended) = timeout(Duration::from_secs(30), exchange).await.unwrap();

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
