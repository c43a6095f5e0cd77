//! Watching without being watched (issue 13, part 1), with real `kolokol up` processes on loopback.
//!
//! Publisher A announces its publication. Reader R streams it through its gateway to the end; reader S does the same
//! with `up --share-watched`. A DHT client of the test's own (an observer in the same loopback DHT) looks the
//! infohash up: it finds A and S, never R; and A, a kolokol peer of both, is told by S that S holds it, never by R.
//! A new peer that connects to R and asks it to replicate the publication gets a `Decline` and no `Holding` naming
//! it; S tells such a peer that it holds it. S is the control that shows the lookup and the peer messages work: R is
//! absent, not merely late. Then, with A and S
//! gone, a new node that connects to R gets the whole publication from R: unannounced data is still served.

#![allow(clippy::unwrap_used)]

mod common;
mod hostile;

use std::net::{SocketAddr, SocketAddrV4};
use std::time::Duration;

use common::{NodeProcess, TestNode, random_file, wait_for};
use kolokol_core::keys::Keypair;
use kolokol_core::record::InfoHash;
use kolokol_discovery::{Dht, DhtConfig, ServerMode};
use kolokol_wire::{Message, WireConfig};

/// The signed bytes of record `id` as `node` stored them (read from its catalog file).
fn record_bytes(node: &NodeProcess, id: &str) -> Vec<u8> {
    let conn = rusqlite::Connection::open_with_flags(
        node.data_dir.join("catalog.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    conn.query_row(
        "SELECT bytes FROM records WHERE id = ?1",
        [hex::decode(id).unwrap()],
        |r| r.get(0),
    )
    .unwrap()
}

/// A new kolokol peer connects to `node` and asks it to replicate the record: what it is told about `infohash`.
/// `Some(true)`: a `Holding` naming it (on connect or as the answer); `Some(false)`: a `Decline`.
fn ask_as_a_new_peer(node: &NodeProcess, record: Vec<u8>, infohash: [u8; 20]) -> Option<bool> {
    let wire: SocketAddr = status(node)["wire_addr"].as_str().unwrap().parse().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let key = Keypair::from_secret_bytes([99; 32]);
        let (mut reader, mut writer) =
            hostile::join(wire, &key, &WireConfig::for_network("kolokol"))
                .await
                .unwrap();
        writer.send(&Message::Replicate { record }).await.unwrap();
        tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                match reader.recv().await {
                    Ok(Message::Holding { infohashes }) if infohashes.contains(&infohash) => {
                        return Some(true);
                    }
                    Ok(Message::Decline { infohash: declined }) if declined == infohash => {
                        return Some(false);
                    }
                    Ok(_) => {}
                    Err(_) => return None,
                }
            }
        })
        .await
        .ok()
        .flatten()
    })
}

/// GET with the Host header (and the token, for the API); status line and body.
fn get(node: &NodeProcess, path: &str) -> (String, Vec<u8>) {
    node.http_get(path, Duration::from_secs(120))
}

fn status(node: &NodeProcess) -> serde_json::Value {
    node.json(&["status"])
}

/// The reader streams file 0 of `id` through its gateway to the end, then waits until its node records the download
/// complete; returns the transfer as the API shows it.
fn stream_to_the_end(
    reader: &NodeProcess,
    id: &str,
    infohash: &str,
    data: &[u8],
) -> serde_json::Value {
    let (line, body) = get(reader, &format!("/files/{id}/0"));
    assert!(line.contains(" 200 "), "{line}");
    assert!(
        body == data,
        "the streamed bytes differ from the published file"
    );
    wait_for(Duration::from_secs(60), || {
        let (line, body) = get(reader, &format!("/api/v1/transfers/{infohash}"));
        let view: serde_json::Value = serde_json::from_slice(&body).ok()?;
        (line.contains(" 200 ") && view["finished"] == true && view["state"] == "seeding")
            .then_some(view)
    })
    .unwrap_or_else(|| panic!("the reader's download did not complete\n{}", reader.log()))
}

