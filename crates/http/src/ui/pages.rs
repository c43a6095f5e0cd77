//! The list pages: home, search, author, publish form, downloads, node.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use kolokol_node::RecordView;
use kolokol_node::{Api, SearchRequest};
use maud::html;
use serde::{Deserialize, Serialize};

use super::format;
use super::layout::{Ctx, Nav, cards, pager, progress, thumbnails};

/// Publications per page on the home, search and author pages.
const PAGE_SIZE: u32 = 24;
/// Pages beyond this are not offered (the offset stays far from overflowing).
const MAX_PAGE: u64 = 1_000_000;

#[derive(Deserialize)]
pub(crate) struct PageQuery {
    page: Option<u64>,
}

/// The SQL offset of a page, and the limit that fetches one record more than a page, which tells whether an older
/// page follows.
fn page_window(page: u64) -> (u32, u64) {
    (PAGE_SIZE + 1, page * u64::from(PAGE_SIZE))
}

/// Cuts the look-ahead record off a fetched page; returns whether an older page follows.
fn split_page(records: &mut Vec<RecordView>) -> bool {
    let more = records.len() > PAGE_SIZE as usize;
    records.truncate(PAGE_SIZE as usize);
    more
}

pub(crate) async fn home(
    ctx: Ctx,
    State(api): State<Api>,
    Query(query): Query<PageQuery>,
) -> Response {
    let t = ctx.t;
    let page = query.page.unwrap_or(0).min(MAX_PAGE);
    let (limit, offset) = page_window(page);
    let mut records = match api.list(limit, offset).await {
        Ok(records) => records,
        Err(e) => return ctx.error(e),
    };
    let more = split_page(&mut records);
    let thumbs = thumbnails(&api, &records).await;
    let body = html! {
        h1 { (t.newest) }
        (cards(t, &records, &thumbs, t.no_records))
        (pager(t, |n| format!("/?page={n}"), page, more))
    };
    ctx.render(t.newest, Nav::Home, body)
}

#[derive(Deserialize, Serialize, Default)]
pub(crate) struct SearchForm {
    #[serde(skip_serializing_if = "Option::is_none")]
    q: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    media: Option<String>,
    /// The publications' language (`lang` in the address is the UI's own language switch).
    #[serde(skip_serializing_if = "Option::is_none")]
    language: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tag: Option<String>,
    /// day, week, month or year.
    #[serde(skip_serializing_if = "Option::is_none")]
    period: Option<String>,
    /// Not part of the search itself: the pager writes it after the rest.
    #[serde(skip_serializing)]
    page: Option<u64>,
}

