//! Benchmark: throughput and added latency of the bridge route against the direct route, all on loopback.
//!
//! `cargo run --release -p kolokol-proxy --bin kolokol-proxy-bench [-- --size-mib 100]`
//!
//! Measures, each through the local SOCKS5 proxy with a rule forcing the route (so both include the proxy):
//! - a download of `--size-mib` MiB, direct and through a bridge;
//! - the round trip of one byte on an open connection (median of `--pings`);
//! - a new connection's time to first byte (median of `--connects`).
//!
//! Also a plain download without any proxy, for reference.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use kolokol_proxy::{
    BridgeConfig, BridgeKey, BridgeServer, Host, ProxyConfig, ProxyHandle, ProxyServer, Rule, Rules,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 100)]
    size_mib: u64,
    #[arg(long, default_value_t = 200)]
    pings: usize,
    #[arg(long, default_value_t = 30)]
    connects: usize,
}

/// A loopback server: a request line `D <bytes>\n` is answered with that many bytes; `P\n` echoes every byte.
async fn server() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                let mut line = Vec::new();
                let mut byte = [0u8; 1];
                while !line.ends_with(b"\n") {
                    if tcp.read(&mut byte).await.unwrap_or(0) == 0 || line.len() > 64 {
                        return;
                    }
                    line.push(byte[0]);
                }
                let text = String::from_utf8_lossy(&line).trim().to_owned();
                if let Some(size) = text.strip_prefix("D ").and_then(|s| s.parse::<u64>().ok()) {
                    let chunk = vec![0x5a; 64 * 1024];
                    let mut left = size;
                    while left > 0 {
                        let n = left.min(chunk.len() as u64) as usize;
                        if tcp.write_all(&chunk[..n]).await.is_err() {
                            return;
                        }
                        left -= n as u64;
                    }
                    let _ = tcp.shutdown().await;
                } else if text == "P" {
                    let (mut r, mut w) = tcp.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                }
            });
        }
    });
    Ok(addr)
}

async fn socks(proxy: SocketAddr, target: SocketAddr) -> anyhow::Result<TcpStream> {
    let mut tcp = TcpStream::connect(proxy).await?;
    tcp.set_nodelay(true)?;
    tcp.write_all(&[5, 1, 0]).await?;
    let mut choice = [0u8; 2];
    tcp.read_exact(&mut choice).await?;
    let ip = match target.ip() {
        std::net::IpAddr::V4(v4) => v4.octets(),
        std::net::IpAddr::V6(_) => bail!("IPv4 only"),
    };
    let mut request = vec![5, 1, 0, 1];
    request.extend_from_slice(&ip);
    request.extend_from_slice(&target.port().to_be_bytes());
    tcp.write_all(&request).await?;
    let mut reply = [0u8; 10];
    tcp.read_exact(&mut reply).await?;
    if reply[1] != 0 {
        bail!("SOCKS reply {}", reply[1]);
    }
    Ok(tcp)
}

async fn open(proxy: Option<SocketAddr>, target: SocketAddr) -> anyhow::Result<TcpStream> {
    match proxy {
        Some(proxy) => socks(proxy, target).await,
        None => {
            let tcp = TcpStream::connect(target).await?;
            tcp.set_nodelay(true)?;
            Ok(tcp)
        }
    }
}

async fn download(
    proxy: Option<SocketAddr>,
    target: SocketAddr,
    size: u64,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut tcp = open(proxy, target).await?;
    tcp.write_all(format!("D {size}\n").as_bytes()).await?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = tcp.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    if total != size {
        bail!("got {total} of {size} bytes");
    }
    Ok(started.elapsed())
}

async fn ping_pong(
    proxy: Option<SocketAddr>,
    target: SocketAddr,
    rounds: usize,
) -> anyhow::Result<Duration> {
    let mut tcp = open(proxy, target).await?;
    tcp.write_all(b"P\n").await?;
    let mut samples = Vec::with_capacity(rounds);
    let mut byte = [0u8; 1];
    for _ in 0..rounds {
        let started = Instant::now();
        tcp.write_all(b"x").await?;
        tcp.read_exact(&mut byte).await?;
        samples.push(started.elapsed());
    }
    Ok(median(samples))
}

