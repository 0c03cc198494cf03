//! Bad replicas: how a corrupt or missing copy of a chunk is found, set
//! aside and replaced.
//!
//! - A reader that gets bad bytes (or none) from a replica reports it
//!   ([`suspect`]); the naming server does not take its word for it, but
//!   asks the replica's node, with its next heartbeat, to verify its copy.
//! - A node's scrubber re-reads every chunk against its CRC32C, and a node
//!   verifies what it was asked to; bad copies are quarantined on the node
//!   and reported with the next heartbeat ([`record_bad`]).
//! - A reported copy leaves the chunk's replicas (readers skip it) and is
//!   listed as bad; the file is queued for repair, which copies the chunk
//!   from a good replica and then forgets the bad copy (see `repair.rs`).

use dfs_common::api::{BadChunk, BadReplica, SuspectReplica};

use super::{DomainError, DomainResult, Naming};
use crate::store::ids::chunk_owner;
use crate::store::{Edited, ReplicaEdit, StoreError, WhichChunks};

/// A reader found replica `report.node_id` of chunk `index` of file
/// `file_id` bad: its node is asked to verify its copy. `NotFound` when the
/// chunk has changed since it was read, `Invalid` when the node holds no
/// copy of it.
pub async fn suspect(
    naming: &Naming,
    file_id: &str,
    index: u64,
    report: SuspectReplica,
) -> DomainResult<()> {
    // Only a committed file has chunk records.
    let chunk = match naming
        .store
        .read_file(file_id, WhichChunks::One(index), false)
        .await
    {
        Ok(read) => read.chunks.into_iter().next(),
        Err(StoreError::NotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let chunk = chunk
        .filter(|chunk| chunk.chunk_id == report.chunk_id)
        .ok_or_else(|| {
            DomainError::NotFound(format!(
                "chunk {index} of file {file_id} is not {} (or the file is gone)",
                report.chunk_id
            ))
        })?;
    if chunk.bad.iter().any(|bad| bad.node_id == report.node_id) {
        return Ok(());
    }
    if !chunk.nodes.contains(&report.node_id) {
        return Err(DomainError::Invalid(format!(
            "node {} holds no replica of chunk {}",
            report.node_id, report.chunk_id
        )));
    }
    naming
        .store
        .suspect(&report.node_id, &report.chunk_id)
        .await?;
    naming.metrics.suspect_reports.inc();
    tracing::warn!(
        chunk_id = %report.chunk_id,
        node_id = %report.node_id,
        reason = %report.reason,
        "a reader found a replica bad; its node will verify it"
    );
    Ok(())
}

/// Node `node_id` found its copy of `bad.chunk_id` bad and quarantined it:
/// the copy leaves the chunk's replicas and the file is queued for repair.
/// Copies of chunks no file lists on this node are the node's own affair.
pub async fn record_bad(naming: &Naming, node_id: &str, bad: &BadChunk) -> DomainResult<()> {
    let Some((file_id, index)) = chunk_owner(&bad.chunk_id) else {
        return Ok(());
    };
    let edit = ReplicaEdit::MarkBad(BadReplica {
        node_id: node_id.to_owned(),
        problem: bad.problem,
    });
    let edited = naming
        .store
        .edit_replicas(file_id, index, &bad.chunk_id, &edit)
        .await?;
    if edited == Edited::Changed {
        naming.metrics.bad_replicas.inc();
        tracing::warn!(
            chunk_id = %bad.chunk_id,
            problem = %bad.problem,
            file_id,
            "replica found bad; repairing the file"
        );
        naming.store.queue_repair(file_id).await?;
    }
    Ok(())
}
