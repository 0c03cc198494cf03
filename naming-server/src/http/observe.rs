//! The tracing span every request runs in, named after its route (with
//! `file_id` / `node_id` / `job_id` once a handler knows them); its latency
//! goes to the metrics through `dfs_common::metrics::observe_requests`.

use axum::extract::{MatchedPath, Request};
use tracing::Span;

/// The span of one request.
pub fn request_span(request: &Request) -> Span {
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(request.uri().path(), MatchedPath::as_str);
    tracing::info_span!(
        "http",
        method = %request.method(),
        path,
        file_id = tracing::field::Empty,
        node_id = tracing::field::Empty,
        job_id = tracing::field::Empty,
    )
}

/// Puts an id on the current request's span (`file_id`, `node_id` or
/// `job_id`).
pub fn record_span(field: &str, value: &str) {
    Span::current().record(field, value);
}
