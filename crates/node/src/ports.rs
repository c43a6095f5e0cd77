//! The node's listening ports: the wire listener and the BitTorrent engine, on the address asked for or on the port
//! kept in the catalog from the last run (so that peers that remember this node find it again).

use std::net::{Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;

use kolokol_store::Catalog;
use kolokol_transfer::{Engine, EngineConfig, RateLimits};
use tokio::net::TcpListener;

use crate::config::NodeConfig;
use crate::data_dir::DataDir;
use crate::start_error::StartError;

const BT_PORT_KEY: &str = "bt_port";
const WIRE_PORT_KEY: &str = "wire_port";

/// Listen for kolokol peers on the requested address, or on the port kept from the last run (a new one if it is taken).
pub(crate) async fn bind_wire(
    catalog: &mut Catalog,
    requested: Option<SocketAddr>,
) -> Result<TcpListener, StartError> {
    let (addr, chosen) = listen_addr(catalog, WIRE_PORT_KEY, requested)?;
    let listener = match TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(error) if chosen && addr.port() != 0 => {
            // The port kept from an earlier run is taken by something else: take a new one rather than not start.
            tracing::warn!(%error, %addr, "kept wire port is busy; choosing another");
            TcpListener::bind(SocketAddr::new(addr.ip(), 0))
                .await
                .map_err(|source| StartError::WireListen { addr, source })?
        }
        Err(source) => return Err(StartError::WireListen { addr, source }),
    };
    if chosen {
        let port = listener
            .local_addr()
            .map_err(|source| StartError::WireListen { addr, source })?
            .port();
        catalog.set_setting(WIRE_PORT_KEY, &port.to_string())?;
    }
    Ok(listener)
}

/// Start the BitTorrent engine on the requested address, or on the port kept from the last run (a new one if it is
/// taken), with the configured rate limits.
pub(crate) async fn start_engine(
    dir: &DataDir,
    catalog: &mut Catalog,
    node_config: &NodeConfig,
) -> Result<Engine, StartError> {
    let (addr, chosen) = listen_addr(catalog, BT_PORT_KEY, node_config.bt_listen)?;
    let limits = RateLimits {
        upload: rate_limit(node_config.upload_limit)?,
        download: rate_limit(node_config.download_limit)?,
    };
    let config = |listen| EngineConfig {
        listen,
        state_dir: dir.engine_dir(),
        download_dir: dir.downloads_dir(),
        limits,
        stream_timeout: node_config.stream_timeout,
    };
    let engine = match Engine::start(config(addr)).await {
        Ok(engine) => engine,
        Err(error) if chosen && addr.port() != 0 => {
            tracing::warn!(%error, %addr, "kept BitTorrent port is busy; choosing another");
            Engine::start(config(SocketAddr::new(addr.ip(), free_port(addr)?))).await?
        }
        Err(error) => return Err(error.into()),
    };
    if chosen {
        catalog.set_setting(BT_PORT_KEY, &engine.listen_addr().port().to_string())?;
    }
    Ok(engine)
}

/// A limit in bytes per second as the engine takes it (it refuses limits below its minimum).
fn rate_limit(limit: Option<u64>) -> Result<Option<NonZeroU32>, StartError> {
    limit
        .map(|bytes| {
            NonZeroU32::new(u32::try_from(bytes).unwrap_or(u32::MAX))
                .ok_or(StartError::ZeroRateLimit)
        })
        .transpose()
}

/// The address to listen on, and whether the node chose it (so that it must be remembered for the next start).
fn listen_addr(
    catalog: &Catalog,
    key: &str,
    requested: Option<SocketAddr>,
) -> Result<(SocketAddr, bool), StartError> {
    if let Some(addr) = requested {
        return Ok((addr, false));
    }
    let kept = catalog
        .get_setting(key)?
        .and_then(|port| port.parse::<u16>().ok())
        .filter(|port| *port != 0);
    let addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, kept.unwrap_or(0)));
    match kept {
        Some(_) => Ok((addr, true)),
        None => Ok((SocketAddr::new(addr.ip(), free_port(addr)?), true)),
    }
}

/// A port that is free for TCP right now (the engine binds it itself a moment later).
fn free_port(addr: SocketAddr) -> Result<u16, StartError> {
    std::net::TcpListener::bind(SocketAddr::new(addr.ip(), 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(StartError::NoFreePort)
}
