//! Requests a browser marks as coming from another site are refused before anything starts (issue 13, part 2), and
//! the API's reads need the token: two real nodes (real SQLite, real engine on loopback), B's router in memory.
//! The same in a real browser: `crates/kolokol/tests/reader_privacy_browser.rs`.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

mod common;

use common::{HOST, node_with};

/// Status and body of one request to `router` with `headers` (and the right Host).
async fn call(router: &axum::Router, uri: &str, headers: &[(&str, &str)]) -> (StatusCode, Vec<u8>) {
    let mut request = Request::builder().uri(uri).header("host", HOST);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, bytes.to_vec())
}

#[tokio::test]
async fn cross_site_gateway_request_is_refused_and_starts_no_transfer() {
    let tmp = tempfile::tempdir().unwrap();
    // No publisher push: B must fetch nothing unless asked.
    let no_push = |c: &mut kolokol_node::NodeConfig| c.replication.replicas = 0;
    let a = node_with(&tmp.path().join("a"), no_push).await;
    let b = node_with(&tmp.path().join("b"), no_push).await;
    let file = tmp.path().join("clip.txt");
    std::fs::write(&file, "a clip someone would rather watch unseen").unwrap();
    let published = a
        .api()
        .publish(
            serde_json::from_value(serde_json::json!({ "paths": [file], "title": "clip" }))
                .unwrap(),
        )
        .await
        .unwrap();
    let wire = a.api().status().await.unwrap().wire_addr;
    b.api().peer_add(&wire).await.unwrap();
    let api = b.api();
    let mut known = false;
    for _ in 0..600 {
        if api.show(&published.id).await.is_ok() {
            known = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(known, "B never received the record");
    let token = api.token().to_owned();
    let router = kolokol_http::router(api.clone());
    let path = format!("/files/{}/0", published.id);

    // A page elsewhere (`<video src>`, `<img src>`, fetch) is refused, in every form a browser marks it.
    for headers in [
        vec![("sec-fetch-site", "cross-site")],
        vec![("sec-fetch-site", "same-site")],
        vec![("origin", "http://127.0.0.1:8080")],
        vec![("origin", "null")],
        vec![("sec-fetch-site", "cross-site"), ("range", "bytes=0-9")],
    ] {
        let (status, body) = call(&router, &path, &headers).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{headers:?}");
        assert!(
            !String::from_utf8_lossy(&body).contains("unseen"),
            "{headers:?}"
        );
        let (status, _) = call(&router, &format!("/thumb/{}", published.id), &headers).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "thumbnail, {headers:?}");
        let (status, _) = call(
            &router,
            "/api/v1/status",
            &[headers[0], ("x-kolokol-token", &token)],
        )
        .await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "status with the token, {headers:?}"
        );
    }
    // Nothing started: B has no transfer of it.
    let transfer = api.transfer(&published.infohash).await;
    assert!(
        matches!(transfer, Err(kolokol_node::ApiError::NotFound(_))),
        "a refused request started a transfer: {transfer:?}"
    );

    // The API's reads need the token.
    for read in [
        "/api/v1/following",
        "/api/v1/status",
        "/api/v1/id",
        "/api/v1/proxy",
    ] {
        let (status, body) = call(&router, read, &[]).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{read}");
        assert!(String::from_utf8_lossy(&body).contains("token"), "{read}");
        let (status, _) = call(&router, read, &[("x-kolokol-token", &token)]).await;
        assert_eq!(status, StatusCode::OK, "{read}");
    }

    // The node's own page (`same-origin`) and a typed address (`none`) still stream.
    for site in ["same-origin", "none"] {
        let (status, body) = call(&router, &path, &[("sec-fetch-site", site)]).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{site}: {}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(body, b"a clip someone would rather watch unseen");
    }
    a.shutdown().await;
    b.shutdown().await;
}
