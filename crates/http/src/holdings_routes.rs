//! Routes about held data: replica counts and pins.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use kolokol_node::{Api, PinView, ReplicaView, SharingView};
use serde::Deserialize;

use crate::HttpError;

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/api/v1/records/{id}/replicas", get(replicas))
        .route("/api/v1/pin", post(pin))
        .route("/api/v1/unpin", post(unpin))
        .route("/api/v1/sharing", get(sharing).post(set_sharing))
}

#[derive(Deserialize)]
struct IdRequest {
    id: String,
}

async fn sharing(State(api): State<Api>) -> Json<SharingView> {
    Json(api.sharing())
}

async fn set_sharing(
    State(api): State<Api>,
    Json(request): Json<SharingView>,
) -> Result<Json<SharingView>, HttpError> {
    Ok(Json(api.set_sharing(request.share_watched).await?))
}

async fn replicas(
    State(api): State<Api>,
    Path(id): Path<String>,
) -> Result<Json<ReplicaView>, HttpError> {
    Ok(Json(api.replicas(&id).await?))
}

async fn pin(
    State(api): State<Api>,
    Json(request): Json<IdRequest>,
) -> Result<Json<PinView>, HttpError> {
    Ok(Json(api.pin(&request.id).await?))
}

async fn unpin(
    State(api): State<Api>,
    Json(request): Json<IdRequest>,
) -> Result<Json<PinView>, HttpError> {
    Ok(Json(api.unpin(&request.id).await?))
}
