//! The publication page (player, files, magnet link, .torrent file) and record thumbnails.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kolokol_node::Api;
use maud::{Markup, html};
use serde::Deserialize;

use super::format;
use super::i18n::Text;
use super::layout::{Ctx, Kind, Nav, kind_of, progress};

/// Thumbnail types shown as images. Anything else (SVG above all, which can carry script) is not served.
const RASTER_IMAGES: [&str; 5] = [
    "image/png",
    "image/jpeg",
    "image/webp",
    "image/gif",
    "image/avif",
];

#[derive(Deserialize)]
pub(crate) struct FileChoice {
    /// Index of the file to show in the player; default: the first one the browser can show.
    file: Option<usize>,
}

/// Where the streaming gateway serves file `index` of a record.
fn file_url(id: &str, index: usize) -> String {
    format!("/files/{id}/{index}")
}

pub(crate) async fn publication(
    ctx: Ctx,
    State(api): State<Api>,
    Path(id): Path<String>,
    Query(choice): Query<FileChoice>,
) -> Response {
    let t = ctx.t;
    let record = match api.show(&id).await {
        Ok(record) => record,
        Err(e) => return ctx.error(e),
    };
    let shown = choice
        .file
        .filter(|i| *i < record.files.len())
        .or_else(|| {
            record
                .files
                .iter()
                .position(|f| kind_of(&f.mime) != Kind::Other)
        })
        .unwrap_or(0);
    let transfer = api.transfer(&record.infohash).await.ok();
    let replicas = api.replicas(&record.id).await.ok();
    let body = html! {
        article.publication {
            h1 #title { (record.title) }
            p.meta {
                (t.author) ": " a #author-link href={ "/a/" (record.author) } title=(record.author) {
                    (format::short(&record.author))
                }
                " · " (t.published) " " (format::date(record.created))
                " · " (t.size) " " (format::bytes(record.size))
                @if let Some(lang) = &record.lang { " · " (lang) }
                @if let Some(replicas) = &replicas {
                    " · " (t.full_copies) ": " span #full-copies { (replicas.full_copies) }
                }
            }
            @if replicas.as_ref().is_some_and(|r| !r.announced) { p.meta #not-announced { (t.not_announced) } }
            @if let Some(file) = record.files.get(shown) {
                section.player { (player(t, &record.id, shown, &file.mime, &record.title)) }
            }
            @if !record.description.is_empty() { p #description.description { (record.description) } }
            @if !record.tags.is_empty() {
                p.tags {
                    (t.tags) ": "
                    @for tag in &record.tags { a.tag href={ "/search?tag=" (format::query_value(tag)) } { (tag) } " " }
                }
            }
            div.actions {
                button #get type="button" data-action="get" data-target=(record.id) { (t.download) }
            }
            div #transfer data-refresh="2000" {
                @if let Some(transfer) = &transfer {
                    (progress(transfer.have_bytes, transfer.total_bytes))
                    p.meta { (t.state) ": " (t.state_name(&transfer.state)) " · " (t.peers) ": " (transfer.peers) }
                }
            }
            h2 { (t.files) }
            ul.files {
                @for (index, file) in record.files.iter().enumerate() {
                    li.current[index == shown] {
                        a href={ "/p/" (record.id) "?file=" (index) } { (file.path) }
                        " " span.meta { (format::bytes(file.size)) " · " (file.mime) }
                        " " a href=(file_url(&record.id, index)) download { "⤓" }
                    }
                }
            }
            h2 { (t.magnet) }
            div.magnet {
                input #magnet type="text" readonly value=(record.magnet) aria-label=(t.magnet);
                button type="button" data-action="copy" data-copy="magnet" { (t.copy) }
                a href=(record.magnet) { "magnet:" }
            }
            // The node has the metadata once a transfer knows its size (published, downloaded, or downloading).
            @if transfer.as_ref().is_some_and(|t| t.total_bytes > 0) {
                p { a #torrent-file href={ "/torrent/" (record.id) } download { (t.torrent_file) } }
            }
        }
    };
    ctx.render(&record.title, Nav::None, body)
}

fn player(t: &Text, id: &str, index: usize, mime: &str, title: &str) -> Markup {
    let url = file_url(id, index);
    html! {
        @match kind_of(mime) {
            Kind::Video => video #player controls preload="none" playsinline src=(url) {},
            Kind::Audio => audio #player controls preload="none" src=(url) {},
            Kind::Image => img #player.viewer src=(url) alt=(title);,
            Kind::Text => pre #player.article data-src=(url) { (t.loading_text) },
            Kind::Other => p.empty { (t.no_player) },
        }
    }
}

/// `GET /thumb/{id}`: the record's thumbnail, served only as a raster image with a policy that forbids everything.
pub(crate) async fn thumbnail(State(api): State<Api>, Path(id): Path<String>) -> Response {
    let thumbnail = match api.thumbnail(&id).await {
        Ok(Some(thumbnail)) => thumbnail,
        Ok(None) => return StatusCode::NOT_FOUND.into_response(),
        Err(e) => return crate::HttpError::from(e).into_response(),
    };
    let mime = thumbnail.mime.to_ascii_lowercase();
    let Some(mime) = RASTER_IMAGES.iter().find(|m| **m == mime) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut response = thumbnail.bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    // A record never changes: its thumbnail can be cached.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=86400, immutable"),
    );
    response
}
