//! One client connection: read its request, then follow the detour machine's actions until the connection is
//! relayed on its final route or fails.
//!
//! While the direct route is "watched", every byte the client sends is also kept (up to `replay_limit`), and the
//! site's first answer is held back until it is judged: if the route fails, nothing from it has reached the client
//! and the kept bytes are replayed through the bridge, so the client sees one clean connection.

use std::net::IpAddr;
use std::sync::Arc;

use kolokol_core::detour::{Action, Attempt, Event, Failure, Route};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::detect::{self, Verdict};
use super::{ClientRequestError, Ctx, Target, http, socks};
use crate::bridge::pool::BridgeOpenError;
use crate::connect::{ConnectFailure, connect_any, is_reset};
use crate::relay;
use crate::tunnel::frame::RefuseReason;
use crate::tunnel::mux::MuxStream;

/// Which front door the client came through, which decides how success and errors are told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Front {
    Socks,
    HttpConnect,
    HttpPlain,
}

enum Watched {
    /// The site answered with something that is not a block page.
    Answered {
        tcp: TcpStream,
        answer: Vec<u8>,
    },
    /// Too much to keep for replay; `pending` still has to go to the site.
    ReplayFull {
        tcp: TcpStream,
        answer: Vec<u8>,
        pending: Vec<u8>,
    },
    Failed(Failure),
    ClientGone,
}

pub(crate) async fn serve(mut client: TcpStream, ctx: Arc<Ctx>) {
    let _ = client.set_nodelay(true);
    let request = tokio::time::timeout(ctx.config.request_timeout, read_request(&mut client)).await;
    let (front, target, mut kept) = match request {
        Ok(Ok(request)) => request,
        Ok(Err(error)) => {
            tracing::debug!(%error, "client request refused");
            return;
        }
        Err(_) => return,
    };
    let now = ctx.now_ms();
    let has_bridges = ctx.pool.has_bridges();
    let (mut attempt, mut action) = match ctx.detour.lock() {
        Ok(mut detour) => detour.begin(target.host.clone(), has_bridges, now),
        Err(_) => return,
    };
    let mut told_client = false;
    let mut direct: Option<TcpStream> = None;
    let mut answer: Vec<u8> = Vec::new();
    let mut bridge_error: Option<BridgeOpenError> = None;
    loop {
        let event = match action {
            Action::ConnectDirect => match connect_direct(&ctx, &target).await {
                Ok(mut tcp) => {
                    // Only a plain HTTP request has bytes before the client is told anything.
                    if !kept.is_empty() && tcp.write_all(&kept).await.is_err() {
                        Event::DirectFailed(Failure::Reset)
                    } else {
                        direct = Some(tcp);
                        Event::DirectConnected
                    }
                }
                Err(failure) => Event::DirectFailed(failure),
            },
            Action::ConnectBridge { .. } => {
                direct = None;
                // Everything the client sent so far goes first (the request of a plain HTTP client, or the bytes
                // the failed direct route swallowed).
                match ctx.pool.open(&target.host, target.port, &kept).await {
                    Ok(stream) => {
                        let _ = handle(&ctx, &mut attempt, Event::BridgeOpened);
                        tracing::debug!(target: "kolokol_proxy::route", site = %target, route = "bridge", "route");
                        return finish_on_bridge(client, stream, front, told_client, &ctx).await;
                    }
                    Err(error) => {
                        tracing::debug!(site = %target, %error, "bridge route failed");
                        bridge_error = Some(error);
                        Event::BridgeFailed
                    }
                }
            }
            Action::Relay {
                route: Route::Direct,
                watch,
            } => {
                let Some(tcp) = direct.take() else { return };
                if !told_client {
                    told_client = true;
                    if tell_connected(&mut client, front).await.is_err() {
                        return;
                    }
                }
                if !watch {
                    tracing::debug!(target: "kolokol_proxy::route", site = %target, route = "direct", "route");
                    relay::tcp_to_tcp(client, tcp, ctx.config.idle_timeout).await;
                    return;
                }
                match watch_direct(&mut client, tcp, &mut kept, front, &ctx).await {
                    Watched::Answered { tcp, answer: got } => {
                        direct = Some(tcp);
                        answer = got;
                        Event::DirectFirstByte
                    }
                    Watched::ReplayFull {
                        mut tcp,
                        answer: got,
                        pending,
                    } => {
                        if tcp.write_all(&pending).await.is_err() {
                            return;
                        }
                        direct = Some(tcp);
                        answer = got;
                        Event::ReplayBufferFull
                    }
                    Watched::Failed(failure) => {
                        tracing::debug!(site = %target, %failure, "direct route failed");
                        Event::DirectFailed(failure)
                    }
                    Watched::ClientGone => return,
                }
            }
            Action::Settled(_) => {
                let Some(tcp) = direct.take() else { return };
                if client.write_all(&answer).await.is_err() {
                    return;
                }
                tracing::debug!(target: "kolokol_proxy::route", site = %target, route = "direct", "route");
                relay::tcp_to_tcp(client, tcp, ctx.config.idle_timeout).await;
                return;
            }
            Action::Relay {
                route: Route::Bridge,
                ..
            } => return,
            Action::Fail {
                direct: failure, ..
            } => {
                tracing::debug!(site = %target, ?failure, bridge = ?bridge_error.as_ref().map(ToString::to_string), "no route");
                tell_failure(
                    &mut client,
                    front,
                    told_client,
                    failure,
                    bridge_error.as_ref(),
                )
                .await;
                return;
            }
        };
        action = match handle(&ctx, &mut attempt, event) {
            Some(next) => next,
            None => return,
        };
    }
}

