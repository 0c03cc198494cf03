//! The OpenAPI description, generated from the handlers' annotations. The
//! committed copy lives in `openapi/storage-server.json`; the `openapi` test
//! fails when the two differ.

use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::{AppState, chain, distribution, routes};

#[derive(OpenApi)]
#[openapi(
    info(title = "dfs storage-server"),
    tags(
        (name = "chunks", description = "Chunk bytes, addressed by chunk id"),
        (name = "distribution", description = "This node's part of distribution jobs; GCS lookups"),
        (name = "health", description = "Liveness and metrics"),
    )
)]
struct ApiDoc;

/// The API routes together with their OpenAPI description.
pub(crate) fn router() -> (axum::Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(utoipa_axum::routes!(
            routes::put_chunk,
            routes::get_chunk,
            routes::head_chunk,
            routes::delete_chunk
        ))
        .routes(utoipa_axum::routes!(chain::replicate))
        .routes(utoipa_axum::routes!(distribution::routes::assign))
        .routes(utoipa_axum::routes!(distribution::routes::gcs_object))
        .routes(utoipa_axum::routes!(routes::health))
        .routes(utoipa_axum::routes!(routes::metrics))
        .split_for_parts()
}

/// The storage server's OpenAPI spec.
pub fn spec() -> utoipa::openapi::OpenApi {
    router().1
}

/// The spec as committed under `openapi/`: pretty JSON and a final newline.
pub fn spec_json() -> String {
    let mut json = spec()
        .to_pretty_json()
        .unwrap_or_else(|err| format!("{{\"error\": \"{err}\"}}"));
    json.push('\n');
    json
}
