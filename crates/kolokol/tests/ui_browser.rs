//! The web UI in a real headless Chromium (Debian's `/usr/bin/chromium`, driven through `chromedriver` over
//! WebDriver on 127.0.0.1), against real `kolokol up` processes on loopback:
//!
//! - a video generated with ffmpeg is published through node A's publish page (upload with progress);
//! - it appears on node B's home page and in B's search;
//! - on B's publication page the video element plays (its currentTime advances) while B, slowed by
//!   `--download-limit`, provably has not finished downloading it;
//! - an author is followed and blocked through B's author page;
//! - a record whose title and description hold `<script>` and `<img onerror>` runs no script.
//!
//! Screenshots of the main pages (and the home page at phone width, 390 px) are saved in `target/ui-screenshots/`.
//! The browser is told to send nothing past loopback (a dead proxy for every other host, no name resolution,
//! background services off). Missing `chromium`, `chromedriver` or `ffmpeg` make these tests fail with a message:
//! `scripts/test.sh` installs them.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{NodeProcess, TestNode, wait_for};
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";

fn require_tool(path: &str, package: &str) -> PathBuf {
    let found = if path.contains('/') {
        Path::new(path).exists().then(|| PathBuf::from(path))
    } else {
        std::env::var_os("PATH").and_then(|dirs| {
            std::env::split_paths(&dirs)
                .map(|d| d.join(path))
                .find(|p| p.exists())
        })
    };
    found.unwrap_or_else(|| {
        panic!("{path} is missing: install the Debian package `{package}` (scripts/test.sh does)")
    })
}

/// A chromedriver process and one browser session; both end when dropped.
struct Browser {
    driver: Child,
    addr: String,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Browser {
        require_tool(CHROMIUM, "chromium");
        let chromedriver = require_tool("chromedriver", "chromium-driver");
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(chromedriver)
            .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let addr = format!("127.0.0.1:{port}");
        let mut browser = Browser {
            driver,
            addr,
            session: String::new(),
            _profile: tempfile::tempdir().unwrap(),
        };
        wait_for(Duration::from_secs(30), || {
            TcpStream::connect(&browser.addr)
                .ok()
                .and_then(|_| browser.call("GET", "/status", None).get("ready").cloned())
                .filter(|ready| ready == true)
        })
        .expect("chromedriver did not become ready");
        let profile = browser._profile.path().to_str().unwrap().to_owned();
        let session = browser.call(
            "POST",
            "/session",
            Some(json!({ "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": CHROMIUM,
                    "args": [
                        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                        "--window-size=1280,900", format!("--user-data-dir={profile}"),
                        "--autoplay-policy=no-user-gesture-required",
                        // Nothing may leave loopback: other hosts go to a dead local proxy and resolve nowhere.
                        "--proxy-server=http://127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        "--disable-default-apps", "--no-first-run", "--disable-domain-reliability",
                        "--disable-features=Translate,MediaRouter,OptimizationHints,AutofillServerCommunication",
                    ],
                },
            }}})),
        );
        browser.session = session["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {session}"))
            .to_owned();
        browser
    }

    /// One WebDriver command; returns its `value`.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n",
            self.addr,
            body.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body.as_bytes()).unwrap();
        let payload = read_response(&mut stream);
        let reply: Value = serde_json::from_slice(&payload).unwrap_or_else(|e| {
            panic!(
                "WebDriver {path}: {e}: {}",
                String::from_utf8_lossy(&payload)
            )
        });
        reply["value"].clone()
    }

    fn session_call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let value = self.call(method, &format!("/session/{}{path}", self.session), body);
        if let Some(error) = value.get("error") {
            panic!("WebDriver {path}: {error}: {}", value["message"]);
        }
        value
    }

    fn open(&self, url: &str) {
        self.session_call("POST", "/url", Some(json!({ "url": url })));
    }

    fn run(&self, script: &str) -> Value {
        self.session_call(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
    }

    fn element(&self, css: &str) -> String {
        let found = self.session_call(
            "POST",
            "/element",
            Some(json!({ "using": "css selector", "value": css })),
        );
        found
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}"))
            .to_owned()
    }

    fn type_into(&self, css: &str, text: &str) {
        let element = self.element(css);
        self.session_call(
            "POST",
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        );
    }

    fn click(&self, css: &str) {
        let element = self.element(css);
        self.session_call(
            "POST",
            &format!("/element/{element}/click"),
            Some(json!({})),
        );
    }

    fn body_text(&self) -> String {
        self.run("return document.body.innerText;")
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    /// Wait (bounded) until the page's text contains `needle`, reloading it between looks.
    fn wait_for_text(&self, url: &str, needle: &str) {
        wait_for(Duration::from_secs(60), || {
            self.open(url);
            self.body_text().contains(needle).then_some(())
        })
        .unwrap_or_else(|| {
            panic!(
                "{url} never showed {needle:?}; it shows:\n{}",
                self.body_text()
            )
        });
    }

    fn resize(&self, width: u32, height: u32) {
        self.session_call(
            "POST",
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        );
    }

    fn screenshot(&self, name: &str) {
        let dir = screenshot_dir();
        let data = self.session_call("GET", "/screenshot", None);
        let png = data_encoding::BASE64
            .decode(data.as_str().unwrap().as_bytes())
            .unwrap();
        assert!(
            png.starts_with(b"\x89PNG"),
            "screenshot {name} is not a PNG"
        );
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.call("DELETE", &format!("/session/{}", self.session), None)
            }));
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// The body of one HTTP/1.1 response: by Content-Length, chunked, or to the end (chromedriver may keep the
/// connection open despite `Connection: close`, so the length decides).
fn read_response(stream: &mut TcpStream) -> Vec<u8> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    let split = loop {
        if let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break split;
        }
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "connection closed before the response head");
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let mut body = raw[split + 4..].to_vec();
    let length = head
        .split("\r\n")
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    let chunked = head.contains("transfer-encoding: chunked");
    loop {
        let complete = match length {
            Some(length) => body.len() >= length,
            None => chunked && body.ends_with(b"0\r\n\r\n"),
        };
        if complete {
            break;
        }
        let n = stream.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        body.extend_from_slice(&buf[..n]);
    }
    if chunked { dechunk(&body) } else { body }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&data[..line_end]).trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = line_end + 2;
        out.extend_from_slice(&data[start..start + size]);
        data = &data[(start + size + 2).min(data.len())..];
    }
    out
}

