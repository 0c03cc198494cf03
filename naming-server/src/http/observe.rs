//! What every request leaves behind: a tracing span named after its route
//! (with `file_id` / `node_id` / `job_id` once a handler knows them) and a count in
//! the request metrics.

use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Span;

use crate::metrics::Metrics;

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

/// Middleware counting every response by its route template.
pub async fn count(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    metrics.record(&method, &route, response.status().as_u16());
    response
}
