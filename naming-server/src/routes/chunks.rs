//! Chunks of a file: allocate targets, finalize the file, locate a chunk.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use dfs_common::api::{
    AllocateChunkRequest, ChunkAllocation, ChunkLocation, ErrorBody, FileInfo, FileRecord,
    FileState, FinalizeRequest, FinalizedChunk, NodeTarget,
};
use dfs_common::chunk_len;
use rand::seq::SliceRandom;

use super::{NodeDirectory, file_record, files, live_nodes, record_span, require_nodes};
use crate::AppState;
use crate::error::{ApiError, AppJson, AppPath};
use crate::store::keys::new_chunk_id;
use crate::store::{Allocation, StoredChunk};

/// A pending file, or 409 when it is already committed.
async fn pending(state: &AppState, file_id: &str) -> Result<FileInfo, ApiError> {
    let info = state.store.file(file_id).await?;
    match info.state {
        FileState::Pending => Ok(info),
        FileState::Committed => Err(ApiError::Conflict(format!(
            "file {file_id} is already committed"
        ))),
    }
}

fn out_of_range(index: u64, info: &FileInfo) -> String {
    format!(
        "chunk index {index} is out of range: the file has {} chunks",
        info.chunk_count
    )
}

/// Allocate `replication` distinct live storage nodes for one chunk of a pending file.
#[utoipa::path(post, path = "/files/{file_id}/chunks", tag = "chunks",
    params(("file_id" = String, Path)),
    request_body = AllocateChunkRequest,
    responses(
        (status = 201, body = ChunkAllocation, description = "A fresh chunk id and its targets"),
        (status = 400, body = ErrorBody, description = "Index out of range"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "Unknown or expired file"),
        (status = 409, body = ErrorBody, description = "File already committed"),
        (status = 503, body = ErrorBody, description = "Too few live storage nodes, or Redis unreachable"),
    ),
    security(("bearer" = [])))]
pub async fn allocate(
    State(state): State<AppState>,
    AppPath(file_id): AppPath<String>,
    AppJson(request): AppJson<AllocateChunkRequest>,
) -> Result<(StatusCode, Json<ChunkAllocation>), ApiError> {
    record_span("file_id", &file_id);
    let info = pending(&state, &file_id).await?;
    let size = chunk_len(info.size, info.chunk_size, request.index)
        .ok_or_else(|| ApiError::BadRequest(out_of_range(request.index, &info)))?;
    let mut nodes = live_nodes(&state).await?;
    nodes.retain(|node| !request.exclude.contains(&node.node_id));
    require_nodes(info.replication, nodes.len())?;
    nodes.shuffle(&mut rand::rng());
    nodes.truncate(info.replication as usize);
    let chunk_id = new_chunk_id(&file_id, request.index);
    let allocation = Allocation {
        index: request.index,
        targets: nodes.iter().map(|node| node.node_id.clone()).collect(),
    };
    state
        .store
        .add_allocation(&file_id, &chunk_id, &allocation)
        .await?;
    state
        .metrics
        .chunks_allocated
        .fetch_add(1, Ordering::Relaxed);
    let targets = nodes
        .into_iter()
        .map(|node| NodeTarget {
            node_id: node.node_id,
            url: node.url,
            tcp_addr: node.tcp_addr,
        })
        .collect();
    Ok((
        StatusCode::CREATED,
        Json(ChunkAllocation {
            chunk_id,
            index: request.index,
            size,
            targets,
        }),
    ))
}