#[test]
fn what_a_reader_watches_is_neither_announced_nor_advertised_unless_shared() {
    let tmp = tempfile::tempdir().unwrap();
    let a = NodeProcess::start(&tmp.path().join("a"));
    let a_dht = status(&a)["dht_addr"].as_str().unwrap().to_owned();
    let readers_args = ["--bootstrap", a_dht.as_str()];
    let r = NodeProcess::start_with(&tmp.path().join("r"), &readers_args);
    let mut s_args = readers_args.to_vec();
    s_args.push("--share-watched");
    let s = NodeProcess::start_with(&tmp.path().join("s"), &s_args);

    let file = tmp.path().join("protest.webm");
    random_file(&file, 2 * 1024 * 1024, 21);
    let data = std::fs::read(&file).unwrap();
    let published = a.json(&["publish", file.to_str().unwrap(), "--title", "protest"]);
    let id = published["id"].as_str().unwrap().to_owned();
    let infohash = published["infohash"].as_str().unwrap().to_owned();
    let a_wire = status(&a)["wire_addr"].as_str().unwrap().to_owned();
    for reader in [&r, &s] {
        reader.json(&["peer", "add", &a_wire]);
        assert!(
            wait_for(Duration::from_secs(60), || reader
                .has_record(&id)
                .then_some(()))
            .is_some(),
            "a reader never received the record"
        );
    }

    let r_view = stream_to_the_end(&r, &id, &infohash, &data);
    assert_eq!(r_view["shared"], false, "{r_view}");
    let s_view = stream_to_the_end(&s, &id, &infohash, &data);
    assert_eq!(s_view["shared"], true, "{s_view}");
    let port = |node: &NodeProcess| {
        status(node)["bt_addr"]
            .as_str()
            .unwrap()
            .parse::<SocketAddr>()
            .unwrap()
            .port()
    };
    let (a_port, r_port, s_port) = (port(&a), port(&r), port(&s));
    let node_id = |node: &NodeProcess| status(node)["node_id"].as_str().unwrap().to_owned();
    let (r_id, s_id) = (node_id(&r), node_id(&s));

    // Peers: A hears from S that S holds it (S shares), never from R.
    let holders = wait_for(Duration::from_secs(60), || {
        let replicas = a.json(&["status", &id]);
        let holders: Vec<String> = replicas["holders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap().to_owned())
            .collect();
        holders.contains(&s_id).then_some(holders)
    })
    .unwrap_or_else(|| {
        panic!(
            "S (sharing) never told A that it holds the publication\n{}",
            s.log()
        )
    });
    assert!(
        !holders.contains(&r_id),
        "R told A that it holds what it watched"
    );

    // A new peer that connects and even asks for a replica is not told that R holds it (R declines); S says so.
    let infohash_bytes: [u8; 20] = hex::decode(&infohash).unwrap().try_into().unwrap();
    assert_eq!(
        ask_as_a_new_peer(&r, record_bytes(&r, &id), infohash_bytes),
        Some(false),
        "R did not decline"
    );
    assert_eq!(
        ask_as_a_new_peer(&s, record_bytes(&s, &id), infohash_bytes),
        Some(true),
        "S (sharing) did not say it holds the publication"
    );

    // The DHT: an observer's lookup finds A and S as seeders, never R.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let infohash: InfoHash = infohash.parse().unwrap();
    let seen = runtime.block_on(async {
        let dht = Dht::start(DhtConfig {
            network: "kolokol".into(),
            bind: SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 0),
            bootstrap: vec![a_dht.clone()],
            no_default_bootstrap: true,
            state_file: None,
            server_mode: ServerMode::Auto,
            request_timeout: Duration::from_millis(300),
        })
        .await
        .unwrap();
        let mut seen = Vec::new();
        for _ in 0..120 {
            for peer in dht.get_peers(infohash).await {
                if !seen.contains(&peer.port()) {
                    seen.push(peer.port());
                }
            }
            if seen.contains(&s_port) && seen.contains(&a_port) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        seen
    });
    assert!(
        seen.contains(&a_port) && seen.contains(&s_port),
        "the lookup did not find the publisher and the sharing reader (ports seen: {seen:?}; A {a_port}, S {s_port})"
    );
    assert!(
        !seen.contains(&r_port),
        "the DHT lists reader R as a holder of what it watched (ports seen: {seen:?}, R {r_port})"
    );
    // R still serves the data to a peer that asks: with the publisher and S gone, a new node T that connects to R
    // gets the whole publication from R alone.
    assert_eq!(r_view["state"], "seeding");
    a.kill();
    s.kill();
    let t = NodeProcess::start(&tmp.path().join("t"));
    let r_wire = status(&r)["wire_addr"].as_str().unwrap().to_owned();
    t.json(&["peer", "add", &r_wire]);
    assert!(
        wait_for(Duration::from_secs(60), || t.has_record(&id).then_some(())).is_some(),
        "T never received the record from R"
    );
    let out = tmp.path().join("t-got");
    let got = t.json(&["get", &id, "-o", out.to_str().unwrap(), "--timeout", "120"]);
    assert_eq!(got["finished"], true, "{got}");
    assert!(
        std::fs::read(out.join("protest.webm")).unwrap() == data,
        "T got other bytes from R"
    );
}
