//! The HTTP API: one handler module per resource, each handler only
//! extracting input, calling the domain and shaping the reply. Errors are
//! mapped to statuses once, in [`error`].
//!
//! - `files`, `chunks`, `nodes`, `distributions`, `system`: the handlers,
//!   documented for OpenAPI (utoipa).
//! - `observe`: request spans (the bearer-token check is
//!   `dfs_common::http::require_token`, the latency metrics
//!   `dfs_common::metrics::observe_requests`, both shared with the storage
//!   servers).
//! - `openapi`: the document's base.
//! - `ui`: the operators' page at `/ui`.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use dfs_common::http::require_token;
use dfs_common::metrics::observe_requests;
use tower_http::trace::TraceLayer;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

use crate::domain::Naming;

mod chunks;
mod distributions;
mod error;
mod files;
mod nodes;
mod observe;
mod openapi;
mod system;
mod ui;

/// Largest request body: a finalize of a very large file lists every chunk.
const MAX_BODY_BYTES: usize = 64 << 20;

/// The API routes behind the token check, and the open ones, with their
/// OpenAPI documentation.
fn routers() -> (OpenApiRouter<Naming>, OpenApiRouter<Naming>) {
    let protected = OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(nodes::register_storage))
        .routes(routes!(nodes::heartbeat))
        .routes(routes!(nodes::report_chunks))
        .routes(routes!(nodes::list_nodes))
        .routes(routes!(nodes::forget_node))
        .routes(routes!(files::init_file))
        .routes(routes!(files::find_files))
        .routes(routes!(files::get_file, files::delete_file))
        .routes(routes!(files::get_file_size))
        .routes(routes!(files::repair_file))
        .routes(routes!(chunks::allocate_chunk))
        .routes(routes!(chunks::finalize_file))
        .routes(routes!(chunks::get_chunk_location))
        .routes(routes!(chunks::report_suspect))
        .routes(routes!(
            distributions::start_distribution,
            distributions::list_distributions
        ))
        .routes(routes!(distributions::get_distribution))
        .routes(routes!(distributions::report_progress));
    let public = OpenApiRouter::new()
        .routes(routes!(system::get_health))
        .routes(routes!(system::get_metrics));
    (protected, public)
}

/// The whole HTTP service. When the cluster has a token, every route but
/// health, metrics and the docs needs `Authorization: Bearer <token>`.
pub fn router(naming: Naming) -> Router {
    let (mut protected, public) = routers();
    if let Some(token) = naming.token.clone() {
        protected = protected.route_layer(from_fn_with_state(token, require_token));
    }
    let (router, spec) = protected.merge(public).split_for_parts();
    let metrics = naming.metrics.http.clone();
    router
        .merge(SwaggerUi::new("/swagger-ui").url("/openapi.json", spec))
        .route("/ui", axum::routing::get(ui::page))
        .fallback(system::no_route)
        .layer(from_fn_with_state(metrics, observe_requests))
        .layer(TraceLayer::new_for_http().make_span_with(observe::request_span))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(naming)
}

/// The OpenAPI document, as served on `/openapi.json`.
pub fn spec() -> OpenApi {
    let (protected, public) = routers();
    protected.merge(public).into_openapi()
}
