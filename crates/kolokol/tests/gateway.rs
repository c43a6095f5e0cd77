//! The streaming gateway end to end: node A publishes, node B (slowed by a download limit, so that it provably has
//! not finished) serves byte ranges of A's file through its HTTP gateway while it downloads.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{NodeProcess, TestNode, random_file, wait_for};

const MIB: usize = 1024 * 1024;

/// A response read by [`request`].
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request with `Connection: close`, read to the end (bounded by a read time-out).
fn request(api: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut stream = TcpStream::connect(api).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(90)))
        .unwrap();
    let mut text = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        text.push_str(&format!("Host: {api}\r\n"));
    }
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    stream.write_all(text.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

fn wire_addr(node: &NodeProcess) -> String {
    node.json(&["status"])["wire_addr"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn publish(node: &NodeProcess, path: &std::path::Path, title: &str) -> serde_json::Value {
    node.json(&["publish", path.to_str().unwrap(), "--title", title])
}

/// B's transfer of `infohash` through the API: (have_bytes, total_bytes).
fn progress(node: &NodeProcess, infohash: &str) -> (u64, u64) {
    let reply = request(
        &node.api,
        "GET",
        &format!("/api/v1/transfers/{infohash}"),
        &[("X-Kolokol-Token", &node.token())],
    );
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let view: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    (
        view["have_bytes"].as_u64().unwrap(),
        view["total_bytes"].as_u64().unwrap(),
    )
}

#[test]
fn gateway_serves_ranges_while_downloading_and_fails_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    // No publisher push: B must not start fetching before the gateway asks it to.
    let a = NodeProcess::start_with(&tmp.path().join("a"), &["--replicas", "0"]);
    // 1 MiB/s: B needs 24 s for the whole file, so the ranges below are served from a partial download.
    let b = NodeProcess::start_with(
        &tmp.path().join("b"),
        &["--download-limit", "1M", "--stream-timeout-secs", "5"],
    );

    let size = 24 * MIB;
    let file = tmp.path().join("clip.webm");
    random_file(&file, size, 5);
    let data = std::fs::read(&file).unwrap();
    let published = publish(&a, &file, "streamed clip");
    let id = published["id"].as_str().unwrap().to_owned();
    let infohash = published["infohash"].as_str().unwrap().to_owned();

    b.json(&["peer", "add", &wire_addr(&a)]);
    assert!(
        wait_for(Duration::from_secs(60), || b.has_record(&id).then_some(())).is_some(),
        "B never received the record"
    );

    // show --json lists every file with its gateway address.
    let shown = b.json(&["show", &id]);
    let entry = &shown["files"][0];
    assert_eq!(entry["name"], "clip.webm");
    assert_eq!(entry["size"].as_u64(), Some(size as u64));
    assert_eq!(entry["mime"], "video/webm");
    let url = entry["url"].as_str().unwrap();
    let path = format!("/files/{id}/0");
    assert_eq!(url, format!("http://{}{path}", b.api));

    // HEAD answers from the record.
    let head = request(&b.api, "HEAD", &path, &[]);
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(size.to_string().as_str())
    );
    assert_eq!(head.header("accept-ranges"), Some("bytes"));
    assert_eq!(head.header("content-type"), Some("video/webm"));
    assert_eq!(head.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(
        head.header("content-disposition"),
        Some("inline; filename*=UTF-8''clip.webm")
    );
    assert!(head.body.is_empty());

    // The middle first, cold (B has no transfer of it yet): B must fetch those pieces before the ones before them.
    let before = request(
        &b.api,
        "GET",
        &format!("/api/v1/transfers/{infohash}"),
        &[("X-Kolokol-Token", &b.token())],
    );
    assert_eq!(before.status, 404, "B fetches the file already");
    let middle = size / 2 + 12_345;
    let last = middle + 65_535;
    let reply = request(
        &b.api,
        "GET",
        &path,
        &[("Range", &format!("bytes={middle}-{last}"))],
    );
    let (have, total) = progress(&b, &infohash);
    assert_eq!(
        reply.status,
        206,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(
        reply.header("content-range"),
        Some(format!("bytes {middle}-{last}/{size}").as_str())
    );
    assert_eq!(reply.header("content-length"), Some("65536"));
    assert_eq!(reply.header("content-type"), Some("video/webm"));
    assert!(
        reply.body == data[middle..=last],
        "wrong bytes in the middle"
    );
    assert_eq!(total, size as u64);
    assert!(
        have < total,
        "B had finished the download: not a streaming read"
    );

    // The start and the end.
    let reply = request(&b.api, "GET", &path, &[("Range", "bytes=0-99999")]);
    assert_eq!(reply.status, 206);
    assert_eq!(
        reply.header("content-range"),
        Some(format!("bytes 0-99999/{size}").as_str())
    );
    assert!(reply.body == data[..100_000], "wrong bytes at the start");
    let reply = request(&b.api, "GET", &path, &[("Range", "bytes=-1000")]);
    assert_eq!(reply.status, 206);
    assert_eq!(
        reply.header("content-range"),
        Some(format!("bytes {}-{}/{size}", size - 1000, size - 1).as_str())
    );
    assert!(reply.body == data[size - 1000..], "wrong bytes at the end");
    let (have, _) = progress(&b, &infohash);
    assert!(
        have < total,
        "B finished too soon for this test to mean anything"
    );

    // Ranges past the end, unknown publications and files, foreign Host names.
    let reply = request(
        &b.api,
        "GET",
        &path,
        &[("Range", &format!("bytes={size}-"))],
    );
    assert_eq!(reply.status, 416);
    assert_eq!(
        reply.header("content-range"),
        Some(format!("bytes */{size}").as_str())
    );
    let unknown = "ab".repeat(32);
    assert_eq!(
        request(&b.api, "GET", &format!("/files/{unknown}/0"), &[]).status,
        404
    );
    assert_eq!(
        request(&b.api, "GET", &format!("/files/{id}/1"), &[]).status,
        404
    );
    assert_eq!(
        request(&b.api, "GET", &format!("/files/{id}/x"), &[]).status,
        404
    );
    let port = b.api.rsplit(':').next().unwrap();
    let foreign = format!("evil.example:{port}");
    let reply = request(&b.api, "GET", &path, &[("Host", &foreign)]);
    assert_eq!(reply.status, 403);
    assert!(reply.body.len() < 1000, "a refused request got file data");

    // A publication whose only holder stops: the gateway says so after the 5 s stream timeout instead of hanging
    // (the client above gives up only after 90 s, so an answer at all shows it did not hang).
    let lonely = tmp.path().join("lonely.webm");
    random_file(&lonely, 16 * MIB, 6);
    let lonely_id = publish(&a, &lonely, "nobody else has this")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        wait_for(Duration::from_secs(60), || b
            .has_record(&lonely_id)
            .then_some(()))
        .is_some(),
        "B never received the second record"
    );
    assert!(a.stop(), "A did not stop cleanly");
    let reply = request(
        &b.api,
        "GET",
        &format!("/files/{lonely_id}/0"),
        &[("Range", "bytes=-1000")],
    );
    assert!(
        reply.status == 504 || reply.status == 503,
        "expected 504, got {}: {}",
        reply.status,
        String::from_utf8_lossy(&reply.body)
    );
    let error: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert!(
        error["error"].as_str().unwrap().contains("not available"),
        "{error}"
    );
}
