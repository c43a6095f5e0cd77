//! The tunnel's stream multiplexer (`tunnel::mux::Mux`) driven by a hostile peer. A real handshake (fixed bridge
//! key and invitation secret) runs over an in-memory pipe, then the peer sends frames in honestly encrypted
//! records, so the input reaches the mux's state machine rather than the decryption. The first input byte picks
//! the mux's role (even: bridge, odd: client); the rest is a script of steps (`kolokol_fuzz::chunks`), each a
//! kind byte and its argument:
//! - 0: the peer sends one record of raw frames, possibly malformed: the argument after its first byte, repeated
//!   that byte + 1 times (so that hundreds of pings or data frames take a few input bytes), cut at the record size;
//! - 1: the peer sends frames made from 3-byte groups (type, stream id 0..7, size or value), in as many records as
//!   they need, so that live stream ids, large data and window overflows are easy to reach;
//! - 2: our side opens a stream (client) or takes the next incoming stream and accepts, refuses, drops or keeps it
//!   unanswered (bridge);
//! - 3: our side reads, writes, finishes, waits on, accepts or drops one of its streams;
//! - 4: time passes (up to twice the read timeout); 5: our side pings; 6: our side closes the tunnel;
//! - 7: the peer closes its half; 8: the peer stops reading what the mux sends (the pipe and the write queue
//!   fill up); 9: it reads again.
//!
//! Nothing touches the network: the bridge role's incoming streams are answered in memory. The runtime's clock is
//! paused, so waits cost no real time and a wait that never ends shows up as an expired timeout.
//!
//! Asserted, from the module's invariants: never more than `max_streams` open streams; a read returns at most
//! `WINDOW` bytes; the reader keeps reading while the tunnel is up, even when the peer reads nothing (the peer's
//! writes never stall); the mux never sends a stream more data than the peer granted (`WINDOW` per open plus its
//! `Window` increments), nor a frame its role may not send; every record it writes decrypts and decodes. Once the
//! peer's half is closed the tunnel ends and holds no stream, even if the peer still reads nothing; then, still
//! without the peer reading, every stream's reads, writes and waits return, pings and the incoming queue end; and
//! every task of the mux finishes.
#![no_main]

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use kolokol_fuzz::chunks;
use kolokol_proxy::tunnel::frame::{Frame, MAX_BODY, MAX_DATA, RefuseReason, decode_frames};
use kolokol_proxy::tunnel::handshake::{self, Established, ServerKeys};
use kolokol_proxy::tunnel::mux::{Incoming, Mux, MuxConfig, MuxStream, Role, WINDOW};
use kolokol_proxy::tunnel::record::{RecordError, RecordReader, RecordWriter};
use kolokol_proxy::tunnel::replay::ReplayCache;
use kolokol_proxy::{Host, Invitation, InviteSecret};
use libfuzzer_sys::fuzz_target;
use snow::resolvers::{CryptoResolver, DefaultResolver};
use tokio::io::{DuplexStream, ReadHalf, WriteHalf};
use tokio::runtime::Runtime;
use tokio::sync::watch;
use tokio::time::timeout;

static RUNTIME: LazyLock<Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a tokio runtime")
});

const NOW: u64 = 1_750_000_000;
const BRIDGE_PRIVATE: [u8; 32] = [9; 32];
const MAX_STREAMS: usize = 4;
const READ_TIMEOUT: Duration = Duration::from_secs(1);
/// How long (virtual time) one local operation may wait; the clock only moves when every task is idle.
const STEP: Duration = Duration::from_millis(10);
/// Small, so that a peer that stops reading fills it (and then the mux's write queue) within a few steps.
const PIPE: usize = 16 * 1024;
const MAX_STEPS: usize = 64;
const MAX_COMPACT_FRAMES: usize = 64;
/// Record body and stream data bytes one input may encrypt, so that each input stays cheap.
const BUDGET: usize = 4 << 20;
const MAX_WRITE: usize = (255 << 10) + 255;
const KEPT_STREAMS: usize = 8;
const KEPT_PINGS: usize = 8;

static ZEROS: [u8; MAX_WRITE] = [0; MAX_WRITE];

static INVITATION: LazyLock<Invitation> = LazyLock::new(|| {
    let mut dh = DefaultResolver
        .resolve_dh(&snow::params::DHChoice::Curve25519)
        .expect("X25519 is built into snow");
    dh.set(&BRIDGE_PRIVATE);
    Invitation {
        host: Host::parse("bridge.example").expect("a valid host"),
        port: 443,
        bridge_key: dh.pubkey().try_into().expect("a 32-byte public key"),
        secret: InviteSecret::from_bytes([7; 32]),
    }
});

