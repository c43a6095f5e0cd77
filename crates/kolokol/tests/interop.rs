//! A third person opens a kolokol magnet link in an independent BitTorrent client (Debian's libtorrent) and gets
//! the same bytes from a `kolokol up` seeder.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::process::Command;

use common::*;

#[test]
fn libtorrent_downloads_a_kolokol_magnet() {
    let interop = interop_dir();
    let script = interop.join("lt_node.py");
    assert!(
        script.exists(),
        "reference scripts not found at {} (set KOLOKOL_INTEROP_DIR)",
        interop.display()
    );
    let probe = Command::new("/usr/bin/python3")
        .args(["-c", "import libtorrent"])
        .output();
    assert!(
        probe.is_ok_and(|o| o.status.success()),
        "/usr/bin/python3 cannot import libtorrent: install python3-libtorrent (scripts/test.sh does)"
    );

    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("article.bin");
    random_file(&file, 5 * 1024 * 1024 + 12345, 7);
    let seeder = NodeProcess::start(&tmp.path().join("seeder"));
    let published = seeder.json(&["publish", file.to_str().unwrap(), "--title", "Статья"]);
    let magnet = published["magnet"].as_str().unwrap();
    let bt_addr = seeder.json(&["status"])["bt_addr"]
        .as_str()
        .unwrap()
        .to_owned();

    let save = tmp.path().join("lt");
    std::fs::create_dir_all(&save).unwrap();
    let port = free_port();
    let out = Command::new("timeout")
        .args(["120", "/usr/bin/python3"])
        .arg(&script)
        .args([
            "leech",
            "--magnet",
            magnet,
            "--save",
            save.to_str().unwrap(),
        ])
        .args([
            "--port",
            &port.to_string(),
            "--peer",
            &bt_addr,
            "--timeout",
            "90",
            "--tcp-only",
        ])
        .arg("--verify")
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("PASS"),
        "libtorrent leech failed:\n{stdout}\n{}\nseeder log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        seeder.log()
    );
    assert_eq!(sha256_file(&save.join("article.bin")), sha256_file(&file));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
