//! An in-process testnet: 20 kolokol-dht nodes on 127.0.0.1, each with its own UDP socket and task.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use kolokol_dht::{Config, Dht, Id, MutableItem, immutable_target};

fn config() -> Config {
    common::loopback_config(Duration::from_millis(500))
}

async fn testnet(count: usize) -> Vec<Dht> {
    common::loopback_net(count, &config()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_nodes_announce_get_peers_and_bep44() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let nodes = testnet(20).await;
        for node in &nodes {
            let info = node.info().await.unwrap();
            assert!(info.routing_table_size >= 8, "{info:?}");
        }

        let info_hash = Id([0x5a; 20]);
        let stored = nodes[3].announce_peer(info_hash, Some(4321)).await.unwrap();
        assert!(stored >= 4, "announce stored at {stored} nodes");
        let implied = nodes[7].announce_peer(info_hash, None).await.unwrap();
        assert!(implied >= 4);
        let peers = nodes[15].get_peers(info_hash).await.unwrap();
        let want = [
            SocketAddrV4::new(Ipv4Addr::LOCALHOST, 4321),
            nodes[7].local_addr(),
        ];
        for w in want {
            assert!(peers.contains(&w), "{w} not in {peers:?}");
        }
        assert!(
            nodes[15]
                .get_peers(Id([0xa5; 20]))
                .await
                .unwrap()
                .is_empty()
        );

        let key = SigningKey::from_bytes(&[4; 32]);
        let item = MutableItem::sign(&key, b"d4:headi7ee".to_vec(), 7, b"net".to_vec()).unwrap();
        assert!(nodes[5].put_mutable(item.clone(), None).await.unwrap() >= 4);
        let got = nodes[18].get_mutable(item.key, b"net").await.unwrap();
        assert_eq!(got.first(), Some(&item));
        assert!(
            nodes[18]
                .get_mutable(item.key, b"other salt")
                .await
                .unwrap()
                .is_empty()
        );

        assert!(nodes[2].put_immutable(b"3:abc".to_vec()).await.unwrap() >= 4);
        assert_eq!(
            nodes[11]
                .get_immutable(immutable_target(b"3:abc"))
                .await
                .unwrap(),
            Some(b"3:abc".to_vec())
        );
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_lone_node_answers_and_ends_its_lookups() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let any = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0);
        // Bootstrapping from a port where nothing listens: lookups end by timeout with nothing found.
        let silent = std::net::UdpSocket::bind(any).unwrap();
        let silent_addr = match silent.local_addr().unwrap() {
            std::net::SocketAddr::V4(a) => a,
            std::net::SocketAddr::V6(_) => unreachable!(),
        };
        let node = Dht::bind(any, config(), &[silent_addr]).await.unwrap();
        assert!(node.get_peers(Id([1; 20])).await.unwrap().is_empty());
        assert_eq!(node.announce_peer(Id([1; 20]), Some(1)).await.unwrap(), 0);
        // A raw ping with a 2-byte transaction id (as libtorrent sends) is answered with the same id.
        let client = tokio::net::UdpSocket::bind(any).await.unwrap();
        client
            .send_to(
                b"d1:ad2:id20:aaaaaaaaaaaaaaaaaaaae1:q4:ping1:t2:xy1:y1:qe",
                node.local_addr(),
            )
            .await
            .unwrap();
        let mut buf = [0u8; 1500];
        let (len, _) = client.recv_from(&mut buf).await.unwrap();
        let answer = kolokol_dht::krpc::Message::decode(&buf[..len]).unwrap();
        assert_eq!(answer.tid, b"xy");
        assert!(matches!(answer.body, kolokol_dht::krpc::Body::Response(_)));
    })
    .await
    .unwrap();
}