fuzz_target!(|data: &[u8]| {
    let Some((&first, script)) = data.split_first() else {
        return;
    };
    let role = if first % 2 == 0 {
        Role::Bridge
    } else {
        Role::Client
    };
    RUNTIME.block_on(async {
        // Virtual time: the longest script (every step a long wait) takes about 130 s.
        timeout(Duration::from_secs(600), run(role, script))
            .await
            .expect("one exchange ends in bounded time");
    });
});

/// What the peer granted and what the mux sent, per stream id, over the whole tunnel.
#[derive(Default)]
struct Ledger {
    granted: HashMap<u32, u64>,
    sent: HashMap<u32, u64>,
    last_ping: u64,
}

impl Ledger {
    fn grant(ledger: &Mutex<Ledger>, id: u32, bytes: u64) {
        let mut ledger = ledger.lock().expect("ledger lock");
        let granted = ledger.granted.entry(id).or_default();
        *granted = granted.saturating_add(bytes);
    }
}

/// The fuzzer's end of the tunnel.
struct Peer {
    writer: RecordWriter<WriteHalf<DuplexStream>>,
    role: Role,
    ledger: Arc<Mutex<Ledger>>,
    closed: bool,
}

impl Peer {
    /// Sends one record; what it grants (opens, window increments) is booked before the mux can use it.
    async fn send_body(&mut self, body: &[u8], mux: &Mux, budget: &mut usize) {
        let body = &body[..body.len().min(MAX_BODY)];
        if self.closed || *budget < body.len() {
            return;
        }
        *budget -= body.len();
        // A body that does not decode closes the tunnel before any of its frames is handled.
        for frame in decode_frames(body).unwrap_or_default() {
            match frame {
                Frame::Open { id, .. } if self.role == Role::Bridge => {
                    Ledger::grant(&self.ledger, id, WINDOW);
                }
                Frame::Window { id, increment } => {
                    Ledger::grant(&self.ledger, id, u64::from(increment));
                }
                _ => {}
            }
        }
        match timeout(STEP, self.writer.write_body(body)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => self.closed = true,
            Err(_) => {
                assert!(
                    mux.is_closed(),
                    "the mux stopped reading from a tunnel that is up"
                );
                self.closed = true;
            }
        }
    }

    /// Sends frames, as many per record as fit.
    async fn send_frames(&mut self, frames: &[Frame], mux: &Mux, budget: &mut usize) {
        let mut body = Vec::new();
        for frame in frames {
            if !body.is_empty() && body.len() + frame.encoded_len() > MAX_BODY {
                self.send_body(&body, mux, budget).await;
                body.clear();
            }
            frame.encode_into(&mut body);
        }
        if !body.is_empty() {
            self.send_body(&body, mux, budget).await;
        }
    }

    async fn close(&mut self) {
        if !self.closed {
            let _ = timeout(STEP, self.writer.shutdown()).await;
            self.closed = true;
        }
    }
}

