//! Health, metrics and the JSON 404 for unknown routes.

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use dfs_common::api::{ErrorBody, Health};
use dfs_common::metrics::exposition;

use super::error::ApiError;
use crate::domain::distribution::jobs;
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

/// OpenMetrics text: request latencies by route and status, Redis round
/// trips, file, chunk, repair and distribution counters, live storage nodes
/// and recent jobs by state.
#[utoipa::path(get, path = "/metrics", tag = "system",
    responses((status = 200, content_type = "application/openmetrics-text", body = String)))]
pub async fn get_metrics(State(naming): State<Naming>) -> Response {
    let live = nodes::live(&naming).await.ok().map(|nodes| nodes.len());
    let jobs = jobs::recent(&naming)
        .await
        .ok()
        .map(|list| list.jobs.iter().map(|job| job.state).collect::<Vec<_>>());
    naming.metrics.set_cluster(live, jobs.as_deref());
    exposition(naming.metrics.registry())
}

/// Fallback for paths no route matches.
pub async fn no_route() -> ApiError {
    ApiError::NoRoute
}
