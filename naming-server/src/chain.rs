//! Planning a distribution: which nodes form the chain, what each must
//! fetch and from where, and handing each node its part.
//!
//! The chain is every live node that lacks part of the file. Node `p` pulls
//! from the nodes above it, nearest first, then from the chunk's live
//! holders (an existing file) or from GCS (a seed), so a dead node is
//! skipped by asking the next one up.

use std::time::Duration;

use dfs_common::api::{
    ChainAssignment, ChainChunk, ErrorBody, FileInfo, FileState, GcsObjectInfo, GcsSource,
    NodeReport, NodeState, PeerRef, StartDistribution,
};
use dfs_common::{MAX_CHUNK_SIZE, MAX_FILE_SIZE, MIN_CHUNK_SIZE, chunk_count, chunk_len};
use tokio::task::JoinSet;

use crate::error::ApiError;
use crate::routes::{files, live_nodes, require_nodes};
use crate::store::NodeRecord;
use crate::store::jobs::{ChainNode, JobPlan, StoredReport};
use crate::store::keys::{new_chunk_id, new_file_id};
use crate::{AppState, now_ms};

/// Source name of a job that copies an existing dfs file.
pub const DFS_SOURCE: &str = "dfs";
/// How long a storage node may take to accept its assignment or to ask GCS
/// about an object.
const NODE_CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// A running chain node silent for this long counts as failed (nodes report
/// every second while they work).
pub const STALE_REPORT_MS: u64 = 30_000;

/// When a seed's pending file expires if no chain node reports again from
/// now on. It outlives the silence that fails the job, so a slow but live
/// seed is never reaped between two reports, whatever `PENDING_TTL` is.
pub fn seed_lease_expiry(state: &AppState) -> u64 {
    let ttl_ms = u64::try_from(state.settings.pending_ttl.as_millis()).unwrap_or(u64::MAX);
    now_ms().saturating_add(ttl_ms.max(STALE_REPORT_MS))
}

/// A planned job: what is stored, and what each chain node is told.
pub struct Plan {
    pub job: JobPlan,
    pub assignments: Vec<(NodeRecord, ChainAssignment)>,
}

fn new_job_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

fn peer(node: &NodeRecord) -> PeerRef {
    PeerRef {
        node_id: node.node_id.clone(),
        tcp_addr: node.tcp_addr.clone(),
    }
}

/// One assignment per chain node: the nodes above it, nearest first.
fn assign(
    job: &JobPlan,
    chain: Vec<NodeRecord>,
    chunks: &[ChainChunk],
    gcs: Option<&GcsSource>,
) -> Vec<(NodeRecord, ChainAssignment)> {
    let peers: Vec<PeerRef> = chain.iter().map(peer).collect();
    chain
        .into_iter()
        .enumerate()
        .map(|(position, node)| {
            let assignment = ChainAssignment {
                job_id: job.job_id.clone(),
                file_id: job.file_id.clone(),
                node_id: node.node_id.clone(),
                upstream: peers[..position].iter().rev().cloned().collect(),
                chunks: chunks.to_vec(),
                gcs: gcs.cloned(),
            };
            (node, assignment)
        })
        .collect()
}

fn job_plan(
    file: &FileInfo,
    source: String,
    chain: &[NodeRecord],
    chunk_ids: Vec<String>,
) -> JobPlan {
    JobPlan {
        job_id: new_job_id(),
        name: file.name.clone(),
        file_id: file.file_id.clone(),
        source,
        size: file.size,
        chunk_size: file.chunk_size,
        created_at_ms: now_ms(),
        chain: chain
            .iter()
            .map(|node| ChainNode {
                node_id: node.node_id.clone(),
                url: node.url.clone(),
            })
            .collect(),
        chunk_ids,
    }
}

/// Copies the committed file `request.name` to every live node lacking it.
pub async fn plan_existing(
    state: &AppState,
    request: &StartDistribution,
) -> Result<Plan, ApiError> {
    if request.chunk_size.is_some() {
        return Err(ApiError::BadRequest(
            "chunk_size applies only when seeding from a source".into(),
        ));
    }
    let file_id = state.store.file_id_by_name(&request.name).await?;
    let file = files::committed(state, &file_id).await?;
    let stored = state.store.chunks(&file_id).await?;
    let live = live_nodes(state).await?;
    let holds_all = |node: &NodeRecord| stored.iter().all(|c| c.nodes.contains(&node.node_id));
    let chain: Vec<NodeRecord> = live.iter().filter(|n| !holds_all(n)).cloned().collect();
    // Every live copy is a source, inside the chain or not: a file whose
    // chunks are spread over all nodes has no node holding all of it.
    let chunks: Vec<ChainChunk> = stored
        .iter()
        .map(|chunk| ChainChunk {
            chunk_id: chunk.chunk_id.clone(),
            index: chunk.index,
            size: chunk.size,
            crc32c: Some(chunk.crc32c),
            // In replica order, as `GET /files` lists them.
            holders: chunk
                .nodes
                .iter()
                .filter_map(|id| live.iter().find(|node| &node.node_id == id))
                .map(peer)
                .collect(),
        })
        .collect();
    let job = job_plan(&file, DFS_SOURCE.to_owned(), &chain, Vec::new());
    let assignments = assign(&job, chain, &chunks, None);
    Ok(Plan { job, assignments })
}

