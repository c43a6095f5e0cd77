//! Opening TCP connections to a site's addresses, with the failures named the way the detour logic needs them.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpStream;

/// How connecting failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectFailure {
    /// Refused or reset: someone answered with a TCP reset (the site, or a filter pretending to be it).
    Refused,
    /// No answer in time, or no route.
    Timeout,
}

/// Tries `addrs` in order, each with `timeout`, and returns the first connection made. The failure reported is
/// the last one seen.
pub async fn connect_any(
    addrs: &[IpAddr],
    port: u16,
    timeout: Duration,
) -> Result<TcpStream, ConnectFailure> {
    let mut failure = ConnectFailure::Timeout;
    for ip in addrs {
        match tokio::time::timeout(timeout, TcpStream::connect(SocketAddr::new(*ip, port))).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Ok(Err(error)) => failure = classify(&error),
            Err(_) => failure = ConnectFailure::Timeout,
        }
    }
    Err(failure)
}

/// Whether an I/O error is a reset (as opposed to silence or a missing route).
pub fn is_reset(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
    )
}

fn classify(error: &io::Error) -> ConnectFailure {
    if is_reset(error) {
        ConnectFailure::Refused
    } else {
        ConnectFailure::Timeout
    }
}

/// Addresses a bridge must not connect to for its clients unless told otherwise: its own machine and private
/// networks (an invitee must not reach the bridge operator's router, LAN or local services), plus addresses that
/// are not unicast destinations at all.
pub fn is_private_destination(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64.0.0/10, carrier-grade NAT
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private_destination(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link local
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_destinations() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.5.5",
            "169.254.1.1",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
        ] {
            assert!(is_private_destination(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "198.18.2.10", "2001:db8::1", "100.128.0.1"] {
            assert!(!is_private_destination(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn refused_is_told_apart_from_timeout() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let result = connect_any(
            &["127.0.0.1".parse().unwrap()],
            port,
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(result.err(), Some(ConnectFailure::Refused));
    }
}
