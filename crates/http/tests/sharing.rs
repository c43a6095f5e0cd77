//! The setting "share what I watch" (issue 13, part 1): off by default, said plainly on the Downloads page, changed
//! there (through `POST /api/v1/sharing`, token required), kept across a restart, and overridden by `up`'s explicit
//! choice. Against a real node through the router in memory.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

mod common;

use common::{HOST, node_with};

async fn call(
    router: &axum::Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> (StatusCode, String) {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", HOST)
        .header("accept-language", "en");
    if let Some(token) = token {
        request = request.header(kolokol_http::TOKEN_HEADER, token);
    }
    let request = match body {
        Some(json) => request
            .header("content-type", "application/json")
            .body(Body::from(json.to_string()))
            .unwrap(),
        None => request.body(Body::empty()).unwrap(),
    };
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 4 << 20)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn sharing_what_one_watches_is_off_by_default_said_on_the_page_and_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("n");
    let node = node_with(&dir, |_| {}).await;
    let token = node.api().token().to_owned();
    let router = kolokol_http::router(node.api());

    let (status, body) = call(&router, "GET", "/api/v1/sharing", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, r#"{"share_watched":false}"#);
    let (_, page) = call(&router, "GET", "/downloads", None, None).await;
    assert!(page.contains("What you watch is private"), "{page}");
    assert!(page.contains(r#"data-share="true""#), "{page}");

    // Another web page or local account without the token changes nothing.
    let on = serde_json::json!({ "share_watched": true });
    let (status, _) = call(&router, "POST", "/api/v1/sharing", None, Some(on.clone())).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, body) = call(&router, "GET", "/api/v1/sharing", Some(&token), None).await;
    assert_eq!(body, r#"{"share_watched":false}"#);

    let (status, body) = call(&router, "POST", "/api/v1/sharing", Some(&token), Some(on)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, r#"{"share_watched":true}"#);
    let (_, page) = call(&router, "GET", "/downloads", None, None).await;
    assert!(page.contains("Sharing what you watch is on"), "{page}");
    node.shutdown().await;

    // Kept across a restart...
    let node = node_with(&dir, |_| {}).await;
    assert!(node.api().sharing().share_watched);
    node.shutdown().await;
    // ...unless `up` says otherwise.
    let node = node_with(&dir, |c| c.cache.share_watched = Some(false)).await;
    assert!(!node.api().sharing().share_watched);
    node.shutdown().await;
    // A mirror shares by default.
    let mirror = node_with(&tmp.path().join("m"), |c| c.cache.mirror = true).await;
    assert!(mirror.api().sharing().share_watched);
    mirror.shutdown().await;
}
