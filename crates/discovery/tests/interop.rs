//! Interoperability with an independent DHT implementation: kolokol nodes join a private loopback DHT of
//! Debian's libtorrent nodes (python3-libtorrent). libtorrent finds a kolokol rendezvous announce with
//! get_peers and reads a kolokol feed head with BEP 44 `dht_get_mutable_item`; kolokol reads an item that
//! libtorrent put.
//!
//! Here libtorrent nodes form the network and kolokol nodes join it; the other direction (libtorrent entering
//! the DHT through a kolokol node) is `crates/dht/tests/interop_libtorrent.rs`.
//!
//! The libtorrent side is kolokol-testkit's `libtorrent::Dht` (`crates/testkit/peers/lt_dht.py`). Its commands
//! block while libtorrent works, so the tests run them with `block_in_place`: the kolokol node keeps running on
//! the other worker.

// Helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddrV4;

use common::{NETWORK, init_tracing, private_node};
use kolokol_core::{InfoHash, Keypair, RecordId};
use kolokol_discovery::feed::{encode_feed_value, feed_salt};
use kolokol_discovery::{FeedEntry, FeedHead};
use kolokol_testkit::libtorrent::Dht;

/// A libtorrent testnet and the node kolokol nodes bootstrap from.
fn libtorrent_dht() -> (Dht, SocketAddrV4) {
    let dht = Dht::start(6);
    let std::net::SocketAddr::V4(bootstrap) = dht.nodes()[0] else {
        panic!("the testnet listens on IPv4 loopback: {:?}", dht.nodes());
    };
    (dht, bootstrap)
}

/// Runs one blocking testnet command without stopping the runtime; fails the test with the transcript.
fn run<T>(what: &str, command: impl FnOnce() -> Result<T, String>) -> T {
    tokio::task::block_in_place(command)
        .unwrap_or_else(|seen| panic!("libtorrent side failed to {what}:\n{seen}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_finds_a_kolokol_rendezvous_announce() {
    init_tracing();
    let infohash = InfoHash::rendezvous(NETWORK);
    let (mut lt, bootstrap) = libtorrent_dht();
    let node = private_node(&[bootstrap]).await;
    node.announce_rendezvous(45_555).await.unwrap();
    let pass = run("find the announce", || {
        lt.find_peers(&infohash.to_string(), 45_555)
    });
    assert!(pass.contains("45555"), "{pass}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_reads_a_kolokol_feed_head() {
    init_tracing();
    let author = Keypair::from_secret_bytes([51; 32]);
    let head = FeedHead {
        latest: RecordId([0xab; 32]),
        count: 12,
    };
    let (mut lt, bootstrap) = libtorrent_dht();
    let node = private_node(&[bootstrap]).await;
    let put = node.put_feed(&author, head, 1_000).await.unwrap();
    assert!(put.stored_at > 0);
    let value = encode_feed_value(NETWORK, &head).unwrap();
    run("read the feed head", || {
        lt.get_item(
            author.public().as_bytes(),
            &feed_salt(NETWORK),
            &value,
            1_000,
        )
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kolokol_reads_an_item_that_libtorrent_put() {
    init_tracing();
    let seed = [52u8; 32];
    let author = Keypair::from_secret_bytes(seed);
    let head = FeedHead {
        latest: RecordId([0xcd; 32]),
        count: 3,
    };
    let (mut lt, bootstrap) = libtorrent_dht();
    let value = encode_feed_value(NETWORK, &head).unwrap();
    let (seq, pass) = run("put the item", || {
        lt.put_item(&seed, &feed_salt(NETWORK), &value)
    });
    assert!(
        pass.contains(&author.public().to_string()),
        "libtorrent derived another public key: {pass}"
    );
    // A kolokol node that joins afterwards reads it from the libtorrent nodes.
    let node = private_node(&[bootstrap]).await;
    assert_eq!(
        node.get_feed(author.public()).await,
        Some(FeedEntry { head, seq })
    );
}
