//! `PUT /test-only/p2p-bandwidth`: changes this node's peer send cap while
//! it runs, so tests can slow a node in the middle of a job. The route
//! exists only when the node was started with
//! `TEST_ONLY_LIMIT_P2P_BANDWIDTH`; it is not part of the API (nor of its
//! OpenAPI description).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::put;

use super::error::ApiError;
use super::state::AppState;
use crate::throttle::Throttle;

/// The route, for a node whose peer sending goes through `throttle`.
pub fn router(throttle: Arc<Throttle>) -> Router<AppState> {
    Router::new().route(
        "/test-only/p2p-bandwidth",
        put(set_p2p_bandwidth).with_state(throttle),
    )
}

/// The body is the new cap, as `TEST_ONLY_LIMIT_P2P_BANDWIDTH` takes it
/// (`25m`: 25 Mbit/s).
async fn set_p2p_bandwidth(
    State(throttle): State<Arc<Throttle>>,
    body: String,
) -> Result<StatusCode, ApiError> {
    let rate = dfs_common::units::parse_bandwidth(body.trim())
        .map_err(|e| ApiError::BadRequest(format!("bandwidth {:?}: {e}", body.trim())))?;
    throttle.set_rate(Some(rate));
    tracing::warn!(bytes_per_sec = rate, "test-only: peer send cap changed");
    Ok(StatusCode::NO_CONTENT)
}
