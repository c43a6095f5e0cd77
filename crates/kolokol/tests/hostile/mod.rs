//! Tools for hostile-peer and crash tests: a wire-protocol client that can misbehave, record signing, raw TCP from
//! other loopback addresses, a plain HTTP GET for the node's API, the node's resident memory, and a SQLite check.

#![allow(dead_code, clippy::unwrap_used)]

pub mod bt_seeder;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use kolokol_core::keys::Keypair;
use kolokol_core::record::{SignedRecord, ValidationContext, validate_record};
use kolokol_testkit::process::NodeProcess;
pub use kolokol_testkit::records::{TestRecord, unix_now};
use kolokol_wire::{Exchange, ExchangeAction, Message, Role, WireConfig, WireError, handshake};
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::{TcpSocket, TcpStream};

pub type Reader = kolokol_wire::WireReader<ReadHalf<TcpStream>>;
pub type Writer = kolokol_wire::WireWriter<WriteHalf<TcpStream>>;

/// The work the test nodes demand (`--work-bits 8` in the harness).
pub const WORK_BITS: u8 = 8;

/// A valid record of `key` on the default network with enough work for the test nodes.
pub fn record(key: &Keypair, title: &str) -> SignedRecord {
    TestRecord::new(key, title)
        .sign_with_work(WORK_BITS)
        .unwrap()
}

/// A record whose signature no longer matches: one byte of the signed title changed.
pub fn forged(key: &Keypair, title: &str) -> Vec<u8> {
    let mut bytes = record(key, title).bytes().to_vec();
    let at = bytes
        .windows(title.len())
        .position(|w| w == title.as_bytes())
        .unwrap();
    bytes[at] ^= 0x01;
    bytes
}

/// A TCP connection to `to` from the loopback address `from` (any of 127.0.0.0/8), so that a test can play several
/// hosts.
pub async fn connect_from(from: [u8; 4], to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((from, 0)))?;
    socket.connect(to).await
}

/// Handshake as `key` and finish the catalog exchange (offering nothing), so that the node takes pushes.
pub async fn join(
    to: SocketAddr,
    key: &Keypair,
    cfg: &WireConfig,
) -> Result<(Reader, Writer), WireError> {
    join_from([127, 0, 0, 1], to, key, cfg).await
}

pub async fn join_from(
    from: [u8; 4],
    to: SocketAddr,
    key: &Keypair,
    cfg: &WireConfig,
) -> Result<(Reader, Writer), WireError> {
    let stream = connect_from(from, to).await?;
    let (mut reader, mut writer, _) = handshake(stream, Role::Initiator, key, cfg).await?;
    let mut exchange = Exchange::new();
    for m in exchange.start() {
        writer.send(&m).await?;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !exchange.is_open() {
        let m = tokio::time::timeout_at(deadline, reader.recv())
            .await
            .map_err(|_| WireError::IdleTimeout)??;
        let actions = exchange
            .handle(m)
            .map_err(|e| WireError::Io(std::io::Error::other(e.to_string())))?;
        for action in actions {
            if let ExchangeAction::Send(m) = action {
                writer.send(&m).await?;
            }
        }
    }
    Ok((reader, writer))
}

/// Ping and wait for the pong: everything sent before has been handled by the node.
pub async fn round_trip(reader: &mut Reader, writer: &mut Writer, nonce: u64) {
    writer.send(&Message::Ping { nonce }).await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Message::Pong { nonce: n } = reader.recv().await.unwrap()
                && n == nonce
            {
                return;
            }
        }
    })
    .await
    .expect("no pong");
}

/// Wait (at most `limit`) until the node closes the connection; returns the error that ended the read, or `None`
/// if the connection stayed open.
pub async fn closed_within(reader: &mut Reader, limit: Duration) -> Option<WireError> {
    tokio::time::timeout(limit, async {
        loop {
            if let Err(e) = reader.recv().await {
                return e;
            }
        }
    })
    .await
    .ok()
}

/// Read a raw TCP stream until the other side closes it (EOF or reset), at most `limit`; whether it closed.
pub async fn raw_closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 1024];
    tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// `GET http://{api}{path}` with the right Host header and the node's token; the status code and the body. The
/// API is local and answers small JSON documents with a Content-Length, so a plain HTTP/1.1 exchange is enough.
pub fn http_get(node: &NodeProcess, path: &str) -> std::io::Result<(u16, String)> {
    let api = &node.api;
    let token = node.token();
    let mut stream = std::net::TcpStream::connect(api)?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {api}\r\nX-Kolokol-Token: {token}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_owned()))
}

/// Resident memory of process `pid` in KiB (`VmRSS` of /proc/PID/status).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// Open a node's catalog read-only (the node may be running or dead) and check it: `PRAGMA integrity_check` is ok,
/// and every stored record validates with the one validation function. Returns the number of records.
pub fn check_catalog(data_dir: &Path) -> usize {
    let path = data_dir.join("catalog.sqlite");
    let conn = rusqlite::Connection::open_with_flags(
        &path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok", "integrity_check of {}", path.display());
    let ctx = ValidationContext {
        network: "kolokol".into(),
        now_unix: unix_now() + 60,
    };
    let mut stmt = conn.prepare("SELECT id, bytes FROM records").unwrap();
    let rows: Vec<(Vec<u8>, Vec<u8>)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for (id, bytes) in &rows {
        let record = validate_record(bytes, &ctx)
            .unwrap_or_else(|e| panic!("stored record {} does not validate: {e}", hex::encode(id)));
        assert_eq!(
            record.id().0.as_slice(),
            id.as_slice(),
            "stored under another id"
        );
    }
    rows.len()
}

/// The `.torrent` bytes a node keeps for `infohash_hex` (a publication it published or finished downloading).
pub fn stored_torrent(data_dir: &Path, infohash_hex: &str) -> Option<Vec<u8>> {
    let conn = rusqlite::Connection::open_with_flags(
        data_dir.join("catalog.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    conn.query_row(
        "SELECT torrent FROM torrents WHERE infohash = ?1",
        [hex::decode(infohash_hex).unwrap()],
        |r| r.get::<_, Option<Vec<u8>>>(0),
    )
    .ok()
    .flatten()
}

/// Rows of the torrents table: (infohash hex, state).
pub fn torrent_states(data_dir: &Path) -> Vec<(String, String)> {
    let conn = rusqlite::Connection::open_with_flags(
        data_dir.join("catalog.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut stmt = conn
        .prepare("SELECT infohash, state FROM torrents")
        .unwrap();
    stmt.query_map([], |r| {
        Ok((hex::encode(r.get::<_, Vec<u8>>(0)?), r.get(1)?))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}
