//! The censor's active prober (rule e): what the filters of China and Russia do to a server they cannot classify,
//! after Ensafi et al. ("Examining How the Great Firewall Discovers Hidden Circumvention Servers", IMC 2015) and
//! Alice et al. ("How China Detects and Blocks Shadowsocks", IMC 2020): connect to it from the censor and send
//! the client's own first flight again (a replay), random bytes, a TLS ClientHello for an unrelated name and an
//! HTTP GET, and see what it says.
//!
//! Each probe is a new TCP connection from the censor namespace; it reads what comes back for a fixed wait and
//! records the bytes and how the connection ended. The records are the test's evidence: a bridge that answers a
//! probe, or answers it differently from an ordinary server, is identified.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::RngCore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::filter::Shared;

/// A real ClientHello (openssl s_client) for `www.example.org`, a name unrelated to every server in the tests.
pub const UNRELATED_HELLO: &[u8] =
    include_bytes!("../../fixtures/clienthello-openssl-www.example.org.bin");
/// Most bytes of an answer the prober keeps.
const MAX_ANSWER: usize = 64 * 1024;

/// What a probe sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    /// The client's first flight, byte for byte.
    Replay,
    /// 256 random bytes.
    Random,
    /// [`UNRELATED_HELLO`].
    TlsHello,
    /// `GET / HTTP/1.1` with the server's address as Host.
    HttpGet,
}

/// How a probe's connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeEnd {
    /// The connection could not be made.
    NotConnected,
    /// The server closed it normally (FIN).
    Closed,
    /// The server reset it.
    Reset,
    /// Still open, the server silent since its last byte, when the wait ended.
    StillOpen,
}

/// One probe and what came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeRecord {
    pub server: SocketAddr,
    pub kind: ProbeKind,
    /// What the server sent (at most 64 KiB).
    pub answer: Vec<u8>,
    pub end: ProbeEnd,
    /// From connecting to the end (close, reset, or the end of the wait).
    pub lasted: Duration,
}

/// Sends the four probes to `server`, one after another, and records each.
pub(crate) async fn probe_server(
    server: SocketAddr,
    first_flight: Vec<u8>,
    wait: Duration,
    shared: Arc<Shared>,
) {
    let mut random = vec![0u8; 256];
    rand::rng().fill_bytes(&mut random);
    let get = format!(
        "GET / HTTP/1.1\r\nHost: {}\r\nUser-Agent: Mozilla/5.0\r\nAccept: */*\r\n\r\n",
        server.ip()
    );
    let probes = [
        (ProbeKind::Replay, first_flight),
        (ProbeKind::Random, random),
        (ProbeKind::TlsHello, UNRELATED_HELLO.to_vec()),
        (ProbeKind::HttpGet, get.into_bytes()),
    ];
    for (kind, payload) in probes {
        let record = probe_once(server, kind, &payload, wait).await;
        shared
            .probes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(record);
    }
}

async fn probe_once(
    server: SocketAddr,
    kind: ProbeKind,
    payload: &[u8],
    wait: Duration,
) -> ProbeRecord {
    let started = Instant::now();
    let mut record = ProbeRecord {
        server,
        kind,
        answer: Vec::new(),
        end: ProbeEnd::NotConnected,
        lasted: Duration::ZERO,
    };
    let Ok(Ok(mut tcp)) = tokio::time::timeout(wait, TcpStream::connect(server)).await else {
        record.lasted = started.elapsed();
        return record;
    };
    if tcp.write_all(payload).await.is_err() {
        record.end = ProbeEnd::Reset;
        record.lasted = started.elapsed();
        return record;
    }
    let deadline = tokio::time::Instant::now() + wait;
    let mut buf = vec![0u8; 16 * 1024];
    record.end = loop {
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Err(_) => break ProbeEnd::StillOpen,
            Ok(Ok(0)) => break ProbeEnd::Closed,
            // A reset, or any other error the server caused: the connection is gone without a FIN.
            Ok(Err(_)) => break ProbeEnd::Reset,
            Ok(Ok(n)) => {
                let room = MAX_ANSWER - record.answer.len();
                record.answer.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    };
    record.lasted = started.elapsed();
    record
}
