//! `GET /health` and `GET /metrics`: is this node well, and what has it done.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use dfs_common::api::{ErrorBody, Health};

use super::error::ApiError;
use super::state::AppState;
use crate::metrics::METRICS;

/// `ok` while the data directory is reachable.
///
/// `full` (still 200: the node serves the chunks it holds) after a write
/// ran out of disk space, until space is freed.
#[utoipa::path(
    get,
    path = "/health",
    tag = "health",
    responses(
        (status = 200, description = "Alive: `ok`, or `full` when the disk has no room for new \
            chunks (reads still work)", body = Health),
        (status = 503, description = "The data directory is unreachable", body = ErrorBody),
    )
)]
pub async fn get_health(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    state.store.check().await.map_err(|err| {
        tracing::error!(error = %err, "health check failed");
        ApiError::Unavailable("data directory unreachable".into())
    })?;
    let status = if state.store.is_full() { "full" } else { "ok" };
    Ok(Json(Health {
        status: status.into(),
    }))
}

/// Prometheus text: peer transfer counters (sendfile calls and bytes, bytes
/// received, CRC mismatches), bytes stored from PUT bodies, chunks held.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    responses((status = 200, content_type = "text/plain", body = String))
)]
pub async fn get_metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        METRICS.render(state.store.chunk_count()),
    )
}
