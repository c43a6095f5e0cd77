//! `kolokol up`: run a node in the foreground.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;
use std::time::Duration;

use kolokol_node::{
    AdmissionConfig, CacheOptions, DataDir, DiscoveryConfig, Node, NodeConfig, ReplicationConfig,
};
use tokio::net::TcpListener;

use crate::cli::UpArgs;
use crate::identity_cmd::{PASSPHRASE_ENV, ask};
use kolokol_node::{IdentityName, Keystore, KeystoreError, Passphrase};

pub async fn run(api: &SocketAddr, data_dir: &Path, args: UpArgs) -> anyhow::Result<()> {
    init_logging();
    // Lock first: a second node on the same data directory must hear about the lock, not about a busy port.
    let dir = DataDir::lock(data_dir)?;
    // Before the API listens: a wrong or missing passphrase stops here, having changed nothing.
    let passphrases = passphrases_for(data_dir).await?;
    let listener = TcpListener::bind(api)
        .await
        .with_context(|| format!("cannot listen for the HTTP API on {api}"))?;
    let api_addr = listener.local_addr().context("HTTP API address")?;
    write_api_addr(data_dir, api_addr)?;
    if args.dht_timeout_ms == 0 || args.rendezvous_secs == 0 || args.feed_poll_secs == 0 {
        anyhow::bail!(
            "--dht-timeout-ms, --rendezvous-secs and --feed-poll-secs must be greater than 0"
        );
    }
    let config = NodeConfig {
        network: args.network,
        bt_listen: args.listen,
        wire_listen: args.wire,
        api_addr,
        discovery: DiscoveryConfig {
            dht_listen: args.dht,
            bootstrap: args.bootstrap,
            no_default_bootstrap: args.no_default_bootstrap,
            dht_server: args.dht_server,
            dht_request_timeout: Duration::from_millis(args.dht_timeout_ms),
            rendezvous_interval: Duration::from_secs(args.rendezvous_secs),
            lan: !args.no_lan,
            lan_interfaces: args.lan_interfaces,
            feed_poll_interval: Duration::from_secs(args.feed_poll_secs),
        },
        push_fanout: args.push_fanout,
        reconcile_interval: Duration::from_secs(args.reconcile_secs.max(1)),
        work_bits: args.work_bits,
        admission: AdmissionConfig {
            per_author_per_hour: args.author_rate,
            per_author_max: args.author_max,
        },
        target_peers: args.peers,
        max_inbound: args.max_inbound,
        download_limit: args.download_limit,
        upload_limit: args.upload_limit,
        stream_timeout: Duration::from_secs(args.stream_timeout_secs),
        proxy: args.proxy.options()?,
        replication: ReplicationConfig {
            replicas: args.replicas,
            announce_timeout: Duration::from_secs(args.announce_timeout_secs),
            ..ReplicationConfig::default()
        },
        cache: CacheOptions {
            mirror: args.mirror,
            quota: args.quota,
            share_watched: args.share_watched,
        },
        passphrases,
    };
    let node = Node::start(dir, config).await?;
    let api = node.api();
    let status = api.status().await?;
    // The node must not die because whoever started it stopped reading its output: write errors are ignored.
    // No node id: it is new at every start and renewed while running, and a copy of it in a saved terminal log
    // would tie this device to what the peers of that time saw (`kolokol status` shows the current one).
    let mut ready = format!(
        "kolokol node is up\n  web:     http://{api_addr}/\n  author:  {author}\n  \
         wire:    {wire}\n  bt:      {bt}\n  dht:     {dht}\n  data:    {data}\n",
        author = status.author_id,
        wire = status.wire_addr,
        bt = status.bt_addr,
        dht = status.dht_addr,
        data = status.data_dir.display(),
    );
    ready.push_str(&crate::proxy_cmd::ready_lines(&api.proxy().status()));
    {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(ready.as_bytes());
        let _ = stdout.flush();
    }

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(kolokol_http::serve(listener, api, async move {
        let _ = stop_rx.await;
    }));
    wait_for_signal().await?;
    tracing::info!("shutting down");
    let _ = stop_tx.send(());
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!(%error, "HTTP server stopped with an error"),
        Err(error) => tracing::warn!(%error, "HTTP server task failed"),
    }
    node.shutdown().await;
    Ok(())
}

