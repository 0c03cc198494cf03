//! `POST /distributions` (take this node's part of a job) and
//! `GET /gcs/object` (what GCS says of an object, for the naming server to
//! plan a seed).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use dfs_common::api::patterns::GcsObjectUrl;
use dfs_common::api::{AssignmentAck, ChainAssignment, ErrorBody, GcsObjectInfo};
use dfs_common::check::{self, Check, Invalid};
use dfs_common::gcs::GcsUrl;
use dfs_common::http::{AppJson, AppQuery};
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::ApiError;
use super::state::AppState;

/// Take this node's part of a distribution job: pull every chunk from the
/// nodes above it in the chain (or from GCS), reporting progress to the
/// naming server.
#[utoipa::path(post, path = "/distributions", tag = "distribution",
    request_body = ChainAssignment,
    responses(
        (status = 202, body = AssignmentAck, description = "Started"),
        (status = 200, body = AssignmentAck, description = "Already running here"),
        (status = 400, body = ErrorBody, description = "Malformed assignment"),
        (status = 401, body = ErrorBody, description = "Missing or wrong bearer token"),
        (status = 409, body = ErrorBody, description = "The assignment is for another node"),
        (status = 413, body = ErrorBody, description = "Body over 64 MiB"),
    ),
    security(("bearer" = [])))]
pub async fn start_assignment(
    State(state): State<AppState>,
    AppJson(assignment): AppJson<ChainAssignment>,
) -> Result<(StatusCode, Json<AssignmentAck>), ApiError> {
    if *assignment.node_id != *state.node_id {
        return Err(ApiError::Conflict(format!(
            "the assignment is for node {}, this is node {}",
            assignment.node_id, state.node_id
        )));
    }
    let job_id = assignment.job_id.clone();
    let started = state.distributor.start(assignment);
    let status = if started {
        tracing::info!(%job_id, "distribution assignment accepted");
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(AssignmentAck { job_id, started })))
}

/// `GET /gcs/object` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ObjectQuery {
    /// `gs://bucket/object`.
    #[param(value_type = GcsObjectUrl)]
    url: String,
}

impl Check for ObjectQuery {
    fn check(&self) -> Result<(), Invalid> {
        check::gcs_url(&self.url)
    }
}

/// Size, generation and CRC32C of a GCS object, read with this node's GCS
/// settings (`STORAGE_EMULATOR_HOST` or Application Default Credentials).
#[utoipa::path(get, path = "/gcs/object", tag = "distribution",
    params(ObjectQuery),
    responses(
        (status = 200, body = GcsObjectInfo),
        (status = 400, body = ErrorBody, description = "Not a gs:// URL, or GCS refused the request"),
        (status = 401, body = ErrorBody, description = "Missing or wrong bearer token"),
        (status = 403, body = ErrorBody, description = "No permission to read the object"),
        (status = 404, body = ErrorBody, description = "No such object"),
        (status = 502, body = ErrorBody, description = "GCS failed or could not be reached"),
        (status = 503, body = ErrorBody, description = "GCS is not usable on this node (credentials, settings)"),
    ),
    security(("bearer" = [])))]
pub async fn get_gcs_object(
    State(state): State<AppState>,
    AppQuery(query): AppQuery<ObjectQuery>,
) -> Result<Json<GcsObjectInfo>, ApiError> {
    let url: GcsUrl = query
        .url
        .parse()
        .map_err(|e| ApiError::BadRequest(format!("url {:?}: {e}", query.url)))?;
    let gcs = state.distributor.gcs().map_err(ApiError::Unavailable)?;
    let info = gcs.stat(&url).await?;
    Ok(Json(GcsObjectInfo {
        size: info.size,
        generation: info.generation,
        crc32c: info.crc32c,
    }))
}
