//! The HTTP API: one module per resource, their shared [`AppState`] and
//! `ApiError` (every failure mapped once to a status and a JSON body), and
//! here the router and the OpenAPI description generated
//! from the handlers' annotations. The committed copy of the spec lives in
//! `openapi/storage-server.json`; the `openapi` test fails when the two
//! differ.
//!
//! - `chunks`: `PUT/GET/HEAD/DELETE /chunks/{chunk_id}`; `range`: what a
//!   `Range` header asks of a chunk (RFC 9110).
//! - `replicate`: `POST /chunks/{chunk_id}/replicate`, a link of a
//!   replication chain.
//! - `distributions`: `POST /distributions` and `GET /gcs/object`.
//! - `system`: `GET /health` and `GET /metrics`.
//! - `test_only`: `PUT /test-only/p2p-bandwidth`, mounted only on a node
//!   started with `TEST_ONLY_LIMIT_P2P_BANDWIDTH`.

mod chunks;
mod distributions;
mod error;
mod range;
mod replicate;
mod state;
mod system;
mod test_only;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath};
use axum::http::Request;
use axum::middleware::from_fn_with_state;
use dfs_common::api::patterns::{ChunkId, Crc32cHeader, GcsObjectUrl, ReplicateToHeader};
use dfs_common::auth::BearerScheme;
use dfs_common::http::require_token;
use dfs_common::metrics::observe_requests;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

pub use state::AppState;

/// Largest JSON request body: an assignment lists every chunk of a file.
const MAX_JSON_BODY: usize = 64 << 20;

/// The base of the spec; the constrained strings parameters and headers
/// refer to are listed, since utoipa collects only those of bodies.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "dfs storage-server",
        description = "Chunk bytes on one node's disk, chain replication, distribution assignments. \
                       Errors are JSON `{\"error\": \"...\"}`. When the cluster has a token, every \
                       route except /health, /metrics, /openapi.json and /swagger-ui needs \
                       `Authorization: Bearer <token>`, and a chunk write needs the naming server's \
                       signature of the chunk id."
    ),
    modifiers(&BearerScheme),
    components(schemas(ChunkId, Crc32cHeader, ReplicateToHeader, GcsObjectUrl)),
    tags(
        (name = "chunks", description = "Chunk bytes, addressed by chunk id"),
        (name = "distribution", description = "This node's part of distribution jobs; GCS lookups"),
        (name = "health", description = "Liveness and metrics"),
    )
)]
struct ApiDoc;

/// The HTTP application: the API routes, `/openapi.json` and Swagger UI at
/// `/swagger-ui`. When the cluster has a token, every route but health,
/// metrics and the docs requires it.
pub fn app(state: AppState) -> Router {
    let (mut protected, public) = routers();
    if let Some(throttle) = state.test_only_p2p_throttle.clone() {
        protected = protected.merge(test_only::router(throttle).into());
    }
    if let Some(token) = state.token.clone() {
        protected = protected.route_layer(from_fn_with_state(token, require_token));
    }
    let (api, spec) = protected.merge(public).split_for_parts();
    let metrics = state.store.metrics().http.clone();
    api.merge(SwaggerUi::new("/swagger-ui").url("/openapi.json", spec))
        .layer(from_fn_with_state(metrics, observe_requests))
        // JSON bodies are buffered up to this limit; chunk bodies are
        // streamed (the limit does not apply to them) and capped by the store.
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                let route = request
                    .extensions()
                    .get::<MatchedPath>()
                    .map_or("-", MatchedPath::as_str);
                // `/chunks/{chunk_id}[/…]`: the chunk a request is about.
                let chunk_id = request
                    .uri()
                    .path()
                    .strip_prefix("/chunks/")
                    .and_then(|rest| rest.split('/').next());
                tracing::info_span!("http", method = %request.method(), route, uri = %request.uri(), chunk_id)
            }),
        )
        .with_state(state)
}

/// The API routes behind the token check, and the open ones, with their
/// OpenAPI description.
fn routers() -> (OpenApiRouter<AppState>, OpenApiRouter<AppState>) {
    let protected = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(utoipa_axum::routes!(
            chunks::put_chunk,
            chunks::get_chunk,
            chunks::head_chunk,
            chunks::delete_chunk
        ))
        .routes(utoipa_axum::routes!(replicate::replicate_chunk))
        .routes(utoipa_axum::routes!(distributions::start_assignment))
        .routes(utoipa_axum::routes!(distributions::get_gcs_object));
    let public = OpenApiRouter::new()
        .routes(utoipa_axum::routes!(system::get_health))
        .routes(utoipa_axum::routes!(system::get_metrics));
    (protected, public)
}

/// The storage server's OpenAPI spec.
pub fn spec() -> utoipa::openapi::OpenApi {
    let (protected, public) = routers();
    protected.merge(public).into_openapi()
}
