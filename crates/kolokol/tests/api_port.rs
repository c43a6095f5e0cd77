//! `up --api 127.0.0.1:0` listens on a port the system picks, and the CLI finds it through the data directory
//! (issue 13, part 4): a web page cannot find the node at a known port, and the user types no address.

#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::{BIN, NodeProcess, TestNode};

#[test]
fn the_cli_finds_a_node_on_a_picked_port_through_the_data_directory() {
    let tmp = tempfile::tempdir().unwrap();
    // The harness starts every node with `--api 127.0.0.1:0` and reads the address from the node's own output.
    let node = NodeProcess::start(&tmp.path().join("n"));
    assert_ne!(node.api, kolokol_node::DEFAULT_API_ADDR);
    let file = node.data_dir.join("api.addr");
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), node.api);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // No --api and no KOLOKOL_API: the CLI reads the address (and the token) from the data directory.
    let out = Command::new(BIN)
        .args([
            "--data-dir",
            node.data_dir.to_str().unwrap(),
            "--json",
            "status",
        ])
        .env_remove("KOLOKOL_API")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["api_addr"], node.api.as_str());

    // An explicit --api still wins (here: a port where nothing listens, so the CLI says so).
    let out = Command::new(BIN)
        .args([
            "--data-dir",
            node.data_dir.to_str().unwrap(),
            "--api",
            "127.0.0.1:9",
            "status",
        ])
        .env_remove("KOLOKOL_API")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("127.0.0.1:9"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
