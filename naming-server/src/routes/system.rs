//! Health, metrics and the JSON 404 for unknown routes.

use axum::Json;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use dfs_common::api::{ErrorBody, Health};

use super::live_nodes;
use crate::AppState;
use crate::error::ApiError;

/// `ok` when Redis answers a PING.
#[utoipa::path(get, path = "/health", tag = "system",
    responses(
        (status = 200, body = Health),
        (status = 503, body = ErrorBody, description = "Redis unreachable"),
    ))]
pub async fn health(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    state.store.ping().await?;
    Ok(Json(Health {
        status: "ok".into(),
    }))
}

/// Prometheus text: requests by route and status, file and chunk counters,
/// live storage nodes.
#[utoipa::path(get, path = "/metrics", tag = "system",
    responses((status = 200, content_type = "text/plain", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let live = live_nodes(&state).await.ok().map(|nodes| nodes.len());
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.render(live),
    )
}

/// Fallback for paths no route matches.
pub async fn no_route() -> ApiError {
    ApiError::NotFound("no such route".into())
}