async fn first_byte(
    proxy: Option<SocketAddr>,
    target: SocketAddr,
    rounds: usize,
) -> anyhow::Result<Duration> {
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        let mut tcp = open(proxy, target).await?;
        tcp.write_all(b"D 1\n").await?;
        let mut byte = [0u8; 1];
        tcp.read_exact(&mut byte).await?;
        samples.push(started.elapsed());
    }
    Ok(median(samples))
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

async fn proxy_with(
    rule: &str,
    invitation: kolokol_proxy::Invitation,
) -> anyhow::Result<ProxyHandle> {
    let mut config = ProxyConfig::new("127.0.0.1:0".parse()?);
    config.rules = Rules::new(vec![Rule::parse(rule)?])?;
    Ok(ProxyServer::start(config, vec![invitation]).await?)
}

fn mib_per_s(size: u64, took: Duration) -> f64 {
    size as f64 / (1024.0 * 1024.0) / took.as_secs_f64().max(1e-9)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let size = args.size_mib * 1024 * 1024;
    let target = server().await?;
    let mut config = BridgeConfig::new("127.0.0.1:0".parse()?, BridgeKey::generate()?);
    config.allow_private_targets = true;
    let bridge = BridgeServer::start(config).await?;
    let invitation = bridge.invite(Host::parse("127.0.0.1")?, bridge.local_addr().port());
    let direct = proxy_with("*=direct", invitation.clone()).await?;
    let bridged = proxy_with("*=bridge", invitation).await?;
    // Let the pool's background connect finish so the first measurement does not include the handshake.
    tokio::time::sleep(Duration::from_millis(300)).await;

    println!(
        "kolokol-proxy bench: {} MiB download, loopback, {} cores",
        args.size_mib,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let plain = download(None, target, size)
        .await
        .context("plain download")?;
    let via_direct = download(Some(direct.addr()), target, size)
        .await
        .context("direct download")?;
    let via_bridge = download(Some(bridged.addr()), target, size)
        .await
        .context("bridge download")?;
    println!(
        "download  no proxy        {:>8.1} MiB/s  ({:.2} s)",
        mib_per_s(size, plain),
        plain.as_secs_f64()
    );
    println!(
        "download  proxy, direct   {:>8.1} MiB/s  ({:.2} s)",
        mib_per_s(size, via_direct),
        via_direct.as_secs_f64()
    );
    println!(
        "download  proxy, bridge   {:>8.1} MiB/s  ({:.2} s)",
        mib_per_s(size, via_bridge),
        via_bridge.as_secs_f64()
    );

    let rtt_plain = ping_pong(None, target, args.pings).await?;
    let rtt_direct = ping_pong(Some(direct.addr()), target, args.pings).await?;
    let rtt_bridge = ping_pong(Some(bridged.addr()), target, args.pings).await?;
    println!(
        "1-byte round trip (median of {}): no proxy {:?}, direct {:?}, bridge {:?} (bridge adds {:?})",
        args.pings,
        rtt_plain,
        rtt_direct,
        rtt_bridge,
        rtt_bridge.saturating_sub(rtt_direct)
    );
    let ttfb_direct = first_byte(Some(direct.addr()), target, args.connects).await?;
    let ttfb_bridge = first_byte(Some(bridged.addr()), target, args.connects).await?;
    println!(
        "new connection to first byte (median of {}): direct {:?}, bridge {:?} (bridge adds {:?})",
        args.connects,
        ttfb_direct,
        ttfb_bridge,
        ttfb_bridge.saturating_sub(ttfb_direct)
    );
    direct.shutdown().await;
    bridged.shutdown().await;
    bridge.shutdown().await;
    Ok(())
}
