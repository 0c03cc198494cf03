//! Files: create (pending), look up, list, size and delete.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use dfs_common::api::{
    ErrorBody, FileInfo, FileList, FileRecord, FileSize, FileState, InitFileRequest, RepairReport,
};
use dfs_common::{
    MAX_CHUNK_SIZE, MAX_FILE_SIZE, MAX_REPLICATION, MIN_CHUNK_SIZE, chunk_count, validate,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{file_record, live_nodes, record_span, require_nodes};
use crate::error::{ApiError, AppJson, AppPath, AppQuery};
use crate::store::keys::new_file_id;
use crate::{AppState, now_ms};

const DEFAULT_LIST_LIMIT: usize = 100;
const MAX_LIST_LIMIT: usize = 1000;

/// A committed file's info; pending and unknown files are 404.
pub async fn committed(state: &AppState, file_id: &str) -> Result<FileInfo, ApiError> {
    let info = state.store.file(file_id).await?;
    match info.state {
        FileState::Committed => Ok(info),
        FileState::Pending => Err(ApiError::NotFound(format!(
            "file {file_id} is not finalized yet"
        ))),
    }
}

pub fn check_name(name: &str) -> Result<(), ApiError> {
    validate::file_name(name).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// Create a pending file; chunks are then allocated, written and finalized.
#[utoipa::path(post, path = "/files/init", tag = "files",
    request_body = InitFileRequest,
    responses(
        (status = 201, body = FileInfo, description = "Pending file created"),
        (status = 400, body = ErrorBody, description = "Bad name, chunk size or replication"),
        (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "A committed file has this name"),
        (status = 413, body = ErrorBody, description = "Size over the limit"),
        (status = 503, body = ErrorBody, description = "Too few live storage nodes, or Redis unreachable"),
    ),
    security(("bearer" = [])))]
pub async fn init(
    State(state): State<AppState>,
    AppJson(request): AppJson<InitFileRequest>,
) -> Result<(StatusCode, Json<FileInfo>), ApiError> {
    check_name(&request.name)?;
    let chunk_size = request.chunk_size.unwrap_or(state.settings.chunk_size);
    if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) {
        return Err(ApiError::BadRequest(format!(
            "chunk_size {chunk_size} is out of range: {MIN_CHUNK_SIZE}..={MAX_CHUNK_SIZE}"
        )));
    }
    let replication = request.replication.unwrap_or(state.settings.replication);
    if !(1..=MAX_REPLICATION).contains(&replication) {
        return Err(ApiError::BadRequest(format!(
            "replication {replication} is out of range: 1..={MAX_REPLICATION}"
        )));
    }
    if request.size > MAX_FILE_SIZE {
        return Err(ApiError::TooLarge(format!(
            "size {} is over the limit of {MAX_FILE_SIZE} bytes",
            request.size
        )));
    }
    require_nodes(replication, live_nodes(&state).await?.len())?;
    let now = now_ms();
    let info = FileInfo {
        file_id: new_file_id(&request.name),
        name: request.name,
        size: request.size,
        chunk_size,
        chunk_count: chunk_count(request.size, chunk_size),
        replication,
        state: FileState::Pending,
        created_at_ms: now,
    };
    record_span("file_id", &info.file_id);
    let ttl_ms = u64::try_from(state.settings.pending_ttl.as_millis()).unwrap_or(u64::MAX);
    state
        .store
        .create_file(info.clone(), now.saturating_add(ttl_ms))
        .await?;
    Ok((StatusCode::CREATED, Json(info)))
}

/// `GET /files` query: `name` looks one file up; otherwise a listing page.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FilesQuery {
    /// Exact name to look up (returns a FileRecord).
    name: Option<String>,
    /// List only names starting with this.
    prefix: Option<String>,
    /// Page size, 1-1000 (default 100).
    limit: Option<usize>,
    /// Cursor: the `next` of the previous page.
    after: Option<String>,
}

/// A file record (lookup by name) or a page of files (listing).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum FilesResponse {
    Record(FileRecord),
    List(FileList),
}

