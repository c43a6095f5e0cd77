//! Bad input gets a clear one-line error, a non-zero exit code, and changes nothing.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::process::Output;

use common::*;

fn assert_fails_with(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected exit 1, stderr: {stderr}"
    );
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "error must be one line: {stderr:?}"
    );
    assert!(stderr.starts_with("error: "), "{stderr:?}");
    assert!(
        stderr.to_lowercase().contains(&needle.to_lowercase()),
        "stderr {stderr:?} should mention {needle:?}"
    );
}

#[test]
fn bad_input_is_refused_clearly_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(&tmp.path().join("node"));
    let file = tmp.path().join("a.txt");
    std::fs::write(&file, "hello").unwrap();
    let file = file.to_str().unwrap();

    let missing = tmp.path().join("nope.mp4");
    assert_fails_with(
        &node.cli(&["publish", missing.to_str().unwrap(), "--title", "x"]),
        "no such file",
    );
    assert_fails_with(&node.cli(&["publish", file, "--title", "   "]), "title");
    let long = "д".repeat(5000);
    assert_fails_with(
        &node.cli(&["publish", file, "--title", "ok", "--description", &long]),
        "description",
    );
    assert_fails_with(&node.cli(&["get", &"ab".repeat(32)]), "unknown publication");
    assert_fails_with(&node.cli(&["get", "magnet:?xt=urn:btih:zz"]), "magnet");
    assert_fails_with(&node.cli(&["get", "not-an-id"]), "neither");
    assert_fails_with(
        &node.cli(&["show", &"cd".repeat(32)]),
        "unknown publication",
    );
    assert_fails_with(&node.cli(&["peer", "add", "not an address"]), "address");

    // Nothing was stored by any of that.
    assert_eq!(node.json(&["list"]).as_array().unwrap().len(), 0);
    assert_eq!(node.json(&["status"])["transfers"], 0);

    // A second node on the same data directory is refused, and the first keeps working.
    let second = std::process::Command::new(BIN)
        .args([
            "--data-dir",
            node.data_dir.to_str().unwrap(),
            "--api",
            "127.0.0.1:0",
            "up",
        ])
        .output()
        .unwrap();
    assert_fails_with(&second, "in use by another kolokol node");
    assert!(node.cli(&["status"]).status.success());

    // Bad usage is exit code 2.
    let usage = node.cli(&["publish", file]);
    assert_eq!(
        usage.status.code(),
        Some(2),
        "missing --title is a usage error"
    );
    let usage = node.cli(&["no-such-command"]);
    assert_eq!(usage.status.code(), Some(2));

    // A client with no node to talk to says so.
    let lonely = std::process::Command::new(BIN)
        .args([
            "--api",
            "127.0.0.1:1",
            "--data-dir",
            tmp.path().to_str().unwrap(),
            "status",
        ])
        .output()
        .unwrap();
    assert_fails_with(&lonely, "no kolokol node answers");

    // Files the node wrote are private to the user.
    use std::os::unix::fs::PermissionsExt;
    for key in ["author.key", "api.token"] {
        let mode = std::fs::metadata(node.data_dir.join(key))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{key}");
    }
    // The wire identity is never written (it is new at every start).
    assert!(!node.data_dir.join("node.key").exists());
}
