//! The page shell (head, navigation, language switch) and pieces several pages share. Every value from a record
//! or a request goes through maud's `(...)` interpolation, which escapes it; nothing here builds HTML by hand.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kolokol_node::{Api, ApiError, RecordView};
use maud::{DOCTYPE, Markup, html};

use super::format;
use super::i18n::{self, LANG_COOKIE, Lang, Text};
use crate::HttpError;

/// Which navigation entry a page belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Home,
    Search,
    Publish,
    Downloads,
    Node,
    None,
}

/// What every page handler needs: the language, its strings, the token for the page's script, and the current
/// address (for the language links).
pub(crate) struct Ctx {
    pub lang: Lang,
    pub t: &'static Text,
    token: String,
    path: String,
    other_query: Vec<String>,
    /// `?lang=` was given: remember it in a cookie.
    chosen: bool,
}

impl FromRequestParts<Api> for Ctx {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Ctx, Infallible> {
        let query = parts.uri.query().unwrap_or("");
        let pairs: Vec<&str> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .take(32)
            .collect();
        let query_lang = pairs.iter().find_map(|p| p.strip_prefix("lang="));
        let lang = i18n::choose(query_lang, &parts.headers);
        Ok(Ctx {
            lang,
            t: lang.text(),
            token: api.token().to_owned(),
            path: parts.uri.path().to_owned(),
            other_query: pairs
                .iter()
                .filter(|p| !p.starts_with("lang="))
                .map(|p| (*p).to_owned())
                .collect(),
            chosen: query_lang.and_then(Lang::parse).is_some(),
        })
    }
}

impl Ctx {
    /// This page in another language (keeps the other query parameters).
    fn lang_link(&self, lang: Lang) -> String {
        let mut query = self.other_query.clone();
        query.push(format!("lang={}", lang.code()));
        format!("{}?{}", self.path, query.join("&"))
    }

    pub(crate) fn render(&self, title: &str, nav: Nav, body: Markup) -> Response {
        self.render_status(StatusCode::OK, title, nav, body)
    }

    pub(crate) fn render_status(
        &self,
        status: StatusCode,
        title: &str,
        nav: Nav,
        body: Markup,
    ) -> Response {
        let t = self.t;
        let page = html! {
            (DOCTYPE)
            html lang=(self.lang.code()) {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    meta name="kolokol-token" content=(self.token);
                    title { (title) " · kolokol" }
                    link rel="stylesheet" href="/assets/app.css";
                    link rel="icon" href="/assets/icon.svg";
                    script src="/assets/app.js" defer {}
                }
                body {
                    header.top {
                        a.brand href="/" title=(t.tagline) { img src="/assets/icon.svg" alt="" width="28" height="28"; "kolokol" }
                        nav {
                            a.active[nav == Nav::Home] href="/" { (t.home) }
                            a.active[nav == Nav::Search] href="/search" { (t.search) }
                            a.active[nav == Nav::Publish] href="/publish" { (t.publish) }
                            a.active[nav == Nav::Downloads] href="/downloads" { (t.downloads) }
                            a.active[nav == Nav::Node] href="/node" { (t.node) }
                        }
                        div.langs {
                            a.active[self.lang == Lang::En] href=(self.lang_link(Lang::En)) hreflang="en" { "EN" }
                            a.active[self.lang == Lang::Ru] href=(self.lang_link(Lang::Ru)) hreflang="ru" { "RU" }
                        }
                    }
                    div #flash role="alert" hidden {}
                    main #main { (body) }
                }
            }
        };
        let mut response = (status, page).into_response();
        if self.chosen {
            let cookie = format!(
                "{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Strict",
                self.lang.code()
            );
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
        }
        response
    }

    /// A page that says what went wrong, with the status the API error maps to.
    pub(crate) fn error(&self, error: ApiError) -> Response {
        let error = HttpError::from(error);
        let title = if error.status == StatusCode::NOT_FOUND {
            self.t.not_found
        } else {
            self.t.error
        };
        self.render_status(
            error.status,
            title,
            Nav::None,
            html! { h1 { (title) } p.error { (error.message) } },
        )
    }
}

