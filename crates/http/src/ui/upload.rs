//! Browser uploads: `POST /ui/upload?name=F` streams the request body into the data directory chunk by chunk (never
//! holding the file in memory) under [`MAX_UPLOAD_BYTES`]; `POST /ui/publish` publishes finished uploads through the
//! node's publish path, which deletes them afterwards. Both sit behind the token check like every POST.

use std::pin::Pin;

use axum::Json;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_core::Stream;
use kolokol_node::{Api, ApiError, MAX_UPLOAD_BYTES, PublishedView, UploadPublishRequest};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use crate::HttpError;

#[derive(Deserialize)]
pub(crate) struct UploadQuery {
    /// The file's name (no folders).
    name: String,
}

pub(crate) async fn upload(
    State(api): State<Api>,
    Query(query): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, HttpError> {
    let too_large = || {
        HttpError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a file may be at most {MAX_UPLOAD_BYTES} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_UPLOAD_BYTES) {
        return Err(too_large());
    }
    let mut upload = api.upload_create(&query.name).await?;
    match copy_body(body, &mut upload.file).await {
        Ok(size) if size <= MAX_UPLOAD_BYTES => Ok(Json(
            serde_json::json!({ "upload": upload.id, "size": size }),
        )),
        Ok(_) => {
            api.upload_discard(&upload.id).await;
            Err(too_large())
        }
        Err(error) => {
            api.upload_discard(&upload.id).await;
            Err(error)
        }
    }
}

/// Write the body to `file`; stops as soon as it passes the cap (returning a size above it).
async fn copy_body(body: Body, file: &mut tokio::fs::File) -> Result<u64, HttpError> {
    let mut stream = body.into_data_stream();
    let mut written = 0u64;
    while let Some(chunk) = std::future::poll_fn(|cx| Pin::new(&mut stream).poll_next(cx)).await {
        let chunk = chunk.map_err(|e| {
            HttpError::new(StatusCode::BAD_REQUEST, format!("upload interrupted: {e}"))
        })?;
        written = written.saturating_add(chunk.len() as u64);
        if written > MAX_UPLOAD_BYTES {
            return Ok(written);
        }
        file.write_all(&chunk).await.map_err(|e| {
            HttpError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("writing the upload: {e}"),
            )
        })?;
    }
    file.flush().await.map_err(|e| {
        HttpError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("writing the upload: {e}"),
        )
    })?;
    Ok(written)
}

/// Publishes; a refusal because files would keep metadata is answered `409 Conflict` with the files and what each
/// keeps (`{"error", "metadata": [{"file", "kept"}], "hidden"}`), for the page to show before the user confirms with
/// `allow_metadata`. The uploads are deleted either way: the page uploads again after the confirmation.
pub(crate) async fn publish(
    State(api): State<Api>,
    Json(request): Json<UploadPublishRequest>,
) -> Response {
    match api.publish_uploads(request).await {
        Ok(published) => Json::<PublishedView>(published).into_response(),
        Err(error @ ApiError::MetadataKept { .. }) => {
            let message = error.to_string();
            let ApiError::MetadataKept { files, hidden } = error else {
                return HttpError::from(error).into_response();
            };
            // Only the file names go back to the page: the browser never knew the paths of the uploads folder.
            let metadata: Vec<serde_json::Value> = files
                .iter()
                .map(|k| {
                    let name = std::path::Path::new(&k.file)
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    serde_json::json!({ "file": name, "kept": k.kept })
                })
                .collect();
            let body =
                serde_json::json!({ "error": message, "metadata": metadata, "hidden": hidden });
            (StatusCode::CONFLICT, Json(body)).into_response()
        }
        Err(error) => HttpError::from(error).into_response(),
    }
}
