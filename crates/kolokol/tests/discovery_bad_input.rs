//! Hostile discovery input is ignored with a log line and stores nothing: a rendezvous peer that does not speak
//! kolokol, a feed head naming another author's record, a feed head naming a record nobody has.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::io::Write;
use std::net::{SocketAddrV4, TcpListener};
use std::time::Duration;

use common::*;
use kolokol_core::keys::Keypair;
use kolokol_core::record::RecordId;
use kolokol_discovery::{Dht, DhtConfig, FeedHead, ServerMode};

#[test]
fn hostile_rendezvous_peers_and_feed_heads_are_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    // Failed dials (with the peer's address) are logged at debug level only.
    let node = NodeProcess::start_logging(
        &tmp.path().join("n"),
        &[
            "--no-default-bootstrap",
            "--no-lan",
            "--work-bits",
            "8",
            "--replicas",
            "0",
            "--rendezvous-secs",
            "1",
            "--feed-poll-secs",
            "1",
        ],
        "info,kolokol_node::peering=debug,librqbit=warn",
    );
    let status = node.json(&["status"]);
    let node_dht: SocketAddrV4 = status["dht_addr"].as_str().unwrap().parse().unwrap();
    let own = tmp.path().join("own.txt");
    std::fs::write(&own, "mine").unwrap();
    let own_id = node.json(&["publish", own.to_str().unwrap(), "--title", "Own"])["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Something that is not a kolokol node, listening on loopback and announced on the rendezvous.
    let garbage = TcpListener::bind("127.0.0.1:0").unwrap();
    let garbage_port = garbage.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in garbage.incoming().take(20).flatten() {
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\nnot kolokol");
        }
    });

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let impostor = Keypair::from_secret_bytes([66; 32]);
    let phantom = Keypair::from_secret_bytes([67; 32]);
    runtime.block_on(async {
        let dht = Dht::start(DhtConfig {
            network: "kolokol".into(),
            bind: SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 0),
            bootstrap: vec![node_dht.to_string()],
            no_default_bootstrap: true,
            state_file: None,
            server_mode: ServerMode::Auto, // public routers off: answers from the start
            request_timeout: Duration::from_millis(300),
        })
        .await
        .unwrap();
        dht.announce_rendezvous(garbage_port).await.unwrap();
        // A validly signed head of `impostor` that names the node's own record (another author's).
        let own_record: RecordId = own_id.parse().unwrap();
        dht.put_feed(
            &impostor,
            FeedHead {
                latest: own_record,
                count: 1,
            },
            1,
        )
        .await
        .unwrap();
        // A head naming a record that exists nowhere.
        dht.put_feed(
            &phantom,
            FeedHead {
                latest: RecordId([9; 32]),
                count: 3,
            },
            1,
        )
        .await
        .unwrap();
        // Keep our DHT node alive while the node looks things up.
        let logged = wait_async(Duration::from_secs(60), || {
            let log = node.log();
            log.contains(&format!("127.0.0.1:{garbage_port}")) && log.contains("dial failed")
        })
        .await;
        assert!(
            logged,
            "no log line about the non-kolokol rendezvous peer:\n{}",
            node.log()
        );

        node.json(&["follow", &impostor.public().to_string()]);
        node.json(&["follow", &phantom.public().to_string()]);
        let logged = wait_async(Duration::from_secs(60), || {
            let log = node.log();
            log.contains("feed head names another author's record")
                && log.contains("feed head names records we lack")
        })
        .await;
        assert!(logged, "feed heads were not judged:\n{}", node.log());
        drop(dht);
    });

    // Nothing was stored, nobody was connected.
    let list = node.json(&["list"]);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let following = node.json(&["following"]);
    assert!(
        following
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["records"] == 0 && f["feed_seq"].is_null()),
        "{following}"
    );
    assert_eq!(node.json(&["status"])["peers_connected"], 0);
}

async fn wait_async(limit: Duration, check: impl Fn() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}
