//! A peer that speaks the wire protocol correctly but sends forged records: they are refused and not stored, the
//! connection stays usable for honest traffic, and a peer that keeps sending bad records is disconnected.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::time::Duration;

use kolokol_core::keys::Keypair;
use kolokol_core::record::SignedRecord;
use kolokol_node::{DataDir, DiscoveryConfig, Node, NodeConfig};
use kolokol_testkit::records::{TestRecord, unix_now};
use kolokol_wire::{Exchange, ExchangeAction, Message, Role, WireConfig, WireError, handshake};
use tokio::net::TcpStream;

fn record(key: &Keypair, network: &str, title: &str) -> SignedRecord {
    record_at(key, network, title, 0)
}

/// A record dated `ahead` seconds in the future.
fn record_at(key: &Keypair, network: &str, title: &str, ahead: u64) -> SignedRecord {
    TestRecord::new(key, title)
        .network(network)
        .created(unix_now() + ahead)
        .infohash([9; 20])
        .sign()
        .unwrap()
}

#[tokio::test]
async fn forged_records_are_refused_and_the_connection_stays_usable() {
    let tmp = tempfile::tempdir().unwrap();
    let config = NodeConfig {
        bt_listen: Some("127.0.0.1:0".parse().unwrap()),
        wire_listen: Some("127.0.0.1:0".parse().unwrap()),
        discovery: DiscoveryConfig::private_loopback(),
        // The test signs records without work; difficulty is tested elsewhere.
        work_bits: 0,
        ..NodeConfig::default()
    };
    let node = Node::start(DataDir::lock(&tmp.path().join("n")).unwrap(), config)
        .await
        .unwrap();
    let api = node.api();
    let wire_addr = api.status().await.unwrap().wire_addr;

    // An honest record the node already holds must survive everything below unchanged.
    let author = Keypair::from_secret_bytes([5; 32]);
    let kept = record(&author, "kolokol", "kept");

    let stream = TcpStream::connect(&wire_addr).await.unwrap();
    let me = Keypair::from_secret_bytes([6; 32]);
    let cfg = WireConfig::for_network("kolokol");
    let (mut reader, mut writer, _) = handshake(stream, Role::Initiator, &me, &cfg).await.unwrap();

    // Open the connection, then offer one honest record: announce it, and answer the node's fetch.
    let mut exchange = Exchange::new();
    for m in exchange.start() {
        writer.send(&m).await.unwrap();
    }
    writer
        .send(&Message::Have {
            ids: vec![kept.id()],
        })
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut served = false;
    while !served {
        let m = tokio::time::timeout_at(deadline, reader.recv())
            .await
            .unwrap()
            .unwrap();
        for action in exchange.handle(m).unwrap() {
            match action {
                ExchangeAction::Send(m) => writer.send(&m).await.unwrap(),
                ExchangeAction::ServeFetch(ids) if ids.contains(&kept.id()) => {
                    writer
                        .send(&Message::Records {
                            records: vec![kept.bytes().to_vec()],
                        })
                        .await
                        .unwrap();
                    served = true;
                }
                _ => {}
            }
        }
    }
    wait_for_titles(&api, &["kept"]).await;

    // Forgeries pushed unasked: a flipped byte, another network, garbage.
    let mut flipped = record(&author, "kolokol", "forged").bytes().to_vec();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x20;
    let other_network = record(&author, "elsewhere", "wrong network")
        .bytes()
        .to_vec();
    let from_the_future = record_at(&author, "kolokol", "tomorrow", 7200)
        .bytes()
        .to_vec();
    writer
        .send(&Message::Records {
            records: vec![
                flipped,
                other_network,
                b"d4:junke".to_vec(),
                from_the_future,
            ],
        })
        .await
        .unwrap();
    // The connection still answers...
    writer.send(&Message::Ping { nonce: 77 }).await.unwrap();
    let pong = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Message::Pong { nonce } = reader.recv().await.unwrap() {
                return nonce;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(pong, 77);
    // Each was refused and counted.
    assert_eq!(api.status().await.unwrap().refused.invalid, 4);
    // ...and still takes honest records.
    let honest = record(&author, "kolokol", "honest push");
    writer
        .send(&Message::Records {
            records: vec![honest.bytes().to_vec()],
        })
        .await
        .unwrap();
    wait_for_titles(&api, &["honest push", "kept"]).await;

    // A peer that keeps sending forgeries is cut off.
    let junk: Vec<Vec<u8>> = (0..20)
        .map(|i| format!("d1:xi{i}ee").into_bytes())
        .collect();
    writer
        .send(&Message::Records { records: junk })
        .await
        .unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match reader.recv().await {
                Ok(_) => continue,
                Err(e) => return e,
            }
        }
    })
    .await
    .expect("the node should close the connection");
    assert!(
        matches!(
            closed,
            WireError::Closed | WireError::UnexpectedEof | WireError::Io(_)
        ),
        "{closed:?}"
    );

    // Nothing forged was stored; what was stored is intact.
    wait_for_titles(&api, &["honest push", "kept"]).await;
    let shown = api.show(&kept.id().to_string()).await.unwrap();
    assert_eq!(shown.title, "kept");
    node.shutdown().await;
}

async fn wait_for_titles(api: &kolokol_node::Api, expected: &[&str]) {
    let mut titles = Vec::new();
    for _ in 0..100 {
        titles = api
            .list(100, 0)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.title)
            .collect::<Vec<_>>();
        titles.sort();
        if titles == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("catalog holds {titles:?}, expected {expected:?}");
}
