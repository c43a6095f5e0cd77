//! Helpers for the loopback tests: tiny sites, stand-ins for a censor, and minimal SOCKS5 / HTTP proxy clients.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Every test step is bounded by this.
pub const STEP: Duration = Duration::from_secs(20);

/// Reads an HTTP request head (up to 64 KiB).
pub async fn read_head(tcp: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 65536 || tcp.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    String::from_utf8(head).ok()
}

/// A site on `addr` that answers every request with `body` (and closes).
pub async fn site(addr: SocketAddr, body: &'static str) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind(addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut tcp, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                if read_head(&mut tcp).await.is_some() {
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = tcp.write_all(answer.as_bytes()).await;
                    let _ = tcp.shutdown().await;
                }
            });
        }
    });
    (addr, task)
}

/// A "censor" on `addr` that accepts, reads the first bytes, then resets the connection.
pub async fn resetter(addr: SocketAddr) -> JoinHandle<()> {
    let listener = TcpListener::bind(addr).await.unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut tcp, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = tcp.read(&mut buf).await;
                let _ = tcp.set_zero_linger();
                drop(tcp);
            });
        }
    })
}

/// A "censor" on `addr` that accepts and never answers.
pub async fn black_hole(addr: SocketAddr) -> JoinHandle<()> {
    let listener = TcpListener::bind(addr).await.unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            held.push(tcp);
        }
    })
}

/// A "censor" on `addr` that answers every request with `answer` verbatim.
pub async fn block_page(addr: SocketAddr, answer: &'static str) -> JoinHandle<()> {
    let listener = TcpListener::bind(addr).await.unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut tcp, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                if read_head(&mut tcp).await.is_some() {
                    let _ = tcp.write_all(answer.as_bytes()).await;
                    let _ = tcp.shutdown().await;
                }
            });
        }
    })
}

/// Opens a SOCKS5 CONNECT to `host:port` through `proxy` (the name is sent to the proxy, not resolved here).
/// Returns the reply code and the stream.
pub async fn socks_connect(proxy: SocketAddr, host: &str, port: u16) -> (u8, TcpStream) {
    let mut tcp = TcpStream::connect(proxy).await.unwrap();
    tcp.write_all(&[5, 1, 0]).await.unwrap();
    let mut choice = [0u8; 2];
    tcp.read_exact(&mut choice).await.unwrap();
    assert_eq!(choice, [5, 0]);
    let mut request = vec![5, 1, 0, 3, host.len() as u8];
    request.extend_from_slice(host.as_bytes());
    request.extend_from_slice(&port.to_be_bytes());
    tcp.write_all(&request).await.unwrap();
    let mut reply = [0u8; 10];
    tcp.read_exact(&mut reply).await.unwrap();
    (reply[1], tcp)
}

/// GET `http://host:port/` through SOCKS5; returns the whole answer.
pub async fn socks_get(proxy: SocketAddr, host: &str, port: u16) -> String {
    let (code, mut tcp) = socks_connect(proxy, host, port).await;
    assert_eq!(code, 0, "SOCKS reply for {host}");
    let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.unwrap();
    answer
}

/// GET `http://host:port/` as a plain HTTP proxy request; returns the whole answer.
pub async fn http_proxy_get(proxy: SocketAddr, host: &str, port: u16) -> String {
    let mut tcp = TcpStream::connect(proxy).await.unwrap();
    let request = format!(
        "GET http://{host}:{port}/ HTTP/1.1\r\nHost: {host}:{port}\r\nProxy-Connection: keep-alive\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.unwrap();
    answer
}

/// GET through an HTTP CONNECT tunnel; returns the answer after the tunnel's 200.
pub async fn http_connect_get(proxy: SocketAddr, host: &str, port: u16) -> String {
    let mut tcp = TcpStream::connect(proxy).await.unwrap();
    tcp.write_all(
        format!("CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let head = read_head(&mut tcp).await.unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    tcp.write_all(
        format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.unwrap();
    answer
}
