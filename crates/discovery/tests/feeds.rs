//! Author feeds (BEP 44) on a private loopback DHT: put by one node, read by another; bad items ignored.

// Helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddrV4;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{NETWORK, init_tracing, private_config, private_network, private_node};
use ed25519_dalek::SigningKey;
use kolokol_core::{Keypair, RecordId};
use kolokol_dht::{MutableItem, bencode_bytes};
use kolokol_discovery::Dht;
use kolokol_discovery::feed::{encode_feed_value, feed_salt};
use kolokol_discovery::{FeedEntry, FeedError, FeedHead};

fn head(n: u8, count: u64) -> FeedHead {
    FeedHead {
        latest: RecordId([n; 32]),
        count,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_put_by_one_node_is_read_by_another() {
    init_tracing();
    let (_first, nodes) = private_network(8).await;
    let author = Keypair::from_secret_bytes([21; 32]);
    let (writer, reader) = (&nodes[0], &nodes[7]);

    assert_eq!(reader.get_feed(author.public()).await, None);
    let put = writer.put_feed(&author, head(1, 1), 100).await.unwrap();
    assert!(put.stored_at > 0);
    assert_eq!(
        reader.get_feed(author.public()).await,
        Some(FeedEntry {
            head: head(1, 1),
            seq: 100
        })
    );

    // A newer head replaces it; an older or conflicting one is refused before anything is written.
    writer.put_feed(&author, head(2, 2), 101).await.unwrap();
    assert_eq!(
        reader.get_feed(author.public()).await,
        Some(FeedEntry {
            head: head(2, 2),
            seq: 101
        })
    );
    assert!(matches!(
        writer.put_feed(&author, head(9, 9), 50).await,
        Err(FeedError::StaleSeq {
            seq: 50,
            existing: 101
        })
    ));
    assert!(matches!(
        writer.put_feed(&author, head(9, 9), 101).await,
        Err(FeedError::StaleSeq {
            seq: 101,
            existing: 101
        })
    ));
    // Re-putting the same head keeps it alive.
    writer.put_feed(&author, head(2, 2), 101).await.unwrap();
    assert_eq!(
        reader.get_feed(author.public()).await,
        Some(FeedEntry {
            head: head(2, 2),
            seq: 101
        })
    );
    // Another author has no feed; the same author in another network neither.
    assert_eq!(
        reader
            .get_feed(Keypair::from_secret_bytes([22; 32]).public())
            .await,
        None
    );
    let mut other_network = private_config(&[nodes[1].local_addr()], None);
    other_network.network = "another-network".to_owned();
    let other = Dht::start(other_network).await.unwrap();
    assert_eq!(other.get_feed(author.public()).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_feed_values_are_ignored() {
    init_tracing();
    let (_first, nodes) = private_network(8).await;
    let (writer, reader) = (&nodes[0], &nodes[7]);
    let salt = feed_salt(NETWORK);
    let put_raw = |key: &Keypair, value: Vec<u8>, salt: Vec<u8>| {
        let item = MutableItem::sign(
            &SigningKey::from_bytes(&key.secret_bytes()),
            bencode_bytes(&value),
            7,
            salt,
        )
        .unwrap();
        let dht = writer.inner().clone();
        async move { dht.put_mutable(item, None).await.unwrap() }
    };

    // Correctly signed by the author under our salt, but not a feed value.
    let garbage = Keypair::from_secret_bytes([31; 32]);
    put_raw(&garbage, b"not bencode".to_vec(), salt.clone()).await;
    // A well-formed head, but written for another network.
    let foreign = Keypair::from_secret_bytes([32; 32]);
    put_raw(
        &foreign,
        encode_feed_value("elsewhere", &head(1, 1)).unwrap(),
        salt.clone(),
    )
    .await;
    // A dictionary with an unknown field.
    let extra = Keypair::from_secret_bytes([33; 32]);
    put_raw(&extra, b"d5:counti1e5:extrai0ee".to_vec(), salt.clone()).await;
    // A control: a good head put the same raw way is read.
    let good = Keypair::from_secret_bytes([34; 32]);
    put_raw(
        &good,
        encode_feed_value(NETWORK, &head(4, 4)).unwrap(),
        salt.clone(),
    )
    .await;

    assert_eq!(
        reader.get_feed(good.public()).await,
        Some(FeedEntry {
            head: head(4, 4),
            seq: 7
        })
    );
    for bad in [&garbage, &foreign, &extra] {
        assert_eq!(reader.get_feed(bad.public()).await, None);
    }
}

/// A fake DHT node that answers every query with a BEP 44 item for `author` whose signature is
/// `sign(signed bytes)`. It counts the `get` queries it saw.
async fn fake_dht_node(
    author: &Keypair,
    sign: impl Fn(&[u8]) -> [u8; 64],
    value: Vec<u8>,
) -> (SocketAddrV4, Arc<AtomicUsize>) {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = match socket.local_addr().unwrap() {
        std::net::SocketAddr::V4(a) => a,
        other => panic!("not IPv4: {other}"),
    };
    let salt = feed_salt(NETWORK);
    let seq = 9i64;
    let signed = kolokol_discovery::feed::bep44_signed_bytes(&salt, seq, &value);
    let sig = sign(&signed);
    let key = *author.public().as_bytes();
    let gets = Arc::new(AtomicUsize::new(0));
    let counter = gets.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        loop {
            let Ok((len, from)) = socket.recv_from(&mut buf).await else {
                return;
            };
            let request = &buf[..len];
            let Some(tid) = transaction_id(request) else {
                continue;
            };
            if contains(request, b"1:q3:get") {
                counter.fetch_add(1, Ordering::SeqCst);
            }
            let mut reply = b"d1:rd2:id20:".to_vec();
            reply.extend_from_slice(&[0x42; 20]);
            reply.extend_from_slice(b"1:k32:");
            reply.extend_from_slice(&key);
            reply.extend_from_slice(format!("3:seqi{seq}e3:sig64:").as_bytes());
            reply.extend_from_slice(&sig);
            reply.extend_from_slice(b"5:token2:tk1:v");
            reply.extend_from_slice(format!("{}:", value.len()).as_bytes());
            reply.extend_from_slice(&value);
            reply.extend_from_slice(format!("e1:t{}:", tid.len()).as_bytes());
            reply.extend_from_slice(&tid);
            reply.extend_from_slice(b"1:y1:re");
            let _ = socket.send_to(&reply, from).await;
        }
    });
    (addr, gets)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The transaction id of a KRPC message: the byte string after the top-level key `1:t`.
fn transaction_id(message: &[u8]) -> Option<Vec<u8>> {
    let at = message.windows(3).position(|w| w == b"1:t")? + 3;
    let rest = &message[at..];
    let colon = rest.iter().position(|b| *b == b':')?;
    let len: usize = std::str::from_utf8(&rest[..colon]).ok()?.parse().ok()?;
    rest.get(colon + 1..colon + 1 + len).map(<[u8]>::to_vec)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrongly_signed_items_from_a_dht_node_are_ignored() {
    init_tracing();
    let author = Keypair::from_secret_bytes([41; 32]);
    let forger = Keypair::from_secret_bytes([42; 32]);
    let value = encode_feed_value(NETWORK, &head(5, 5)).unwrap();

    // Control: a DHT node serving a correctly signed item is believed.
    let (honest, honest_gets) = fake_dht_node(&author, |m| author.sign(m), value.clone()).await;
    let reader = private_node(&[honest]).await;
    assert_eq!(
        reader.get_feed(author.public()).await,
        Some(FeedEntry {
            head: head(5, 5),
            seq: 9
        })
    );
    assert!(honest_gets.load(Ordering::SeqCst) > 0);

    // The same item signed by another key: asked, answered, ignored.
    let (forging, forged_gets) = fake_dht_node(&author, |m| forger.sign(m), value.clone()).await;
    let reader = private_node(&[forging]).await;
    assert_eq!(reader.get_feed(author.public()).await, None);
    assert!(
        forged_gets.load(Ordering::SeqCst) > 0,
        "the forging node was never asked"
    );

    // An unsigned item (an all-zero signature) likewise.
    let (unsigned, unsigned_gets) = fake_dht_node(&author, |_| [0; 64], value).await;
    let reader = private_node(&[unsigned]).await;
    assert_eq!(reader.get_feed(author.public()).await, None);
    assert!(unsigned_gets.load(Ordering::SeqCst) > 0);
}
