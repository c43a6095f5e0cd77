//! Test harness: runs a proxy, a bridge or a tiny web site from flags, so that the network-namespace tests can
//! run the library code inside `ip netns exec`. Not a user tool (the node runs the same code inside `kolokol up`).
//!
//! Every mode prints `ready ...` once serving, logs routes and bridge streams to stdout, and exits when its
//! standard input closes, so a test that dies takes its processes with it.
//! In proxy mode, a line `status` on standard input prints one `site HOST ROUTE REASON` line per known site.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use kolokol_proxy::{
    BlockPageRules, BridgeConfig, BridgeKey, BridgeServer, Host, Invitation, ProxyConfig,
    ProxyServer, Rule, Rules,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[derive(Parser)]
#[command(about = "kolokol proxy test harness")]
struct Args {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// The local proxy.
    Proxy {
        #[arg(long, default_value = kolokol_proxy::DEFAULT_PROXY_ADDR)]
        listen: SocketAddr,
        /// Invitation codes of bridges.
        #[arg(long = "bridge")]
        bridges: Vec<String>,
        #[arg(long = "bogus-dns")]
        bogus_dns: Vec<IpAddr>,
        #[arg(long = "block-signature")]
        block_signatures: Vec<String>,
        #[arg(long = "block-host")]
        block_hosts: Vec<String>,
        /// PATTERN=direct or PATTERN=bridge.
        #[arg(long = "rule")]
        rules: Vec<String>,
        #[arg(long, default_value_t = 5000)]
        connect_timeout_ms: u64,
        #[arg(long, default_value_t = 6000)]
        first_byte_timeout_ms: u64,
    },
    /// A bridge.
    Bridge {
        #[arg(long)]
        listen: SocketAddr,
        /// Where to keep the bridge key (created if missing); a fresh key each run without it.
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// The address clients dial, written into the printed invitation.
        #[arg(long)]
        invite_host: String,
        #[arg(long)]
        invite_port: Option<u16>,
        #[arg(long)]
        allow_private_targets: bool,
        #[arg(long, default_value_t = 30_000)]
        probe_silence_ms: u64,
    },
    /// A web site answering every request with a fixed page, on one or more addresses.
    Site {
        #[arg(long = "listen", required = true)]
        listen: Vec<SocketAddr>,
        /// The page body (`{addr}` is replaced by the address the request came to).
        #[arg(long, default_value = "real page at {addr}")]
        body: String,
        /// Instead of `--body`, a body of this many bytes (for downloads that measure throughput).
        #[arg(long)]
        body_size: Option<usize>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                "warn,kolokol_proxy::route=debug,kolokol_proxy::bridge=debug".into()
            }),
        )
        .with_writer(std::io::stdout)
        .with_ansi(false)
        .init();
    match Args::parse().mode {
        Mode::Proxy {
            listen,
            bridges,
            bogus_dns,
            block_signatures,
            block_hosts,
            rules,
            connect_timeout_ms,
            first_byte_timeout_ms,
        } => {
            let mut config = ProxyConfig::new(listen);
            config.bogus_dns = bogus_dns;
            config.block_pages = BlockPageRules {
                signatures: block_signatures
                    .into_iter()
                    .map(String::into_bytes)
                    .collect(),
                block_hosts: block_hosts
                    .iter()
                    .map(|h| Host::parse(h))
                    .collect::<Result<_, _>>()?,
            };
            config.rules = Rules::new(
                rules
                    .iter()
                    .map(|r| Rule::parse(r))
                    .collect::<Result<_, _>>()?,
            )?;
            config.connect_timeout = Duration::from_millis(connect_timeout_ms);
            config.first_byte_timeout = Duration::from_millis(first_byte_timeout_ms);
            let invitations = bridges
                .iter()
                .map(|c| Invitation::parse(c))
                .collect::<Result<Vec<_>, _>>()?;
            let proxy = ProxyServer::start(config, invitations).await?;
            println!("ready {}", proxy.addr());
            let mut lines = BufReader::new(tokio::io::stdin()).lines();
            while let Some(line) = lines.next_line().await? {
                if line.trim() == "status" {
                    let status = proxy.status();
                    for site in status.sites {
                        println!("site {} {} {:?}", site.host, site.route, site.reason);
                    }
                    for bridge in status.bridges {
                        println!(
                            "bridge {} connected={} streams={} rtt_ms={:?}",
                            bridge.address, bridge.connected, bridge.streams_total, bridge.rtt_ms
                        );
                    }
                    println!("end");
                }
            }
            proxy.shutdown().await;
        }
        Mode::Bridge {
            listen,
            key_file,
            invite_host,
            invite_port,
            allow_private_targets,
            probe_silence_ms,
        } => {
            let key = match &key_file {
                Some(path) if path.exists() => BridgeKey::from_bytes(&std::fs::read(path)?)?,
                Some(path) => {
                    let key = BridgeKey::generate()?;
                    std::fs::write(path, key.to_bytes())
                        .with_context(|| format!("writing {}", path.display()))?;
                    key
                }
                None => BridgeKey::generate()?,
            };
            let mut config = BridgeConfig::new(listen, key);
            config.allow_private_targets = allow_private_targets;
            let silence = Duration::from_millis(probe_silence_ms);
            config.probe_silence = (silence, silence + silence / 2);
            let bridge = BridgeServer::start(config).await?;
            let invitation = bridge.invite(
                Host::parse(&invite_host)?,
                invite_port.unwrap_or(bridge.local_addr().port()),
            );
            println!("ready {}", bridge.local_addr());
            println!("invitation {}", invitation.to_code());
            let mut stdin = tokio::io::stdin();
            let mut sink = [0u8; 256];
            while stdin.read(&mut sink).await? > 0 {}
            bridge.shutdown().await;
        }
        Mode::Site {
            listen,
            body,
            body_size,
        } => {
            let body = match body_size {
                Some(size) => "0123456789abcdef".repeat(size / 16 + 1)[..size].to_owned(),
                None => body,
            };
            for addr in listen {
                let listener = TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding {addr}"))?;
                let body = body.replace("{addr}", &addr.ip().to_string());
                tokio::spawn(serve_site(listener, body));
            }
            println!("ready");
            let mut stdin = tokio::io::stdin();
            let mut sink = [0u8; 256];
            while stdin.read(&mut sink).await? > 0 {}
        }
    }
    Ok(())
}

async fn serve_site(listener: TcpListener, body: String) {
    while let Ok((mut tcp, _)) = listener.accept().await {
        let body = body.clone();
        tokio::spawn(async move {
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
                match tcp.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tcp.write_all(answer.as_bytes()).await;
            let _ = tcp.shutdown().await;
        });
    }
}