fn handle(ctx: &Ctx, attempt: &mut Attempt, event: Event) -> Option<Action> {
    let now = ctx.now_ms();
    ctx.detour.lock().ok()?.handle(attempt, event, now)
}

async fn read_request(
    client: &mut TcpStream,
) -> Result<(Front, Target, Vec<u8>), ClientRequestError> {
    let first = client.read_u8().await?;
    match first {
        5 => Ok((Front::Socks, socks::read_request(client).await?, Vec::new())),
        b'A'..=b'Z' => match http::read_request(client, first).await {
            Ok(http::Request::Connect(target)) => Ok((Front::HttpConnect, target, Vec::new())),
            Ok(http::Request::Plain {
                target,
                mut head,
                extra,
            }) => {
                head.extend_from_slice(&extra);
                Ok((Front::HttpPlain, target, head))
            }
            Err(error) => {
                let status = if matches!(error, ClientRequestError::Refused(_)) {
                    501
                } else {
                    400
                };
                http::error_reply(client, status, "Bad Request", &error.to_string()).await;
                Err(error)
            }
        },
        _ => Err(ClientRequestError::Malformed("neither SOCKS5 nor HTTP")),
    }
}

async fn connect_direct(ctx: &Ctx, target: &Target) -> Result<TcpStream, Failure> {
    let config = &ctx.config;
    let addrs: Vec<IpAddr> = match target.host.as_str().parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => match tokio::time::timeout(
            config.dns_timeout,
            config.resolver.resolve(target.host.as_str()),
        )
        .await
        {
            Ok(Ok(addrs)) if !addrs.is_empty() => addrs,
            _ => return Err(Failure::DnsFailed),
        },
    };
    if addrs.iter().any(|ip| config.bogus_dns.contains(ip)) {
        return Err(Failure::BogusDns);
    }
    connect_any(&addrs, target.port, config.connect_timeout)
        .await
        .map_err(|failure| match failure {
            ConnectFailure::Refused => Failure::Reset,
            ConnectFailure::Timeout => Failure::ConnectTimeout,
        })
}

/// Whether the client's first bytes are a plain HTTP request (whose answer can be checked for a block page).
fn looks_like_http(bytes: &[u8]) -> bool {
    const METHODS: [&[u8]; 9] = [
        b"GET ",
        b"POST ",
        b"HEAD ",
        b"PUT ",
        b"DELETE ",
        b"OPTIONS ",
        b"PATCH ",
        b"TRACE ",
        b"CONNECT ",
    ];
    METHODS.iter().any(|m| bytes.starts_with(m))
}

