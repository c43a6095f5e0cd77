//! Bundle routes under `/api/v1`: export records and their data to a file, import one. Paths are absolute paths on
//! the node's machine, as for `publish`. Shapes are the node's bundle views (docs/cli.md). The Host and token guard
//! of [`crate::router`] covers them like every other route.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use kolokol_node::{
    Api, BundleExportRequest, BundleExportView, BundleImportRequest, BundleImportView,
};

use crate::HttpError;

type Result<T> = std::result::Result<Json<T>, HttpError>;

/// The bundle routes, to be merged into the API router before its guard layer.
pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/api/v1/bundle/export", post(export))
        .route("/api/v1/bundle/import", post(import))
}

/// `{"out": "/abs/file", "authors": [..], "since": 1700000000, "ids": [..]}`.
async fn export(
    State(api): State<Api>,
    Json(request): Json<BundleExportRequest>,
) -> Result<BundleExportView> {
    Ok(Json(api.bundle_export(request).await?))
}

/// `{"path": "/abs/file"}`.
async fn import(
    State(api): State<Api>,
    Json(request): Json<BundleImportRequest>,
) -> Result<BundleImportView> {
    Ok(Json(api.bundle_import(request).await?))
}
