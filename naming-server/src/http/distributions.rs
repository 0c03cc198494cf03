//! `/distributions`: start a job, follow it, and the progress reports
//! chain nodes send.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use dfs_common::api::patterns::JobId;
use dfs_common::api::{
    Distribution, DistributionList, ErrorBody, NodeReport, ReportAck, StartDistribution,
};
use dfs_common::http::{AppJson, AppPath};

use super::error::ApiError;
use super::observe::record_span;
use crate::domain::Naming;
use crate::domain::distribution::jobs;

/// Start distributing a file to every live node: an existing dfs file, or a
/// new one seeded from `gs://bucket/object`.
#[utoipa::path(post, path = "/distributions", tag = "distributions",
    request_body = StartDistribution,
    responses(
        (status = 201, body = Distribution, description = "Job started (or already done when every live node holds the file)"),
        (status = 400, body = ErrorBody, description = "Bad name, source or chunk size; GCS refused"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "No such dfs file or GCS object"),
        (status = 409, body = ErrorBody, description = "Seeding onto a name that is taken"),
        (status = 413, body = ErrorBody, description = "Object over the size limit, or a body over 64 MiB"),
        (status = 503, body = ErrorBody, description = "No live storage node, GCS unreachable, or Redis unreachable"),
    ),
    security(("bearer" = [])))]
pub async fn start_distribution(
    State(naming): State<Naming>,
    AppJson(request): AppJson<StartDistribution>,
) -> Result<(StatusCode, Json<Distribution>), ApiError> {
    let job = jobs::start(&naming, request).await?;
    record_span("file_id", &job.file_id);
    record_span("job_id", &job.job_id);
    Ok((StatusCode::CREATED, Json(job)))
}

/// A job with every chain node's progress.
#[utoipa::path(get, path = "/distributions/{job_id}", tag = "distributions",
    params(("job_id" = JobId, Path)),
    responses(
        (status = 200, body = Distribution),
        (status = 400, body = ErrorBody, description = "The path is not UTF-8"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "Unknown or expired job"),
        (status = 503, body = ErrorBody, description = "Redis unreachable"),
    ),
    security(("bearer" = [])))]
pub async fn get_distribution(
    State(naming): State<Naming>,
    AppPath(job_id): AppPath<String>,
) -> Result<Json<Distribution>, ApiError> {
    record_span("job_id", &job_id);
    Ok(Json(jobs::get(&naming, &job_id).await?))
}

/// The most recent jobs, newest first.
#[utoipa::path(get, path = "/distributions", tag = "distributions",
    responses(
        (status = 200, body = DistributionList),
        (status = 401, body = ErrorBody),
        (status = 503, body = ErrorBody, description = "Redis unreachable"),
    ),
    security(("bearer" = [])))]
pub async fn list_distributions(
    State(naming): State<Naming>,
) -> Result<Json<DistributionList>, ApiError> {
    Ok(Json(jobs::recent(&naming).await?))
}

/// A chain node reports its progress; the reply tells it whether the job
/// still runs. A node that is `done` becomes a replica of every chunk.
#[utoipa::path(post, path = "/distributions/{job_id}/progress", tag = "distributions",
    params(("job_id" = JobId, Path)),
    request_body = NodeReport,
    responses(
        (status = 200, body = ReportAck),
        (status = 400, body = ErrorBody, description = "Node not in the chain, or a bad CRC list"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "Unknown or expired job"),
        (status = 413, body = ErrorBody, description = "Body over 64 MiB"),
        (status = 503, body = ErrorBody, description = "Redis unreachable"),
    ),
    security(("bearer" = [])))]
pub async fn report_progress(
    State(naming): State<Naming>,
    AppPath(job_id): AppPath<String>,
    AppJson(report): AppJson<NodeReport>,
) -> Result<Json<ReportAck>, ApiError> {
    record_span("node_id", &report.node_id);
    record_span("job_id", &job_id);
    Ok(Json(jobs::report(&naming, &job_id, report).await?))
}
