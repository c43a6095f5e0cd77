//! Logs that do not betray a seized device (issue 13, part 3), with real `kolokol up` processes on loopback at the
//! default log level: a reader's node proxies a site directly and, by a rule, through a bridge node, and streams a
//! publication to the end; then the whole log of the reader, of the bridge and of the publisher is searched for the
//! site's name and port, the pages' paths, the publication's title, record id and infohash: none is found. A node
//! started at a debug level says first that its log will name them.
//!
//! The bridge runs with `--bridge-allow-private` because the "site" is on 127.0.0.1, which a real bridge refuses to
//! connect to for its clients.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
mod proxy_common;

use std::time::Duration;

use common::*;
use proxy_common::*;

/// GET through the node's gateway or API (with the token); the status line and the body.
fn get(node: &NodeProcess, path: &str) -> (String, Vec<u8>) {
    node.http_get(path, Duration::from_secs(120))
}

#[test]
fn the_default_log_names_no_site_title_or_infohash_the_user_reached() {
    let tmp = tempfile::tempdir().unwrap();
    let site = Site::start();
    let port = site.port;
    let bridge = start_bridge(&tmp.path().join("bridge"));
    let publisher = NodeProcess::start(&tmp.path().join("publisher"));
    let reader = NodeProcess::start(&tmp.path().join("reader"));
    reader.json(&["bridge", "add", &invite(&bridge)]);
    let proxy = proxy_addr(&reader);

    // Proxied: one page directly, one through the bridge by a rule.
    let direct = format!("http://127.0.0.1:{port}/direct-page-for-reader");
    assert_eq!(
        fetch(&socks(&proxy), &direct),
        "hello from /direct-page-for-reader"
    );
    reader.json(&["proxy", "rule", "add", "localhost=bridge"]);
    let bridged = format!("http://localhost:{port}/bridged-page-for-reader");
    assert_eq!(
        fetch(&http_proxy(&proxy), &bridged),
        "hello from /bridged-page-for-reader"
    );
    assert!(
        bridge_streams(&bridge) > 0,
        "the page did not go through the bridge"
    );

    // Watched: a publication streamed to the end.
    let file = tmp.path().join("evidence.webm");
    random_file(&file, 1024 * 1024, 31);
    let data = std::fs::read(&file).unwrap();
    let title = "Unmistakable Protest Title";
    let published = publisher.json(&["publish", file.to_str().unwrap(), "--title", title]);
    let id = published["id"].as_str().unwrap().to_owned();
    let infohash = published["infohash"].as_str().unwrap().to_owned();
    let wire = publisher.json(&["status"])["wire_addr"]
        .as_str()
        .unwrap()
        .to_owned();
    reader.json(&["peer", "add", &wire]);
    assert!(
        wait_for(Duration::from_secs(60), || reader
            .has_record(&id)
            .then_some(()))
        .is_some(),
        "the reader never received the record"
    );
    let (line, body) = get(&reader, &format!("/files/{id}/0"));
    assert!(line.contains(" 200 "), "{line}");
    assert!(body == data, "the streamed bytes differ");
    let finished = wait_for(Duration::from_secs(60), || {
        let (_, body) = get(&reader, &format!("/api/v1/transfers/{infohash}"));
        let view: serde_json::Value = serde_json::from_slice(&body).ok()?;
        (view["finished"] == true).then_some(())
    });
    assert!(finished.is_some(), "the download did not complete");
    // The node logs a finished download (without naming it): wait for that line, so the log is complete.
    assert!(
        wait_for(Duration::from_secs(30), || reader
            .log()
            .contains("download complete and verified")
            .then_some(()))
        .is_some(),
        "{}",
        reader.log()
    );

    let port_text = format!(":{port}");
    let secrets = [
        "localhost",
        port_text.as_str(),
        "direct-page-for-reader",
        "bridged-page-for-reader",
        title,
        "Unmistakable",
        id.as_str(),
        infohash.as_str(),
        // Short forms a log might print.
        &id[..12],
        &infohash[..12],
    ];
    for (name, node) in [
        ("reader", &reader),
        ("bridge", &bridge),
        ("publisher", &publisher),
    ] {
        let log = node.log();
        assert!(!log.is_empty(), "the {name} logged nothing at all");
        for secret in secrets {
            assert!(
                !log.contains(secret),
                "the {name}'s default log names {secret:?}:\n{log}"
            );
        }
    }

    // Nor the address of a kolokol peer it met: the reader dialled the publisher's wire address.
    assert!(
        !reader.log().contains(&wire),
        "the reader's default log names the publisher's address {wire}:\n{}",
        reader.log()
    );

    // A debug level says, before anything else it logs, what it will reveal.
    let verbose = NodeProcess::start_logging(
        &tmp.path().join("verbose"),
        &["--no-default-bootstrap", "--no-lan"],
        "info,kolokol_node=debug",
    );
    assert!(
        verbose.log().contains("this log will name the sites"),
        "{}",
        verbose.log()
    );
    assert!(
        !publisher.log().contains("this log will name the sites"),
        "the default level warns for nothing"
    );
}
