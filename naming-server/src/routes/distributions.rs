//! Distribution jobs: start one, follow it, and the progress reports chain
//! nodes send. A job's state is derived on every read from its plan, the
//! nodes' last reports and their heartbeats, so any replica answers alike.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use dfs_common::api::{
    Distribution, DistributionList, ErrorBody, FileState, JobState, NodeProgress, NodeReport,
    NodeState, ReportAck, StartDistribution,
};
use dfs_common::chunk_len;

use super::{files, is_alive, record_span};
use crate::chain::{self, DFS_SOURCE, STALE_REPORT_MS};
use crate::error::{ApiError, AppJson, AppPath};
use crate::store::jobs::{JobPlan, JobRecord, StoredReport};
use crate::store::{StoreError, StoredChunk};
use crate::{AppState, now_ms};

/// Jobs shown by `GET /distributions`.
const RECENT_JOBS: usize = 20;

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
        (status = 413, body = ErrorBody, description = "Object over the size limit"),
        (status = 503, body = ErrorBody, description = "No live storage node, GCS unreachable, or Redis unreachable"),
    ),
    security(("bearer" = [])))]
pub async fn start(
    State(state): State<AppState>,
    AppJson(request): AppJson<StartDistribution>,
) -> Result<(StatusCode, Json<Distribution>), ApiError> {
    files::check_name(&request.name)?;
    let plan = match &request.source {
        None => chain::plan_existing(&state, &request).await?,
        Some(url) => chain::plan_seed(&state, &request, url).await?,
    };
    let job_id = plan.job.job_id.clone();
    record_span("file_id", &plan.job.file_id);
    state.jobs.create_job(&plan.job).await?;
    tracing::info!(%job_id, nodes = plan.job.chain.len(), source = %plan.job.source, "distribution started");
    chain::hand_out(&state, plan).await;
    let record = state.jobs.job(&job_id).await?;
    Ok((StatusCode::CREATED, Json(view(&state, record).await?)))
}

/// A job with every chain node's progress.
#[utoipa::path(get, path = "/distributions/{job_id}", tag = "distributions",
    params(("job_id" = String, Path)),
    responses(
        (status = 200, body = Distribution),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "Unknown or expired job"),
        (status = 503, body = ErrorBody, description = "Redis unreachable"),
    ),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    AppPath(job_id): AppPath<String>,
) -> Result<Json<Distribution>, ApiError> {
    let record = state.jobs.job(&job_id).await?;
    Ok(Json(view(&state, record).await?))
}

/// The most recent jobs, newest first.
#[utoipa::path(get, path = "/distributions", tag = "distributions",
    responses(
        (status = 200, body = DistributionList),
        (status = 401, body = ErrorBody),
        (status = 503, body = ErrorBody, description = "Redis unreachable"),
    ),
    security(("bearer" = [])))]
pub async fn list(State(state): State<AppState>) -> Result<Json<DistributionList>, ApiError> {
    let mut jobs = Vec::new();
    for record in state.jobs.recent_jobs(RECENT_JOBS).await? {
        jobs.push(view(&state, record).await?);
    }
    Ok(Json(DistributionList { jobs }))
}

/// A chain node reports its progress; the reply tells it whether the job
/// still runs. A node that is `done` becomes a replica of every chunk.
#[utoipa::path(post, path = "/distributions/{job_id}/progress", tag = "distributions",
    params(("job_id" = String, Path)),
    request_body = NodeReport,
    responses(
        (status = 200, body = ReportAck),
        (status = 400, body = ErrorBody, description = "Node not in the chain, or a bad CRC list"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "Unknown or expired job"),
        (status = 503, body = ErrorBody, description = "Redis unreachable"),
    ),
    security(("bearer" = [])))]
pub async fn report(
    State(state): State<AppState>,
    AppPath(job_id): AppPath<String>,
    AppJson(report): AppJson<NodeReport>,
) -> Result<Json<ReportAck>, ApiError> {
    record_span("node_id", &report.node_id);
    let record = state.jobs.job(&job_id).await?;
    let plan = &record.plan;
    if !plan.chain.iter().any(|node| node.node_id == report.node_id) {
        return Err(ApiError::BadRequest(format!(
            "node {} is not part of distribution {job_id}",
            report.node_id
        )));
    }
    let seeding = plan.source != DFS_SOURCE;
    match report.state {
        NodeState::Done if seeding => commit_seed(&state, plan, &report).await?,
        NodeState::Running if seeding => {
            let expires = chain::seed_lease_expiry(&state);
            state.jobs.keep_pending(&plan.file_id, expires).await?;
        }
        _ => {}
    }
    let first_fatal = report.fatal && record.error.is_none();
    let stored = StoredReport {
        report,
        received_at_ms: now_ms(),
    };
    state.jobs.record_report(&job_id, &stored).await?;
    if first_fatal && seeding {
        discard_seed(&state, plan).await?;
    }
    let record = state.jobs.job(&job_id).await?;
    if stored.report.state == NodeState::Done {
        let done: Vec<String> = record
            .reports
            .values()
            .filter(|r| r.report.state == NodeState::Done)
            .map(|r| r.report.node_id.clone())
            .collect();
        state.jobs.add_replicas(&plan.file_id, &done).await?;
    }
    let job = view(&state, record).await?;
    Ok(Json(ReportAck { state: job.state }))
}