/// `target/ui-screenshots/` of the workspace (created).
fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A 20-second 640x360 VP8 WebM at about 2 Mbit/s (about 5 MB): real, playable, and big enough for B's download
/// limit to matter.
fn make_video(dir: &Path) -> PathBuf {
    let ffmpeg = require_tool("ffmpeg", "ffmpeg");
    let out = dir.join("clip.webm");
    let status = Command::new(ffmpeg)
        .args(["-loglevel", "error", "-nostdin", "-f", "lavfi", "-i"])
        .arg("testsrc=duration=20:size=640x360:rate=25")
        // Noise keeps the encoder from shrinking the test pattern to almost nothing.
        .args(["-vf", "noise=alls=30:allf=t"])
        .args([
            "-c:v",
            "libvpx",
            "-b:v",
            "2M",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
        ])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success(), "ffmpeg failed");
    out
}

/// A GET of the node's JSON API.
fn api_get(node: &NodeProcess, path: &str) -> Value {
    let (_, body) = node.http_get(path, Duration::from_secs(30));
    serde_json::from_slice(&body).unwrap()
}

/// A 160x90 PNG of the video's first frame (a record thumbnail is at most 32 KiB).
fn make_thumbnail(video: &Path) -> PathBuf {
    let out = video.with_file_name("thumb.png");
    let status = Command::new(require_tool("ffmpeg", "ffmpeg"))
        .args(["-loglevel", "error", "-nostdin", "-i"])
        .arg(video)
        .args(["-frames:v", "1", "-vf", "scale=160:90"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success(), "ffmpeg failed");
    assert!(std::fs::metadata(&out).unwrap().len() < 32 * 1024);
    out
}

fn url(node: &NodeProcess, path: &str) -> String {
    format!("http://{}{path}", node.api)
}

#[test]
fn publish_on_a_watch_on_b_while_downloading_follow_and_block() {
    let tmp = tempfile::tempdir().unwrap();
    let video = make_video(tmp.path());
    let video_size = std::fs::metadata(&video).unwrap().len();
    assert!(video_size > 2_000_000, "video too small: {video_size}");
    let a = NodeProcess::start(&tmp.path().join("a"));
    // 150 kB/s: the video takes half a minute to arrive, so playback starts long before the end.
    let b = NodeProcess::start_with(&tmp.path().join("b"), &["--download-limit", "150000"]);
    let a_wire = a.json(&["status"])["wire_addr"]
        .as_str()
        .unwrap()
        .to_owned();
    b.json(&["peer", "add", &a_wire]);
    let a_author = a.json(&["id"])["author_id"].as_str().unwrap().to_owned();

    let browser = Browser::start();
    browser.open(&url(&b, "/"));
    assert!(browser.body_text().contains("kolokol"));

    // Publish through A's page.
    browser.open(&url(&a, "/publish?lang=en"));
    browser.type_into("#files", video.to_str().unwrap());
    browser.type_into("#title", "Test pattern clip");
    browser.type_into(
        "#description",
        "Twenty seconds of colour bars, published from the browser.",
    );
    browser.type_into("#tags", "test, video");
    browser.type_into("#thumbnail", make_thumbnail(&video).to_str().unwrap());
    browser.screenshot("publish");
    browser.click("#publish-button");
    let id = wait_for(Duration::from_secs(120), || {
        let path = browser.run("return window.location.pathname;");
        path.as_str()
            .and_then(|p| p.strip_prefix("/p/"))
            .map(str::to_owned)
    })
    .unwrap_or_else(|| panic!("publishing did not finish: {}", browser.body_text()));
    assert_eq!(a.json(&["show", &id])["title"], "Test pattern clip");

    // It reaches B: home page and search.
    browser.wait_for_text(&url(&b, "/"), "Test pattern clip");
    // The thumbnail travelled inside the record and shows on B's home page.
    let thumbnail_width = wait_for(Duration::from_secs(20), || {
        browser
            .run("const i = document.querySelector('.card img'); return i && i.complete ? i.naturalWidth : 0;")
            .as_u64()
            .filter(|w| *w > 0)
    });
    assert_eq!(
        thumbnail_width,
        Some(160),
        "the thumbnail did not load on B"
    );
    browser.screenshot("home");
    browser.resize(390, 844);
    browser.open(&url(&b, "/"));
    browser.screenshot("home-phone");
    browser.resize(1280, 900);
    browser.open(&url(&b, "/search?q=pattern&media=video"));
    assert!(browser.body_text().contains("Test pattern clip"));
    browser.screenshot("search");

    // Watch on B: the video plays while B is still downloading.
    let infohash = b.json(&["show", &id])["infohash"]
        .as_str()
        .unwrap()
        .to_owned();
    browser.open(&url(&b, &format!("/p/{id}")));
    browser.run(
        "const v = document.getElementById('player'); v.muted = true; v.play(); return v.tagName;",
    );
    let (played, have, total) = wait_for(Duration::from_secs(90), || {
        let time = browser.run("return document.getElementById('player').currentTime;");
        let time = time.as_f64().unwrap_or(0.0);
        // Read B's progress at the same moment the video is seen playing.
        let transfer = api_get(&b, &format!("/api/v1/transfers/{infohash}"));
        (time > 1.0).then(|| {
            (
                time,
                transfer["have_bytes"].as_u64().unwrap(),
                transfer["total_bytes"].as_u64().unwrap(),
            )
        })
    })
    .unwrap_or_else(|| {
        panic!(
            "the video never played: {}\nB's log:\n{}",
            browser.run(
                "const v = document.getElementById('player'); \
                 return [v.currentTime, v.readyState, v.networkState, v.error && v.error.message];"
            ),
            b.log()
        )
    });
    assert!(
        have < total && total == video_size,
        "B had finished ({have}/{total}) when the video was at {played} s"
    );
    browser.screenshot("publication");

    browser.open(&url(&b, "/downloads"));
    // Published from the page under a neutral name: the browser's file name (`clip.webm`) is not signed.
    let downloads = browser.body_text();
    assert!(downloads.contains("video.webm"), "{downloads}");
    assert!(!downloads.contains("clip.webm"), "{downloads}");
    browser.screenshot("downloads");
    browser.open(&url(&b, "/node"));
    assert_eq!(
        browser.run("return document.getElementById('network').textContent;"),
        "kolokol"
    );
    browser.screenshot("node");

    // Follow, then block A's author through B's author page.
    browser.open(&url(&b, &format!("/a/{a_author}")));
    assert!(browser.body_text().contains("Test pattern clip"));
    browser.screenshot("author");
    browser.click("#follow");
    wait_for(Duration::from_secs(20), || {
        let following = b.json(&["following"]);
        following
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["author"] == a_author.as_str())
            .then_some(())
    })
    .expect("follow through the UI did not reach the node");
    browser.wait_for_text(
        &url(&b, &format!("/a/{a_author}")),
        "You follow this author",
    );
    browser.click("#block");
    browser.session_call("POST", "/alert/accept", Some(json!({})));
    wait_for(Duration::from_secs(20), || {
        let blocked = b.json(&["blocked"]);
        blocked
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["author"] == a_author.as_str())
            .then_some(())
    })
    .expect("block through the UI did not reach the node");
    assert!(
        !b.has_record(&id),
        "the blocked author's record is still on B"
    );
    browser.wait_for_text(&url(&b, &format!("/a/{a_author}")), "Blocked");
    browser.screenshot("author-blocked");
}

