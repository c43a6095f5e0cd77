//! Routes of `/api/v1`. Request and response bodies are JSON; shapes are the node's views (docs/cli.md).

use std::path::PathBuf;

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router, middleware};
use kolokol_node::{
    Api, BlockedView, FollowView, IdView, IdentityView, PeerView, PublishRequest, PublishedView,
    RecordView, SearchRequest, StatusView, TransferView,
};
use serde::Deserialize;

use crate::HttpError;
use crate::guard::check_request;

type Result<T> = std::result::Result<Json<T>, HttpError>;

/// The API router, with the Host and token checks in front of every route.
pub fn router(api: Api) -> Router {
    Router::new()
        .route("/api/v1/id", get(id))
        .route("/api/v1/status", get(status))
        .route("/api/v1/records", get(list))
        .route("/api/v1/records/{id}", get(show))
        .route("/api/v1/search", get(search))
        .route("/api/v1/publish", post(publish))
        .route("/api/v1/get", post(start_get))
        .route("/api/v1/transfers/{infohash}", get(transfer))
        .route("/api/v1/peers", get(peers).post(peer_add))
        .route("/api/v1/following", get(following))
        .route("/api/v1/blocked", get(blocked))
        .route("/api/v1/block", post(block))
        .route("/api/v1/unblock", post(unblock))
        .route("/api/v1/follow", post(follow))
        .route("/api/v1/unfollow", post(unfollow))
        .route("/api/v1/identities", get(identities))
        .route("/api/v1/identities/unlock", post(identity_unlock))
        .merge(crate::proxy_routes::routes())
        .merge(crate::bundle_routes::routes())
        .merge(crate::gateway::routes())
        .merge(crate::ui::routes())
        .merge(crate::holdings_routes::routes())
        .merge(crate::torrent_routes::routes())
        .layer(middleware::from_fn_with_state(api.clone(), check_request))
        .with_state(api)
}

async fn id(State(api): State<Api>) -> Json<IdView> {
    Json(api.id())
}

async fn identities(State(api): State<Api>) -> Json<Vec<IdentityView>> {
    Json(api.identities())
}

#[derive(Deserialize)]
struct UnlockRequest {
    name: String,
    /// For a sealed identity; the node keeps the key, never the passphrase.
    passphrase: Option<String>,
}

async fn identity_unlock(
    State(api): State<Api>,
    Json(request): Json<UnlockRequest>,
) -> Result<IdentityView> {
    Ok(Json(
        api.identity_unlock(&request.name, request.passphrase)
            .await?,
    ))
}

async fn status(State(api): State<Api>) -> Result<StatusView> {
    Ok(Json(api.status().await?))
}

async fn blocked(State(api): State<Api>) -> Result<Vec<BlockedView>> {
    Ok(Json(api.blocked().await?))
}

async fn block(State(api): State<Api>, Json(request): Json<AuthorRequest>) -> Result<BlockedView> {
    Ok(Json(api.block(&request.author).await?))
}

async fn unblock(
    State(api): State<Api>,
    Json(request): Json<AuthorRequest>,
) -> Result<serde_json::Value> {
    api.unblock(&request.author).await?;
    Ok(Json(serde_json::json!({ "unblocked": request.author })))
}

async fn following(State(api): State<Api>) -> Result<Vec<FollowView>> {
    Ok(Json(api.following().await?))
}

#[derive(Deserialize)]
struct AuthorRequest {
    author: String,
}

async fn follow(State(api): State<Api>, Json(request): Json<AuthorRequest>) -> Result<FollowView> {
    Ok(Json(api.follow(&request.author).await?))
}

async fn unfollow(
    State(api): State<Api>,
    Json(request): Json<AuthorRequest>,
) -> Result<serde_json::Value> {
    api.unfollow(&request.author).await?;
    Ok(Json(serde_json::json!({ "unfollowed": request.author })))
}

#[derive(Deserialize)]
struct Paging {
    limit: Option<u32>,
    offset: Option<u64>,
}

async fn list(State(api): State<Api>, Query(paging): Query<Paging>) -> Result<Vec<RecordView>> {
    Ok(Json(
        api.list(paging.limit.unwrap_or(100), paging.offset.unwrap_or(0))
            .await?,
    ))
}

async fn search(
    State(api): State<Api>,
    Query(request): Query<SearchRequest>,
) -> Result<Vec<RecordView>> {
    Ok(Json(api.search(&request).await?))
}

async fn show(State(api): State<Api>, Path(id): Path<String>) -> Result<RecordView> {
    Ok(Json(api.show(&id).await?))
}

async fn publish(
    State(api): State<Api>,
    Json(request): Json<PublishRequest>,
) -> Result<PublishedView> {
    Ok(Json(api.publish(request).await?))
}

#[derive(Deserialize)]
struct GetRequest {
    /// A publication id or a magnet link.
    target: String,
    /// Absolute folder to download into; default: the node's data directory.
    out_dir: Option<PathBuf>,
}

async fn start_get(
    State(api): State<Api>,
    Json(request): Json<GetRequest>,
) -> Result<TransferView> {
    Ok(Json(api.get(&request.target, request.out_dir).await?))
}

async fn transfer(State(api): State<Api>, Path(infohash): Path<String>) -> Result<TransferView> {
    Ok(Json(api.transfer(&infohash).await?))
}

async fn peers(State(api): State<Api>) -> Result<Vec<PeerView>> {
    Ok(Json(api.peers().await?))
}

#[derive(Deserialize)]
struct PeerAddRequest {
    addr: String,
}

async fn peer_add(State(api): State<Api>, Json(request): Json<PeerAddRequest>) -> Result<PeerView> {
    Ok(Json(api.peer_add(&request.addr).await?))
}
