//! Distribution jobs: start one (plan, store, hand every chain node its
//! part), follow it, and take the progress reports chain nodes send.

use std::sync::Arc;

use dfs_common::api::{
    Distribution, DistributionList, FileState, JobState, NodeReport, NodeState, ReportAck,
    StartDistribution,
};
use dfs_common::{chunk_len, now_ms};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::adapt;
use super::plan::{self, Plan};
use super::progress::view;
use super::{DFS_SOURCE, seed_lease_expiry};
use crate::domain::nodes::NodeDirectory;
use crate::domain::{DomainError, DomainResult, Naming};
use crate::store::{JobPlan, JobRecord, SourceStart, StoreError, StoredChunk, StoredReport};

/// Jobs listed by [`recent`].
const RECENT_JOBS: usize = 20;
/// Assignments handed out at once: a thousand-node job opens no more
/// connections than this.
const HAND_OUT_PARALLEL: usize = 64;

/// Starts distributing a file to every live node: an existing dfs file, or
/// a new one seeded from `gs://bucket/object`. A node that cannot take its
/// part is recorded as failed; the others carry on.
pub async fn start(naming: &Naming, request: StartDistribution) -> DomainResult<Distribution> {
    let plan = match &request.source {
        None => plan::existing(naming, &request).await?,
        Some(url) => plan::seed(naming, &request, url).await?,
    };
    let job_id = plan.job.job_id.clone();
    naming.store.create_job(&plan.job).await?;
    naming.metrics.jobs_started.inc();
    tracing::info!(%job_id, file_id = %plan.job.file_id, nodes = plan.job.chain.len(),
        source = %plan.job.source, "distribution started");
    hand_out(naming, plan).await;
    get(naming, &job_id).await
}

/// A job with every chain node's progress.
pub async fn get(naming: &Naming, job_id: &str) -> DomainResult<Distribution> {
    let record = naming.store.job(job_id).await?;
    let nodes = NodeDirectory::load(naming).await?;
    Ok(view(record, &nodes, now_ms()))
}

/// The most recent jobs, newest first.
pub async fn recent(naming: &Naming) -> DomainResult<DistributionList> {
    let records = naming.store.recent_jobs(RECENT_JOBS).await?;
    let nodes = NodeDirectory::load(naming).await?;
    let now = now_ms();
    Ok(DistributionList {
        jobs: records
            .into_iter()
            .map(|record| view(record, &nodes, now))
            .collect(),
    })
}

/// Takes a chain node's report; the answer tells it whether the job still
/// runs and which nodes to pull around. A node that is `done` becomes a
/// replica of every chunk; the first done node of a seed commits the file;
/// a fatal report fails the job (and a seed's chunks are discarded). A
/// running node's report costs the same whatever the number of nodes; the
/// job is judged for laggards at most once a second.
pub async fn report(naming: &Naming, job_id: &str, report: NodeReport) -> DomainResult<ReportAck> {
    let context = naming.store.report_context(job_id, &report.node_id).await?;
    let plan = &context.plan;
    if !plan.chain.iter().any(|node| node.node_id == report.node_id) {
        return Err(DomainError::Invalid(format!(
            "node {} is not part of distribution {job_id}",
            report.node_id
        )));
    }
    let seeding = plan.source != DFS_SOURCE;
    match report.state {
        NodeState::Done if seeding => commit_seed(naming, plan, &report).await?,
        NodeState::Running if seeding => {
            let expires = seed_lease_expiry(naming);
            naming.store.keep_pending(&plan.file_id, expires).await?;
        }
        _ => {}
    }
    let first_fatal = report.fatal && context.error.is_none();
    // A done node is a replica before its report counts: whoever sees the
    // job done finds every done node among the replicas.
    if report.state == NodeState::Done {
        let record = naming.store.job(job_id).await?;
        add_done_nodes(naming, &record, &report.node_id).await?;
    }
    let state = report.state;
    let stored = StoredReport {
        source_start: Some(source_start(context.previous.as_ref(), &report)),
        report,
        received_at_ms: now_ms(),
    };
    naming.store.record_report(job_id, &stored).await?;
    if first_fatal && seeding {
        discard_seed(naming, plan).await?;
    }
    let mut bypassed = context.bypassed;
    if state == NodeState::Running && naming.judged.due(job_id) {
        let record = naming.store.job(job_id).await?;
        let marks = adapt::bypasses(&record, now_ms());
        if !marks.is_empty() {
            // Several replicas may find the same laggard at once.
            let new = naming.store.bypass(job_id, &marks).await?;
            for ((node_id, behind), new) in marks.into_iter().zip(new) {
                if new {
                    tracing::warn!(%job_id, %node_id, %behind, "a node fell behind; the chain now pulls around this one");
                }
                bypassed.entry(node_id).or_insert(behind);
            }
        }
    }
    let state = if state.is_final() {
        // This may have been the last node: the job as clients see it.
        get(naming, job_id).await?.state
    } else if context.error.is_some() || first_fatal {
        JobState::Failed
    } else {
        JobState::Running
    };
    Ok(ReportAck {
        state,
        bypass: bypassed.into_keys().collect(),
    })
}

