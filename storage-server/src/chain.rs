//! Chain replication on write. The client PUTs a chunk to the first target
//! only, naming the others in `x-dfs-replicate-to`. Once the chunk is stored
//! here, [`forward`] asks the next node to pull it from this one over the
//! peer protocol (`POST /chunks/{chunk_id}/replicate`); that node does the
//! same for the rest of the chain. Every call returns only when the chunk is
//! durable on all the nodes below it, so the client's PUT is acknowledged
//! only when all replicas are. A failure anywhere below answers 502 naming
//! the node that failed: the one that could not be reached, or the one
//! whose pull or store failed.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use dfs_common::MAX_CHUNK_SIZE;
use dfs_common::api::{ErrorBody, StoredChunk};
use dfs_common::chain::{
    ChainErrorBody, DownstreamNode, REPLICATE_TO_HEADER, ReplicateRequest, parse_replicate_to,
    validate_chain,
};
use dfs_common::http::{AppJson, AppPath};
use reqwest::Url;

use crate::AppState;
use crate::error::ApiError;
use crate::peer::{self, Expected};
use crate::store::ChunkMeta;

/// Longest `source` address accepted.
const MAX_SOURCE_LEN: usize = 512;

/// The nodes a PUT asks this node to pass the chunk on to (none without the
/// header); 400 when the header is malformed or names this node.
pub(crate) fn downstream(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Vec<DownstreamNode>, ApiError> {
    let Some(value) = headers.get(REPLICATE_TO_HEADER) else {
        return Ok(Vec::new());
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::BadRequest(format!("invalid {REPLICATE_TO_HEADER} header")))?;
    let nodes = parse_replicate_to(value)
        .map_err(|e| ApiError::BadRequest(format!("invalid {REPLICATE_TO_HEADER} header: {e}")))?;
    check_chain(state, &nodes)?;
    Ok(nodes)
}

/// A chain is valid, its URLs usable, and it does not loop back here.
fn check_chain(state: &AppState, nodes: &[DownstreamNode]) -> Result<(), ApiError> {
    validate_chain(nodes).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    for node in nodes {
        if node.node_id == state.node.node_id {
            return Err(ApiError::BadRequest(format!(
                "the replication chain names this node ({}) again",
                node.node_id
            )));
        }
        if Url::parse(&node.url).map_or(true, |url| url.cannot_be_a_base()) {
            return Err(ApiError::BadRequest(format!(
                "invalid URL {:?} for node {}",
                node.url, node.node_id
            )));
        }
    }
    Ok(())
}

/// Passes chunk `chunk_id` (stored here as `meta`) down `downstream`:
/// returns once every node of it holds the chunk durably.
pub(crate) async fn forward(
    state: &AppState,
    chunk_id: &str,
    meta: ChunkMeta,
    downstream: &[DownstreamNode],
) -> Result<(), ApiError> {
    let Some((next, rest)) = downstream.split_first() else {
        return Ok(());
    };
    let request = ReplicateRequest {
        source: state.node.peer_addr.clone(),
        size: meta.size,
        crc32c: meta.crc32c,
        downstream: rest.to_vec(),
    };
    let message = match state.storage.replicate(&next.url, chunk_id, &request).await {
        Ok(_) => return Ok(()),
        // A node further down failed: pass its verdict up unchanged.
        Err(dfs_client::Error::ChainFailed {
            failed_node,
            message,
        }) => {
            return Err(ApiError::ChainFailed {
                failed_node,
                message,
            });
        }
        Err(dfs_client::Error::Api { status, message }) => format!(
            "node {} answered {status} to the replicate call: {message}",
            next.node_id
        ),
        Err(err) => format!("node {} failed the replicate call: {err}", next.node_id),
    };
    Err(ApiError::ChainFailed {
        failed_node: next.node_id.clone(),
        message,
    })
}

/// Pull a chunk from an upstream node over the peer protocol, store it,
/// then pass it on down the chain.
#[utoipa::path(
    post,
    path = "/chunks/{chunk_id}/replicate",
    tag = "chunks",
    params(("chunk_id" = String, Path, description = "Chunk id")),
    request_body = ReplicateRequest,
    responses(
        (status = 200, description = "Stored here and on every downstream node", body = StoredChunk),
        (status = 400, description = "Invalid id or request", body = ErrorBody),
        (status = 413, description = "Size above 64 MiB", body = ErrorBody),
        (status = 502, description = "This node or one below failed; `x-dfs-failed-node` names it",
            body = ChainErrorBody),
    )
)]
pub async fn replicate(
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
    AppJson(request): AppJson<ReplicateRequest>,
) -> Result<Json<StoredChunk>, ApiError> {
    dfs_common::validate::chunk_id(&id).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if request.size > MAX_CHUNK_SIZE {
        return Err(ApiError::TooLarge(format!(
            "chunk is larger than the limit of {MAX_CHUNK_SIZE} bytes"
        )));
    }
    let source = request.source.trim();
    if source.is_empty() || source.len() > MAX_SOURCE_LEN || source.contains(char::is_whitespace) {
        return Err(ApiError::BadRequest(format!(
            "invalid source address {:?}",
            request.source
        )));
    }
    check_chain(&state, &request.downstream)?;
    let expected = Expected {
        size: Some(request.size),
        crc32c: Some(request.crc32c),
    };
    // The upstream stored the chunk before calling: no need to wait for it.
    let meta = peer::fetch(source, &id, expected, Duration::ZERO, &state.store)
        .await
        .map_err(|err| ApiError::ChainFailed {
            failed_node: state.node.node_id.clone(),
            message: format!("node {}: {err}", state.node.node_id),
        })?;
    tracing::info!(chunk_id = %id, %source, size = meta.size, "chunk replicated from a peer");
    forward(&state, &id, meta, &request.downstream).await?;
    Ok(Json(StoredChunk {
        chunk_id: id,
        size: meta.size,
        crc32c: meta.crc32c,
    }))
}
