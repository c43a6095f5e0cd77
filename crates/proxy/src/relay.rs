//! Copying bytes both ways between the client's connection and the upstream route, with half-close and an idle
//! time-out.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::tunnel::mux::MuxStream;

const BUF: usize = 16 * 1024;

/// Bytes moved by a relay.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Moved {
    pub up: u64,
    pub down: u64,
}

struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let now = self.start.elapsed().as_millis() as u64;
        self.last_ms.store(now, Ordering::Relaxed);
    }

    /// Resolves once nothing moved for `idle`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let last = self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let deadline = last + idle;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// Copies one direction until end of stream, then half-closes the writer. Returns the bytes copied.
async fn copy_half(
    from: &mut (impl tokio::io::AsyncRead + Unpin),
    to: &mut (impl tokio::io::AsyncWrite + Unpin),
    activity: &Activity,
) -> std::io::Result<u64> {
    let mut buf = vec![0; BUF];
    let mut total = 0u64;
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            to.shutdown().await?;
            return Ok(total);
        }
        to.write_all(&buf[..n]).await?;
        activity.touch();
        total += n as u64;
    }
}

/// Relays between two TCP connections until both directions end, an error occurs, or nothing moves for `idle`.
pub async fn tcp_to_tcp(mut client: TcpStream, mut upstream: TcpStream, idle: Duration) -> Moved {
    let activity = Activity::new();
    let mut moved = Moved::default();
    {
        let (mut client_read, mut client_write) = client.split();
        let (mut up_read, mut up_write) = upstream.split();
        let up = copy_half(&mut client_read, &mut up_write, &activity);
        let down = copy_half(&mut up_read, &mut client_write, &activity);
        tokio::select! {
            result = async { tokio::try_join!(up, down) } => {
                if let Ok((up, down)) = result {
                    moved = Moved { up, down };
                }
            }
            _ = activity.idle_for(idle) => {}
        }
    }
    moved
}

/// Relays between a TCP connection and a bridge stream, the same way.
pub async fn tcp_to_stream(mut tcp: TcpStream, stream: &MuxStream, idle: Duration) -> Moved {
    let activity = Activity::new();
    let mut moved = Moved::default();
    {
        let (mut tcp_read, mut tcp_write) = tcp.split();
        let up = async {
            let mut buf = vec![0; BUF];
            let mut total = 0u64;
            loop {
                let n = tcp_read.read(&mut buf).await.map_err(|_| ())?;
                if n == 0 {
                    stream.finish().await.map_err(|_| ())?;
                    return Ok::<u64, ()>(total);
                }
                stream.write(&buf[..n]).await.map_err(|_| ())?;
                activity.touch();
                total += n as u64;
            }
        };
        let down = async {
            let mut total = 0u64;
            loop {
                match stream.read().await {
                    Ok(Some(data)) => {
                        tcp_write.write_all(&data).await.map_err(|_| ())?;
                        activity.touch();
                        total += data.len() as u64;
                    }
                    Ok(None) => {
                        tcp_write.shutdown().await.map_err(|_| ())?;
                        return Ok::<u64, ()>(total);
                    }
                    Err(_) => return Err(()),
                }
            }
        };
        tokio::select! {
            result = async { tokio::try_join!(up, down) } => {
                if let Ok((up, down)) = result {
                    moved = Moved { up, down };
                }
            }
            _ = activity.idle_for(idle) => {}
        }
    }
    moved
}