async fn run(role: Role, script: &[u8]) {
    let (client_side, bridge_side) = connect().await;
    let ((mux_io, mux_keys), (peer_io, peer_keys)) = match role {
        Role::Bridge => (bridge_side, client_side),
        Role::Client => (client_side, bridge_side),
    };
    let (mux_read, mux_write) = tokio::io::split(mux_io);
    let config = MuxConfig {
        max_streams: MAX_STREAMS,
        read_timeout: READ_TIMEOUT,
    };
    let (mux, mut incoming) = Mux::start(mux_read, mux_write, mux_keys, role, config);

    let (peer_read, peer_write) = tokio::io::split(peer_io);
    let noise = Arc::new(peer_keys.noise);
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let reader = RecordReader::new(peer_read, noise.clone(), peer_keys.recv_mask);
    let (reading, reading_rx) = watch::channel(true);
    let drain = tokio::spawn(drain(reader, role, ledger.clone(), reading_rx));
    let mut peer = Peer {
        writer: RecordWriter::new(peer_write, noise, peer_keys.send_mask),
        role,
        ledger: ledger.clone(),
        closed: false,
    };

    let mut budget = BUDGET;
    let mut streams: Vec<MuxStream> = Vec::new();
    let mut pings = Vec::new();
    for step in chunks(script, MAX_STEPS) {
        let Some((&op, arg)) = step.split_first() else {
            continue;
        };
        let byte = |i: usize| arg.get(i).copied().unwrap_or(0);
        match op % 10 {
            0 => {
                if let Some((&repeat, unit)) = arg.split_first() {
                    let times = (usize::from(repeat) + 1).min(MAX_BODY / unit.len().max(1) + 1);
                    peer.send_body(&unit.repeat(times), &mux, &mut budget).await;
                }
            }
            1 => {
                let last_ping = ledger.lock().expect("ledger lock").last_ping;
                let frames = compact_frames(arg, last_ping);
                peer.send_frames(&frames, &mux, &mut budget).await;
            }
            2 => match role {
                Role::Client => {
                    let port = u16::from_be_bytes([byte(0), byte(1)]);
                    if let Ok(Ok(stream)) = timeout(STEP, mux.open("example.org", port)).await {
                        Ledger::grant(&ledger, stream.id(), WINDOW);
                        keep(&mut streams, stream);
                    }
                }
                Role::Bridge => {
                    if let Ok(Incoming { stream, .. }) = incoming.try_recv() {
                        match byte(0) % 4 {
                            0 => {
                                stream.accept();
                                keep(&mut streams, stream);
                            }
                            1 => stream.refuse(refuse_reason(byte(1))),
                            2 => drop(stream),
                            _ => keep(&mut streams, stream),
                        }
                    }
                }
            },
            3 if !streams.is_empty() => {
                let index = usize::from(byte(0)) % streams.len();
                let stream = &streams[index];
                match byte(1) % 6 {
                    0 => read_some(stream).await,
                    1 => {
                        let len = (usize::from(byte(2)) << 10) + usize::from(byte(3));
                        if len <= budget {
                            budget -= len;
                            let _ = timeout(STEP, stream.write(&ZEROS[..len])).await;
                        }
                    }
                    2 => {
                        let _ = timeout(STEP, stream.finish()).await;
                    }
                    3 => {
                        let _ = timeout(STEP, stream.wait_opened()).await;
                    }
                    4 => drop(streams.remove(index)),
                    _ if role == Role::Bridge => stream.accept(),
                    _ => read_some(stream).await,
                }
            }
            3 => {}
            4 => tokio::time::sleep(Duration::from_millis(u64::from(byte(0)) * 8)).await,
            5 => {
                if pings.len() < KEPT_PINGS {
                    let mux = mux.clone();
                    pings.push(tokio::spawn(async move {
                        let _ = mux.ping(Duration::from_millis(200)).await;
                    }));
                }
            }
            6 => mux.close(),
            7 => peer.close().await,
            8 => {
                reading.send_replace(false);
            }
            _ => {
                reading.send_replace(true);
            }
        }
        settle().await;
        assert!(
            mux.stream_count() <= MAX_STREAMS,
            "{} streams open, the limit is {MAX_STREAMS}",
            mux.stream_count()
        );
    }

    // The peer hangs up: the tunnel must end and everything waiting on it must wake.
    peer.close().await;
    timeout(2 * READ_TIMEOUT, mux.closed())
        .await
        .expect("the tunnel ends once the peer has closed its half");
    settle().await;
    assert_eq!(mux.stream_count(), 0, "streams left in an ended tunnel");
    // Also while the peer still reads nothing (the pipe and the write queue may be full): whatever waited for room in
    // the write queue (a stream's write, finish or window update, an open, a ping) returns once the tunnel ended.
    for stream in &streams {
        check_ended(stream).await;
    }
    let mut queue_ended = false;
    for _ in 0..=64 {
        match timeout(STEP, incoming.recv())
            .await
            .expect("the incoming queue ends with the tunnel")
        {
            Some(Incoming { stream, .. }) => check_ended(&stream).await,
            None => {
                queue_ended = true;
                break;
            }
        }
    }
    assert!(queue_ended, "the incoming queue outgrew its bound");
    for ping in pings {
        timeout(Duration::from_secs(1), ping)
            .await
            .expect("a ping returns once the tunnel ended")
            .expect("the ping task");
    }
    // The peer's reader (this target's own task) resumes so that it can see the end of the pipe.
    reading.send_replace(true);
    drop(peer);
    timeout(STEP, drain)
        .await
        .expect("the mux's writer ends with the tunnel")
        .expect("the drain task");
    drop(streams);
    drop(incoming);
    drop(mux);
    settle().await;
    assert_eq!(
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks(),
        0,
        "a task of the mux outlived its tunnel"
    );
}

/// Runs the real handshake over an in-memory pipe: (client's end, bridge's end).
async fn connect() -> ((DuplexStream, Established), (DuplexStream, Established)) {
    let (mut client_io, mut bridge_io) = tokio::io::duplex(PIPE);
    let replay = Mutex::new(ReplayCache::new(600, 64));
    let secrets = [INVITATION.secret.clone()];
    let keys = ServerKeys {
        private_key: &BRIDGE_PRIVATE,
        secrets: &secrets,
        replay: &replay,
        now_secs: NOW,
    };
    let (client, server) = tokio::join!(
        handshake::client(&mut client_io, &INVITATION, NOW),
        handshake::server(&mut bridge_io, keys)
    );
    let client = client.expect("the client's handshake completes");
    let (server, _) = server.expect("the bridge's handshake completes");
    ((client_io, client), (bridge_io, server))
}