#[test]
fn hostile_record_text_runs_no_script_in_the_browser() {
    let tmp = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(&tmp.path().join("a"));
    let file = tmp.path().join("note.txt");
    std::fs::write(
        &file,
        "<script>window.__kolokolPwned = 3</script> plain text",
    )
    .unwrap();
    let title = "<script>window.__kolokolPwned=1</script>";
    let published = node.json(&[
        "publish",
        file.to_str().unwrap(),
        "--title",
        title,
        "--description",
        "<img src=x onerror=\"window.__kolokolPwned=2\">",
        "--tag",
        "\"><svg onload=\"window.__kolokolPwned=4\">",
    ]);
    let id = published["id"].as_str().unwrap();
    let browser = Browser::start();
    for path in [
        "/".to_owned(),
        format!("/p/{id}"),
        "/search?q=script".to_owned(),
    ] {
        browser.open(&url(&node, &path));
        // The page's own script ran (it shows the text file), the record's never did.
        if path.starts_with("/p/") {
            wait_for(Duration::from_secs(20), || {
                let text = browser.run("return document.getElementById('player').textContent;");
                text.as_str()
                    .is_some_and(|t| t.contains("plain text"))
                    .then_some(())
            })
            .expect("the text file was not shown");
            assert_eq!(
                browser.run("return document.getElementById('title').textContent;"),
                title
            );
        }
        assert_eq!(
            browser.run("return typeof window.__kolokolPwned;"),
            "undefined",
            "{path}"
        );
        assert_eq!(
            browser.run("return document.querySelectorAll('main script, main svg').length;"),
            0
        );
        assert!(
            browser.body_text().contains(title),
            "{path} does not show the title as text"
        );
    }
    browser.screenshot("hostile-record");
}

