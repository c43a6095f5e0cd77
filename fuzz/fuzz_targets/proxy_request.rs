//! What the local proxy reads from its clients and from sites. The first input byte picks the reader:
//! - 0: a SOCKS5 greeting and request (`socks::read_request`, the version byte already consumed);
//! - 1: an HTTP proxy request head (`http::read_request`, the rest of the input after its first byte);
//! - 2: the start of a site's answer, judged as a block page or not (`detect::inspect`), for every prefix.
//!
//! The client side is an in-memory pipe closed after the input, so every read ends.
#![no_main]

use std::sync::LazyLock;

use kolokol_proxy::Host;
use kolokol_proxy::proxy::detect::{BlockPageRules, inspect};
use kolokol_proxy::proxy::{http, socks};
use libfuzzer_sys::fuzz_target;
use tokio::io::AsyncWriteExt;
use tokio::runtime::Runtime;

static RUNTIME: LazyLock<Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime")
});

static RULES: LazyLock<BlockPageRules> = LazyLock::new(|| BlockPageRules {
    signatures: vec![b"blocked by order".to_vec(), b"warning.rt.ru".to_vec()],
    block_hosts: vec![Host::parse("blocked.example").expect("a valid host")],
});

fuzz_target!(|data: &[u8]| {
    let Some((&kind, bytes)) = data.split_first() else {
        return;
    };
    match kind % 3 {
        0 => RUNTIME.block_on(async {
            let (mut ours, mut theirs) = tokio::io::duplex(bytes.len() + 1024);
            theirs.write_all(bytes).await.expect("room in the pipe");
            theirs.shutdown().await.expect("in-memory shutdown");
            let _ = socks::read_request(&mut ours).await;
        }),
        1 => RUNTIME.block_on(async {
            let Some((&first, rest)) = bytes.split_first() else {
                return;
            };
            let (mut ours, mut theirs) = tokio::io::duplex(rest.len() + 1024);
            theirs.write_all(rest).await.expect("room in the pipe");
            theirs.shutdown().await.expect("in-memory shutdown");
            if let Ok(http::Request::Plain { head, .. }) =
                http::read_request(&mut ours, first).await
            {
                assert!(
                    head.ends_with(b"\r\n\r\n"),
                    "a rewritten head is a complete head"
                );
            }
        }),
        _ => {
            // The proxy judges an answer as its bytes arrive: every prefix must be judged without panicking.
            for end in (0..=bytes.len()).step_by(7).chain([bytes.len()]) {
                let _ = inspect(&bytes[..end], &RULES);
            }
        }
    }
});
