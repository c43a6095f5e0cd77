//! What a bridge and its clients read from the tunnel. The first input byte picks the reader:
//! - 0: a record plaintext (`frame::decode_record`): the frames it holds encode to a body that decodes to the same
//!   frames;
//! - 1: the bridge's handshake fed by a client that knows the invitation secret: the input is the 32-byte nonce and
//!   the envelope before masking; the check value and the mask are applied here, so the fuzzer reaches the
//!   envelope and Noise parsing behind them;
//! - 2: the bridge's handshake fed raw bytes (a prober without an invitation), which must never succeed.
#![no_main]

use std::sync::{LazyLock, Mutex};

use kolokol_proxy::InviteSecret;
use kolokol_proxy::tunnel::frame::{Frame, decode_frames, decode_record};
use kolokol_proxy::tunnel::handshake::{ServerKeys, server};
use kolokol_proxy::tunnel::obfs::{Direction, Mask, NONCE_LEN, check_value};
use kolokol_proxy::tunnel::replay::ReplayCache;
use libfuzzer_sys::fuzz_target;
use tokio::io::AsyncWriteExt;
use tokio::runtime::Runtime;

static RUNTIME: LazyLock<Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime")
});

const NOW: u64 = 1_750_000_000;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, bytes)) = data.split_first() else {
        return;
    };
    match kind % 3 {
        0 => {
            if let Ok(frames) = decode_record(bytes) {
                let mut body = Vec::new();
                for frame in &frames {
                    frame.encode_into(&mut body);
                }
                let again: Vec<Frame> = decode_frames(&body).expect("encoded frames decode");
                assert_eq!(again, frames);
            }
        }
        1 => {
            let Some((nonce, envelope)) = bytes.split_first_chunk::<NONCE_LEN>() else {
                return;
            };
            let secret = InviteSecret::from_bytes([7; 32]);
            let mut flight = nonce.to_vec();
            flight.extend_from_slice(&check_value(&secret, nonce));
            let mut masked = envelope.to_vec();
            Mask::new(&secret, nonce, Direction::ClientToBridge).apply(&mut masked);
            flight.extend_from_slice(&masked);
            // Completing would need the Noise message 1 that only the real client can make.
            assert!(
                !run_server(&flight, secret),
                "a forged handshake was accepted"
            );
        }
        _ => {
            assert!(
                !run_server(bytes, InviteSecret::from_bytes([7; 32])),
                "a prober without the invitation got in"
            );
        }
    }
});

/// Runs the bridge's side of the handshake on `flight`; true if it completed.
fn run_server(flight: &[u8], secret: InviteSecret) -> bool {
    RUNTIME.block_on(async {
        let (mut ours, mut theirs) = tokio::io::duplex(flight.len() + 4096);
        theirs.write_all(flight).await.expect("room in the pipe");
        theirs.shutdown().await.expect("in-memory shutdown");
        let replay = Mutex::new(ReplayCache::new(600, 64));
        let keys = ServerKeys {
            private_key: &[9; 32],
            secrets: std::slice::from_ref(&secret),
            replay: &replay,
            now_secs: NOW,
        };
        server(&mut ours, keys).await.is_ok()
    })
}
