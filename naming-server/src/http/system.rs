//! Health, metrics and the JSON 404 for unknown routes.

use axum::Json;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use dfs_common::api::{ErrorBody, Health};

use super::error::ApiError;
use crate::domain::{Naming, nodes};

/// `ok` when Redis answers a PING.
#[utoipa::path(get, path = "/health", tag = "system",
    responses(
        (status = 200, body = Health),
        (status = 503, body = ErrorBody, description = "Redis unreachable"),
    ))]
pub async fn get_health(State(naming): State<Naming>) -> Result<Json<Health>, ApiError> {
    naming.check_store().await?;
    Ok(Json(Health {
        status: "ok".into(),
    }))
}

/// Prometheus text: requests by route and status, file and chunk counters,
/// live storage nodes.
#[utoipa::path(get, path = "/metrics", tag = "system",
    responses((status = 200, content_type = "text/plain", body = String)))]
pub async fn get_metrics(State(naming): State<Naming>) -> impl IntoResponse {
    let live = nodes::live(&naming).await.ok().map(|nodes| nodes.len());
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        naming.metrics.render(live),
    )
}

/// Fallback for paths no route matches.
pub async fn no_route() -> ApiError {
    ApiError::NoRoute
}