/// Issue 12 part 5 in the browser: a photo named `IMG_4471.JPG` and a binary file of a kind the scrubber does not know,
/// naming its author, are published through the page. The first attempt publishes nothing and lists the binary file and
/// what it keeps, with an unticked checkbox; submitting again without ticking it publishes nothing (the browser requires
/// the box); once ticked, the publication goes through, and its files are named `file.bin` and `photo.jpg`.
#[test]
fn the_publish_page_lists_files_keeping_metadata_and_needs_the_checkbox() {
    let tmp = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(&tmp.path().join("a"));
    let photo = tmp.path().join("IMG_4471.JPG");
    std::fs::write(&photo, kolokol_scrub::fixtures::jpeg_with_gps()).unwrap();
    let unknown = tmp.path().join("interview.bin");
    std::fs::write(
        &unknown,
        b"\x00\x01\x02\x03recorded by Anna Ivanova\xFF\xFE",
    )
    .unwrap();
    let count = || node.json(&["list"]).as_array().unwrap().len();
    let before = count();

    let browser = Browser::start();
    browser.open(&url(&node, "/publish?lang=en"));
    browser.type_into(
        "#files",
        &format!("{}\n{}", photo.to_str().unwrap(), unknown.to_str().unwrap()),
    );
    browser.type_into("#title", "Interview");
    browser.click("#publish-button");
    let listed = wait_for(Duration::from_secs(60), || {
        let shown = browser.run(
            "const w = document.getElementById('metadata-warning'); \
             return w && !w.hidden ? document.getElementById('metadata-list').innerText : null;",
        );
        shown.as_str().map(str::to_owned)
    })
    .unwrap_or_else(|| panic!("no metadata warning: {}", browser.body_text()));
    assert!(
        listed.contains("interview.bin") && listed.contains("unknown format"),
        "{listed}"
    );
    assert!(
        !listed.contains("IMG_4471"),
        "the photo is scrubbed: {listed}"
    );
    browser.run("document.getElementById('metadata-warning').scrollIntoView(); return null;");
    browser.screenshot("publish-metadata-warning");
    assert_eq!(count(), before, "nothing published before the confirmation");
    assert_eq!(
        browser.run("return document.getElementById('allow-metadata').checked;"),
        false
    );

    // Submitting without ticking: the browser refuses the form (the box is required), nothing is sent.
    browser.click("#publish-button");
    assert_eq!(
        browser.run("return document.getElementById('publish-form').checkValidity();"),
        false
    );
    assert_eq!(browser.run("return window.location.pathname;"), "/publish");
    assert_eq!(count(), before);

    browser.click("#allow-metadata");
    browser.click("#publish-button");
    let id = wait_for(Duration::from_secs(60), || {
        let path = browser.run("return window.location.pathname;");
        path.as_str()
            .and_then(|p| p.strip_prefix("/p/"))
            .map(str::to_owned)
    })
    .unwrap_or_else(|| panic!("publishing did not finish: {}", browser.body_text()));
    let record = node.json(&["show", &id]);
    let mut paths: Vec<&str> = record["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        ["Interview/file.bin", "Interview/photo.jpg"],
        "{record}"
    );
    assert!(!record.to_string().contains("IMG_4471"), "{record}");
}