/// What a file's MIME type lets the browser do with it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Video,
    Audio,
    Image,
    Text,
    Other,
}

pub(crate) fn kind_of(mime: &str) -> Kind {
    let mime = mime.to_ascii_lowercase();
    if mime.starts_with("video/") {
        Kind::Video
    } else if mime.starts_with("audio/") {
        Kind::Audio
    } else if mime.starts_with("image/") && mime != "image/svg+xml" {
        // SVG can carry script; it is offered as a download, never shown.
        Kind::Image
    } else if mime.starts_with("text/") || mime == "application/json" {
        Kind::Text
    } else {
        Kind::Other
    }
}

/// The kind of a publication: that of its first file the browser can show.
pub(crate) fn record_kind(record: &RecordView) -> Kind {
    record
        .files
        .iter()
        .map(|f| kind_of(&f.mime))
        .find(|k| *k != Kind::Other)
        .unwrap_or(Kind::Other)
}

fn kind_label(t: &Text, kind: Kind) -> &'static str {
    match kind {
        Kind::Video => t.video,
        Kind::Audio => t.audio,
        Kind::Image => t.image,
        Kind::Text => t.text,
        Kind::Other => t.other,
    }
}

/// A publication in a list: thumbnail (or a placeholder naming its kind), title, author, date, size.
pub(crate) fn card(t: &Text, record: &RecordView, has_thumbnail: bool) -> Markup {
    let kind = record_kind(record);
    html! {
        article.card {
            a.thumb href={ "/p/" (record.id) } {
                @if has_thumbnail {
                    img src={ "/thumb/" (record.id) } alt="" loading="lazy";
                } @else {
                    span.placeholder { (kind_label(t, kind)) }
                }
            }
            div.card-body {
                h3 { a.title href={ "/p/" (record.id) } { (record.title) } }
                p.meta {
                    a href={ "/a/" (record.author) } title=(record.author) { (format::short(&record.author)) }
                    " · " (format::date(record.created))
                    " · " (format::bytes(record.size))
                    @if let Some(lang) = &record.lang { " · " (lang) }
                }
            }
        }
    }
}

/// A list of cards, or a line saying there is nothing.
/// Links to the newer and older page of a list. `href` makes a page's address; `has_older` says whether a page
/// follows this one.
pub(crate) fn pager(t: &Text, href: impl Fn(u64) -> String, page: u64, has_older: bool) -> Markup {
    html! {
        nav.pager {
            @if page > 0 { a rel="prev" href=(href(page - 1)) { (t.newer) } }
            @if has_older { a rel="next" href=(href(page + 1)) { (t.older) } }
        }
    }
}

/// Whether each record has a thumbnail, for [`cards`].
pub(crate) async fn thumbnails(api: &Api, records: &[RecordView]) -> Vec<bool> {
    let mut has = Vec::with_capacity(records.len());
    for record in records {
        has.push(api.thumbnail(&record.id).await.is_ok_and(|t| t.is_some()));
    }
    has
}

/// `has_thumbnail` from [`thumbnails`], one per record.
pub(crate) fn cards(
    t: &Text,
    records: &[RecordView],
    has_thumbnail: &[bool],
    empty: &str,
) -> Markup {
    html! {
        @if records.is_empty() {
            p.empty { (empty) }
        } @else {
            div.cards {
                @for (record, thumbnail) in records.iter().zip(has_thumbnail.iter().chain(std::iter::repeat(&false))) {
                    (card(t, record, *thumbnail))
                }
            }
        }
    }
}

/// A labelled progress bar for a transfer.
pub(crate) fn progress(have: u64, total: u64) -> Markup {
    let percent = format::percent(have, total);
    html! {
        div.progress {
            progress value=(percent) max="100" {}
            span { (percent) "% · " (format::bytes(have)) " / " (format::bytes(total)) }
        }
    }
}