/// Checks the client's chunk list against the file and its allocations.
fn validate_chunks(
    info: &FileInfo,
    chunks: Vec<FinalizedChunk>,
    allocations: &HashMap<String, Allocation>,
) -> Result<Vec<StoredChunk>, ApiError> {
    let bad = |message: String| Err(ApiError::BadRequest(message));
    if chunks.len() as u64 != info.chunk_count {
        return bad(format!(
            "expected {} chunks, got {}",
            info.chunk_count,
            chunks.len()
        ));
    }
    let mut seen = HashSet::new();
    let mut stored = Vec::with_capacity(chunks.len());
    for chunk in chunks {
        let index = chunk.index;
        let Some(expected) = chunk_len(info.size, info.chunk_size, index) else {
            return bad(out_of_range(index, info));
        };
        if !seen.insert(index) {
            return bad(format!("chunk {index} is listed twice"));
        }
        if chunk.size != expected {
            return bad(format!(
                "chunk {index} has size {}, expected {expected}",
                chunk.size
            ));
        }
        let Some(allocation) = allocations
            .get(&chunk.chunk_id)
            .filter(|a| a.index == index)
        else {
            return bad(format!(
                "chunk id {:?} was not allocated for chunk {index}",
                chunk.chunk_id
            ));
        };
        if chunk.replicas.is_empty() {
            return bad(format!("chunk {index} has no replicas"));
        }
        let mut replicas = HashSet::new();
        for replica in &chunk.replicas {
            if !allocation.targets.contains(replica) {
                return bad(format!(
                    "replica {replica:?} of chunk {index} is not among its targets"
                ));
            }
            if !replicas.insert(replica) {
                return bad(format!(
                    "replica {replica:?} of chunk {index} is listed twice"
                ));
            }
        }
        stored.push(StoredChunk {
            index,
            chunk_id: chunk.chunk_id,
            size: chunk.size,
            crc32c: chunk.crc32c,
            nodes: chunk.replicas,
        });
    }
    stored.sort_by_key(|chunk| chunk.index);
    Ok(stored)
}

/// Commit a pending file: atomically claims its name (409 if taken) and
/// records its chunks.
#[utoipa::path(post, path = "/files/{file_id}/finalize", tag = "chunks",
    params(("file_id" = String, Path)),
    request_body = FinalizeRequest,
    responses(
        (status = 200, body = FileRecord, description = "Committed"),
        (status = 400, body = ErrorBody, description = "Size or chunk list does not match the file and its allocations"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "Unknown or expired upload"),
        (status = 409, body = ErrorBody, description = "Name taken, or already committed"),
        (status = 503, body = ErrorBody, description = "Redis unreachable"),
    ),
    security(("bearer" = [])))]
pub async fn finalize(
    State(state): State<AppState>,
    AppPath(file_id): AppPath<String>,
    AppJson(request): AppJson<FinalizeRequest>,
) -> Result<Json<FileRecord>, ApiError> {
    record_span("file_id", &file_id);
    let info = pending(&state, &file_id).await?;
    if request.size != info.size {
        return Err(ApiError::BadRequest(format!(
            "size {} differs from the {} bytes given at init",
            request.size, info.size
        )));
    }
    let allocations = state.store.allocations(&file_id).await?;
    let chunks = validate_chunks(&info, request.chunks, &allocations)?;
    state.store.commit(&info, &chunks).await?;
    state
        .metrics
        .files_committed
        .fetch_add(1, Ordering::Relaxed);
    tracing::info!(name = %info.name, size = info.size, "file committed");
    Ok(Json(file_record(&state, &file_id).await?))
}

/// Where chunk `index` of a committed file lives, live replicas first.
#[utoipa::path(get, path = "/files/{file_id}/chunks/{index}", tag = "chunks",
    params(("file_id" = String, Path), ("index" = u64, Path)),
    responses(
        (status = 200, body = ChunkLocation),
        (status = 400, body = ErrorBody, description = "Index is not a number"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "Unknown file, or index out of range"),
        (status = 503, body = ErrorBody, description = "Redis unreachable"),
    ),
    security(("bearer" = [])))]
pub async fn location(
    State(state): State<AppState>,
    AppPath((file_id, index)): AppPath<(String, u64)>,
) -> Result<Json<ChunkLocation>, ApiError> {
    record_span("file_id", &file_id);
    let info = files::committed(&state, &file_id).await?;
    let chunk = match state.store.chunk(&file_id, index).await? {
        Some(chunk) if index < info.chunk_count => chunk,
        _ => return Err(ApiError::NotFound(out_of_range(index, &info))),
    };
    Ok(Json(NodeDirectory::load(&state).await?.locate(chunk)))
}
