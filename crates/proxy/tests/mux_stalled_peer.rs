//! A tunnel's far end that stops reading (it keeps the connection open and reads nothing) must not hold our side
//! once the tunnel has ended: every call waiting for room in the write queue returns, and the writer task gives up
//! its blocked write. Found by the `bridge_mux` fuzz target (its input is committed in the seed corpus too).

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kolokol_proxy::tunnel::handshake::{self, ServerKeys};
use kolokol_proxy::tunnel::mux::{Mux, MuxConfig, Role};
use kolokol_proxy::tunnel::replay::ReplayCache;
use kolokol_proxy::{BridgeKey, Host, Invitation, InviteSecret};
use tokio::time::timeout;

const NOW: u64 = 1_750_000_000;
/// Small, so that the far end's not reading fills it at once.
const PIPE: usize = 16 * 1024;
/// More pings than the mux's write queue holds, so that some wait for room.
const PINGS: usize = 600;
const STEP: Duration = Duration::from_secs(5);

#[tokio::test]
async fn a_peer_that_stops_reading_cannot_hold_callers_or_the_writer_after_the_tunnel_ends() {
    let key = BridgeKey::generate().unwrap();
    let private: [u8; 32] = key.to_bytes()[..32].try_into().unwrap();
    let invitation = Invitation {
        host: Host::parse("bridge.example").unwrap(),
        port: 443,
        bridge_key: key.public(),
        secret: InviteSecret::from_bytes([7; 32]),
    };
    let (mut client_io, mut bridge_io) = tokio::io::duplex(PIPE);
    let replay = Mutex::new(ReplayCache::new(600, 64));
    let secrets = [invitation.secret.clone()];
    let keys = ServerKeys {
        private_key: &private,
        secrets: &secrets,
        replay: &replay,
        now_secs: NOW,
    };
    let (client, server) = tokio::join!(
        handshake::client(&mut client_io, &invitation, NOW),
        handshake::server(&mut bridge_io, keys)
    );
    let client = client.unwrap();
    server.unwrap();

    // Our side runs the mux; the bridge's end stays open and is never read again.
    let (read, write) = tokio::io::split(client_io);
    let config = MuxConfig {
        max_streams: 4,
        read_timeout: Duration::from_secs(600),
    };
    let (mux, _incoming) = Mux::start(read, write, client, Role::Client, config);
    let mux = Arc::new(mux);
    let stream = mux.open("example.org", 80).await.unwrap();
    // More than the pipe holds: the writer blocks on it, and what is queued after stays queued.
    stream.write(&[0; 64 * 1024]).await.unwrap();
    let pings: Vec<_> = (0..PINGS)
        .map(|_| {
            let mux = mux.clone();
            tokio::spawn(async move { mux.ping(Duration::from_secs(600)).await })
        })
        .collect();
    // Let the pings fill the pipe and the write queue (a ping beyond the few the mux remembers returns at once).
    tokio::time::sleep(Duration::from_millis(200)).await;

    mux.close();
    let _ = timeout(STEP, stream.finish())
        .await
        .expect("finishing a stream of an ended tunnel returns");
    for ping in pings {
        timeout(STEP, ping)
            .await
            .expect("a ping waiting for room returns once the tunnel ended")
            .unwrap()
            .unwrap_err();
    }
    drop(stream);
    drop(mux);
    // The writer task, blocked on the far end's full pipe, has ended too.
    let metrics = tokio::runtime::Handle::current().metrics();
    timeout(STEP, async {
        while metrics.num_alive_tasks() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("every task of the mux ends with its tunnel");
    drop(bridge_io);
}
