//! The local proxy and the bridges, end to end with real `kolokol up` processes on loopback: a bridge node invites,
//! a client node adds the code, and `curl` through the client's SOCKS5 and HTTP proxy reaches a local web site
//! directly, through the bridge by a user rule, and through the bridge after a block page. Bad codes are refused
//! and change nothing; bridges, invitations and rules survive restarts of both nodes.
//!
//! The bridge runs with `--bridge-allow-private` because the "site" is on 127.0.0.1, which a real bridge refuses to
//! connect to for its clients.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
mod proxy_common;

use std::io::Write;
use std::process::Command;

use common::*;
use proxy_common::*;
use serde_json::Value;

fn site<'a>(status: &'a Value, host: &str) -> &'a Value {
    status["sites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["host"] == host)
        .unwrap_or_else(|| panic!("no site {host} in {status:#}"))
}

/// Flips one character of the code's body: the checksum no longer matches.
fn tamper(code: &str) -> String {
    let mut bytes = code.as_bytes().to_vec();
    let at = bytes.len() - 10;
    bytes[at] = if bytes[at] == b'a' { b'b' } else { b'a' };
    String::from_utf8(bytes).unwrap()
}

#[test]
fn bridge_invitation_and_browsing_through_the_proxy_survive_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let site_server = Site::start();
    let port = site_server.port;

    // The bridge: no local proxy of its own, a bridge on loopback.
    let bridge = start_bridge(&tmp.path().join("bridge"));
    let status = bridge.json(&["status"]);
    assert!(status["proxy_addr"].is_null(), "{status:#}");
    let server = bridge.json(&["proxy", "status"])["bridge_server"].clone();
    let bridge_addr = server["listen_addr"].as_str().unwrap().to_owned();
    assert!(bridge_addr.starts_with("127.0.0.1:"), "{server:#}");
    assert_eq!(server["invitations"], 0);
    let key_mode = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(bridge.data_dir.join("bridge.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(key_mode, 0o600);

    // An invitation for a person, as text and QR code; then one that is made and revoked.
    let invitation = bridge.json(&["bridge", "invite"]);
    let code = invitation["code"].as_str().unwrap().to_owned();
    let id = invitation["id"].as_str().unwrap().to_owned();
    assert!(code.starts_with("kolokol-bridge:"), "{invitation:#}");
    assert_eq!(invitation["address"], bridge_addr.as_str());
    let human = bridge.cli(&["bridge", "invite"]);
    assert!(human.status.success());
    let human = String::from_utf8(human.stdout).unwrap();
    assert!(human.contains("kolokol-bridge:"), "{human}");
    assert!(
        human.contains('\u{2588}') || human.contains('\u{2580}') || human.contains('\u{2584}'),
        "a QR code is drawn: {human}"
    );
    let invitations = bridge.json(&["bridge", "invitations"]);
    assert_eq!(invitations.as_array().unwrap().len(), 2);
    let second = invitations
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .find(|i| *i != id)
        .unwrap();
    assert!(bridge.cli(&["bridge", "revoke", &second]).status.success());
    assert_fails_with(&bridge.cli(&["bridge", "revoke", &second]), "no invitation");
    let invitations = bridge.json(&["bridge", "invitations"]);
    assert_eq!(invitations.as_array().unwrap().len(), 1);
    assert_eq!(invitations[0]["id"], id.as_str());
    assert!(
        invitations[0].get("code").is_none(),
        "secrets are not listed"
    );

    // The client: a proxy on a loopback port of its own, no bridge yet.
    let client = NodeProcess::start(&tmp.path().join("client"));
    let proxy = client.json(&["status"])["proxy_addr"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(proxy.starts_with("127.0.0.1:"), "{proxy}");
    assert_fails_with(&client.cli(&["bridge", "invite"]), "runs no bridge");

    // Bad codes: one clear line, exit 1, nothing stored.
    assert_fails_with(&client.cli(&["bridge", "add", &tamper(&code)]), "damaged");
    assert_fails_with(
        &client.cli(&["bridge", "add", "kolokol-bridge:not*base32"]),
        "base32",
    );
    assert_fails_with(&client.cli(&["bridge", "add", "hello"]), "kolokol-bridge:");
    assert_eq!(client.json(&["bridge", "list"]), serde_json::json!([]));
    assert!(!client.data_dir.join("bridges.json").exists());

    // The real code, from standard input (as a cautious user would pass it).
    let added = {
        let mut child = Command::new(BIN)
            .args(["--data-dir", client.data_dir.to_str().unwrap()])
            .args(["--api", &client.api, "--json", "bridge", "add", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(code.to_uppercase().as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    assert_eq!(added["id"], id.as_str());
    assert_eq!(added["address"], bridge_addr.as_str());
    // Adding it again changes nothing.
    client.json(&["bridge", "add", &code]);
    assert_eq!(
        client.json(&["bridge", "list"]).as_array().unwrap().len(),
        1
    );

    // 1. Direct: an unblocked site does not touch the bridge.
    let direct_url = format!("http://127.0.0.1:{port}/direct");
    assert_eq!(fetch(&socks(&proxy), &direct_url), "hello from /direct");
    assert_eq!(
        fetch(&http_proxy(&proxy), &direct_url),
        "hello from /direct"
    );
    assert_eq!(bridge_streams(&bridge), 0);
    let status = client.json(&["proxy", "status"]);
    let direct = site(&status, "127.0.0.1");
    assert_eq!(direct["route"], "direct");
    assert_eq!(direct["direct_ok"], 2);
    assert_eq!(direct["via_bridge"], 0);

    // 2. A saved user rule sends a site through the bridge, over SOCKS5, plain HTTP and CONNECT.
    let rules = client.json(&["proxy", "rule", "add", "localhost=bridge"]);
    assert_eq!(rules["rules"], serde_json::json!(["localhost=bridge"]));
    let ruled_url = format!("http://localhost:{port}/by-rule");
    let mut streams = 0;
    for front in [socks(&proxy), http_proxy(&proxy), http_connect(&proxy)] {
        assert_eq!(fetch(&front, &ruled_url), "hello from /by-rule");
        let now = bridge_streams(&bridge);
        assert!(now > streams, "{front:?} went through the bridge");
        streams = now;
    }
    let status = client.json(&["proxy", "status"]);
    let ruled = site(&status, "localhost");
    assert_eq!(ruled["route"], "bridge");
    assert_eq!(ruled["reason"], "rule");
    let used = &status["bridges"][0];
    assert_eq!(used["id"], id.as_str());
    assert_eq!(used["connected"], true);
    assert!(used["streams_total"].as_u64().unwrap() >= 3, "{status:#}");

    // 3. Detour: the site answers the direct route with a block page; the proxy replays the request through the
    //    bridge, the client gets the real page, and the site is remembered as needing the bridge for a while.
    let censored_url = format!("http://127.0.0.1:{port}/censored");
    assert_eq!(
        fetch(&http_proxy(&proxy), &censored_url),
        "hello from /censored"
    );
    assert_eq!(
        site_server.hits("/censored"),
        2,
        "direct, then through the bridge"
    );
    assert!(bridge_streams(&bridge) > streams);
    let status = client.json(&["proxy", "status"]);
    let detoured = site(&status, "127.0.0.1");
    assert_eq!(detoured["route"], "bridge", "{status:#}");
    assert_eq!(detoured["reason"], "remembered");
    assert_eq!(detoured["bridge_mark"], "temporary");
    assert_eq!(detoured["last_failure"], "block page");
    assert!(detoured["bridge_secs_left"].as_u64().unwrap() > 0);
    let human = String::from_utf8(client.cli(&["proxy", "status"]).stdout).unwrap();
    assert!(human.contains("temporary"), "{human}");
    assert!(human.contains(&id), "{human}");

    // 4. The client restarts: its bridge and its rule are still there and work.
    assert!(client.stop(), "clean shutdown");
    let client = NodeProcess::start(&tmp.path().join("client"));
    let proxy = client.json(&["status"])["proxy_addr"]
        .as_str()
        .unwrap()
        .to_owned();
    let bridges = client.json(&["bridge", "list"]);
    assert_eq!(bridges.as_array().unwrap().len(), 1);
    assert_eq!(bridges[0]["id"], id.as_str());
    let status = client.json(&["proxy", "status"]);
    assert_eq!(status["rules"], serde_json::json!(["localhost=bridge"]));
    let before = bridge_streams(&bridge);
    assert_eq!(fetch(&socks(&proxy), &ruled_url), "hello from /by-rule");
    assert!(bridge_streams(&bridge) > before);

    // 5. The bridge restarts: same port, same key, the invitation still accepted; the client finds it again.
    assert!(bridge.stop(), "clean shutdown");
    let bridge = start_bridge(&tmp.path().join("bridge"));
    let server = bridge.json(&["proxy", "status"])["bridge_server"].clone();
    assert_eq!(
        server["listen_addr"],
        bridge_addr.as_str(),
        "the port is kept"
    );
    assert_eq!(server["invitations"], 1);
    assert_eq!(
        fetch(&http_proxy(&proxy), &ruled_url),
        "hello from /by-rule"
    );
    assert!(bridge_streams(&bridge) > 0);

    // Removing the rule and the bridge: the site goes direct again, and nothing is left saved.
    client.json(&["proxy", "rule", "remove", "localhost"]);
    client.json(&["bridge", "remove", &id]);
    assert_eq!(client.json(&["bridge", "list"]), serde_json::json!([]));
    assert_fails_with(&client.cli(&["bridge", "remove", &id]), "no bridge");
    assert_fails_with(
        &client.cli(&["bridge", "remove", "nonsense"]),
        "not an invitation id",
    );
    let streams = bridge_streams(&bridge);
    assert_eq!(fetch(&socks(&proxy), &ruled_url), "hello from /by-rule");
    assert_eq!(bridge_streams(&bridge), streams);
}
