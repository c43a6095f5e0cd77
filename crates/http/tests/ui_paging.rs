//! The web UI's list pages page through long results: search (keeping every criterion across pages), author pages
//! and the home page, against a real node through the router in memory.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

mod common;

use common::{HOST, node};

/// More than two pages of 24.
const PUBLISHED: usize = 50;

async fn get(router: &axum::Router, uri: &str) -> String {
    let request = Request::builder()
        .uri(uri)
        .header("host", HOST)
        .header("accept-language", "en")
        .body(Body::empty())
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{uri}");
    let bytes = axum::body::to_bytes(response.into_body(), 4 << 20)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// The publication ids a page links to, in order (each card links to its publication once or more).
fn cards(page: &str) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for part in page.split("href=\"/p/").skip(1) {
        let id = part.split('"').next().unwrap().to_owned();
        if ids.last() != Some(&id) {
            ids.push(id);
        }
    }
    ids
}

/// The address of the page's link with this `rel`, unescaped.
fn link(page: &str, rel: &str) -> Option<String> {
    let marker = format!("rel=\"{rel}\" href=\"");
    let start = page.find(&marker)? + marker.len();
    let href = &page[start..];
    Some(href[..href.find('"')?].replace("&amp;", "&"))
}

#[tokio::test]
async fn search_author_and_home_pages_page_through_every_result_once() {
    let tmp = tempfile::tempdir().unwrap();
    let node = node(&tmp.path().join("n")).await;
    let api = node.api();
    let token = api.token().to_owned();
    let author = api.id().author_id;
    let router = kolokol_http::router(api);

    for n in 0..PUBLISHED {
        let file = tmp.path().join(format!("{n}.txt"));
        std::fs::write(&file, format!("story {n}")).unwrap();
        // Half the publications match the search below (a Cyrillic word, a tag), half do not.
        let (title, tag) = if n % 2 == 0 {
            (format!("Сказка номер {n}"), "folk tales")
        } else {
            (format!("Report {n}"), "news")
        };
        let body = serde_json::json!({ "paths": [file], "title": title, "tags": [tag] });
        let request = Request::builder()
            .method("POST")
            .uri("/api/v1/publish")
            .header("host", HOST)
            .header(kolokol_http::TOKEN_HEADER, &token)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    // Search: 25 matches, a page of 24 and a page of 1, every criterion kept in the pager's address.
    let first = get(
        &router,
        "/search?q=%D1%81%D0%BA%D0%B0%D0%B7%D0%BA%D0%B0&tag=folk+tales",
    )
    .await;
    let first_ids = cards(&first);
    assert_eq!(first_ids.len(), 24, "{first_ids:?}");
    assert!(link(&first, "prev").is_none());
    let next = link(&first, "next").expect("a link to the second page");
    assert!(
        next.contains("tag=folk+tales") && next.contains("page=1"),
        "{next}"
    );
    let second = get(&router, &next).await;
    let second_ids = cards(&second);
    assert_eq!(second_ids.len(), 1, "{second_ids:?}");
    assert!(link(&second, "next").is_none(), "no page after the last");
    let back = link(&second, "prev").expect("a link back");
    assert_eq!(cards(&get(&router, &back).await), first_ids);
    assert!(!first_ids.contains(&second_ids[0]));

    // The author page and the home page: all 50, in three pages, none twice.
    for start in [format!("/a/{author}"), "/".to_owned()] {
        let mut seen = Vec::new();
        let mut address = Some(start.clone());
        let mut pages = 0;
        while let Some(uri) = address {
            let page = get(&router, &uri).await;
            seen.extend(cards(&page));
            address = link(&page, "next");
            pages += 1;
            assert!(pages <= 3, "{start}: more pages than results");
        }
        assert_eq!(pages, 3, "{start}");
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(
            (seen.len(), unique.len()),
            (PUBLISHED, PUBLISHED),
            "{start}"
        );
    }

    node.shutdown().await;
}
