//! Chunks of a file: allocate targets, finalize the file, locate a chunk.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use dfs_common::api::patterns::{FileId, Uint64};
use dfs_common::api::{
    AllocateChunkRequest, ChunkAllocation, ChunkLocation, ErrorBody, FileRecord, FinalizeRequest,
    SuspectReplica,
};
use dfs_common::http::{AppJson, AppPath};

use super::error::ApiError;
use super::observe::record_span;
use crate::domain::{Naming, chunks, integrity};

/// Allocate `replication` distinct live storage nodes for one chunk of a pending file.
///
/// Only nodes with room for the chunk are chosen (free space beyond
/// `FREE_SPACE_RESERVE`, and not full); emptier nodes are more likely.
#[utoipa::path(post, path = "/files/{file_id}/chunks", tag = "chunks",
    params(("file_id" = FileId, Path)),
    request_body = AllocateChunkRequest,
    responses(
        (status = 201, body = ChunkAllocation, description = "A fresh chunk id and its targets"),
        (status = 400, body = ErrorBody, description = "Index out of range"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "Unknown or expired file"),
        (status = 409, body = ErrorBody, description = "File already committed"),
        (status = 413, body = ErrorBody, description = "Body over 64 MiB"),
        (status = 503, body = ErrorBody, description = "Too few live storage nodes with room for the chunk, \
            or Redis unreachable; with Retry-After when a moment's wait should cure it"),
    ),
    security(("bearer" = [])))]
pub async fn allocate_chunk(
    State(naming): State<Naming>,
    AppPath(file_id): AppPath<String>,
    AppJson(request): AppJson<AllocateChunkRequest>,
) -> Result<(StatusCode, Json<ChunkAllocation>), ApiError> {
    record_span("file_id", &file_id);
    let allocation = chunks::allocate(&naming, &file_id, request).await?;
    Ok((StatusCode::CREATED, Json(allocation)))
}

/// Commit a pending file: atomically claims its name (409 if taken) and
/// records its chunks.
///
/// Safe to retry: the same finalize again, after it committed, answers the
/// record.
#[utoipa::path(post, path = "/files/{file_id}/finalize", tag = "chunks",
    params(("file_id" = FileId, Path)),
    request_body = FinalizeRequest,
    responses(
        (status = 200, body = FileRecord, description = "Committed (now, or by this same finalize before)"),
        (status = 400, body = ErrorBody, description = "Size or chunk list does not match the file and its allocations"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "Unknown or expired upload"),
        (status = 409, body = ErrorBody, description = "Name taken, or already committed with other chunks"),
        (status = 413, body = ErrorBody, description = "Body over 64 MiB"),
        (status = 503, body = ErrorBody, description = "Redis unreachable (with Retry-After)"),
    ),
    security(("bearer" = [])))]
pub async fn finalize_file(
    State(naming): State<Naming>,
    AppPath(file_id): AppPath<String>,
    AppJson(request): AppJson<FinalizeRequest>,
) -> Result<Json<FileRecord>, ApiError> {
    record_span("file_id", &file_id);
    Ok(Json(chunks::finalize(&naming, &file_id, request).await?))
}

/// Where chunk `index` of a committed file lives, live replicas first.
#[utoipa::path(get, path = "/files/{file_id}/chunks/{index}", tag = "chunks",
    params(("file_id" = FileId, Path), ("index" = Uint64, Path)),
    responses(
        (status = 200, body = ChunkLocation),
        (status = 400, body = ErrorBody, description = "Index is not a number"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "Unknown file, or index out of range"),
        (status = 503, body = ErrorBody, description = "Redis unreachable"),
    ),
    security(("bearer" = [])))]
pub async fn get_chunk_location(
    State(naming): State<Naming>,
    AppPath((file_id, index)): AppPath<(String, u64)>,
) -> Result<Json<ChunkLocation>, ApiError> {
    record_span("file_id", &file_id);
    Ok(Json(chunks::location(&naming, &file_id, index).await?))
}

/// A reader got bad bytes (or none) from a replica of chunk `index`: the
/// replica's node is asked, with its next heartbeat, to verify its copy;
/// a bad copy is then quarantined there and the chunk re-replicated.
#[utoipa::path(post, path = "/files/{file_id}/chunks/{index}/suspect", tag = "chunks",
    params(("file_id" = FileId, Path), ("index" = Uint64, Path)),
    request_body = SuspectReplica,
    responses(
        (status = 204, description = "The node will verify its copy"),
        (status = 400, body = ErrorBody, description = "Bad ids, or the node holds no replica of the chunk"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "Unknown file, or the chunk has changed since it was read"),
        (status = 413, body = ErrorBody, description = "A reason over 1024 characters, or a body over 64 MiB"),
        (status = 503, body = ErrorBody, description = "Redis unreachable"),
    ),
    security(("bearer" = [])))]
pub async fn report_suspect(
    State(naming): State<Naming>,
    AppPath((file_id, index)): AppPath<(String, u64)>,
    AppJson(report): AppJson<SuspectReplica>,
) -> Result<StatusCode, ApiError> {
    record_span("file_id", &file_id);
    integrity::suspect(&naming, &file_id, index, report).await?;
    Ok(StatusCode::NO_CONTENT)
}
