//! SOCKS5 (RFC 1928), the part a proxy for browsers needs: no authentication, CONNECT, IPv4, IPv6 and domain
//! names. Names are not resolved here: they travel to the exit (the direct route's resolver or the bridge).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use kolokol_core::detour::Host;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{ClientRequestError, Target};

pub const SUCCEEDED: u8 = 0x00;
pub const GENERAL_FAILURE: u8 = 0x01;
pub const NETWORK_UNREACHABLE: u8 = 0x03;
pub const HOST_UNREACHABLE: u8 = 0x04;
pub const CONNECTION_REFUSED: u8 = 0x05;
pub const TTL_EXPIRED: u8 = 0x06;
pub const COMMAND_NOT_SUPPORTED: u8 = 0x07;
pub const ADDRESS_TYPE_NOT_SUPPORTED: u8 = 0x08;

const VERSION: u8 = 5;
const NO_AUTH: u8 = 0x00;
const NO_ACCEPTABLE_METHOD: u8 = 0xff;

/// Reads the greeting (whose version byte the caller already consumed) and the request, answering the method
/// choice. Errors that SOCKS can express are answered before returning.
pub async fn read_request<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
) -> Result<Target, ClientRequestError> {
    let count = io.read_u8().await?;
    let mut methods = vec![0; usize::from(count)];
    io.read_exact(&mut methods).await?;
    if !methods.contains(&NO_AUTH) {
        io.write_all(&[VERSION, NO_ACCEPTABLE_METHOD]).await?;
        return Err(ClientRequestError::Refused(
            "SOCKS client offers no method without authentication",
        ));
    }
    io.write_all(&[VERSION, NO_AUTH]).await?;
    let mut head = [0; 4];
    io.read_exact(&mut head).await?;
    if head[0] != VERSION {
        return Err(ClientRequestError::Malformed(
            "SOCKS request has the wrong version",
        ));
    }
    if head[1] != 0x01 {
        reply(io, COMMAND_NOT_SUPPORTED).await?;
        return Err(ClientRequestError::Refused(
            "only the SOCKS CONNECT command is supported",
        ));
    }
    let host = match head[3] {
        0x01 => {
            let mut octets = [0; 4];
            io.read_exact(&mut octets).await?;
            Host::from_ip(IpAddr::V4(Ipv4Addr::from(octets)))
        }
        0x04 => {
            let mut octets = [0; 16];
            io.read_exact(&mut octets).await?;
            Host::from_ip(IpAddr::V6(Ipv6Addr::from(octets)))
        }
        0x03 => {
            let len = io.read_u8().await?;
            let mut name = vec![0; usize::from(len)];
            io.read_exact(&mut name).await?;
            let parsed = std::str::from_utf8(&name)
                .ok()
                .and_then(|n| Host::parse(n).ok());
            match parsed {
                Some(host) => host,
                None => {
                    reply(io, HOST_UNREACHABLE).await?;
                    return Err(ClientRequestError::Malformed(
                        "SOCKS request has an invalid host name",
                    ));
                }
            }
        }
        _ => {
            reply(io, ADDRESS_TYPE_NOT_SUPPORTED).await?;
            return Err(ClientRequestError::Refused("unknown SOCKS address type"));
        }
    };
    let port = io.read_u16().await?;
    if port == 0 {
        reply(io, GENERAL_FAILURE).await?;
        return Err(ClientRequestError::Malformed("SOCKS request for port 0"));
    }
    Ok(Target { host, port })
}

/// Sends the final reply. The bound address is reported as 0.0.0.0:0, which clients accept: the real local
/// address of the outgoing connection would only reveal the route taken.
pub async fn reply<S: AsyncWrite + Unpin>(io: &mut S, code: u8) -> std::io::Result<()> {
    io.write_all(&[VERSION, code, 0, 0x01, 0, 0, 0, 0, 0, 0])
        .await?;
    io.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn run(request: &[u8]) -> (Result<Target, ClientRequestError>, Vec<u8>) {
        let (mut client, mut server) = tokio::io::duplex(1024);
        client.write_all(request).await.unwrap();
        client.shutdown().await.unwrap();
        let result = read_request(&mut server).await;
        drop(server);
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).await.unwrap();
        (result, answer)
    }

    #[tokio::test]
    async fn parses_every_address_type() {
        let (target, answer) = run(&[1, 0, 5, 1, 0, 1, 1, 2, 3, 4, 0, 80]).await;
        assert_eq!(target.unwrap().to_string(), "1.2.3.4:80");
        assert_eq!(answer, vec![5, 0]);
        let mut v6 = vec![1, 0, 5, 1, 0, 4];
        v6.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        v6.extend_from_slice(&[1, 187]);
        assert_eq!(run(&v6).await.0.unwrap().to_string(), "[2001:db8::1]:443");
        let mut name = vec![2, 2, 0, 5, 1, 0, 3, 11];
        name.extend_from_slice(b"Example.ORG");
        name.extend_from_slice(&[0x1f, 0x90]);
        assert_eq!(run(&name).await.0.unwrap().to_string(), "example.org:8080");
    }

    #[tokio::test]
    async fn refuses_what_it_does_not_support() {
        let (result, answer) = run(&[1, 2]).await;
        assert!(matches!(result, Err(ClientRequestError::Refused(_))));
        assert_eq!(answer, vec![5, 0xff]);
        let (result, answer) = run(&[1, 0, 5, 2, 0, 1, 1, 2, 3, 4, 0, 80]).await;
        assert!(matches!(result, Err(ClientRequestError::Refused(_))));
        assert_eq!(answer[2..4], [5, COMMAND_NOT_SUPPORTED]);
        let (result, answer) = run(&[1, 0, 5, 1, 0, 9]).await;
        assert!(matches!(result, Err(ClientRequestError::Refused(_))));
        assert_eq!(answer[3], ADDRESS_TYPE_NOT_SUPPORTED);
        let (result, _) = run(&[1, 0, 5, 1, 0, 3, 3, b'a', b' ', b'b', 0, 80]).await;
        assert!(matches!(result, Err(ClientRequestError::Malformed(_))));
        let (result, _) = run(&[1, 0, 5, 1]).await;
        assert!(matches!(result, Err(ClientRequestError::Io(_))));
    }
}