/// The first node to hold a whole verified seed commits the file under its
/// name, with itself as the replica; the others join in `add_replicas`.
async fn commit_seed(
    state: &AppState,
    plan: &JobPlan,
    report: &NodeReport,
) -> Result<(), ApiError> {
    let info = state.store.file(&plan.file_id).await?;
    if info.state == FileState::Committed {
        return Ok(());
    }
    if report.crc32c.len() != plan.chunk_ids.len() {
        return Err(ApiError::BadRequest(format!(
            "a done report must list {} chunk CRCs, got {}",
            plan.chunk_ids.len(),
            report.crc32c.len()
        )));
    }
    let chunks: Vec<StoredChunk> = plan
        .chunk_ids
        .iter()
        .zip(&report.crc32c)
        .zip(0u64..)
        .map(|((chunk_id, &crc32c), index)| StoredChunk {
            index,
            chunk_id: chunk_id.clone(),
            size: chunk_len(plan.size, plan.chunk_size, index).unwrap_or(0),
            crc32c,
            nodes: vec![report.node_id.clone()],
        })
        .collect();
    match state.store.commit(&info, &chunks).await {
        Ok(()) => Ok(()),
        // Another node's report committed it first.
        Err(StoreError::Conflict(_))
            if state.store.file(&plan.file_id).await?.state == FileState::Committed =>
        {
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// A failed seed leaves nothing behind: the pending file goes, and every
/// chain node drops whatever chunks it got.
async fn discard_seed(state: &AppState, plan: &JobPlan) -> Result<(), ApiError> {
    match state.store.delete_file(&plan.file_id).await {
        Ok(()) | Err(StoreError::NotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let items = plan
        .chain
        .iter()
        .flat_map(|node| {
            plan.chunk_ids
                .iter()
                .map(|chunk_id| (node.node_id.clone(), chunk_id.clone()))
        })
        .collect();
    Ok(state.jobs.trash_chunks(items).await?)
}

/// The job as clients see it: reports merged with node liveness.
async fn view(state: &AppState, record: JobRecord) -> Result<Distribution, ApiError> {
    let nodes = super::NodeDirectory::load(state).await?;
    let now = now_ms();
    let plan = record.plan;
    let mut last_report_ms = plan.created_at_ms;
    let progress: Vec<NodeProgress> = plan
        .chain
        .iter()
        .map(|node| {
            let report = record.reports.get(&node.node_id);
            let received = report.map_or(plan.created_at_ms, |r| r.received_at_ms);
            last_report_ms = last_report_ms.max(received);
            let mut progress = NodeProgress {
                node_id: node.node_id.clone(),
                url: node.url.clone(),
                state: NodeState::Waiting,
                chunks_done: 0,
                bytes_done: 0,
                throughput_bytes_per_sec: 0,
                error: None,
            };
            if let Some(StoredReport { report, .. }) = report {
                progress.state = report.state;
                progress.chunks_done = report.chunks_done;
                progress.bytes_done = report.bytes_done;
                progress.throughput_bytes_per_sec =
                    report.bytes_done * 1000 / report.elapsed_ms.max(1);
                progress.error.clone_from(&report.error);
            }
            if !progress.state.is_final() {
                let alive = nodes
                    .record(&node.node_id)
                    .is_some_and(|n| is_alive(n, &state.settings, now));
                let silence = now.saturating_sub(received);
                let failure = if !alive {
                    Some("node stopped heartbeating".to_owned())
                } else if silence > STALE_REPORT_MS {
                    Some(format!("no progress report for {} s", silence / 1000))
                } else {
                    None
                };
                if let Some(failure) = failure {
                    progress.state = NodeState::Failed;
                    progress.error = Some(failure);
                }
            }
            progress
        })
        .collect();
    let finished = progress.iter().all(|n| n.state.is_final());
    let any_done = progress.iter().any(|n| n.state == NodeState::Done);
    let (job_state, error) = match record.error {
        Some(error) => (JobState::Failed, Some(error)),
        None if finished && !any_done && !progress.is_empty() => (
            JobState::Failed,
            Some("no node completed the distribution".to_owned()),
        ),
        None if finished => (JobState::Done, None),
        None => (JobState::Running, None),
    };
    let finished_at_ms = (job_state != JobState::Running).then_some(last_report_ms);
    let bytes_done: u64 = progress.iter().map(|n| n.bytes_done).sum();
    let elapsed_ms = finished_at_ms
        .unwrap_or(now)
        .saturating_sub(plan.created_at_ms);
    Ok(Distribution {
        job_id: plan.job_id,
        name: plan.name,
        file_id: plan.file_id,
        source: plan.source,
        size: plan.size,
        chunk_size: plan.chunk_size,
        chunk_count: dfs_common::chunk_count(plan.size, plan.chunk_size),
        state: job_state,
        error,
        created_at_ms: plan.created_at_ms,
        finished_at_ms,
        bytes_done,
        throughput_bytes_per_sec: bytes_done * 1000 / elapsed_ms.max(1),
        nodes: progress,
    })
}
