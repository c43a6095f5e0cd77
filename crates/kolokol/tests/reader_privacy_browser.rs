//! A web page on another origin cannot drive or question the reader's node (issue 13, part 2), in a real headless
//! Chromium (Debian's `/usr/bin/chromium`, run with `--dump-dom`) against real `kolokol up` processes on loopback.
//!
//! The test serves a page itself on another loopback port. That page embeds node B's gateway address of a
//! publication B knows but does not hold in `<video autoplay>` and `<img>`, its thumbnail in `<img>`, and fetches
//! `/api/v1/status` and the home page (which carries the token) both with CORS and `no-cors`; it writes what it could
//! observe into its DOM. Afterwards B has started no transfer, its log shows the refusals, and the dumped page
//! holds neither B's node id nor its token. Then B's own publication page is opened the same way: its player loads
//! nothing before the reader presses play (`preload="none"`), so B still holds no transfer.
//!
//! The browser is told to send nothing past loopback (a dead proxy for every other host, no name resolution,
//! background services off). Missing `chromium` makes the test fail with a message: `scripts/test.sh` installs it.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{NodeProcess, TestNode, random_file, wait_for};

const CHROMIUM: &str = "/usr/bin/chromium";

/// Serves `page` as HTML to every request on a fresh loopback port, from a thread, for the test's life.
fn serve_page(page: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
                head.push(byte[0]);
            }
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{page}",
                page.len()
            );
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    addr
}

/// Loads `url` in headless Chromium and returns the DOM once the page settled (bounded: the browser is killed after
/// two minutes).
fn dump_dom(url: &str, profile: &Path) -> String {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: install the Debian package `chromium` (scripts/test.sh does)"
    );
    std::fs::create_dir_all(profile).unwrap();
    let out_path = profile.join("dom.html");
    let out = std::fs::File::create(&out_path).unwrap();
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            &format!("--user-data-dir={}", profile.join("chromium").display()),
            "--autoplay-policy=no-user-gesture-required",
            // Nothing may leave loopback: other hosts go to a dead local proxy and resolve nowhere.
            "--proxy-server=http://127.0.0.1:9",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--no-first-run",
            "--disable-domain-reliability",
            "--disable-features=Translate,MediaRouter,OptimizationHints,AutofillServerCommunication",
            // Virtual time runs only while no request is pending: the page's handlers have all run when it ends.
            "--virtual-time-budget=20000",
            "--dump-dom",
            url,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish loading {url} in two minutes");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::read_to_string(&out_path).unwrap()
}

/// A GET of the node's JSON API with its token; the whole answer.
fn api_get(node: &NodeProcess, path: &str) -> String {
    let (status, body) = node.http_get(path, Duration::from_secs(30));
    format!("{status}\r\n\r\n{}", String::from_utf8_lossy(&body))
}

/// The page another site would serve: every way it has to make the node work or to learn about it.
fn hostile_page(node: &str, id: &str) -> String {
    format!(
        r#"<!doctype html><html><head><title>pending</title></head><body>
<video id="video" autoplay muted preload="auto" src="http://{node}/files/{id}/0"></video>
<img id="file" src="http://{node}/files/{id}/0">
<img id="thumb" src="http://{node}/thumb/{id}">
<pre id="result"></pre>
<script>
const results = {{}};
const expected = 7;
function note(key, value) {{
  results[key] = value;
  document.getElementById('result').textContent = JSON.stringify(results);
  if (Object.keys(results).length === expected) document.title = 'done';
}}
const video = document.getElementById('video');
video.addEventListener('loadedmetadata', () => note('video', 'loaded'));
video.addEventListener('error', () => note('video', 'error'));
for (const name of ['file', 'thumb']) {{
  const img = document.getElementById(name);
  img.addEventListener('load', () => note(name, 'loaded'));
  img.addEventListener('error', () => note(name, 'error'));
}}
fetch('http://{node}/api/v1/status').then(r => r.text())
  .then(t => note('status', 'read: ' + t), e => note('status', 'blocked'));
fetch('http://{node}/api/v1/status', {{ mode: 'no-cors' }})
  .then(r => note('status_opaque', 'type ' + r.type + ' status ' + r.status), e => note('status_opaque', 'blocked'));
fetch('http://{node}/').then(r => r.text())
  .then(t => note('home', 'read: ' + t), e => note('home', 'blocked'));
fetch('http://{node}/files/{id}/0', {{ mode: 'no-cors' }})
  .then(r => note('file_opaque', 'type ' + r.type), e => note('file_opaque', 'blocked'));
</script></body></html>"#
    )
}

#[test]
fn a_page_on_another_origin_starts_no_transfer_and_learns_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let a = NodeProcess::start(&tmp.path().join("a"));
    // B logs the guard's refusals (debug), to show that the browser's requests reached it and were turned away.
    let b = NodeProcess::start_logging(
        &tmp.path().join("b"),
        &[
            "--no-default-bootstrap",
            "--no-lan",
            "--work-bits",
            "8",
            "--replicas",
            "0",
        ],
        "info,librqbit=warn,kolokol_http=debug",
    );
    let file = tmp.path().join("clip.webm");
    random_file(&file, 256 * 1024, 13);
    let published = a.json(&["publish", file.to_str().unwrap(), "--title", "banned clip"]);
    let id = published["id"].as_str().unwrap().to_owned();
    let infohash = published["infohash"].as_str().unwrap().to_owned();
    let wire = a.json(&["status"])["wire_addr"]
        .as_str()
        .unwrap()
        .to_owned();
    b.json(&["peer", "add", &wire]);
    assert!(
        wait_for(Duration::from_secs(60), || b.has_record(&id).then_some(())).is_some(),
        "B never received the record"
    );
    let no_transfer = |when: &str| {
        let answer = api_get(&b, &format!("/api/v1/transfers/{infohash}"));
        assert!(
            answer.starts_with("HTTP/1.1 404"),
            "{when}: B started a transfer: {answer}"
        );
    };
    no_transfer("before the page");

    let page = serve_page(hostile_page(&b.api, &id));
    let dom = dump_dom(&format!("http://{page}/"), tmp.path());
    assert!(
        dom.contains("<title>done</title>"),
        "the page did not finish: {dom}"
    );
    let result = dom
        .split("<pre id=\"result\">")
        .nth(1)
        .and_then(|r| r.split("</pre>").next())
        .unwrap()
        .replace("&quot;", "\"");
    let result: serde_json::Value = serde_json::from_str(&result).unwrap();
    assert_eq!(result["video"], "error", "{result}");
    assert_eq!(result["file"], "error", "{result}");
    assert_eq!(result["thumb"], "error", "{result}");
    assert_eq!(result["status"], "blocked", "{result}");
    assert_eq!(result["home"], "blocked", "{result}");
    let node_id = b.json(&["status"])["node_id"].as_str().unwrap().to_owned();
    assert!(!dom.contains(&node_id), "the page learned B's node id");
    assert!(!dom.contains(&b.token()), "the page learned B's token");
    no_transfer("after the page");
    let refusals = b.log().matches("cross-site request refused").count();
    assert!(
        refusals >= 4,
        "B's log shows {refusals} refused requests; the browser's requests did not reach B?\n{}",
        b.log()
    );

    // B's own publication page: a same-origin player that loads nothing before play.
    let own = dump_dom(&format!("http://{}/p/{id}", b.api), &tmp.path().join("own"));
    assert!(own.contains("preload=\"none\""), "{own}");
    assert!(own.contains(&format!("/files/{id}/0")), "{own}");
    no_transfer("after B's own page");
}