/// Reads everything the mux sends (except while the peer is told to stop reading), checking it against what its
/// role and the peer's grants allow.
async fn drain(
    mut reader: RecordReader<ReadHalf<DuplexStream>>,
    role: Role,
    ledger: Arc<Mutex<Ledger>>,
    mut reading: watch::Receiver<bool>,
) {
    loop {
        // The sender lives until the end of `run`, which waits for this task first.
        let _ = reading.wait_for(|&reading| reading).await;
        let frames = match reader.read_frames().await {
            Ok(Some(frames)) => frames,
            Ok(None) => return,
            // The writer gives up a record half-written when the tunnel ends while the peer was not reading.
            Err(RecordError::Io(error)) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
                return;
            }
            Err(error) => panic!("the mux wrote a record that does not read back: {error}"),
        };
        let mut ledger = ledger.lock().expect("ledger lock");
        for frame in frames {
            match frame {
                Frame::Open { .. } => assert_eq!(role, Role::Client, "a bridge opened a stream"),
                Frame::Opened { .. } | Frame::Refused { .. } => {
                    assert_eq!(role, Role::Bridge, "a client answered an open");
                }
                Frame::Data { id, data } => {
                    let granted = ledger.granted.get(&id).copied().unwrap_or(0);
                    let sent = ledger.sent.entry(id).or_default();
                    *sent += data.len() as u64;
                    assert!(
                        *sent <= granted,
                        "stream {id}: {sent} bytes sent, {granted} granted"
                    );
                }
                Frame::Ping { nonce } => ledger.last_ping = nonce,
                _ => {}
            }
        }
    }
}

/// Frames from 3-byte groups: type, stream id (0..7) and a size or value.
fn compact_frames(arg: &[u8], last_ping: u64) -> Vec<Frame> {
    arg.chunks_exact(3)
        .take(MAX_COMPACT_FRAMES)
        .map(|group| {
            let (kind, id, value) = (group[0], u32::from(group[1] % 8), group[2]);
            match kind % 9 {
                0 => Frame::Open {
                    id,
                    host: "example.org".to_owned(),
                    port: 443,
                },
                1 => Frame::Opened { id },
                2 => Frame::Refused {
                    id,
                    reason: refuse_reason(value),
                },
                3 => Frame::Data {
                    id,
                    data: vec![value; (usize::from(value) * 64).min(MAX_DATA)].into(),
                },
                4 => Frame::Window {
                    id,
                    increment: if value == u8::MAX {
                        u32::MAX
                    } else {
                        u32::from(value) << 12
                    },
                },
                5 => Frame::Fin { id },
                6 => Frame::Reset { id },
                7 => Frame::Ping {
                    nonce: u64::from(value),
                },
                _ => Frame::Pong {
                    nonce: if value == 0 {
                        last_ping
                    } else {
                        u64::from(value)
                    },
                },
            }
        })
        .collect()
}

fn refuse_reason(value: u8) -> RefuseReason {
    match value % 6 {
        0 => RefuseReason::Dns,
        1 => RefuseReason::Refused,
        2 => RefuseReason::Unreachable,
        3 => RefuseReason::Forbidden,
        4 => RefuseReason::Busy,
        _ => RefuseReason::Other,
    }
}

/// Holds a stream; past a few, the oldest is dropped (which resets it).
fn keep(streams: &mut Vec<MuxStream>, stream: MuxStream) {
    if streams.len() >= KEPT_STREAMS {
        streams.remove(0);
    }
    streams.push(stream);
}

async fn read_some(stream: &MuxStream) {
    if let Ok(Ok(Some(data))) = timeout(STEP, stream.read()).await {
        assert!(
            data.len() as u64 <= WINDOW,
            "one read returned {} bytes, more than the window",
            data.len()
        );
    }
}

/// On an ended tunnel every operation of a stream returns at once, and reads end after what was buffered.
async fn check_ended(stream: &MuxStream) {
    let wrote = timeout(STEP, stream.write(b"x"))
        .await
        .expect("a write on an ended tunnel returns");
    assert!(wrote.is_err(), "a write on an ended tunnel succeeded");
    let _ = timeout(STEP, stream.finish())
        .await
        .expect("finishing a stream of an ended tunnel returns");
    let _ = timeout(STEP, stream.wait_opened())
        .await
        .expect("waiting for an open on an ended tunnel returns");
    for _ in 0..3 {
        match timeout(STEP, stream.read())
            .await
            .expect("a read on an ended tunnel returns")
        {
            Ok(Some(data)) => assert!(data.len() as u64 <= WINDOW),
            Ok(None) | Err(_) => return,
        }
    }
    panic!("a stream of an ended tunnel keeps returning data");
}

/// Lets every task run until all wait (the paused clock only advances then).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}