fn period_secs(period: &str) -> Option<u64> {
    match period {
        "day" => Some(86_400),
        "week" => Some(7 * 86_400),
        "month" => Some(31 * 86_400),
        "year" => Some(366 * 86_400),
        _ => None,
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub(crate) async fn search(
    ctx: Ctx,
    State(api): State<Api>,
    Query(form): Query<SearchForm>,
) -> Response {
    let t = ctx.t;
    let language = form.language.clone().unwrap_or_default();
    let media = form.media.clone().unwrap_or_default();
    let period = form.period.clone().unwrap_or_default();
    let tag = form.tag.clone().unwrap_or_default();
    let q = form.q.clone().unwrap_or_default();
    let searched = [&q, &media, &tag, &period, &language]
        .iter()
        .any(|v| !v.is_empty());
    let page = form.page.unwrap_or(0).min(MAX_PAGE);
    let (limit, offset) = page_window(page);
    let request = SearchRequest {
        q: Some(q.clone()),
        tag: Some(tag.clone()),
        lang: Some(language.clone()),
        media: Some(media.clone()),
        since: period_secs(&period).map(|s| unix_now().saturating_sub(s)),
        limit: Some(limit),
        offset: Some(offset),
        ..SearchRequest::default()
    };
    let mut found = if searched {
        api.search(&request).await
    } else {
        api.list(limit, offset).await
    };
    let more = found.as_mut().map(split_page).unwrap_or(false);
    let thumbs = match &found {
        Ok(records) => thumbnails(&api, records).await,
        Err(_) => Vec::new(),
    };
    // The same search, another page: the form's own fields, encoded for an address.
    let criteria = serde_urlencoded::to_string(&form).unwrap_or_default();
    let href = |n: u64| format!("/search?{criteria}&page={n}");
    let options = |value: &str, label: &str, current: &str| {
        html! { option value=(value) selected[value == current] { (label) } }
    };
    let body = html! {
        h1 { (t.search) }
        form.search action="/search" method="get" role="search" {
            input type="search" name="q" value=(q) placeholder=(t.search_placeholder) aria-label=(t.search);
            label { (t.media) " "
                select name="media" {
                    (options("", t.any, &media)) (options("video", t.video, &media))
                    (options("audio", t.audio, &media)) (options("image", t.image, &media))
                    (options("text", t.text, &media)) (options("other", t.other, &media))
                }
            }
            label { (t.period) " "
                select name="period" {
                    (options("", t.any, &period)) (options("day", t.day, &period))
                    (options("week", t.week, &period)) (options("month", t.month, &period))
                    (options("year", t.year, &period))
                }
            }
            label { (t.tag) " " input type="text" name="tag" value=(tag) size="10"; }
            label { (t.language) " " input type="text" name="language" value=(language) size="4"; }
            button type="submit" { (t.find) }
        }
        @match found {
            Ok(records) => {
                (cards(t, &records, &thumbs, t.no_results))
                (pager(t, href, page, more))
            }
            Err(e) => p.error { (e.to_string()) },
        }
    };
    ctx.render(t.search, Nav::Search, body)
}

pub(crate) async fn author(
    ctx: Ctx,
    State(api): State<Api>,
    Path(author): Path<String>,
    Query(query): Query<PageQuery>,
) -> Response {
    let t = ctx.t;
    let page = query.page.unwrap_or(0).min(MAX_PAGE);
    let (limit, offset) = page_window(page);
    let request = SearchRequest {
        author: Some(author.clone()),
        limit: Some(limit),
        offset: Some(offset),
        ..SearchRequest::default()
    };
    // An author that is not a valid id is refused here, so `author` is plain hex in the pager's addresses below.
    let mut records = match api.search(&request).await {
        Ok(records) => records,
        Err(e) => return ctx.error(e),
    };
    let more = split_page(&mut records);
    let thumbs = thumbnails(&api, &records).await;
    // Any of this node's identities: the page offers neither follow nor block for them.
    let own = api.is_own_author(&author);
    let following = api
        .following()
        .await
        .map(|f| f.iter().any(|f| f.author == author))
        .unwrap_or(false);
    let blocked = api
        .blocked()
        .await
        .map(|b| b.iter().any(|b| b.author == author))
        .unwrap_or(false);
    let body = html! {
        h1 { (t.author) }
        p.id { code { (author) } }
        @if own {
            p { (t.this_is_you) }
        } @else {
            @if following { p.state #follow-state { (t.following_now) } }
            @if blocked { p.state #block-state { (t.blocked_now) } }
            div.actions {
                @if following {
                    button #unfollow type="button" data-action="unfollow" data-author=(author) { (t.unfollow) }
                } @else if !blocked {
                    button #follow type="button" data-action="follow" data-author=(author) { (t.follow) }
                }
                @if blocked {
                    button #unblock type="button" data-action="unblock" data-author=(author) { (t.unblock) }
                } @else {
                    button #block.danger type="button" data-action="block" data-author=(author)
                        data-confirm=(t.confirm_block) { (t.block) }
                }
            }
        }
        h2 { (t.publications) }
        (cards(t, &records, &thumbs, t.no_records))
        (pager(t, |n| format!("/a/{author}?page={n}"), page, more))
    };
    ctx.render(t.author, Nav::None, body)
}

pub(crate) async fn publish(ctx: Ctx) -> Response {
    let t = ctx.t;
    let body = html! {
        h1 { (t.publish_title) }
        form #publish-form.stack data-uploading=(t.uploading) data-publishing=(t.publishing)
            data-failed=(t.failed) {
            label { (t.choose_files) input #files type="file" name="files" multiple required; }
            label { (t.title) input #title type="text" name="title" required maxlength="300"; }
            label { (t.description) textarea #description name="description" rows="6" {} }
            label { (t.tags_hint) input #tags type="text" name="tags"; }
            label { (t.lang_hint) input #lang type="text" name="lang" maxlength="35" value=(ctx.lang.code()); }
            label { (t.thumbnail) input #thumbnail type="file" name="thumbnail"
                accept="image/png,image/jpeg,image/webp,image/gif"; }
            label.check { input #keep-names type="checkbox" name="keep_names"; " " (t.keep_names) }
            // Filled by app.js when the node refuses files that would keep metadata; the checkbox is then required.
            div.metadata-warning #metadata-warning hidden {
                p { (t.metadata_warning) }
                ul #metadata-list {}
                p #metadata-hidden hidden {}
                label.check { input #allow-metadata type="checkbox" name="allow_metadata"; " " (t.allow_metadata) }
            }
            div.progress #publish-progress hidden {
                progress #upload-bar value="0" max="100" {}
                span #upload-status {}
            }
            button #publish-button type="submit" { (t.publish) }
        }
    };
    ctx.render(t.publish_title, Nav::Publish, body)
}

pub(crate) async fn downloads(ctx: Ctx, State(api): State<Api>) -> Response {
    let t = ctx.t;
    let transfers = match api.transfers().await {
        Ok(transfers) => transfers,
        Err(e) => return ctx.error(e),
    };
    let sharing = api.sharing().share_watched;
    let body = html! {
        h1 { (t.downloads) }
        // Said plainly: whether what the reader watches is announced, and (below) which of these are.
        section #sharing.sharing {
            p { @if sharing { (t.sharing_on) } @else { (t.sharing_off) } }
            button #sharing-toggle type="button" data-action="sharing" data-share=(if sharing { "false" } else { "true" }) {
                @if sharing { (t.sharing_stop) } @else { (t.sharing_start) }
            }
        }
        @if transfers.is_empty() {
            p.empty { (t.no_transfers) }
        }
        // The page's script reloads this list every two seconds while it is open.
        div #transfers.transfers data-refresh="2000" {
            @for transfer in &transfers {
                article.transfer data-infohash=(transfer.infohash) data-state=(transfer.state) {
                    h3 {
                        @let name = transfer.name.clone().unwrap_or_else(|| transfer.infohash.clone());
                        @if let Some(id) = &transfer.id { a href={ "/p/" (id) } { (name) } } @else { (name) }
                    }
                    (progress(transfer.have_bytes, transfer.total_bytes))
                    p.meta {
                        (t.state) ": " (t.state_name(&transfer.state))
                        " · " (t.peers) ": " (transfer.peers)
                        " · " (t.speed) ": ↓ " (format::bytes(transfer.download_bps)) "/s ↑ "
                        (format::bytes(transfer.upload_bps)) "/s"
                    }
                    p.shared data-shared=(transfer.shared) {
                        @if transfer.shared { (t.shared_yes) } @else { (t.shared_no) }
                    }
                    @if let Some(error) = &transfer.error { p.error { (error) } }
                }
            }
        }
    };
    ctx.render(t.downloads, Nav::Downloads, body)
}

pub(crate) async fn node(ctx: Ctx, State(api): State<Api>) -> Response {
    let t = ctx.t;
    let status = match api.status().await {
        Ok(status) => status,
        Err(e) => return ctx.error(e),
    };
    let storage = api.storage().await;
    let peers = api.peers().await.unwrap_or_default();
    let yes_no = |b: bool| if b { t.yes } else { t.no };
    let body = html! {
        h1 { (t.node) }
        dl.facts {
            dt { (t.network) } dd #network { (status.network) }
            dt { (t.node_id) } dd { code { (status.node_id) } }
            dt { (t.author_id) } dd { a href={ "/a/" (status.author_id) } { code { (status.author_id) } } }
            dt { (t.peers_connected) } dd #peers-connected { (status.peers_connected) }
            dt { (t.peers_known) } dd { (status.peers_known) }
            dt { (t.dht_nodes) } dd #dht-nodes { (status.dht_nodes) }
            dt { (t.reachable) } dd { (yes_no(status.reachable)) }
            dt { (t.records) } dd { (status.records) }
            dt { (t.storage_used) } dd #storage { (format::bytes(storage.used_bytes)) }
            @if let Some(free) = storage.free_bytes { dt { (t.storage_free) } dd { (format::bytes(free)) } }
            dt { (t.data_dir) } dd { code { (status.data_dir.display().to_string()) } }
            dt { (t.addresses) } dd {
                "wire " code { (status.wire_addr) } ", BitTorrent " code { (status.bt_addr) }
                ", DHT " code { (status.dht_addr) }
            }
            dt { (t.version) } dd { (status.version) }
        }
        h2 { (t.peers) }
        table.peers {
            thead { tr { th { (t.address) } th { (t.node_id) } th { (t.connected) } } }
            tbody {
                @for peer in &peers {
                    tr {
                        td { code { (peer.addr) } }
                        td { code { (peer.node_id.as_deref().map(format::short).unwrap_or("")) } }
                        td { (yes_no(peer.connected)) }
                    }
                }
            }
        }
    };
    ctx.render(t.node, Nav::Node, body)
}
