//! Re-replication of a file whose chunks have fewer live replicas than its
//! replication factor (nodes died or were forgotten). For each such chunk
//! the naming server picks live nodes that lack it and asks the first to
//! pull it from a live holder over the peer protocol and pass it down to
//! the others (`POST /chunks/{id}/replicate` on the storage server, the
//! same chain as on write); the nodes that now hold it join its replicas.
//! Dead replicas stay listed, so a node that returns still counts.
//!
//! [`run`] does it in the background: once a node has been silent for
//! `REPAIR_AFTER` (or was forgotten), one naming-server replica (holding a
//! lease in Redis) walks every committed file once. A lost node is covered
//! by one scan; if it comes back and is lost again, it counts anew.

use std::sync::atomic::Ordering;
use std::time::Duration;

use dfs_common::api::{RepairProblem, RepairReport};
use dfs_common::chain::{ChainErrorBody, DownstreamNode, FAILED_NODE_HEADER, ReplicateRequest};
use rand::seq::SliceRandom;
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::routes::{NodeDirectory, files, is_alive};
use crate::store::{NodeRecord, StoredChunk};
use crate::{AppState, now_ms};

/// Longest one chunk's replicate call may take, the chain below included.
const REPLICATE_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a background scan may hold its lease before another replica
/// may start one.
const SCAN_LEASE_MS: u64 = 3_600_000;
/// Files repaired per node-list refresh in a background scan.
const SCAN_PAGE: usize = 100;

/// Brings every chunk of committed file `file_id` back to its replication
/// factor in live replicas, as far as the live nodes in `directory` allow.
pub async fn repair_file(
    state: &AppState,
    file_id: &str,
    directory: &NodeDirectory,
) -> Result<RepairReport, ApiError> {
    let info = files::committed(state, file_id).await?;
    let chunks = state.store.chunks(file_id).await?;
    let live = directory.live();
    let want = info.replication as usize;
    let mut report = RepairReport {
        file_id: info.file_id.clone(),
        name: info.name.clone(),
        replication: info.replication,
        under_replicated: 0,
        repaired: 0,
        copies: 0,
        problems: Vec::new(),
    };
    for chunk in chunks {
        let holders: Vec<&NodeRecord> = live
            .iter()
            .copied()
            .filter(|node| chunk.nodes.contains(&node.node_id))
            .collect();
        if holders.len() >= want {
            continue;
        }
        report.under_replicated += 1;
        let index = chunk.index;
        let mut problem = |error: String| report.problems.push(RepairProblem { index, error });
        if holders.is_empty() {
            let listed = chunk
                .nodes
                .iter()
                .map(|id| match directory.record(id) {
                    Some(_) => format!("{id} (dead)"),
                    None => format!("{id} (forgotten)"),
                })
                .collect::<Vec<_>>()
                .join(", ");
            problem(format!("no live replica; it was on {listed}"));
            continue;
        }
        let mut targets: Vec<&NodeRecord> = live
            .iter()
            .copied()
            .filter(|node| !chunk.nodes.contains(&node.node_id))
            .collect();
        targets.shuffle(&mut rand::rng());
        targets.truncate(want - holders.len());
        if targets.is_empty() {
            problem(format!(
                "{} live replicas of {want}, and no other live node to copy it to",
                holders.len()
            ));
            continue;
        }
        let stored = copy_down_chain(state, &chunk, holders[0], &targets).await;
        let (added, error) = match stored {
            Ok(()) => (targets.len(), None),
            Err((held, error)) => (held, Some(error)),
        };
        let new_nodes: Vec<String> = targets[..added].iter().map(|n| n.node_id.clone()).collect();
        if !new_nodes.is_empty()
            && !state
                .store
                .add_chunk_replicas(file_id, index, &chunk.chunk_id, &new_nodes)
                .await?
        {
            // Deleted or replaced meanwhile: the new copies are garbage.
            let trash = new_nodes
                .iter()
                .map(|node| (node.clone(), chunk.chunk_id.clone()))
                .collect();
            state.jobs.trash_chunks(trash).await?;
            problem("the file was deleted or replaced during the repair".to_owned());
            continue;
        }
        report.copies += new_nodes.len() as u64;
        state
            .metrics
            .repair_copies
            .fetch_add(new_nodes.len() as u64, Ordering::Relaxed);
        let now_live = holders.len() + new_nodes.len();
        match error {
            Some(error) => problem(error),
            None if now_live < want => problem(format!(
                "{now_live} live replicas of {want}: not enough live nodes"
            )),
            None => report.repaired += 1,
        }
    }
    if report.under_replicated > 0 {
        tracing::info!(
            file_id,
            under_replicated = report.under_replicated,
            repaired = report.repaired,
            copies = report.copies,
            problems = report.problems.len(),
            "file repaired"
        );
    }
    Ok(report)
}

