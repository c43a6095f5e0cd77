//! .torrent files through the HTTP API (router in memory, real node): a publication's torrent with its headers, the
//! publication page's link, and `POST /get/torrent` refusing what is not a usable torrent without changing anything.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tower::ServiceExt;

mod common;

use common::{HOST, node};

async fn send(
    router: &axum::Router,
    request: Request<Body>,
) -> (StatusCode, header::HeaderMap, Vec<u8>) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 64 << 20)
        .await
        .unwrap();
    (status, headers, bytes.to_vec())
}

fn get(uri: &str) -> Request<Body> {
    Request::builder()
        .uri(uri)
        .header("host", HOST)
        .body(Body::empty())
        .unwrap()
}

/// A read of the JSON API: it needs the token.
fn api_get(uri: &str, token: &str) -> Request<Body> {
    Request::builder()
        .uri(uri)
        .header("host", HOST)
        .header(kolokol_http::TOKEN_HEADER, token)
        .body(Body::empty())
        .unwrap()
}

fn post_torrent(token: Option<&str>, body: Vec<u8>) -> Request<Body> {
    let mut request = Request::builder()
        .method("POST")
        .uri("/api/v1/get/torrent")
        .header("host", HOST)
        .header("content-type", kolokol_http::TORRENT_CONTENT_TYPE);
    if let Some(token) = token {
        request = request.header(kolokol_http::TOKEN_HEADER, token);
    }
    request.body(Body::from(body)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publication_torrent_is_served_linked_and_bad_uploads_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let node = node(&tmp.path().join("n")).await;
    let api = node.api();
    let token = api.token().to_owned();
    let router = kolokol_http::router(api.clone());

    let file = tmp.path().join("доклад.txt");
    // Plain text (nothing to scrub), published under its own name: the .torrent is named after it.
    std::fs::write(&file, "текст доклада. ".repeat(2_000)).unwrap();
    let published = api
        .publish(
            serde_json::from_value(
                serde_json::json!({ "paths": [file], "title": "t", "keep_names": true }),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let record = api.show(&published.id).await.unwrap();

    let (status, headers, body) = send(
        &router,
        api_get(&format!("/api/v1/records/{}/torrent", published.id), &token),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers[header::CONTENT_TYPE],
        kolokol_http::TORRENT_CONTENT_TYPE
    );
    assert_eq!(headers["cross-origin-resource-policy"], "same-origin");
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    let disposition = headers[header::CONTENT_DISPOSITION].to_str().unwrap();
    assert!(
        disposition.contains("filename*=UTF-8''%D0%B4%D0%BE%D0%BA%D0%BB%D0%B0%D0%B4.txt.torrent"),
        "{disposition}"
    );
    assert!(
        body.starts_with(b"d4:infod"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    let info = &body[b"d4:info".len()..body.len() - 1];
    assert_eq!(hex::encode(sha1_of(info)), record.infohash);

    let (status, _, _) = send(
        &router,
        api_get(
            &format!("/api/v1/records/{}/torrent", "ab".repeat(32)),
            &token,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = send(&router, api_get("/api/v1/records/nonsense/torrent", &token)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Without the token the API answers nothing.
    let (status, _, _) = send(
        &router,
        get(&format!("/api/v1/records/{}/torrent", published.id)),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The page's link (a link cannot carry the token) gives the same file to the node's own page, and nothing to
    // another site.
    let (status, _, linked) = send(&router, get(&format!("/torrent/{}", published.id))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(linked, body);
    let cross_site = Request::builder()
        .uri(format!("/torrent/{}", published.id))
        .header("host", HOST)
        .header("sec-fetch-site", "cross-site")
        .body(Body::empty())
        .unwrap();
    let (status, _, _) = send(&router, cross_site).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The publication page links the file.
    let (status, _, page) = send(&router, get(&format!("/p/{}", published.id))).await;
    assert_eq!(status, StatusCode::OK);
    let page = String::from_utf8(page).unwrap();
    assert!(
        page.contains(&format!("href=\"/torrent/{}\"", published.id)),
        "no .torrent link on the page"
    );

    // Starting a download from a file needs the token, like every POST.
    let (status, _, _) = send(&router, post_torrent(None, body.clone())).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let transfers_before = api.status().await.unwrap().transfers;
    let mut truncated = body.clone();
    truncated.pop();
    let too_big = vec![b'd'; kolokol_node::MAX_TORRENT_FILE_BYTES + 1];
    for (bad, why) in [
        (b"not bencode at all".to_vec(), "bencode"),
        (truncated, "bencode"),
        (b"d3:fooi1ee".to_vec(), "no info"),
        (
            b"d4:infod6:lengthi10e4:name2:..12:piece lengthi16384e6:pieces20:01234567890123456789ee".to_vec(),
            "unsafe",
        ),
    ] {
        let (status, _, answer) = send(&router, post_torrent(Some(&token), bad)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap();
        let message = answer["error"].as_str().unwrap();
        assert!(message.starts_with("not a usable .torrent file"), "{message}");
        assert!(message.contains(why), "{message} should say {why}");
    }
    let (status, _, _) = send(&router, post_torrent(Some(&token), too_big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(api.status().await.unwrap().transfers, transfers_before);

    // Our own file given back joins the seed it describes (the record's id in the view).
    let (status, _, answer) = send(&router, post_torrent(Some(&token), body)).await;
    assert_eq!(status, StatusCode::OK);
    let view: serde_json::Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(view["id"], published.id.as_str());
    assert_eq!(view["infohash"], record.infohash.as_str());
    assert_eq!(api.status().await.unwrap().transfers, transfers_before);
    node.shutdown().await;
}

fn sha1_of(bytes: &[u8]) -> [u8; 20] {
    use sha1::Digest;
    sha1::Sha1::digest(bytes).into()
}
