//! A hostile BitTorrent seeder: it speaks the peer protocol correctly (BEP 3 handshake, BEP 10 extension handshake,
//! BEP 9 `ut_metadata` with the real metadata, a full bitfield, unchoke) but answers every block request with wrong
//! bytes. It records what happened so that a test can tell whether the downloader dropped it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// What the seeder saw.
#[derive(Default)]
pub struct SeederLog {
    /// Connections accepted (each one a BitTorrent handshake with our infohash).
    pub connections: AtomicU64,
    /// Metadata pieces handed out.
    pub metadata_served: AtomicU64,
    /// Blocks of wrong data sent.
    pub bad_blocks: AtomicU64,
    stop: AtomicBool,
}

pub struct HostileSeeder {
    pub addr: SocketAddr,
    pub log: Arc<SeederLog>,
}

impl Drop for HostileSeeder {
    fn drop(&mut self) {
        self.log.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
    }
}

/// Serve `info` (the bencoded info dictionary, whose SHA-1 is the infohash) on a loopback port.
pub fn start(infohash: [u8; 20], info: Vec<u8>) -> HostileSeeder {
    let pieces = piece_count(&info);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Arc::new(SeederLog::default());
    let info = Arc::new(info);
    let shared = log.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            if shared.stop.load(Ordering::Relaxed) {
                return;
            }
            let Ok(stream) = stream else { continue };
            let (log, info) = (shared.clone(), info.clone());
            std::thread::spawn(move || {
                let _ = serve(stream, infohash, &info, pieces, &log);
            });
        }
    });
    HostileSeeder { addr, log }
}

fn serve(
    mut s: TcpStream,
    infohash: [u8; 20],
    info: &[u8],
    pieces: usize,
    log: &SeederLog,
) -> std::io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut theirs = [0u8; 68];
    s.read_exact(&mut theirs)?;
    if &theirs[1..20] != b"BitTorrent protocol" || theirs[28..48] != infohash {
        return Ok(());
    }
    log.connections.fetch_add(1, Ordering::Relaxed);
    let mut ours = Vec::with_capacity(68);
    ours.push(19);
    ours.extend_from_slice(b"BitTorrent protocol");
    ours.extend_from_slice(&[0, 0, 0, 0, 0, 0x10, 0, 0]); // BEP 10 extensions
    ours.extend_from_slice(&infohash);
    ours.extend_from_slice(b"-HO0001-hostile-peer");
    s.write_all(&ours)?;

    let mut bitfield = vec![0u8; pieces.div_ceil(8)];
    for i in 0..pieces {
        bitfield[i / 8] |= 0x80 >> (i % 8);
    }
    send(&mut s, 5, &bitfield)?;
    let ext = format!("d1:md11:ut_metadatai1ee13:metadata_sizei{}ee", info.len());
    send(&mut s, 20, &[&[0u8][..], ext.as_bytes()].concat())?;
    send(&mut s, 1, &[])?; // unchoke

    let mut their_ut_metadata: Option<u8> = None;
    loop {
        let mut len = [0u8; 4];
        if s.read_exact(&mut len).is_err() {
            return Ok(());
        }
        let len = u32::from_be_bytes(len) as usize;
        if len == 0 {
            continue; // keep-alive
        }
        if len > 1 << 20 {
            return Ok(());
        }
        let mut msg = vec![0u8; len];
        if s.read_exact(&mut msg).is_err() {
            return Ok(());
        }
        match msg[0] {
            6 if msg.len() == 13 => {
                // request: index, begin, length. Answer with the right shape and the wrong bytes.
                let length = u32::from_be_bytes(msg[9..13].try_into().unwrap()) as usize;
                if length > 1 << 17 {
                    return Ok(());
                }
                let mut payload = msg[1..9].to_vec();
                payload.extend(std::iter::repeat_n(0xA5u8, length));
                send(&mut s, 7, &payload)?;
                log.bad_blocks.fetch_add(1, Ordering::Relaxed);
            }
            20 if msg.len() > 1 => {
                let body = &msg[2..];
                if msg[1] == 0 {
                    their_ut_metadata = find_int(body, b"11:ut_metadatai").map(|v| v as u8);
                } else if msg[1] == 1
                    && let (Some(0), Some(piece), Some(id)) = (
                        find_int(body, b"8:msg_typei"),
                        find_int(body, b"5:piecei"),
                        their_ut_metadata,
                    )
                {
                    let start = (piece as usize) * 16384;
                    if start >= info.len() {
                        return Ok(());
                    }
                    let end = (start + 16384).min(info.len());
                    let head = format!(
                        "d8:msg_typei1e5:piecei{piece}e10:total_sizei{}ee",
                        info.len()
                    );
                    let mut payload = vec![id];
                    payload.extend_from_slice(head.as_bytes());
                    payload.extend_from_slice(&info[start..end]);
                    send(&mut s, 20, &payload)?;
                    log.metadata_served.fetch_add(1, Ordering::Relaxed);
                }
            }
            _ => {}
        }
    }
}

fn send(s: &mut TcpStream, id: u8, payload: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(payload.len() + 1).unwrap();
    let mut frame = len.to_be_bytes().to_vec();
    frame.push(id);
    frame.extend_from_slice(payload);
    s.write_all(&frame)
}

/// The integer after `key` in a bencoded dictionary (enough for the small flat messages of BEP 9/10).
fn find_int(body: &[u8], key: &[u8]) -> Option<i64> {
    let at = body.windows(key.len()).position(|w| w == key)? + key.len();
    let end = at + body[at..].iter().position(|&b| b == b'e')?;
    std::str::from_utf8(&body[at..end]).ok()?.parse().ok()
}

/// Number of pieces: the length of the `pieces` string divided by 20.
fn piece_count(info: &[u8]) -> usize {
    let key = b"6:pieces";
    let at = info.windows(key.len()).position(|w| w == key).unwrap() + key.len();
    let colon = at + info[at..].iter().position(|&b| b == b':').unwrap();
    let len: usize = std::str::from_utf8(&info[at..colon])
        .unwrap()
        .parse()
        .unwrap();
    len / 20
}

/// The raw bytes of the `info` dictionary inside a `.torrent` file.
pub fn info_dict(torrent: &[u8]) -> Vec<u8> {
    let key = b"4:info";
    let start = torrent.windows(key.len()).position(|w| w == key).unwrap() + key.len();
    let end = start + bencode_len(&torrent[start..]);
    torrent[start..end].to_vec()
}

/// Length of the bencoded value at the start of `b`.
fn bencode_len(b: &[u8]) -> usize {
    match b[0] {
        b'i' => b.iter().position(|&c| c == b'e').unwrap() + 1,
        b'l' | b'd' => {
            let mut at = 1;
            while b[at] != b'e' {
                at += bencode_len(&b[at..]);
            }
            at + 1
        }
        _ => {
            let colon = b.iter().position(|&c| c == b':').unwrap();
            let len: usize = std::str::from_utf8(&b[..colon]).unwrap().parse().unwrap();
            colon + 1 + len
        }
    }
}