/// Passphrases that open every identity locked with one: `KOLOKOL_PASSPHRASE` (which must open them all), or asked
/// on the terminal for each that none typed so far opens (three tries each). No terminal and no variable: an error
/// at once, never a wait.
async fn passphrases_for(data_dir: &Path) -> anyhow::Result<Vec<Passphrase>> {
    let store = Keystore::new(data_dir);
    let sealed: Vec<IdentityName> = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.list())
            .await
            .context("reading the author keys")??
            .into_iter()
            .filter(|view| view.passphrase)
            .map(|view| IdentityName::parse(&view.name))
            .collect::<Result<_, _>>()?
    };
    if sealed.is_empty() {
        return Ok(Vec::new());
    }
    let from_env = std::env::var_os(PASSPHRASE_ENV).is_some();
    let mut known: Vec<Passphrase> = Vec::new();
    if from_env {
        known.push(ask("", false)?);
    }
    for name in sealed {
        let mut asked = 0;
        loop {
            if !known.is_empty() {
                let (store, which, tried) = (store.clone(), name.clone(), known.clone());
                let opened = tokio::task::spawn_blocking(move || store.open(&which, &tried))
                    .await
                    .context("unlocking an author key")?;
                match opened {
                    Ok(_) => break,
                    Err(KeystoreError::WrongPassphrase(_)) if from_env => {
                        anyhow::bail!(
                            "wrong passphrase for identity {name} (from {PASSPHRASE_ENV}); nothing was changed"
                        )
                    }
                    Err(KeystoreError::WrongPassphrase(_)) if asked > 0 => {
                        // The one just typed opens nothing: forget it.
                        known.pop();
                        if asked >= 3 {
                            anyhow::bail!(
                                "wrong passphrase for identity {name}; nothing was changed"
                            );
                        }
                        eprintln!("wrong passphrase for identity {name}");
                    }
                    Err(KeystoreError::WrongPassphrase(_)) => {}
                    Err(other) => return Err(other.into()),
                }
            }
            known.push(
                ask(&format!("Passphrase for identity {name}: "), false)
                    .with_context(|| format!("identity {name} is locked with a passphrase"))?,
            );
            asked += 1;
        }
    }
    Ok(known)
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    Ok(())
}

/// Where the CLI finds this node's API: `api.addr` in the data directory (replaced whole, mode 0600).
fn write_api_addr(data_dir: &Path, addr: SocketAddr) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = kolokol_node::api_addr_path(data_dir);
    let partial = path.with_extension("addr.partial");
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&partial)?;
        writeln!(file, "{addr}")?;
        std::fs::rename(&partial, &path)
    })();
    written.with_context(|| format!("cannot write {}", path.display()))
}

/// The default level (info) names no site, destination, title, record id, author or infohash that the user viewed,
/// proxied, bridged or followed, and no address of a kolokol peer: a log on a seized device must not list them.
/// Debug and trace do, and say so first.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KOLOKOL_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,librqbit=warn,librqbit_core=warn")
    });
    let verbose = filter
        .max_level_hint()
        .is_none_or(|level| level >= tracing_subscriber::filter::LevelFilter::DEBUG);
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    if verbose {
        tracing::warn!(
            "KOLOKOL_LOG asks for debug or trace output: this log will name the sites you reach through the proxy, \
             the bridges' destinations, the titles, ids and infohashes of what you watch, and the addresses of the \
             kolokol peers you meet. Anyone who gets this device can read it. Use the default level (info) unless \
             you are debugging."
        );
    }
}
