//! Re-replication of chunks that have fewer live replicas than their
//! file's replication factor (nodes died or were forgotten). For each such
//! chunk the naming server picks live nodes that lack it and asks the first
//! to pull it from a live holder over the peer protocol and pass it down to
//! the others (`POST /chunks/{id}/replicate` on the storage server, the
//! same chain as on write); the nodes that now hold it join its replicas.
//! Dead replicas stay listed, so a node that returns still counts.
//!
//! [`scan_if_due`] does it for every committed file once a node has been
//! silent for `REPAIR_AFTER` (or was forgotten): one naming-server replica,
//! holding a lease in Redis, walks every committed file once. A lost node
//! is covered by one scan; if it comes back and is lost again, it counts
//! anew. The background loop that calls it lives in `tasks/repair.rs`.

use std::sync::atomic::Ordering;
use std::time::Duration;

use dfs_client::Error as ClientError;
use dfs_common::api::{RepairProblem, RepairReport};
use dfs_common::chain::{DownstreamNode, ReplicateRequest};
use dfs_common::now_ms;
use tokio_util::sync::CancellationToken;

use super::files;
use super::nodes::{NodeDirectory, is_alive};
use super::{DomainError, DomainResult, Naming, millis, placement};
use crate::store::{NodeRecord, StoredChunk};

/// How long a background scan may hold its lease before another replica
/// may start one.
const SCAN_LEASE_MS: u64 = 3_600_000;
/// Files repaired per node-list refresh in a background scan.
const SCAN_PAGE: usize = 100;

/// Brings every chunk of committed file `file_id` back to its replication
/// factor in live replicas, as far as the live nodes allow.
pub async fn repair(naming: &Naming, file_id: &str) -> DomainResult<RepairReport> {
    let directory = NodeDirectory::load(naming).await?;
    repair_file(naming, file_id, &directory).await
}

/// [`repair`] with the nodes as `directory` has them.
async fn repair_file(
    naming: &Naming,
    file_id: &str,
    directory: &NodeDirectory,
) -> DomainResult<RepairReport> {
    let info = files::committed(naming, file_id).await?;
    let chunks = naming.store.chunks(file_id).await?;
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
        let others: Vec<&NodeRecord> = live
            .iter()
            .copied()
            .filter(|node| !chunk.nodes.contains(&node.node_id))
            .collect();
        let targets = match pick_targets(naming, others, want - holders.len(), chunk.size) {
            Ok(targets) => targets,
            Err(why) => {
                problem(format!(
                    "{} live replicas of {want}, and {why}",
                    holders.len()
                ));
                continue;
            }
        };
        let (added, error) = match copy_down_chain(naming, &chunk, holders[0], &targets).await {
            Ok(()) => (targets.len(), None),
            Err((held, error)) => (held, Some(error)),
        };
        let new_nodes: Vec<String> = targets[..added].iter().map(|n| n.node_id.clone()).collect();
        if !new_nodes.is_empty()
            && !naming
                .store
                .add_chunk_replicas(file_id, index, &chunk.chunk_id, &new_nodes)
                .await?
        {
            // Deleted or replaced meanwhile: the new copies are garbage.
            let trash = new_nodes
                .iter()
                .map(|node| (node.clone(), chunk.chunk_id.clone()))
                .collect();
            naming.store.trash_chunks(trash).await?;
            problem("the file was deleted or replaced during the repair".to_owned());
            continue;
        }
        report.copies += new_nodes.len() as u64;
        naming
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

/// Up to `want` of `others` with room for a chunk of `size` bytes (as many
/// as have room when fewer do), chosen by [`placement::choose_up_to`]; why
/// none when none can take it.
fn pick_targets<'a>(
    naming: &Naming,
    others: Vec<&'a NodeRecord>,
    want: usize,
    size: u64,
) -> Result<Vec<&'a NodeRecord>, String> {
    if others.is_empty() {
        return Err("no other live node to copy it to".to_owned());
    }
    let reserve = naming.settings.free_space_reserve;
    let targets = placement::choose_up_to(others, want, size, reserve, &mut rand::rng());
    if targets.is_empty() {
        let shortage = placement::Shortage {
            need: want,
            have: 0,
            size,
            reserve,
        };
        return Err(format!("no other live node has room for it: {shortage}"));
    }
    Ok(targets)
}

/// Asks `targets[0]` to pull `chunk` from `source` and pass it down the
/// rest of `targets`. On failure: how many leading targets hold it durably
/// (those above the node the chain names as failed), and why.
async fn copy_down_chain(
    naming: &Naming,
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
    let copied = naming
        .storage
        .replicate(&first.url, &chunk.chunk_id, &request)
        .await;
    let error = match copied {
        Ok(_) => return Ok(()),
        Err(error) => error,
    };
    // Every node above the failed one stored the chunk before passing it on.
    let held = match &error {
        ClientError::ChainFailed { failed_node, .. } => targets
            .iter()
            .position(|node| &node.node_id == failed_node)
            .unwrap_or(0),
        _ => 0,
    };
    Err((held, format!("copying from {}: {error}", source.node_id)))
}

/// One tick of background repair: claims a scan when a node has been
/// silent for `lost_after` and no scan covered it yet (or a scan was asked
/// for), and runs it over every committed file. Stops early, releasing
/// the lease for another replica, when `shutdown` is cancelled.
pub async fn scan_if_due(
    naming: &Naming,
    lost_after: Duration,
    shutdown: &CancellationToken,
) -> DomainResult<()> {
    let now = now_ms();
    let lost_ms = millis(lost_after);
    let nodes = naming.store.nodes().await?;
    let lost: Vec<String> = nodes
        .iter()
        .filter(|n| now.saturating_sub(n.last_heartbeat_ms) > lost_ms)
        .map(|n| n.node_id.clone())
        .collect();
    let alive: Vec<String> = nodes
        .iter()
        .filter(|n| is_alive(n, &naming.settings, now))
        .map(|n| n.node_id.clone())
        .collect();
    let Some(fresh) = naming
        .store
        .claim_repair_scan(&lost, &alive, SCAN_LEASE_MS)
        .await?
    else {
        return Ok(());
    };
    tracing::info!(lost = ?fresh, "re-replicating the chunks of lost storage nodes");
    let scanned = scan(naming, shutdown).await;
    naming
        .store
        .finish_repair_scan(&fresh, scanned.is_ok())
        .await?;
    naming.metrics.repair_scans.fetch_add(1, Ordering::Relaxed);
    scanned
}

/// Repairs every committed file, page by page; stops early (as failed) on
/// shutdown.
async fn scan(naming: &Naming, shutdown: &CancellationToken) -> DomainResult<()> {
    let mut after: Option<String> = None;
    loop {
        let page = naming.store.list("", after.as_deref(), SCAN_PAGE).await?;
        let directory = NodeDirectory::load(naming).await?;
        for file in &page.files {
            if shutdown.is_cancelled() {
                return Err(DomainError::Unavailable(
                    "shutting down; the scan resumes on another replica or at restart".into(),
                ));
            }
            match repair_file(naming, &file.file_id, &directory).await {
                // Deleted since it was listed.
                Ok(_) | Err(DomainError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(()),
        }
    }
}
