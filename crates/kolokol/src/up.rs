//! `kolokol up`: run a node in the foreground.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;
use kolokol_node::{DataDir, Node, NodeConfig};
use tokio::net::TcpListener;

use crate::cli::UpArgs;

pub async fn run(api: &SocketAddr, data_dir: &Path, args: UpArgs) -> anyhow::Result<()> {
    init_logging();
    // Lock first: a second node on the same data directory must hear about the lock, not about a busy port.
    let dir = DataDir::lock(data_dir)?;
    let listener = TcpListener::bind(api)
        .await
        .with_context(|| format!("cannot listen for the HTTP API on {api}"))?;
    let api_addr = listener.local_addr().context("HTTP API address")?;
    let config = NodeConfig {
        network: args.network,
        bt_listen: args.listen,
        wire_listen: args.wire,
        api_addr,
    };
    let node = Node::start(dir, config).await?;
    let api = node.api();
    let status = api.status()?;
    println!("kolokol node {} is up", status.node_id);
    println!("  web:     http://{api_addr}/");
    println!("  node id: {}", status.node_id);
    println!("  author:  {}", status.author_id);
    println!("  wire:    {}", status.wire_addr);
    println!("  bt:      {}", status.bt_addr);
    println!("  data:    {}", status.data_dir.display());

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

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KOLOKOL_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,librqbit=warn,librqbit_core=warn")
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