/// A 400 unless `url` is a well-formed `gs://bucket/object`.
fn check_gcs_url(url: &str) -> Result<(), ApiError> {
    url.parse::<dfs_common::gcs::GcsUrl>()
        .map(drop)
        .map_err(|e| ApiError::BadRequest(format!("source {url:?}: {e}")))
}

/// Seeds a new file `request.name` from GCS onto every live node.
pub async fn plan_seed(
    state: &AppState,
    request: &StartDistribution,
    url: &str,
) -> Result<Plan, ApiError> {
    check_gcs_url(url)?;
    let chunk_size = request.chunk_size.unwrap_or(state.settings.chunk_size);
    if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) {
        return Err(ApiError::BadRequest(format!(
            "chunk_size {chunk_size} is out of range: {MIN_CHUNK_SIZE}..={MAX_CHUNK_SIZE}"
        )));
    }
    match state.store.file_id_by_name(&request.name).await {
        Ok(_) => {
            return Err(ApiError::Conflict(format!(
                "a file named {:?} already exists",
                request.name
            )));
        }
        Err(crate::store::StoreError::NotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let chain = live_nodes(state).await?;
    require_nodes(1, chain.len())?;
    let object = gcs_object(state, &chain[0], url).await?;
    if object.size > MAX_FILE_SIZE {
        return Err(ApiError::TooLarge(format!(
            "{url} has {} bytes, over the limit of {MAX_FILE_SIZE}",
            object.size
        )));
    }
    let now = now_ms();
    let file = FileInfo {
        file_id: new_file_id(&request.name),
        name: request.name.clone(),
        size: object.size,
        chunk_size,
        chunk_count: chunk_count(object.size, chunk_size),
        replication: u32::try_from(chain.len()).unwrap_or(u32::MAX),
        state: FileState::Pending,
        created_at_ms: now,
    };
    state
        .store
        .create_file(file.clone(), seed_lease_expiry(state))
        .await?;
    let chunks: Vec<ChainChunk> = (0..file.chunk_count)
        .map(|index| ChainChunk {
            chunk_id: new_chunk_id(&file.file_id, index),
            index,
            size: chunk_len(file.size, chunk_size, index).unwrap_or(0),
            crc32c: None,
            holders: Vec::new(),
        })
        .collect();
    let gcs = GcsSource {
        url: url.to_owned(),
        generation: object.generation,
        size: object.size,
        crc32c: object.crc32c,
    };
    let chunk_ids = chunks.iter().map(|c| c.chunk_id.clone()).collect();
    let job = job_plan(&file, url.to_owned(), &chain, chunk_ids);
    let assignments = assign(&job, chain, &chunks, Some(&gcs));
    Ok(Plan { job, assignments })
}

/// Asks `node` what GCS says of the object (the storage nodes hold the GCS
/// credentials and emulator settings, not the naming server).
async fn gcs_object(
    state: &AppState,
    node: &NodeRecord,
    url: &str,
) -> Result<GcsObjectInfo, ApiError> {
    let unavailable = |e: String| {
        ApiError::Unavailable(format!(
            "storage node {} could not look {url} up: {e}",
            node.node_id
        ))
    };
    let mut lookup = reqwest::Url::parse(&format!("{}/gcs/object", node.url))
        .map_err(|e| unavailable(e.to_string()))?;
    lookup.query_pairs_mut().append_pair("url", url);
    let response = state
        .http
        .get(lookup)
        .timeout(NODE_CALL_TIMEOUT)
        .send()
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    let status = response.status();
    if status.is_success() {
        return response
            .json()
            .await
            .map_err(|e| unavailable(e.to_string()));
    }
    let message = response
        .json::<ErrorBody>()
        .await
        .map_or_else(|_| status.to_string(), |body| body.error);
    Err(match status.as_u16() {
        404 => ApiError::NotFound(message),
        400..=499 => ApiError::BadRequest(message),
        _ => unavailable(message),
    })
}

/// Hands every chain node its assignment, all at once. A node that refuses
/// or cannot be reached is recorded as failed; the others carry on.
pub async fn hand_out(state: &AppState, plan: Plan) {
    let mut calls = JoinSet::new();
    for (node, assignment) in plan.assignments {
        let http = state.http.clone();
        calls.spawn(async move {
            let sent = http
                .post(format!("{}/distributions", node.url))
                .json(&assignment)
                .timeout(NODE_CALL_TIMEOUT)
                .send()
                .await
                .and_then(reqwest::Response::error_for_status);
            (node.node_id, sent.err())
        });
    }
    while let Some(joined) = calls.join_next().await {
        let Ok((node_id, Some(error))) = joined else {
            continue;
        };
        tracing::warn!(%node_id, %error, job_id = %plan.job.job_id, "could not hand out an assignment");
        let report = StoredReport {
            report: NodeReport {
                node_id,
                state: NodeState::Failed,
                chunks_done: 0,
                bytes_done: 0,
                elapsed_ms: 0,
                error: Some(format!("could not hand out the assignment: {error}")),
                fatal: false,
                crc32c: Vec::new(),
            },
            received_at_ms: now_ms(),
        };
        if let Err(e) = state.jobs.record_report(&plan.job.job_id, &report).await {
            tracing::error!(error = %e, "recording a failed hand-out");
        }
    }
}
