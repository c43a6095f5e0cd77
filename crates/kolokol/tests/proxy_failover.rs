//! Bridges at the node level: with two bridges, killing the one in use does not break new connections; the proxy
//! address is refused clearly when taken; bridge routes need the API token.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
mod proxy_common;

use std::process::Command;

use common::*;
use proxy_common::*;

#[test]
fn killing_the_bridge_in_use_does_not_break_new_connections() {
    let tmp = tempfile::tempdir().unwrap();
    let site = Site::start();
    let url = format!("http://localhost:{}/page", site.port);

    let first = start_bridge(&tmp.path().join("bridge-a"));
    let second = start_bridge(&tmp.path().join("bridge-b"));
    // The rule comes from a flag of `up` this time (not saved).
    let client = NodeProcess::start_with(
        &tmp.path().join("client"),
        &["--proxy-rule", "localhost=bridge"],
    );
    let proxy = proxy_addr(&client);
    for bridge in [&first, &second] {
        client.json(&["bridge", "add", &invite(bridge)]);
    }
    assert_eq!(
        client.json(&["bridge", "list"]).as_array().unwrap().len(),
        2
    );
    assert_eq!(
        client.json(&["proxy", "status"])["rules"],
        serde_json::json!(["localhost=bridge"])
    );

    assert_eq!(fetch(&socks(&proxy), &url), "hello from /page");
    let (in_use, spare) = match (bridge_streams(&first), bridge_streams(&second)) {
        (1, 0) => (first, second),
        (0, 1) => (second, first),
        other => panic!("one stream through exactly one bridge, got {other:?}"),
    };
    let dead_addr = in_use.json(&["proxy", "status"])["bridge_server"]["listen_addr"]
        .as_str()
        .unwrap()
        .to_owned();
    // Killed, not stopped: the client learns it only from the dead connection.
    drop(in_use);

    for round in 0..3 {
        assert_eq!(
            fetch(&http_proxy(&proxy), &url),
            "hello from /page",
            "round {round}"
        );
    }
    assert_eq!(bridge_streams(&spare), 3);
    let bridges = client.json(&["bridge", "list"]);
    let dead = bridges
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["address"] == dead_addr.as_str())
        .unwrap();
    assert_eq!(dead["connected"], false, "{bridges:#}");
    assert!(
        site.hits("/page") == 4,
        "every request reached the site once"
    );
}

#[test]
fn a_taken_proxy_address_is_refused_clearly_unless_it_is_the_default() {
    let tmp = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();

    let mut args = LOOPBACK_UP.to_vec();
    args.extend(["--proxy", &addr]);
    let out = match start_raw(&tmp.path().join("explicit"), &args) {
        Ok(_) => panic!("the node started although --proxy {addr} is taken"),
        Err(out) => out,
    };
    assert_fails_with(&out, "cannot start the local proxy");
    assert!(String::from_utf8_lossy(&out.stderr).contains(&addr));

    // The default address (127.0.0.1:7412), when something else has it, only costs the proxy: the node runs. The
    // test holds the port if it can; if it cannot, someone else does, which is the same situation.
    let _default = std::net::TcpListener::bind("127.0.0.1:7412");
    let node = start_raw(&tmp.path().join("default"), &LOOPBACK_UP).unwrap();
    let status = node.json(&["status"]);
    assert!(status["proxy_addr"].is_null(), "{status:#}");
    assert!(node.json(&["proxy", "status"])["proxy_addr"].is_null());
    // Bridges can still be managed and are kept for when the proxy runs.
    let bridge = start_bridge(&tmp.path().join("bridge"));
    let added = node.json(&["bridge", "add", &invite(&bridge)]);
    assert_eq!(added["connected"], false);
    assert_eq!(node.json(&["bridge", "list"]).as_array().unwrap().len(), 1);
}

#[test]
fn bridge_routes_need_the_api_token() {
    let tmp = tempfile::tempdir().unwrap();
    let bridge = start_bridge(&tmp.path().join("bridge"));
    let code = invite(&bridge);
    let client = NodeProcess::start(&tmp.path().join("client"));
    for (path, body) in [
        ("bridges", serde_json::json!({ "code": code })),
        ("proxy/rules", serde_json::json!({ "rule": "*=bridge" })),
    ] {
        let out = Command::new("curl")
            .args(["--silent", "--noproxy", "*", "--max-time", "30"])
            .args(["--output", "/dev/null", "--write-out", "%{http_code}"])
            .args(["--header", "Content-Type: application/json"])
            .args(["--data", &body.to_string()])
            .arg(format!("http://{}/api/v1/{path}", client.api))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "403", "{path}");
    }
    // Another web page cannot make the bridge hand out invitations either.
    let out = Command::new("curl")
        .args(["--silent", "--noproxy", "*", "--max-time", "30"])
        .args(["--output", "/dev/null", "--write-out", "%{http_code}"])
        .args(["--header", "Content-Type: application/json", "--data", "{}"])
        .arg(format!("http://{}/api/v1/bridge/invitations", bridge.api))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "403");
    assert_eq!(client.json(&["bridge", "list"]), serde_json::json!([]));
    assert_eq!(
        client.json(&["proxy", "status"])["rules"],
        serde_json::json!([])
    );
    assert_eq!(
        bridge
            .json(&["bridge", "invitations"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
