//! The must-show scenario of issue 8 with a simulated censor built from network namespaces:
//!
//! ```text
//!  client ns                censor ns (router)                  outside ns
//!  proxy 127.0.0.1:7412 --- 198.18.1.1 | 198.18.2.1 ----------- sites 198.18.2.10-15, bridge 198.18.2.50:443
//!  curl                     iptables + block-page server
//! ```
//!
//! The censor resets connections to site 1 once they carry data, black-holes site 2, poisons DNS for site 3 (the
//! client namespace's hosts file, which `ip netns exec` mounts over /etc/hosts, points it at a known bogus
//! address), serves a block page in place of site 4, and swallows site 5's data after the TCP handshake. Site 0 is
//! not blocked. `curl` through the SOCKS5 and the HTTP proxy must get every real page; the bridge must see streams
//! for sites 1-5 and none for site 0.
//!
//! Needs root (for `ip netns`) and `iptables` (installed with apt-get if missing). Addresses are from 198.18.0.0/15
//! (reserved for network tests) and exist only inside the namespaces this test creates and always removes.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod netns_common;

use std::process::Command;

use kolokol_testkit::censor_net::{BLOCK_TEXT, BOGUS, BRIDGE, CensorNet, SITES};
use netns_common::{Proc, ensure_tools};

fn curl(ns: &str, proxy_args: &[&str], url: &str) -> Result<String, String> {
    let output = Command::new("ip")
        .args(["netns", "exec", ns, "curl", "-sS", "--max-time", "25"])
        .args(proxy_args)
        .arg(url)
        .output()
        .expect("run curl");
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

fn bridge_streams(bridge: &Proc, site: usize) -> usize {
    let needle = format!("host=site{site}.test");
    bridge
        .lines()
        .iter()
        .filter(|l| l.contains("bridge stream") && l.contains(&needle))
        .count()
}

#[test]
fn curl_reaches_every_site_through_the_simulated_censor() {
    ensure_tools();
    let net = CensorNet::create(["kpc", "kpr", "kpo"]).unwrap();
    let listens: Vec<String> = SITES.iter().map(|ip| format!("--listen={ip}:80")).collect();
    let mut site_args = vec!["site"];
    site_args.extend(listens.iter().map(String::as_str));
    let sites = Proc::harness(&net.outside, &site_args);
    sites.wait_for("ready");
    let block_body = format!("<html><h1>{BLOCK_TEXT}</h1></html>");
    let block = Proc::harness(
        &net.censor,
        &["site", "--listen", "198.18.1.1:8080", "--body", &block_body],
    );
    block.wait_for("ready");
    let bridge = Proc::harness(
        &net.outside,
        &[
            "bridge",
            "--listen",
            &format!("{BRIDGE}:443"),
            "--invite-host",
            BRIDGE,
            "--probe-silence-ms",
            "2000",
        ],
    );
    let code = bridge
        .wait_for("invitation ")
        .trim_start_matches("invitation ")
        .to_owned();

    // The censorship is real: without the proxy, only site 0 answers and the others fail or lie.
    assert!(
        curl(&net.client, &[], "http://site0.test/")
            .unwrap()
            .contains("real page at 198.18.2.10")
    );
    assert!(
        curl(&net.client, &[], "http://site1.test/").is_err(),
        "site 1 is reset"
    );
    assert!(
        curl(&net.client, &["--max-time", "3"], "http://site2.test/").is_err(),
        "site 2 is black-holed"
    );
    assert!(
        curl(&net.client, &["--max-time", "3"], "http://site3.test/").is_err(),
        "site 3 resolves to nowhere"
    );
    assert!(
        curl(&net.client, &[], "http://site4.test/")
            .unwrap()
            .contains(BLOCK_TEXT),
        "site 4 is a block page"
    );
    assert!(
        curl(&net.client, &["--max-time", "3"], "http://site5.test/").is_err(),
        "site 5 never answers"
    );

    let proxy_args = |port: &str| -> Vec<String> {
        vec![
            "proxy".into(),
            format!("--listen=127.0.0.1:{port}"),
            format!("--bridge={code}"),
            format!("--bogus-dns={BOGUS}"),
            format!("--block-signature={BLOCK_TEXT}"),
            "--connect-timeout-ms=2000".into(),
            "--first-byte-timeout-ms=2000".into(),
        ]
    };
    let socks_args = proxy_args("7412");
    let mut socks = Proc::harness(
        &net.client,
        &socks_args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    socks.wait_for("ready");
    let http_args = proxy_args("7413");
    let mut http = Proc::harness(
        &net.client,
        &http_args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    http.wait_for("ready");

    for (i, ip) in SITES.iter().enumerate() {
        let url = format!("http://site{i}.test/");
        let expected = format!("real page at {ip}");
        let page = curl(&net.client, &["--socks5-hostname", "127.0.0.1:7412"], &url);
        assert_eq!(page.as_deref(), Ok(expected.as_str()), "SOCKS5 {url}");
        let page = curl(&net.client, &["-x", "http://127.0.0.1:7413"], &url);
        assert_eq!(page.as_deref(), Ok(expected.as_str()), "HTTP proxy {url}");
        // CONNECT through the HTTP proxy: by now the site's route is remembered.
        let page = curl(&net.client, &["-p", "-x", "http://127.0.0.1:7413"], &url);
        assert_eq!(page.as_deref(), Ok(expected.as_str()), "HTTP CONNECT {url}");
    }

    // The unblocked site never touched the bridge; every blocked one did, from both proxies.
    assert_eq!(
        bridge_streams(&bridge, 0),
        0,
        "site 0 must go direct: {:?}",
        bridge.lines()
    );
    for site in 1..SITES.len() {
        assert_eq!(
            bridge_streams(&bridge, site),
            3,
            "site {site} through the bridge: {:?}",
            bridge.lines()
        );
    }

    // `proxy status` shows which sites went where.
    for proxy in [&mut socks, &mut http] {
        proxy.send("status");
        proxy.wait_for("end");
        let lines = proxy.lines();
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("site site0.test direct")),
            "{lines:?}"
        );
        for site in 1..SITES.len() {
            let prefix = format!("site site{site}.test bridge");
            assert!(
                lines.iter().any(|l| l.starts_with(&prefix)),
                "{prefix}: {lines:?}"
            );
        }
    }
    drop((socks, http, bridge, block, sites));
    drop(net);
}