/// Where the node stood when it started on the source `report` names:
/// carried over from its `previous` report when that named the same one.
fn source_start(previous: Option<&StoredReport>, report: &NodeReport) -> SourceStart {
    match previous {
        Some(previous) if previous.report.source == report.source => previous.source_start,
        _ => None,
    }
    .unwrap_or(SourceStart {
        bytes_done: report.bytes_done,
        elapsed_ms: report.elapsed_ms,
    })
}

/// `node` and every node that reported `done` before join every chunk's
/// replicas.
async fn add_done_nodes(naming: &Naming, record: &JobRecord, node: &str) -> DomainResult<()> {
    let done: Vec<String> = record
        .reports
        .values()
        .filter(|r| r.report.state == NodeState::Done)
        .map(|r| r.report.node_id.clone())
        .chain(std::iter::once(node.to_owned()))
        .collect();
    Ok(naming
        .store
        .add_file_replicas(&record.plan.file_id, &done)
        .await?)
}

/// The first node to hold a whole verified seed commits the file under its
/// name, with itself as the replica; the others join in `add_done_nodes`.
async fn commit_seed(naming: &Naming, plan: &JobPlan, report: &NodeReport) -> DomainResult<()> {
    let info = naming.store.file(&plan.file_id).await?;
    if info.state == FileState::Committed {
        return Ok(());
    }
    if report.crc32c.len() != plan.chunk_ids.len() {
        return Err(DomainError::Invalid(format!(
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
            bad: Vec::new(),
        })
        .collect();
    match naming.store.commit(&info, &chunks).await {
        Ok(()) => Ok(()),
        // Another node's report committed it first.
        Err(StoreError::Conflict(_))
            if naming.store.file(&plan.file_id).await?.state == FileState::Committed =>
        {
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// A failed seed leaves nothing behind: the pending file goes, and every
/// chain node drops whatever chunks it got.
async fn discard_seed(naming: &Naming, plan: &JobPlan) -> DomainResult<()> {
    match naming.store.delete_file(&plan.file_id).await {
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
    Ok(naming.store.trash_chunks(items).await?)
}

/// Hands every chain node its assignment, [`HAND_OUT_PARALLEL`] at a
/// time. A node that refuses or cannot be reached is recorded as failed;
/// the others carry on.
async fn hand_out(naming: &Naming, plan: Plan) {
    let mut calls = JoinSet::new();
    let slots = Arc::new(Semaphore::new(HAND_OUT_PARALLEL));
    for (node, assignment) in plan.assignments {
        let storage = naming.storage.clone();
        let slots = Arc::clone(&slots);
        calls.spawn(async move {
            // The semaphore is never closed: a permit always comes.
            let _slot = slots.acquire_owned().await;
            let sent = storage.assign(&node.url, &assignment).await;
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
                source: None,
            },
            received_at_ms: now_ms(),
            source_start: None,
        };
        if let Err(e) = naming.store.record_report(&plan.job.job_id, &report).await {
            tracing::error!(error = %e, "recording a failed hand-out");
        }
    }
}
