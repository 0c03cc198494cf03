//! `POST /chunks/{chunk_id}/replicate`: this node's link of a replication
//! chain (see [`crate::replication`]).

use axum::Json;
use axum::extract::State;
use dfs_common::api::patterns::ChunkId;
use dfs_common::api::{ErrorBody, StoredChunk};
use dfs_common::chain::{ChainErrorBody, ReplicateRequest};
use dfs_common::http::{AppJson, AppPath};

use super::chunks::stored_chunk;
use super::error::ApiError;
use super::state::AppState;

/// Pull a chunk from an upstream node over the peer protocol, store it,
/// then pass it on down the chain. The source must be a registered node's
/// peer address and every downstream node registered at its URL (checked
/// before any connection); the chunk id must be one the naming server
/// makes and, when the cluster has a token, carry its signature.
#[utoipa::path(
    post,
    path = "/chunks/{chunk_id}/replicate",
    tag = "chunks",
    params(("chunk_id" = ChunkId, Path)),
    request_body = ReplicateRequest,
    responses(
        (status = 200, description = "Stored here and on every downstream node", body = StoredChunk),
        (status = 400, description = "Invalid id or request (source address, chain), or an unregistered \
            source or downstream node", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 403, description = "Missing or wrong chunk-id signature", body = ErrorBody),
        (status = 409, description = "Stored here with another CRC32C", body = ErrorBody),
        (status = 413, description = "Size above 64 MiB, or a body over 64 MiB", body = ErrorBody),
        (status = 502, description = "This node or one below failed; `x-dfs-failed-node` names it",
            body = ChainErrorBody),
        (status = 503, description = "The naming server's node list, needed to check the chain, is unreachable",
            body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn replicate_chunk(
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
    AppJson(request): AppJson<ReplicateRequest>,
) -> Result<Json<StoredChunk>, ApiError> {
    state.admission.check(&id, request.signature.as_deref())?;
    let meta = state.replicator.replicate(&id, &request).await?;
    Ok(Json(stored_chunk(id, meta)))
}
