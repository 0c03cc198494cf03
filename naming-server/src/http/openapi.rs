//! The base of the OpenAPI document: title, description, tags and the
//! bearer scheme. The routes add their paths (see `http/mod.rs`); the
//! tests keep `openapi/naming-server.json` equal to what is served.

use dfs_common::api::patterns::{FileId, FileName, JobId, NodeId, Uint64};
use dfs_common::auth::BearerScheme;
use utoipa::OpenApi;
use utoipa::openapi::OpenApi as Spec;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "dfs naming server",
        description = "File and chunk metadata, storage-node registry and chunk placement for dfs. \
                       Errors are JSON `{\"error\": \"...\"}`. When the server has a token, every \
                       route except /health, /metrics, /openapi.json and /swagger-ui needs \
                       `Authorization: Bearer <token>`."
    ),
    // The constrained strings of parameters: utoipa collects only those of bodies.
    components(schemas(FileId, FileName, JobId, NodeId, Uint64)),
    modifiers(&BearerScheme),
    tags(
        (name = "files", description = "Create, look up, list and delete files"),
        (name = "chunks", description = "Allocate chunk targets, finalize, locate chunks"),
        (name = "distributions", description = "Copy a file to every live node over the storage chain, or seed one from GCS"),
        (name = "nodes", description = "Storage-node registration and heartbeats"),
        (name = "system", description = "Health and metrics"),
    )
)]
struct ApiDoc;

/// Title, description, tags and the security scheme; routes add the paths.
pub fn base() -> Spec {
    ApiDoc::openapi()
}