/// Relays client bytes to the direct route while keeping copies, until the site's first answer is judged.
async fn watch_direct(
    client: &mut TcpStream,
    mut tcp: TcpStream,
    kept: &mut Vec<u8>,
    front: Front,
    ctx: &Ctx,
) -> Watched {
    let config = &ctx.config;
    let mut answer = Vec::new();
    let mut client_buf = vec![0; 16 * 1024];
    let mut site_buf = vec![0; 16 * 1024];
    let mut deadline = (!kept.is_empty()).then(|| Instant::now() + config.first_byte_timeout);
    let mut client_done = false;
    // Only an answer to a plain HTTP request can be a recognisable block page; anything else is genuine.
    let judge = |answer: &[u8], kept: &[u8]| -> Verdict {
        if front == Front::HttpPlain || looks_like_http(kept) {
            detect::inspect(answer, &config.block_pages)
        } else {
            Verdict::Genuine
        }
    };
    loop {
        let far = Instant::now() + config.idle_timeout;
        tokio::select! {
            read = client.read(&mut client_buf), if !client_done => match read {
                Ok(0) => client_done = true,
                Ok(n) => {
                    if kept.len() + n > config.replay_limit {
                        return Watched::ReplayFull { tcp, answer, pending: client_buf[..n].to_vec() };
                    }
                    kept.extend_from_slice(&client_buf[..n]);
                    if tcp.write_all(&client_buf[..n]).await.is_err() {
                        return Watched::Failed(Failure::Reset);
                    }
                    deadline.get_or_insert_with(|| Instant::now() + config.first_byte_timeout);
                }
                Err(_) => return Watched::ClientGone,
            },
            read = tcp.read(&mut site_buf) => match read {
                Ok(0) if answer.is_empty() => return Watched::Failed(Failure::Reset),
                Ok(0) => {
                    // The whole answer is here: judged as it is.
                    return match judge(&answer, kept) {
                        Verdict::Blocked => Watched::Failed(Failure::BlockPage),
                        Verdict::Genuine | Verdict::NeedMore => Watched::Answered { tcp, answer },
                    };
                }
                Ok(n) => {
                    answer.extend_from_slice(&site_buf[..n]);
                    match judge(&answer, kept) {
                        Verdict::Blocked => return Watched::Failed(Failure::BlockPage),
                        Verdict::Genuine => return Watched::Answered { tcp, answer },
                        Verdict::NeedMore => {}
                    }
                }
                Err(error) if is_reset(&error) => return Watched::Failed(Failure::Reset),
                Err(_) => return Watched::Failed(Failure::Reset),
            },
            _ = tokio::time::sleep_until(deadline.unwrap_or(far)) => {
                if deadline.is_none() {
                    // The client has said nothing for the whole idle time.
                    return Watched::ClientGone;
                }
                if answer.is_empty() {
                    return Watched::Failed(Failure::NoFirstByte);
                }
                // A slow answer that started but is not complete enough to judge is taken as genuine.
                return match judge(&answer, kept) {
                    Verdict::Blocked => Watched::Failed(Failure::BlockPage),
                    Verdict::Genuine | Verdict::NeedMore => Watched::Answered { tcp, answer },
                };
            }
        }
    }
}

async fn finish_on_bridge(
    mut client: TcpStream,
    stream: MuxStream,
    front: Front,
    told_client: bool,
    ctx: &Ctx,
) {
    if !told_client && tell_connected(&mut client, front).await.is_err() {
        return;
    }
    relay::tcp_to_stream(client, &stream, ctx.config.idle_timeout).await;
}

async fn tell_connected(client: &mut TcpStream, front: Front) -> std::io::Result<()> {
    match front {
        Front::Socks => socks::reply(client, socks::SUCCEEDED).await,
        Front::HttpConnect => {
            client.write_all(http::CONNECT_OK).await?;
            client.flush().await
        }
        Front::HttpPlain => Ok(()),
    }
}

async fn tell_failure(
    client: &mut TcpStream,
    front: Front,
    told_client: bool,
    failure: Option<Failure>,
    bridge: Option<&BridgeOpenError>,
) {
    // A plain HTTP client has received nothing yet even when "told" (there is no success message), so it can
    // still get a proper error page.
    if told_client && front != Front::HttpPlain {
        return;
    }
    let refused = match bridge {
        Some(BridgeOpenError::Refused(reason)) => Some(*reason),
        _ => None,
    };
    let detail = match (failure, bridge) {
        (Some(failure), Some(bridge)) => format!("direct route: {failure}; bridge: {bridge}"),
        (Some(failure), None) => format!("direct route: {failure}"),
        (None, Some(bridge)) => format!("bridge: {bridge}"),
        (None, None) => String::from("no route"),
    };
    match front {
        Front::Socks => {
            let code = match (refused, failure) {
                (Some(RefuseReason::Refused), _) | (None, Some(Failure::Reset)) => {
                    socks::CONNECTION_REFUSED
                }
                (Some(RefuseReason::Dns), _)
                | (None, Some(Failure::DnsFailed | Failure::BogusDns)) => socks::HOST_UNREACHABLE,
                (Some(RefuseReason::Unreachable), _) | (None, Some(Failure::ConnectTimeout)) => {
                    socks::HOST_UNREACHABLE
                }
                (Some(RefuseReason::Forbidden), _) => socks::NETWORK_UNREACHABLE,
                (None, Some(Failure::NoFirstByte)) => socks::TTL_EXPIRED,
                _ => socks::GENERAL_FAILURE,
            };
            let _ = socks::reply(client, code).await;
        }
        Front::HttpConnect | Front::HttpPlain => {
            let timeout = matches!(
                failure,
                Some(Failure::ConnectTimeout | Failure::NoFirstByte)
            ) && !matches!(refused, Some(RefuseReason::Refused | RefuseReason::Dns));
            let (status, reason) = if timeout {
                (504, "Gateway Timeout")
            } else {
                (502, "Bad Gateway")
            };
            http::error_reply(client, status, reason, &detail).await;
        }
    }
}
