//! Re-replication of chunks that have fewer live replicas than their
//! file's replication factor (nodes died or were forgotten). For each such
//! chunk the naming server picks live nodes that lack it and asks the first
//! to pull it from a live holder over the peer protocol and pass it down to
//! the others (`POST /chunks/{id}/replicate` on the storage server, the
//! same chain as on write); the nodes that now hold it join its replicas.
//! Dead replicas stay listed, so a node that returns still counts.
//!
//! [`repair_queued`] does it for files queued because a replica was found
//! bad (`integrity.rs`). [`scan_if_due`] does it for every committed file
//! once a node has been silent for `REPAIR_AFTER` (or was forgotten, or
//! came back after its chunks were copied elsewhere): one naming-server
//! replica,
//! holding a lease in Redis, walks every committed file once. A lost node
//! is covered by one scan; if it comes back and is lost again, it counts
//! anew. The background loop that calls it lives in `tasks/repair.rs`.

use std::time::Duration;

use dfs_client::Error as ClientError;
use dfs_common::api::{RepairProblem, RepairReport};
use dfs_common::chain::{DownstreamNode, ReplicateRequest};
use dfs_common::now_ms;
use tokio_util::sync::CancellationToken;

use super::files;
use super::nodes::{NodeDirectory, is_alive};
use super::{DomainError, DomainResult, Naming, millis, placement};
use crate::store::{Edited, NodeRecord, ReplicaEdit, StoredChunk};

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
        trimmed: 0,
        problems: Vec::new(),
    };
    for chunk in chunks {
        let holders: Vec<&NodeRecord> = live
            .iter()
            .copied()
            .filter(|node| chunk.nodes.contains(&node.node_id))
            .collect();
        if holders.len() >= want {
            report.trimmed += trim(naming, file_id, &chunk, &holders, want).await?;
            settle_bad(naming, file_id, &chunk).await?;
            continue;
        }
        report.under_replicated += 1;
        match restore(naming, file_id, &chunk, &holders, want, directory).await? {
            Restored::Full { copies } => {
                report.copies += copies;
                report.repaired += 1;
                settle_bad(naming, file_id, &chunk).await?;
            }
            Restored::Short { copies, error } => {
                report.copies += copies;
                report.problems.push(RepairProblem {
                    index: chunk.index,
                    error,
                });
            }
        }
    }
    if report.under_replicated > 0 || report.trimmed > 0 {
        tracing::info!(
            file_id,
            under_replicated = report.under_replicated,
            repaired = report.repaired,
            copies = report.copies,
            trimmed = report.trimmed,
            problems = report.problems.len(),
            "file repaired"
        );
    }
    Ok(report)
}

/// How far [`restore`] got with one chunk.
enum Restored {
    /// Back at its replication factor.
    Full { copies: u64 },
    /// Still short, and why.
    Short { copies: u64, error: String },
}

/// Copies `chunk`, which has `holders` live good replicas, to live nodes
/// that lack it (and hold no bad copy of it) until it has `want`.
async fn restore(
    naming: &Naming,
    file_id: &str,
    chunk: &StoredChunk,
    holders: &[&NodeRecord],
    want: usize,
    directory: &NodeDirectory,
) -> DomainResult<Restored> {
    let short = |copies: u64, error: String| Ok(Restored::Short { copies, error });
    let Some(source) = holders.first() else {
        let listed = chunk
            .nodes
            .iter()
            .map(|id| match directory.record(id) {
                Some(_) => format!("{id} (dead)"),
                None => format!("{id} (forgotten)"),
            })
            .chain(
                chunk
                    .bad
                    .iter()
                    .map(|bad| format!("{} ({})", bad.node_id, bad.problem)),
            )
            .collect::<Vec<_>>()
            .join(", ");
        return short(0, format!("no good live replica; it was on {listed}"));
    };
    let excluded = |node: &&NodeRecord| {
        chunk.nodes.contains(&node.node_id) || chunk.bad.iter().any(|b| b.node_id == node.node_id)
    };
    let others: Vec<&NodeRecord> = directory
        .live()
        .into_iter()
        .filter(|node| !excluded(node))
        .collect();
    let targets = match pick_targets(naming, others, want - holders.len(), chunk.size) {
        Ok(targets) => targets,
        Err(why) => {
            return short(
                0,
                format!("{} live replicas of {want}, and {why}", holders.len()),
            );
        }
    };
    let (added, error) = match copy_down_chain(naming, chunk, source, &targets).await {
        Ok(()) => (targets.len(), None),
        Err((held, error)) => (held, Some(error)),
    };
    let new_nodes: Vec<String> = targets[..added].iter().map(|n| n.node_id.clone()).collect();
    if !new_nodes.is_empty() {
        let edit = ReplicaEdit::Add(new_nodes.clone());
        let edited = naming
            .store
            .edit_replicas(file_id, chunk.index, &chunk.chunk_id, &edit)
            .await?;
        if edited == Edited::Gone {
            // Deleted or replaced meanwhile: the new copies are garbage.
            naming
                .store
                .trash_chunks(trash_on(&new_nodes, &chunk.chunk_id))
                .await?;
            return short(
                0,
                "the file was deleted or replaced during the repair".to_owned(),
            );
        }
    }
    let copies = new_nodes.len() as u64;
    naming.metrics.repair_copies.inc_by(copies);
    let now_live = holders.len() + new_nodes.len();
    match error {
        Some(error) => short(copies, error),
        None if now_live < want => short(
            copies,
            format!("{now_live} live replicas of {want}: not enough live nodes"),
        ),
        None => Ok(Restored::Full { copies }),
    }
}

