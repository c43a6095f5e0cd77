//! The HTTP API against a real node (real SQLite file, real engine on loopback), through the router in memory.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

mod common;

use common::{HOST, node};

async fn call(
    router: &axum::Router,
    method: &str,
    uri: &str,
    host: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> (StatusCode, serde_json::Value) {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", host);
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
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, json)
}

#[tokio::test]
async fn host_check_token_and_error_shapes() {
    let tmp = tempfile::tempdir().unwrap();
    let node = node(&tmp.path().join("n")).await;
    let api = node.api();
    let token = api.token().to_owned();
    let router = kolokol_http::router(api);

    // Reads need the token like writes: without it, nothing is answered.
    let (status, body) = call(&router, "GET", "/api/v1/status", HOST, None, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.get("node_id").is_none());
    let (status, body) = call(&router, "GET", "/api/v1/status", HOST, Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["api_addr"], HOST);
    assert!(body["node_id"].as_str().unwrap().len() == 64);

    let (status, _) = call(
        &router,
        "GET",
        "/api/v1/status",
        "localhost:7411",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // DNS rebinding: a page on attacker.example resolving to 127.0.0.1 is refused.
    let (status, body) = call(
        &router,
        "GET",
        "/api/v1/status",
        "attacker.example:7411",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body["error"].is_string());

    let file = tmp.path().join("f.txt");
    std::fs::write(&file, "x").unwrap();
    let publish = serde_json::json!({ "paths": [file], "title": "t" });
    let (status, body) = call(
        &router,
        "POST",
        "/api/v1/publish",
        HOST,
        None,
        Some(publish.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = call(
        &router,
        "POST",
        "/api/v1/publish",
        HOST,
        Some("wrong"),
        Some(publish.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let empty_title = serde_json::json!({ "paths": [file], "title": "" });
    let (status, body) = call(
        &router,
        "POST",
        "/api/v1/publish",
        HOST,
        Some(&token),
        Some(empty_title),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("title"), "{body}");

    let (status, body) = call(
        &router,
        "POST",
        "/api/v1/publish",
        HOST,
        Some(&token),
        Some(publish),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();

    let (status, body) = call(
        &router,
        "GET",
        &format!("/api/v1/records/{id}"),
        HOST,
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["title"], "t");
    // Published under a neutral name by type (the default): `f.txt` is not signed into the record.
    assert_eq!(body["files"][0]["path"], "text.txt");
    assert_eq!(body["files"][0]["mime"], "text/plain");

    let (status, _) = call(
        &router,
        "GET",
        "/api/v1/records/nothex",
        HOST,
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let unknown = format!("/api/v1/records/{}", "0".repeat(64));
    let (status, body) = call(&router, "GET", &unknown, HOST, Some(&token), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("unknown publication")
    );

    let (status, body) = call(&router, "GET", "/api/v1/records", HOST, Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.as_array().unwrap().len(), 1);
    node.shutdown().await;
}
