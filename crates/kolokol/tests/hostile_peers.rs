//! Hostile peers against a real `kolokol up` process on loopback: frames over the size cap, slow-loris handshakes, a
//! connection flood, forged records and records of a blocked author, and a BitTorrent seeder that serves wrong piece
//! data. In every case the node keeps answering its API and honest peers, its memory stays bounded, nothing bad is
//! stored as good, and the offender is disconnected and refused for a while.
//!
//! The attackers play other hosts by connecting from other loopback addresses (127.0.0.2 and up), as hostile hosts
//! on a real network would; honest nodes connect from 127.0.0.1.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
mod hostile;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use hostile::*;
use kolokol_core::keys::Keypair;
use kolokol_wire::{Message, WireConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn wire_addr(node: &NodeProcess) -> SocketAddr {
    node.json(&["status"])["wire_addr"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Publish a small file on `node`; its record id.
fn publish(node: &NodeProcess, dir: &std::path::Path, name: &str) -> String {
    let f = dir.join(name);
    std::fs::write(&f, format!("content of {name}")).unwrap();
    node.json(&["publish", f.to_str().unwrap(), "--title", name])["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A fresh honest node connects to `wire` and receives the record `id`.
fn honest_peer_syncs(tmp: &std::path::Path, name: &str, wire: SocketAddr, id: &str) -> NodeProcess {
    let honest = NodeProcess::start(&tmp.join(name));
    honest.json(&["peer", "add", &wire.to_string()]);
    let synced = wait_for(Duration::from_secs(30), || {
        honest.has_record(id).then_some(())
    });
    assert!(
        synced.is_some(),
        "an honest peer did not sync\n{}",
        honest.log()
    );
    honest
}

fn status_answers(node: &NodeProcess) {
    let (code, body) = http_get(node, "/api/v1/status").unwrap();
    assert_eq!(code, 200, "{body}");
}

#[test]
fn frames_over_the_cap_cut_the_connection_and_honest_peers_still_sync() {
    let tmp = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(&tmp.path().join("node"));
    let id = publish(&node, tmp.path(), "kept.txt");
    let wire = wire_addr(&node);
    let rt = runtime();
    rt.block_on(async {
        // A handshake frame that claims 65535 bytes (the cap is 1024): closed before anything is read into memory.
        let mut s = connect_from([127, 0, 0, 2], wire).await.unwrap();
        s.write_all(&[0xff, 0xff]).await.unwrap();
        let _ = s.write_all(&[0u8; 4096]).await;
        assert!(raw_closed_within(&mut s, Duration::from_secs(20)).await);

        // An authenticated peer that announces a 2 MiB message (the node's cap is 1 MiB).
        let key = Keypair::from_secret_bytes([11; 32]);
        let loose = WireConfig {
            max_message_bytes: 16 * 1024 * 1024,
            ..WireConfig::for_network("kolokol")
        };
        let (mut reader, mut writer) = join_from([127, 0, 0, 2], wire, &key, &loose).await.unwrap();
        let _ = writer.send_bytes(&vec![0u8; 2 * 1024 * 1024]).await;
        let closed = closed_within(&mut reader, Duration::from_secs(20)).await;
        assert!(
            closed.is_some(),
            "the node kept a connection that sent 2 MiB"
        );

        // The same peer at once again: the handshake may finish, but the node closes it (the peer is banned).
        let again = join_from(
            [127, 0, 0, 2],
            wire,
            &key,
            &WireConfig::for_network("kolokol"),
        )
        .await;
        assert!(again.is_err(), "an offender was taken back at once");
    });
    status_answers(&node);
    let _honest = honest_peer_syncs(tmp.path(), "honest", wire, &id);
    assert_eq!(check_catalog(&node.data_dir), 1);
}

/// One slow-loris connection from `from`: trickle a Noise handshake one byte every 700 ms (the whole first message
/// would take about 24 s). Returns whether the node closed it within a minute.
async fn loris(from: [u8; 4], to: SocketAddr) -> bool {
    let Ok(stream) = connect_from(from, to).await else {
        return true; // refused outright: as good as closed
    };
    let (mut rd, mut wr) = stream.into_split();
    let trickle = async move {
        let bytes = [0x00u8, 0x20].into_iter().chain([0u8; 32]);
        for b in bytes {
            if wr.write_all(&[b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(700)).await;
        }
        std::future::pending::<()>().await;
    };
    let closed = async move {
        let mut buf = [0u8; 256];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::select! {
        _ = closed => true,
        _ = trickle => false,
        _ = tokio::time::sleep(Duration::from_secs(60)) => false,
    }
}

#[test]
fn slow_loris_handshakes_time_out_and_do_not_lock_out_honest_peers() {
    let tmp = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(&tmp.path().join("node"));
    let id = publish(&node, tmp.path(), "news.txt");
    let wire = wire_addr(&node);
    let rt = runtime();
    // More trickling connections than the node has handshake slots in all.
    let lorises: Vec<_> = (0..24)
        .map(|_| rt.spawn(loris([127, 0, 0, 2], wire)))
        .collect();
    std::thread::sleep(Duration::from_secs(2));

    // While they trickle: the API answers and an honest node (another address) connects and syncs.
    status_answers(&node);
    let _honest = honest_peer_syncs(tmp.path(), "honest", wire, &id);

    // Every trickling connection is closed by the node (handshake time-out or refused at once).
    let closed: Vec<bool> = rt.block_on(async {
        let mut out = Vec::new();
        for l in lorises {
            out.push(l.await.unwrap());
        }
        out
    });
    assert!(
        closed.iter().all(|c| *c),
        "the node left slow-loris connections open: {closed:?}"
    );
    status_answers(&node);
}

#[test]
fn a_connection_flood_leaves_the_node_responsive_and_its_memory_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(&tmp.path().join("node"));
    let id = publish(&node, tmp.path(), "flooded.txt");
    let wire = wire_addr(&node);
    let pid = node.child.id();
    let rt = runtime();
    let idle_kib = rss_kib(pid);

    // 600 connections from two hosts: half held open silently, half sending garbage and hanging up.
    let held = rt.block_on(async {
        let mut held = Vec::new();
        for round in 0..6 {
            let mut batch = Vec::new();
            for i in 0..100 {
                let from = [127, 0, 0, 3 + (round % 2) as u8];
                batch.push(tokio::spawn(async move {
                    let mut s = connect_from(from, wire).await.ok()?;
                    if i % 2 == 0 {
                        let _ = s.write_all(&[0x00, 0x20, 1, 2, 3, 4, 5, 6, 7, 8]).await;
                        None
                    } else {
                        Some(s)
                    }
                }));
            }
            for b in batch {
                if let Some(s) = b.await.unwrap() {
                    held.push(s);
                }
            }
        }
        held
    });
    assert!(!held.is_empty(), "the flood did not connect at all");

    // While the flood holds its sockets: the API answers, an honest node gets through, memory stays bounded.
    status_answers(&node);
    let _honest = honest_peer_syncs(tmp.path(), "honest", wire, &id);
    let flooded_kib = rss_kib(pid);
    eprintln!("node RSS: idle {idle_kib} KiB, under the flood {flooded_kib} KiB");
    assert!(
        flooded_kib < 512 * 1024,
        "node RSS {flooded_kib} KiB under a connection flood"
    );

    drop(held);
    // After the flood another honest node connects as usual.
    let _later = honest_peer_syncs(tmp.path(), "later", wire, &id);
    assert!(rss_kib(pid) < 512 * 1024);
}

#[test]
fn forged_and_blocked_records_are_refused_and_the_offender_is_cut_off_and_banned() {
    let tmp = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(&tmp.path().join("node"));
    let wire = wire_addr(&node);
    let blocked = Keypair::from_secret_bytes([21; 32]);
    let honest_author = Keypair::from_secret_bytes([22; 32]);
    node.json(&["block", &blocked.public().to_string()]);
    let cfg = WireConfig::for_network("kolokol");
    let offender = Keypair::from_secret_bytes([23; 32]);
    let rt = runtime();

    let honest_push = record(&honest_author, "honest push");
    rt.block_on(async {
        let (mut reader, mut writer) = join_from([127, 0, 0, 2], wire, &offender, &cfg)
            .await
            .unwrap();
        writer
            .send(&Message::Records {
                records: vec![
                    forged(&honest_author, "forged title"),
                    record(&blocked, "from a blocked author").bytes().to_vec(),
                    honest_push.bytes().to_vec(),
                ],
            })
            .await
            .unwrap();
        round_trip(&mut reader, &mut writer, 1).await;
    });
    let status = node.json(&["status"]);
    assert_eq!(status["refused"]["invalid"], 1, "{status}");
    assert_eq!(status["refused"]["blocked"], 1, "{status}");
    let titles: Vec<String> = node
        .json(&["list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["title"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(titles, vec!["honest push".to_owned()]);

    rt.block_on(async {
        let (mut reader, mut writer) = join_from([127, 0, 0, 2], wire, &offender, &cfg)
            .await
            .unwrap();
        let junk = (0..20)
            .map(|i| forged(&honest_author, &format!("forgery {i}")))
            .collect();
        writer
            .send(&Message::Records { records: junk })
            .await
            .unwrap();
        let closed = closed_within(&mut reader, Duration::from_secs(20)).await;
        assert!(closed.is_some(), "a peer sending forgeries was not cut off");
        // Back at once with the same key: refused.
        let again = join_from([127, 0, 0, 2], wire, &offender, &cfg).await;
        assert!(again.is_err(), "a banned peer was taken back at once");
        // Another peer from the same host is not punished for it.
        let other = Keypair::from_secret_bytes([24; 32]);
        let (mut reader, mut writer) = join_from([127, 0, 0, 2], wire, &other, &cfg).await.unwrap();
        round_trip(&mut reader, &mut writer, 2).await;
    });
    let status = node.json(&["status"]);
    assert!(
        status["refused"]["invalid"].as_u64().unwrap() >= 17,
        "{status}"
    );
    assert_eq!(node.json(&["list"]).as_array().unwrap().len(), 1);
    assert_eq!(
        check_catalog(&node.data_dir),
        1,
        "only the honest record is stored"
    );

    // An offender the node dialled itself is cut off too and not dialled again at once.
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let hostile_addr = listener.local_addr().unwrap();
    let count = accepted.clone();
    let forger = Keypair::from_secret_bytes([25; 32]);
    rt.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            count.fetch_add(1, Ordering::SeqCst);
            let forger = forger.clone();
            let author = Keypair::from_secret_bytes([22; 32]);
            tokio::spawn(async move {
                let cfg = WireConfig::for_network("kolokol");
                let Ok((_r, mut w, _)) =
                    kolokol_wire::handshake(stream, kolokol_wire::Role::Responder, &forger, &cfg)
                        .await
                else {
                    return;
                };
                let junk = (0..20)
                    .map(|i| forged(&author, &format!("dialled forgery {i}")))
                    .collect();
                let _ = w.send(&Message::Records { records: junk }).await;
                tokio::time::sleep(Duration::from_secs(30)).await;
            });
        }
    });
    // The node drops the forger while `peer add` runs or right after; either way it is not connected afterwards.
    let _ = node.cli(&["peer", "add", &hostile_addr.to_string()]);
    let cut = wait_for(Duration::from_secs(20), || {
        let peers = node.json(&["peers"]);
        let forger_connected = peers
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["addr"] == hostile_addr.to_string().as_str() && p["connected"] == true);
        (!forger_connected).then_some(())
    });
    assert!(cut.is_some(), "the dialled forger stayed connected");
    // The overlay waits at least 10 s before dialling a failed address again, and the ban refuses it for a minute:
    // no new connection in the next 5 s.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "the node dialled an offender again at once"
    );
    assert_eq!(check_catalog(&node.data_dir), 1);
    status_answers(&node);
}

#[test]
fn wrong_piece_data_from_a_hostile_seeder_is_never_kept_and_the_seeder_is_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let publisher = NodeProcess::start(&tmp.path().join("publisher"));
    let file = tmp.path().join("film.bin");
    random_file(&file, 8 * 1024 * 1024, 77);
    let published = publisher.json(&["publish", file.to_str().unwrap(), "--title", "Film"]);
    let infohash = published["infohash"].as_str().unwrap().to_owned();
    let torrent =
        stored_torrent(&publisher.data_dir, &infohash).expect("publisher keeps its torrent");
    let info = bt_seeder::info_dict(&torrent);
    let mut ih = [0u8; 20];
    hex::decode_to_slice(&infohash, &mut ih).unwrap();
    let hostile = bt_seeder::start(ih, info);

    // The downloader first knows only the hostile seeder.
    let downloader = NodeProcess::start(&tmp.path().join("downloader"));
    let magnet = format!("magnet:?xt=urn:btih:{infohash}&x.pe={}", hostile.addr);
    let started = downloader.cli(&["get", &magnet, "--timeout", "0"]);
    assert!(
        String::from_utf8_lossy(&started.stderr).contains("not complete"),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
    // The engine checks each piece against its SHA-1 before counting it, and disconnects the peer that sent it.
    let dropped = wait_for(Duration::from_secs(60), || {
        downloader
            .log()
            .contains("did not validate. disconnecting peer")
            .then_some(())
    });
    assert!(
        dropped.is_some(),
        "the downloader did not drop a peer serving wrong data (metadata served {}, bad blocks {})\n{}",
        hostile.log.metadata_served.load(Ordering::Relaxed),
        hostile.log.bad_blocks.load(Ordering::Relaxed),
        downloader.log()
    );
    let (_, transfer) = http_get(&downloader, &format!("/api/v1/transfers/{infohash}")).unwrap();
    let transfer: serde_json::Value = serde_json::from_str(&transfer).unwrap();
    assert_eq!(transfer["finished"], false, "{transfer}");
    assert_eq!(
        transfer["have_bytes"], 0,
        "wrong data counted as had: {transfer}"
    );

    // An honest seeder appears: the download completes with the right bytes.
    downloader.json(&["peer", "add", &wire_addr(&publisher).to_string()]);
    let done = downloader.json(&["get", &magnet, "--timeout", "120"]);
    assert_eq!(done["finished"], true);
    let path = std::path::PathBuf::from(done["path"].as_str().unwrap());
    assert_eq!(
        sha256_file(&path),
        sha256_file(&file),
        "downloaded bytes differ"
    );
    status_answers(&downloader);
}
