//! Issue 8's censor scenario with real `kolokol up` nodes: a client node behind a simulated censor, a bridge node
//! outside, both driven through the CLI, with the product's defaults (the bridge refuses private targets; the
//! proxy's time-outs are the shipped ones).
//!
//! ```text
//!  client ns                     censor ns (router)                  outside ns
//!  kolokol up (proxy)  --- 198.18.1.2 | 198.18.1.1 + 198.18.2.1 --- sites 198.18.2.10-15
//!  curl                          iptables, block-page server        kolokol up --bridge on 198.18.2.50:443
//! ```
//!
//! The censor resets site 1 once data flows, black-holes site 2, poisons the client's DNS for site 3 (the client
//! namespace's hosts file points it at 198.18.2.99, which the client node is told is a bogus answer), answers for
//! site 4 with a block page (an ordinary 200 answer with the regulator's text, which the client node is told to
//! recognise with `--proxy-block-signature`), and swallows site 5's data after the handshake. Site 0 is not blocked.
//! `curl` through the client node's SOCKS5 and HTTP proxy must get every real page; site 0 must not touch the
//! bridge; `proxy status` must say how each site failed.
//!
//! Needs root (for `ip netns`), iptables, curl and python3 (the web sites). Addresses are from 198.18.0.0/15
//! (reserved for network tests) and exist only inside the namespaces this test creates and always removes.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
mod proxy_common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::NodeProcess;
use kolokol_testkit::censor_net::{BLOCK_SERVER, BLOCK_TEXT, BOGUS, CensorNet, FAILURES, SITES};
use kolokol_testkit::netns;
use proxy_common::{LOOPBACK_UP, cli_in_netns, json_in_netns, start_in_netns};

/// Web servers, each answering every request with a fixed status and body: `ADDR|PORT|STATUS|BODY` per argument.
const SITE_SCRIPT: &str = r#"
import http.server, sys, threading
class Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        status, body = self.server.answer
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *args):
        pass