/// Drops the replicas of `chunk` beyond `want` (a lost node came back
/// after its chunks were copied elsewhere): those on the fullest nodes go,
/// and their copies are deleted. How many were dropped.
async fn trim(
    naming: &Naming,
    file_id: &str,
    chunk: &StoredChunk,
    holders: &[&NodeRecord],
    want: usize,
) -> DomainResult<u64> {
    if holders.len() <= want {
        return Ok(0);
    }
    let mut fullest_first = holders.to_vec();
    fullest_first.sort_by_key(|node| node.stats.free_bytes);
    let extra: Vec<String> = fullest_first[..holders.len() - want]
        .iter()
        .map(|node| node.node_id.clone())
        .collect();
    let edit = ReplicaEdit::Remove(extra.clone());
    let edited = naming
        .store
        .edit_replicas(file_id, chunk.index, &chunk.chunk_id, &edit)
        .await?;
    if edited != Edited::Changed {
        return Ok(0);
    }
    naming
        .store
        .trash_chunks(trash_on(&extra, &chunk.chunk_id))
        .await?;
    naming.metrics.repair_trims.inc_by(extra.len() as u64);
    Ok(extra.len() as u64)
}

/// `chunk` has its good replicas again: its bad copies are forgotten, and
/// deleted from their nodes' quarantine.
async fn settle_bad(naming: &Naming, file_id: &str, chunk: &StoredChunk) -> DomainResult<()> {
    if chunk.bad.is_empty() {
        return Ok(());
    }
    let edited = naming
        .store
        .edit_replicas(
            file_id,
            chunk.index,
            &chunk.chunk_id,
            &ReplicaEdit::ClearBad,
        )
        .await?;
    if edited == Edited::Changed {
        let nodes: Vec<String> = chunk.bad.iter().map(|bad| bad.node_id.clone()).collect();
        naming
            .store
            .trash_chunks(trash_on(&nodes, &chunk.chunk_id))
            .await?;
    }
    Ok(())
}

/// (node, chunk id) trash items for `chunk_id` on each of `nodes`.
fn trash_on(nodes: &[String], chunk_id: &str) -> Vec<(String, String)> {
    nodes
        .iter()
        .map(|node| (node.clone(), chunk_id.to_owned()))
        .collect()
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
        signature: naming.sign_chunk_id(&chunk.chunk_id),
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

/// Repairs up to `max` files queued because a replica of theirs was found
/// bad (any replica of the naming server may take each). How many.
pub async fn repair_queued(naming: &Naming, max: usize) -> DomainResult<usize> {
    for done in 0..max {
        let Some(file_id) = naming.store.next_repair().await? else {
            return Ok(done);
        };
        match repair(naming, &file_id).await {
            // Deleted since it was queued.
            Ok(_) | Err(DomainError::NotFound(_)) => {}
            Err(e) => {
                naming.store.queue_repair(&file_id).await?;
                return Err(e);
            }
        }
    }
    Ok(max)
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
    naming.metrics.repair_scans.inc();
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
