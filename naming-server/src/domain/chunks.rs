//! Chunks of a file: hand out targets for one, finalize a file with all of
//! them, say where one lives.
//!
//! Every allocation gets a fresh chunk id (a retry never reuses one), and
//! finalize accepts only chunks allocated for that index, with replicas
//! among the allocation's targets: what a client claims is checked against
//! what the naming server handed out.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;

use dfs_common::api::{
    AllocateChunkRequest, ChunkAllocation, ChunkLocation, FileInfo, FileRecord, FinalizeRequest,
    FinalizedChunk, NodeTarget,
};
use dfs_common::chunk_len;
use rand::seq::SliceRandom;

use super::files::{self, committed, pending};
use super::nodes::{self, NodeDirectory};
use super::{DomainError, DomainResult, Naming};
use crate::store::ids::new_chunk_id;
use crate::store::{Allocation, StoredChunk};

fn out_of_range(index: u64, info: &FileInfo) -> String {
    format!(
        "chunk index {index} is out of range: the file has {} chunks",
        info.chunk_count
    )
}

/// A fresh chunk id for chunk `request.index` of a pending file, and
/// `replication` distinct live nodes (none of `request.exclude`) to write
/// it to, in random order.
pub async fn allocate(
    naming: &Naming,
    file_id: &str,
    request: AllocateChunkRequest,
) -> DomainResult<ChunkAllocation> {
    let info = pending(naming, file_id).await?;
    let size = chunk_len(info.size, info.chunk_size, request.index)
        .ok_or_else(|| DomainError::Invalid(out_of_range(request.index, &info)))?;
    let mut live = nodes::live(naming).await?;
    live.retain(|node| !request.exclude.contains(&node.node_id));
    nodes::require(info.replication, live.len())?;
    live.shuffle(&mut rand::rng());
    live.truncate(info.replication as usize);
    let chunk_id = new_chunk_id(file_id, request.index);
    let allocation = Allocation {
        index: request.index,
        targets: live.iter().map(|node| node.node_id.clone()).collect(),
    };
    naming
        .store
        .add_allocation(file_id, &chunk_id, &allocation)
        .await?;
    naming
        .metrics
        .chunks_allocated
        .fetch_add(1, Ordering::Relaxed);
    let targets = live
        .into_iter()
        .map(|node| NodeTarget {
            node_id: node.node_id,
            url: node.url,
            tcp_addr: node.tcp_addr,
        })
        .collect();
    Ok(ChunkAllocation {
        chunk_id,
        index: request.index,
        size,
        targets,
    })
}

/// Checks the client's chunk list against the file and its allocations.
fn validate_chunks(
    info: &FileInfo,
    chunks: Vec<FinalizedChunk>,
    allocations: &HashMap<String, Allocation>,
) -> DomainResult<Vec<StoredChunk>> {
    let bad = |message: String| Err(DomainError::Invalid(message));
    if chunks.len() as u64 != info.chunk_count {
        return bad(format!(
            "expected {} chunks, got {}",
            info.chunk_count,
            chunks.len()
        ));
    }
    let mut seen = HashSet::new();
    let mut stored = Vec::with_capacity(chunks.len());
    for chunk in chunks {
        let index = chunk.index;
        let Some(expected) = chunk_len(info.size, info.chunk_size, index) else {
            return bad(out_of_range(index, info));
        };
        if !seen.insert(index) {
            return bad(format!("chunk {index} is listed twice"));
        }
        if chunk.size != expected {
            return bad(format!(
                "chunk {index} has size {}, expected {expected}",
                chunk.size
            ));
        }
        let Some(allocation) = allocations
            .get(&chunk.chunk_id)
            .filter(|a| a.index == index)
        else {
            return bad(format!(
                "chunk id {:?} was not allocated for chunk {index}",
                chunk.chunk_id
            ));
        };
        let mut replicas = HashSet::new();
        for replica in &chunk.replicas {
            if !allocation.targets.contains(replica) {
                return bad(format!(
                    "replica {replica:?} of chunk {index} is not among its targets"
                ));
            }
            if !replicas.insert(replica) {
                return bad(format!(
                    "replica {replica:?} of chunk {index} is listed twice"
                ));
            }
        }
        stored.push(StoredChunk {
            index,
            chunk_id: chunk.chunk_id,
            size: chunk.size,
            crc32c: chunk.crc32c,
            nodes: chunk.replicas,
        });
    }
    stored.sort_by_key(|chunk| chunk.index);
    Ok(stored)
}

/// Commits a pending file: atomically claims its name (`Conflict` if
/// taken) and records its chunks.
pub async fn finalize(
    naming: &Naming,
    file_id: &str,
    request: FinalizeRequest,
) -> DomainResult<FileRecord> {
    let info = pending(naming, file_id).await?;
    if request.size != info.size {
        return Err(DomainError::Invalid(format!(
            "size {} differs from the {} bytes given at init",
            request.size, info.size
        )));
    }
    let allocations = naming.store.allocations(file_id).await?;
    let chunks = validate_chunks(&info, request.chunks, &allocations)?;
    naming.store.commit(&info, &chunks).await?;
    naming
        .metrics
        .files_committed
        .fetch_add(1, Ordering::Relaxed);
    tracing::info!(name = %info.name, size = info.size, "file committed");
    files::record(naming, file_id).await
}

/// Where chunk `index` of a committed file lives, live replicas first.
pub async fn location(naming: &Naming, file_id: &str, index: u64) -> DomainResult<ChunkLocation> {
    let info = committed(naming, file_id).await?;
    let chunk = match naming.store.chunk(file_id, index).await? {
        Some(chunk) if index < info.chunk_count => chunk,
        _ => return Err(DomainError::NotFound(out_of_range(index, &info))),
    };
    Ok(NodeDirectory::load(naming).await?.locate(chunk))
}