for spec in sys.argv[1:]:
    addr, port, status, body = spec.split("|")
    server = http.server.ThreadingHTTPServer((addr, int(port)), Answer)
    server.answer = (int(status), body)
    threading.Thread(target=server.serve_forever, daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
"#;

fn ensure_tools() {
    assert!(
        netns::is_root(),
        "this test builds network namespaces and must run as root (scripts/test.sh does)"
    );
    for tool in [
        ["iptables", "--version"],
        ["curl", "--version"],
        ["python3", "--version"],
    ] {
        assert!(
            Command::new(tool[0]).arg(tool[1]).output().is_ok(),
            "{} is needed (scripts/test.sh installs it)",
            tool[0]
        );
    }
}

/// Python web servers in a namespace; killed when dropped.
struct Servers(Child);

impl Servers {
    fn start(ns: &str, specs: &[String]) -> Servers {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, "python3", "-c", SITE_SCRIPT])
            .args(specs)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "web servers in {ns} did not start");
        Servers(child)
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn curl(ns: &str, args: &[&str], url: &str) -> Result<String, String> {
    let output = Command::new("ip")
        .args(["netns", "exec", ns, "curl", "-sS", "--max-time", "40"])
        .args(args)
        .arg(url)
        .output()
        .unwrap();
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

fn bridge_streams(ns: &str, bridge: &NodeProcess) -> u64 {
    json_in_netns(ns, bridge, &["proxy", "status"])["bridge_server"]["streams_total"]
        .as_u64()
        .unwrap()
}

#[test]
fn client_node_reaches_every_site_through_the_simulated_censor() {
    ensure_tools();
    let tmp = tempfile::tempdir().unwrap();
    // Declared first, dropped last: the processes inside go before their namespaces.
    let net = CensorNet::create(["kkc", "kkr", "kko"]).unwrap();
    let specs: Vec<String> = SITES
        .iter()
        .map(|ip| format!("{ip}|80|200|real page at {ip}"))
        .collect();
    let _sites = Servers::start(&net.outside, &specs);
    let _block = Servers::start(
        &net.censor,
        &[format!(
            "{BLOCK_SERVER}|8080|200|<html><h1>{BLOCK_TEXT}</h1></html>"
        )],
    );

    // The censorship is real: without the proxy, site 0 answers and the others fail or lie.
    let c = net.client.as_str();
    assert_eq!(
        curl(c, &[], "http://site0.test/").unwrap(),
        "real page at 198.18.2.10"
    );
    assert!(
        curl(c, &[], "http://site1.test/").is_err(),
        "site 1 is reset"
    );
    assert!(curl(c, &["--max-time", "3"], "http://site2.test/").is_err());
    assert!(curl(c, &["--max-time", "3"], "http://site3.test/").is_err());
    assert!(
        curl(c, &[], "http://site4.test/")
            .unwrap()
            .contains(BLOCK_TEXT),
        "site 4 is a block page"
    );
    assert!(curl(c, &["--max-time", "3"], "http://site5.test/").is_err());

    // A bridge outside with the product's exit policy, and a client node inside.
    let mut bridge_args = LOOPBACK_UP.to_vec();
    bridge_args.extend([
        "--no-proxy",
        "--bridge",
        "--bridge-listen",
        "198.18.2.50:443",
    ]);
    let bridge = start_in_netns(&net.outside, &tmp.path().join("bridge"), &bridge_args);
    let invitation = json_in_netns(&net.outside, &bridge, &["bridge", "invite"]);
    assert_eq!(invitation["address"], "198.18.2.50:443");
    let code = invitation["code"].as_str().unwrap();

    let mut client_args = LOOPBACK_UP.to_vec();
    client_args.extend(["--proxy", "127.0.0.1:0", "--proxy-bogus-dns", BOGUS]);
    client_args.extend(["--proxy-block-signature", "restricted by the regulator"]);
    let client = start_in_netns(c, &tmp.path().join("client"), &client_args);
    let added = json_in_netns(c, &client, &["bridge", "add", code]);
    assert_eq!(added["address"], "198.18.2.50:443");
    let proxy = json_in_netns(c, &client, &["status"])["proxy_addr"]
        .as_str()
        .unwrap()
        .to_owned();
    let http = format!("http://{proxy}");

    for (i, ip) in SITES.iter().enumerate() {
        let url = format!("http://site{i}.test/");
        let expected = format!("real page at {ip}");
        let before = bridge_streams(&net.outside, &bridge);
        let page = curl(c, &["--socks5-hostname", &proxy], &url);
        assert_eq!(page.as_deref(), Ok(expected.as_str()), "SOCKS5 {url}");
        let page = curl(c, &["-x", &http], &url);
        assert_eq!(page.as_deref(), Ok(expected.as_str()), "HTTP proxy {url}");
        let page = curl(c, &["-p", "-x", &http], &url);
        assert_eq!(page.as_deref(), Ok(expected.as_str()), "HTTP CONNECT {url}");
        let through_bridge = bridge_streams(&net.outside, &bridge) - before;
        if i == 0 {
            assert_eq!(through_bridge, 0, "site 0 must go direct");
        } else {
            assert_eq!(
                through_bridge, 3,
                "site {i}: every fetch through the bridge"
            );
        }
    }

    let status = json_in_netns(c, &client, &["proxy", "status"]);
    for (i, failure) in FAILURES.iter().enumerate() {
        let host = format!("site{i}.test");
        let site = status["sites"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["host"] == host.as_str())
            .unwrap_or_else(|| panic!("{host} not in {status:#}"));
        if i == 0 {
            assert_eq!(site["route"], "direct", "{site:#}");
            assert_eq!(site["via_bridge"], 0);
            assert_eq!(site["direct_ok"], 3);
        } else {
            assert_eq!(site["route"], "bridge", "{site:#}");
            assert_eq!(site["bridge_mark"], "temporary", "{site:#}");
            assert_eq!(site["last_failure"], *failure, "{site:#}");
            assert_eq!(site["via_bridge"], 3, "{site:#}");
        }
    }
    let human = cli_in_netns(c, &client, &["proxy", "status"]);
    let human = String::from_utf8_lossy(&human.stdout);
    assert!(human.contains("last failure: bogus DNS answer"), "{human}");

    assert!(client.stop(), "clean shutdown of the client");
    assert!(bridge.stop(), "clean shutdown of the bridge");
}
