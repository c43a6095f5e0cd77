//! Routes of the local proxy and the bridges under `/api/v1`. Shapes are the node's proxy views (docs/cli.md). The
//! Host and token guard of [`crate::router`] covers them like every other route.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use kolokol_node::{Api, BridgeView, InvitationInfoView, InvitationView, ProxyStatusView};
use serde::Deserialize;

use crate::HttpError;

type Result<T> = std::result::Result<Json<T>, HttpError>;

/// The proxy and bridge routes, to be merged into the API router before its guard layer.
pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/api/v1/proxy", get(status))
        .route("/api/v1/proxy/rules", post(rule_add))
        .route("/api/v1/proxy/rules/remove", post(rule_remove))
        .route("/api/v1/proxy/forget", post(forget))
        .route("/api/v1/bridges", get(bridges).post(bridge_add))
        .route("/api/v1/bridges/remove", post(bridge_remove))
        .route("/api/v1/bridge/invitations", get(invitations).post(invite))
        .route("/api/v1/bridge/revoke", post(revoke))
}

async fn status(State(api): State<Api>) -> Json<ProxyStatusView> {
    Json(api.proxy().status())
}

#[derive(Deserialize)]
struct RuleRequest {
    /// `PATTERN=direct` or `PATTERN=bridge`.
    rule: String,
}

#[derive(Deserialize)]
struct PatternRequest {
    pattern: String,
}

#[derive(Deserialize)]
struct HostRequest {
    host: String,
}

async fn rule_add(
    State(api): State<Api>,
    Json(request): Json<RuleRequest>,
) -> Result<serde_json::Value> {
    let rules = api.proxy().add_rule(&request.rule)?;
    Ok(Json(serde_json::json!({ "rules": rules })))
}

async fn rule_remove(
    State(api): State<Api>,
    Json(request): Json<PatternRequest>,
) -> Result<serde_json::Value> {
    let rules = api.proxy().remove_rule(&request.pattern)?;
    Ok(Json(serde_json::json!({ "rules": rules })))
}

async fn forget(
    State(api): State<Api>,
    Json(request): Json<HostRequest>,
) -> Result<serde_json::Value> {
    let forgotten = api.proxy().forget(&request.host)?;
    Ok(Json(
        serde_json::json!({ "host": request.host, "forgotten": forgotten }),
    ))
}

async fn bridges(State(api): State<Api>) -> Json<Vec<BridgeView>> {
    Json(api.proxy().bridges())
}

#[derive(Deserialize)]
struct CodeRequest {
    /// A `kolokol-bridge:` invitation code.
    code: String,
}

async fn bridge_add(
    State(api): State<Api>,
    Json(request): Json<CodeRequest>,
) -> Result<BridgeView> {
    Ok(Json(api.proxy().add_bridge(&request.code)?))
}

#[derive(Deserialize)]
struct IdRequest {
    id: String,
}

async fn bridge_remove(
    State(api): State<Api>,
    Json(request): Json<IdRequest>,
) -> Result<serde_json::Value> {
    api.proxy().remove_bridge(&request.id)?;
    Ok(Json(serde_json::json!({ "removed": request.id })))
}

#[derive(Deserialize)]
struct InviteRequest {
    /// The address clients will dial; default: the bridge's listen address when it is a specific one.
    host: Option<String>,
    /// Default: the port the bridge listens on.
    port: Option<u16>,
}

async fn invite(
    State(api): State<Api>,
    Json(request): Json<InviteRequest>,
) -> Result<InvitationView> {
    Ok(Json(
        api.proxy().invite(request.host.as_deref(), request.port)?,
    ))
}

async fn invitations(State(api): State<Api>) -> Result<Vec<InvitationInfoView>> {
    Ok(Json(api.proxy().invitations()?))
}

async fn revoke(
    State(api): State<Api>,
    Json(request): Json<IdRequest>,
) -> Result<serde_json::Value> {
    api.proxy().revoke(&request.id)?;
    Ok(Json(serde_json::json!({ "revoked": request.id })))
}
