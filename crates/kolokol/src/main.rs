//! kolokol: the command-line program. `kolokol up` runs a node; every other command is a client of a running
//! node's HTTP API.
//!
//! Exit codes: 0 success, 1 failure (one line on stderr), 2 bad usage.

mod bundle_cmd;
mod cli;
mod client;
mod commands;
mod identity_cmd;
mod proxy_cmd;
mod torrent_cmd;
mod up;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // clap exits with code 2 on bad usage and 0 for --help/--version.
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return fail(&anyhow::anyhow!("cannot start the async runtime: {error}")),
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(&error),
    }
}

async fn run(cli: cli::Cli) -> anyhow::Result<()> {
    let data_dir = match &cli.data_dir {
        Some(dir) => dir.clone(),
        None => kolokol_node::DataDir::default_path()?,
    };
    match cli.command {
        cli::Command::Up(args) => {
            let api = match cli.api {
                Some(api) => api,
                None => default_api()?,
            };
            up::run(&api, &data_dir, *args).await
        }
        cli::Command::Identity(command) => {
            // Only a node that wrote its address into this data directory (or one named by --api) is told.
            let api = match cli.api {
                Some(api) => Some(api),
                None => running_api(&data_dir)?,
            };
            identity_cmd::run(&data_dir, api, command, cli.json).await
        }
        command => {
            let api = match cli.api {
                Some(api) => api,
                None => match running_api(&data_dir)? {
                    Some(api) => api,
                    None => default_api()?,
                },
            };
            let client = client::Client::new(api, &data_dir)?;
            commands::run(&client, command, cli.json).await
        }
    }
}

fn default_api() -> anyhow::Result<std::net::SocketAddr> {
    Ok(kolokol_node::DEFAULT_API_ADDR.parse()?)
}

/// The API address the node running on `data_dir` wrote there (`up` writes it at start), if any.
fn running_api(data_dir: &std::path::Path) -> anyhow::Result<Option<std::net::SocketAddr>> {
    let path = kolokol_node::api_addr_path(data_dir);
    match std::fs::read_to_string(&path) {
        Ok(text) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|e| anyhow::anyhow!("{} does not hold an address: {e}", path.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(anyhow::anyhow!("cannot read {}: {error}", path.display())),
    }
}

/// One line on stderr: the error and its causes, joined.
fn fail(error: &anyhow::Error) -> ExitCode {
    let message = error
        .chain()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(": ")
        .replace('\n', " ");
    let _ = writeln!(std::io::stderr(), "error: {message}");
    ExitCode::from(1)
}
