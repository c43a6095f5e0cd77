//! Local security of the web UI against a real `kolokol up` process: state-changing requests without the token are
//! refused and change nothing, a foreign Host header is refused (DNS rebinding), hostile record text is escaped in
//! every page, every page carries a strict Content-Security-Policy; plus the language choice and the streamed upload
//! (larger than axum's default body limit) that the publish page uses.
//! (That hostile text also runs no script in a real browser is checked in ui_browser.rs.)

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{NodeProcess, TestNode, random_file};

struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.head
            .split("\r\n")
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    }
}

/// One HTTP/1.1 request (`Connection: close`), the response read to its end.
fn request(api: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(api).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let mut text = format!(
        "{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        text.push_str(&format!("Host: {api}\r\n"));
    }
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    stream.write_all(text.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    Reply {
        status,
        head,
        body: String::from_utf8_lossy(&raw[split + 4..]).into_owned(),
    }
}

fn get(node: &NodeProcess, path: &str) -> Reply {
    request(&node.api, "GET", path, &[], b"")
}

fn token(node: &NodeProcess) -> String {
    std::fs::read_to_string(node.data_dir.join("api.token"))
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
fn state_changes_without_the_token_are_refused_and_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(&tmp.path().join("a"));
    let author = "ab".repeat(32);
    let body = format!(r#"{{"author":"{author}"}}"#);
    let json = ("Content-Type", "application/json");
    for path in ["/api/v1/follow", "/api/v1/block"] {
        for headers in [vec![json], vec![json, ("X-Kolokol-Token", "wrong")]] {
            let reply = request(&node.api, "POST", path, &headers, body.as_bytes());
            assert_eq!(reply.status, 403, "{path}: {}", reply.body);
        }
    }
    let upload = request(
        &node.api,
        "POST",
        "/ui/upload?name=x.bin",
        &[],
        &[7u8; 1000],
    );
    assert_eq!(upload.status, 403);
    let publish = request(
        &node.api,
        "POST",
        "/ui/publish",
        &[json],
        br#"{"uploads":[],"title":"x"}"#,
    );
    assert_eq!(publish.status, 403);

    // Nothing changed: no follow, no block, no upload on disk, no record.
    assert_eq!(node.json(&["following"]), serde_json::json!([]));
    assert_eq!(node.json(&["blocked"]), serde_json::json!([]));
    assert_eq!(node.json(&["list"]), serde_json::json!([]));
    let uploads = node.data_dir.join("uploads");
    assert!(
        !uploads.exists() || std::fs::read_dir(&uploads).unwrap().next().is_none(),
        "a refused upload left files"
    );
}

#[test]
fn a_foreign_host_header_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(&tmp.path().join("a"));
    let port = node.api.rsplit(':').next().unwrap();
    let rebound = format!("attacker.example:{port}");
    for path in ["/", "/node", "/publish", "/assets/app.js", "/api/v1/status"] {
        for host in [rebound.as_str(), "attacker.example", "127.0.0.1:1"] {
            let reply = request(&node.api, "GET", path, &[("Host", host)], b"");
            assert_eq!(reply.status, 403, "{path} with Host {host}");
            assert!(!reply.body.contains("kolokol-token"), "the token leaked");
        }
    }
    assert_eq!(get(&node, "/").status, 200);
    let localhost = format!("localhost:{port}");
    let reply = request(&node.api, "GET", "/", &[("Host", &localhost)], b"");
    assert_eq!(reply.status, 200);
}

#[test]
fn hostile_record_text_is_escaped_on_every_page() {
    let tmp = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(&tmp.path().join("a"));
    let file = tmp.path().join("note.txt");
    std::fs::write(&file, "hello").unwrap();
    let title = "<script>window.__kolokolPwned=1</script>";
    let description = r#"<img src=x onerror="window.__kolokolPwned=2"> & "quotes""#;
    let tag = r#""><svg onload=alert(1)>"#;
    let published = node.json(&[
        "publish",
        file.to_str().unwrap(),
        "--title",
        title,
        "--description",
        description,
        "--tag",
        tag,
    ]);
    let id = published["id"].as_str().unwrap();
    let author = node.json(&["id"])["author_id"].as_str().unwrap().to_owned();
    for path in [
        "/".to_owned(),
        format!("/p/{id}"),
        "/search?q=script".to_owned(),
        format!("/a/{author}"),
    ] {
        let reply = get(&node, &path);
        assert_eq!(reply.status, 200, "{path}");
        let html = &reply.body;
        assert!(
            html.contains("&lt;script&gt;window.__kolokolPwned=1&lt;/script&gt;"),
            "{path}: title not shown escaped"
        );
        for raw in ["<script>window", "<img src=x", "<svg onload"] {
            assert!(!html.contains(raw), "{path} holds raw {raw:?}");
        }
        // The only script element is the node's own file.
        assert_eq!(html.matches("<script").count(), 1, "{path}");
        let csp = reply.header("content-security-policy").unwrap();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"));
        assert_eq!(reply.header("x-frame-options"), Some("DENY"));
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(reply.header("referrer-policy"), Some("no-referrer"));
    }
    let page = get(&node, &format!("/p/{id}")).body;
    assert!(page.contains(
        "&lt;img src=x onerror=&quot;window.__kolokolPwned=2&quot;&gt; &amp; &quot;quotes&quot;"
    ));
    assert!(
        page.contains("&quot;&gt;&lt;svg onload=alert(1)&gt;"),
        "tag not escaped"
    );
}

#[test]
fn language_follows_accept_language_and_the_switch() {
    let tmp = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(&tmp.path().join("a"));
    let ru = request(
        &node.api,
        "GET",
        "/",
        &[("Accept-Language", "ru-RU,ru;q=0.9,en;q=0.5")],
        b"",
    );
    assert!(ru.body.contains("<html lang=\"ru\"") && ru.body.contains("Новые публикации"));
    let en = get(&node, "/node");
    assert!(en.body.contains("<html lang=\"en\"") && en.body.contains("DHT nodes"));

    // ?lang=en wins over the header and is remembered in a cookie; the cookie then wins over the header.
    let switched = request(
        &node.api,
        "GET",
        "/?lang=en",
        &[("Accept-Language", "ru")],
        b"",
    );
    assert!(switched.body.contains("New publications"));
    let cookie = switched.header("set-cookie").unwrap();
    assert!(cookie.starts_with("kolokol_lang=en;") && cookie.contains("SameSite=Strict"));
    let remembered = request(
        &node.api,
        "GET",
        "/search",
        &[("Accept-Language", "ru"), ("Cookie", "kolokol_lang=en")],
        b"",
    );
    assert!(remembered.body.contains("<html lang=\"en\""));
    let back = request(&node.api, "GET", "/search?q=x&lang=ru", &[], b"");
    assert!(back.body.contains("Поиск") && back.body.contains("href=\"/search?q=x&amp;lang=en\""));
}

#[test]
fn a_streamed_upload_larger_than_the_default_body_limit_is_published_and_deleted() {
    let tmp = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(&tmp.path().join("a"));
    let token = token(&node);
    let with_token = ("X-Kolokol-Token", token.as_str());
    let source = tmp.path().join("big.bin");
    random_file(&source, 5 * 1024 * 1024 + 17, 11);
    let bytes = std::fs::read(&source).unwrap();

    for bad in ["..%2Fescape", "a%2Fb", "", ".hidden"] {
        let reply = request(
            &node.api,
            "POST",
            &format!("/ui/upload?name={bad}"),
            &[with_token],
            b"x",
        );
        assert_eq!(reply.status, 400, "name {bad:?}: {}", reply.body);
    }
    let reply = request(
        &node.api,
        "POST",
        "/ui/upload?name=big.bin",
        &[with_token],
        &bytes,
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let upload: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(upload["size"], bytes.len() as u64);
    let id = upload["upload"].as_str().unwrap();
    assert_eq!(
        std::fs::read(node.data_dir.join("uploads").join(id).join("big.bin")).unwrap(),
        bytes
    );

    // Random bytes are an unknown format: published only with the page's confirmation (`allow_metadata`).
    let body = serde_json::json!({
        "uploads": [id], "title": "Big upload", "tags": ["test"], "lang": "en", "allow_metadata": true
    });
    let reply = request(
        &node.api,
        "POST",
        "/ui/publish",
        &[with_token, ("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let published: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    let record = node.json(&["show", published["id"].as_str().unwrap()]);
    assert_eq!(record["title"], "Big upload");
    assert_eq!(record["size"], bytes.len() as u64);
    assert!(
        !node.data_dir.join("uploads").join(id).exists(),
        "the upload was not deleted after publishing"
    );
    // Without the confirmation, a file that would keep metadata is refused with 409 and the list the page shows;
    // nothing is published and the upload is deleted (the page uploads again once the box is ticked).
    let reply = request(
        &node.api,
        "POST",
        "/ui/upload?name=raw.bin",
        &[with_token],
        &bytes[..4096],
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let upload: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    let raw = upload["upload"].as_str().unwrap();
    let unconfirmed = serde_json::json!({ "uploads": [raw], "title": "Raw" });
    let reply = request(
        &node.api,
        "POST",
        "/ui/publish",
        &[with_token, ("Content-Type", "application/json")],
        unconfirmed.to_string().as_bytes(),
    );
    assert_eq!(reply.status, 409, "{}", reply.body);
    let refusal: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(refusal["metadata"][0]["file"], "raw.bin", "{refusal}");
    assert_eq!(
        refusal["metadata"][0]["kept"],
        "unknown format: not scrubbed"
    );
    assert!(!node.data_dir.join("uploads").join(raw).exists());
    assert_eq!(node.json(&["list"]).as_array().unwrap().len(), 1);

    // A publish naming an upload that no longer exists fails and publishes nothing.
    let reply = request(
        &node.api,
        "POST",
        "/ui/publish",
        &[with_token, ("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    );
    assert_eq!(reply.status, 404, "{}", reply.body);
    assert_eq!(node.json(&["list"]).as_array().unwrap().len(), 1);
}
