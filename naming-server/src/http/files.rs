//! `/files`: create (pending), look up, list, size, delete and repair.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use dfs_common::api::patterns::{FileId, FileName};
use dfs_common::api::{
    ErrorBody, FileInfo, FileList, FileRecord, FileSize, InitFileRequest, RepairReport,
};
use dfs_common::check::{self, Check, Invalid};
use dfs_common::http::{AppJson, AppPath, AppQuery};
use dfs_common::validate::MAX_NAME_LEN;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::ApiError;
use super::observe::record_span;
use crate::domain::{Naming, files, repair};

/// Create a pending file; chunks are then allocated, written and finalized.
#[utoipa::path(post, path = "/files/init", tag = "files",
    request_body = InitFileRequest,
    responses(
        (status = 201, body = FileInfo, description = "Pending file created"),
        (status = 400, body = ErrorBody, description = "Bad name, chunk size or replication"),
        (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "A committed file has this name"),
        (status = 413, body = ErrorBody, description = "Size over the limit, or a body over 64 MiB"),
        (status = 503, body = ErrorBody, description = "Too few live storage nodes, or Redis \
            unreachable; with Retry-After when a moment's wait should cure it"),
    ),
    security(("bearer" = [])))]
pub async fn init_file(
    State(naming): State<Naming>,
    AppJson(request): AppJson<InitFileRequest>,
) -> Result<(StatusCode, Json<FileInfo>), ApiError> {
    let info = files::init(&naming, request).await?;
    record_span("file_id", &info.file_id);
    Ok((StatusCode::CREATED, Json(info)))
}

/// `GET /files` query: `name` looks one file up; otherwise a listing page.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FilesQuery {
    /// Exact name to look up (returns a FileRecord).
    #[param(value_type = Option<FileName>)]
    name: Option<String>,
    /// List only names starting with this (at most 1024 bytes).
    #[param(max_length = 1024)]
    prefix: Option<String>,
    /// Page size, 1-1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// Cursor: the `next` of the previous page (at most 1024 bytes).
    #[param(max_length = 1024)]
    after: Option<String>,
}

/// Page sizes a listing accepts.
const LIST_LIMITS: std::ops::RangeInclusive<usize> = 1..=1000;

impl Check for FilesQuery {
    fn check(&self) -> Result<(), Invalid> {
        if let Some(name) = &self.name {
            check::file_name(name)?;
        }
        for (what, value) in [("prefix", &self.prefix), ("after", &self.after)] {
            if value.as_ref().is_some_and(|v| v.len() > MAX_NAME_LEN) {
                return Err(Invalid::BadRequest(format!(
                    "{what} is longer than a name can be ({MAX_NAME_LEN} bytes)"
                )));
            }
        }
        match self.limit {
            Some(limit) if !LIST_LIMITS.contains(&limit) => Err(Invalid::BadRequest(format!(
                "limit {limit} is out of range: {}..={}",
                LIST_LIMITS.start(),
                LIST_LIMITS.end()
            ))),
            _ => Ok(()),
        }
    }
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
pub async fn find_files(
    State(naming): State<Naming>,
    AppQuery(query): AppQuery<FilesQuery>,
) -> Result<Json<FilesResponse>, ApiError> {
    if let Some(name) = query.name {
        let record = files::record_by_name(&naming, &name).await?;
        record_span("file_id", &record.info.file_id);
        return Ok(Json(FilesResponse::Record(record)));
    }
    let prefix = query.prefix.unwrap_or_default();
    let page = files::list(&naming, &prefix, query.after.as_deref(), query.limit).await?;
    Ok(Json(FilesResponse::List(page)))
}

/// A committed file with every chunk and its replicas.
#[utoipa::path(get, path = "/files/{file_id}", tag = "files",
    params(("file_id" = FileId, Path)),
    responses(
        (status = 200, body = FileRecord),
        (status = 400, body = ErrorBody, description = "The path is not UTF-8"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "Unknown or not finalized"),
        (status = 503, body = ErrorBody, description = "Redis unreachable"),
    ),
    security(("bearer" = [])))]
pub async fn get_file(
    State(naming): State<Naming>,
    AppPath(file_id): AppPath<String>,
) -> Result<Json<FileRecord>, ApiError> {
    record_span("file_id", &file_id);
    Ok(Json(files::record(&naming, &file_id).await?))
}

/// Size of a committed file.
#[utoipa::path(get, path = "/files/{file_id}/size", tag = "files",
    params(("file_id" = FileId, Path)),
    responses(
        (status = 200, body = FileSize),
        (status = 400, body = ErrorBody, description = "The path is not UTF-8"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "Unknown or not finalized"),
        (status = 503, body = ErrorBody, description = "Redis unreachable"),
    ),
    security(("bearer" = [])))]
pub async fn get_file_size(
    State(naming): State<Naming>,
    AppPath(file_id): AppPath<String>,
) -> Result<Json<FileSize>, ApiError> {
    record_span("file_id", &file_id);
    Ok(Json(files::size(&naming, &file_id).await?))
}

/// Delete a file (committed, or a pending upload to abandon): its metadata
/// goes at once, its chunks from the nodes after their next heartbeat.
#[utoipa::path(delete, path = "/files/{file_id}", tag = "files",
    params(("file_id" = FileId, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, body = ErrorBody, description = "The path is not UTF-8"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "Unknown file"),
        (status = 503, body = ErrorBody, description = "Redis unreachable"),
    ),
    security(("bearer" = [])))]
pub async fn delete_file(
    State(naming): State<Naming>,
    AppPath(file_id): AppPath<String>,
) -> Result<StatusCode, ApiError> {
    record_span("file_id", &file_id);
    files::delete(&naming, &file_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Re-replicate a committed file: every chunk with fewer live replicas
/// than the file's replication factor is copied from a live holder to live
/// nodes that lack it, over the storage nodes' peer chain. Chunks that
/// cannot be brought back (no live replica, too few live nodes) are listed
/// in `problems`.
#[utoipa::path(post, path = "/files/{file_id}/repair", tag = "files",
    params(("file_id" = FileId, Path)),
    responses(
        (status = 200, body = RepairReport),
        (status = 400, body = ErrorBody, description = "The path is not UTF-8"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "Unknown or unfinalized file"),
        (status = 503, body = ErrorBody, description = "Redis unreachable"),
    ),
    security(("bearer" = [])))]
pub async fn repair_file(
    State(naming): State<Naming>,
    AppPath(file_id): AppPath<String>,
) -> Result<Json<RepairReport>, ApiError> {
    record_span("file_id", &file_id);
    Ok(Json(repair::repair(&naming, &file_id).await?))
}
