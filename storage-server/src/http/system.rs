//! `GET /health` and `GET /metrics`: is this node well, and what has it done.

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use dfs_common::api::{ErrorBody, Health};
use dfs_common::metrics::exposition;

use super::error::ApiError;
use super::state::AppState;

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

/// OpenMetrics text: request latencies by route and status, bytes in and
/// out by path with per-chunk receive rates, peer, integrity, orphan and
/// distribution counters, chunks held and the disk's room.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    responses((status = 200, content_type = "application/openmetrics-text", body = String))
)]
pub async fn get_metrics(State(state): State<AppState>) -> Response {
    let metrics = state.store.metrics();
    let disk = state.store.disk_stats().ok();
    metrics.set_store(
        state.store.chunk_count(),
        state.store.stored_bytes(),
        disk.map(|disk| (disk.free_bytes, disk.capacity_bytes)),
    );
    exposition(metrics.registry())
}