/// Asks `targets[0]` to pull `chunk` from `source` and pass it down the
/// rest of `targets`. On failure: how many leading targets hold it durably
/// (those above the node the chain names as failed), and why.
async fn copy_down_chain(
    state: &AppState,
    chunk: &StoredChunk,
    source: &NodeRecord,
    targets: &[&NodeRecord],
) -> Result<(), (usize, String)> {
    let first = targets[0];
    let request = ReplicateRequest {
        source: source.tcp_addr.clone(),
        size: chunk.size,
        crc32c: chunk.crc32c,
        downstream: targets[1..]
            .iter()
            .map(|node| DownstreamNode {
                node_id: node.node_id.clone(),
                url: node.url.clone(),
            })
            .collect(),
    };
    let url = format!("{}/chunks/{}/replicate", first.url, chunk.chunk_id);
    let response = state
        .http
        .post(&url)
        .json(&request)
        .timeout(REPLICATE_TIMEOUT)
        .send()
        .await
        .map_err(|e| (0, format!("node {} did not answer: {e}", first.node_id)))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let failed = response
        .headers()
        .get(FAILED_NODE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = response.text().await.unwrap_or_default();
    let reason = serde_json::from_str::<ChainErrorBody>(&text)
        .map(|body| body.error)
        .unwrap_or_else(|_| format!("node {} answered {status}", first.node_id));
    // Every node above the failed one stored the chunk before passing it on.
    let held = failed
        .and_then(|id| targets.iter().position(|node| node.node_id == id))
        .unwrap_or(0);
    Err((held, format!("copying from {}: {reason}", source.node_id)))
}

/// Runs background repair scans until `shutdown` (not at all when
/// `REPAIR_AFTER` is off).
pub async fn run(state: AppState, shutdown: CancellationToken) {
    let Some(after) = state.settings.repair_after else {
        return;
    };
    let lost_after = after.max(state.settings.heartbeat_timeout);
    // Often enough that a forgotten node's chunks are copied within seconds.
    let every = (lost_after / 2).clamp(Duration::from_millis(100), Duration::from_secs(5));
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        // Not raced against shutdown: the scan stops between files and
        // releases its lease, so another replica can take over at once.
        if let Err(error) = scan_if_due(&state, lost_after, &shutdown).await {
            tracing::warn!(%error, "background repair failed; retrying later");
        }
    }
}

/// One tick: claims a scan when a node is newly lost (or one was asked
/// for) and runs it over every committed file.
async fn scan_if_due(
    state: &AppState,
    lost_after: Duration,
    shutdown: &CancellationToken,
) -> Result<(), ApiError> {
    let now = now_ms();
    let lost_ms = u64::try_from(lost_after.as_millis()).unwrap_or(u64::MAX);
    let nodes = state.store.nodes().await?;
    let (lost, alive): (Vec<String>, Vec<String>) = {
        let lost = nodes
            .iter()
            .filter(|n| now.saturating_sub(n.last_heartbeat_ms) > lost_ms)
            .map(|n| n.node_id.clone())
            .collect();
        let alive = nodes
            .iter()
            .filter(|n| is_alive(n, &state.settings, now))
            .map(|n| n.node_id.clone())
            .collect();
        (lost, alive)
    };
    let Some(fresh) = state
        .store
        .claim_repair_scan(&lost, &alive, SCAN_LEASE_MS)
        .await?
    else {
        return Ok(());
    };
    tracing::info!(lost = ?fresh, "re-replicating the chunks of lost storage nodes");
    let scanned = scan(state, shutdown).await;
    state
        .store
        .finish_repair_scan(&fresh, scanned.is_ok())
        .await?;
    state.metrics.repair_scans.fetch_add(1, Ordering::Relaxed);
    scanned
}

/// Repairs every committed file, page by page; stops early (as failed) on
/// shutdown.
async fn scan(state: &AppState, shutdown: &CancellationToken) -> Result<(), ApiError> {
    let mut after: Option<String> = None;
    loop {
        let page = state.store.list("", after.as_deref(), SCAN_PAGE).await?;
        let directory = NodeDirectory::load(state).await?;
        for file in &page.files {
            if shutdown.is_cancelled() {
                return Err(ApiError::Unavailable(
                    "shutting down; the scan resumes on another replica or at restart".into(),
                ));
            }
            match repair_file(state, &file.file_id, &directory).await {
                // Deleted since it was listed.
                Ok(_) | Err(ApiError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(()),
        }
    }
}