/// Look a committed file up by name, or list committed files by name.
#[utoipa::path(get, path = "/files", tag = "files",
    params(FilesQuery),
    responses(
        (status = 200, body = FilesResponse, description = "FileRecord with `name`, else FileList"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "No file of that name"),
        (status = 503, body = ErrorBody, description = "Redis unreachable"),
    ),
    security(("bearer" = [])))]
pub async fn find(
    State(state): State<AppState>,
    AppQuery(query): AppQuery<FilesQuery>,
) -> Result<Json<FilesResponse>, ApiError> {
    if let Some(name) = query.name {
        check_name(&name)?;
        let file_id = state.store.file_id_by_name(&name).await?;
        record_span("file_id", &file_id);
        return Ok(Json(FilesResponse::Record(
            file_record(&state, &file_id).await?,
        )));
    }
    let limit = query.limit.unwrap_or(DEFAULT_LIST_LIMIT);
    if !(1..=MAX_LIST_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit {limit} is out of range: 1..={MAX_LIST_LIMIT}"
        )));
    }
    let prefix = query.prefix.unwrap_or_default();
    let page = state
        .store
        .list(&prefix, query.after.as_deref(), limit)
        .await?;
    Ok(Json(FilesResponse::List(FileList {
        files: page.files,
        next: page.next,
    })))
}

/// A committed file with every chunk and its replicas.
#[utoipa::path(get, path = "/files/{file_id}", tag = "files",
    params(("file_id" = String, Path)),
    responses(
        (status = 200, body = FileRecord),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "Unknown or not finalized"),
        (status = 503, body = ErrorBody, description = "Redis unreachable"),
    ),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    AppPath(file_id): AppPath<String>,
) -> Result<Json<FileRecord>, ApiError> {
    record_span("file_id", &file_id);
    Ok(Json(file_record(&state, &file_id).await?))
}

/// Size of a committed file.
#[utoipa::path(get, path = "/files/{file_id}/size", tag = "files",
    params(("file_id" = String, Path)),
    responses(
        (status = 200, body = FileSize),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "Unknown or not finalized"),
        (status = 503, body = ErrorBody, description = "Redis unreachable"),
    ),
    security(("bearer" = [])))]
pub async fn size(
    State(state): State<AppState>,
    AppPath(file_id): AppPath<String>,
) -> Result<Json<FileSize>, ApiError> {
    record_span("file_id", &file_id);
    let info = committed(&state, &file_id).await?;
    Ok(Json(FileSize { size: info.size }))
}

/// Delete a file (committed, or a pending upload to abandon): its metadata
/// goes at once, its chunks from the nodes after their next heartbeat.
#[utoipa::path(delete, path = "/files/{file_id}", tag = "files",
    params(("file_id" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "Unknown file"),
        (status = 503, body = ErrorBody, description = "Redis unreachable"),
    ),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    AppPath(file_id): AppPath<String>,
) -> Result<StatusCode, ApiError> {
    record_span("file_id", &file_id);
    state.store.delete_file(&file_id).await?;
    state.metrics.files_deleted.fetch_add(1, Ordering::Relaxed);
    tracing::info!("file deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Re-replicate a committed file: every chunk with fewer live replicas
/// than the file's replication factor is copied from a live holder to live
/// nodes that lack it, over the storage nodes' peer chain. Chunks that
/// cannot be brought back (no live replica, too few live nodes) are listed
/// in `problems`.
#[utoipa::path(post, path = "/files/{file_id}/repair", tag = "files",
    params(("file_id" = String, Path)),
    responses(
        (status = 200, body = RepairReport),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "Unknown or unfinalized file"),
        (status = 503, body = ErrorBody, description = "Redis unreachable"),
    ),
    security(("bearer" = [])))]
pub async fn repair(
    State(state): State<AppState>,
    AppPath(file_id): AppPath<String>,
) -> Result<Json<RepairReport>, ApiError> {
    record_span("file_id", &file_id);
    let directory = super::NodeDirectory::load(&state).await?;
    Ok(Json(
        crate::repair::repair_file(&state, &file_id, &directory).await?,
    ))
}
