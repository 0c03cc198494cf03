//! Chunks of a file: hand out targets for one, finalize a file with all of
//! them, say where one lives.
//!
//! Every allocation gets a fresh chunk id (a retry never reuses one), and
//! finalize accepts only chunks allocated for that index, with replicas
//! among the allocation's targets: what a client claims is checked against
//! what the naming server handed out.

use std::collections::{HashMap, HashSet};

use dfs_common::api::{
    AllocateChunkRequest, ChunkAllocation, ChunkLocation, FileInfo, FileRecord, FileState,
    FinalizeRequest, FinalizedChunk, NodeTarget,
};
use dfs_common::chunk_len;

use super::files::{self, pending};
use super::nodes;
use super::{DomainError, DomainResult, Naming, placement};
use crate::store::ids::new_chunk_id;
use crate::store::{Allocation, StoredChunk, WhichChunks};

fn out_of_range(index: u64, info: &FileInfo) -> String {
    format!(
        "chunk index {index} is out of range: the file has {} chunks",
        info.chunk_count
    )
}

/// A fresh chunk id for chunk `request.index` of a pending file (signed
/// when the cluster has a token), and `replication` distinct live nodes
/// (none of `request.exclude`) with room for it to write it to, chosen by
/// [`placement::choose`].
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
    nodes::require(naming, info.replication, live.len())?;
    let reserve = naming.settings.free_space_reserve;
    let live = placement::choose(
        live,
        info.replication as usize,
        size,
        reserve,
        &mut rand::rng(),
    )
    .map_err(|shortage| naming.shortage(shortage.to_string()))?;
    let chunk_id = new_chunk_id(file_id, request.index);
    let allocation = Allocation {
        index: request.index,
        targets: live.iter().map(|node| node.node_id.clone()).collect(),
    };
    naming
        .store
        .add_allocation(file_id, &chunk_id, &allocation)
        .await?;
    naming.metrics.chunks_allocated.inc();
    let targets = live
        .into_iter()
        .map(|node| NodeTarget {
            node_id: node.node_id,
            url: node.url,
            tcp_addr: node.tcp_addr,
        })
        .collect();
    Ok(ChunkAllocation {
        signature: naming.sign_chunk_id(&chunk_id),
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
            bad: Vec::new(),
        });
    }
    stored.sort_by_key(|chunk| chunk.index);
    Ok(stored)
}

/// Commits a pending file: atomically claims its name (`Conflict` if
/// taken) and records its chunks. Safe to retry: a finalize of a file this
/// very request already committed (its reply was lost) answers the record
/// again instead of `Conflict`.
pub async fn finalize(
    naming: &Naming,
    file_id: &str,
    request: FinalizeRequest,
) -> DomainResult<FileRecord> {
    match commit(naming, file_id, &request).await {
        Err(DomainError::Conflict(message)) => {
            let read = naming
                .store
                .read_file(file_id, WhichChunks::All, false)
                .await?;
            let (info, stored) = (read.info, read.chunks);
            if info.state == FileState::Committed && is_same_commit(&info, &stored, &request) {
                tracing::info!(name = %info.name, "finalize repeated; the file was committed by it");
                files::record(naming, file_id).await
            } else {
                Err(DomainError::Conflict(message))
            }
        }
        Err(e) => Err(e),
        Ok(()) => files::record(naming, file_id).await,
    }
}

/// Checks `request` against the pending file and its allocations, then
/// commits it.
async fn commit(naming: &Naming, file_id: &str, request: &FinalizeRequest) -> DomainResult<()> {
    let info = pending(naming, file_id).await?;
    if request.size != info.size {
        return Err(DomainError::Invalid(format!(
            "size {} differs from the {} bytes given at init",
            request.size, info.size
        )));
    }
    let allocations = naming.store.allocations(file_id).await?;
    let chunks = validate_chunks(&info, request.chunks.clone(), &allocations)?;
    naming.store.commit(&info, &chunks).await?;
    naming.metrics.files_committed.inc();
    tracing::info!(name = %info.name, size = info.size, "file committed");
    Ok(())
}

/// Whether committed file `info`, holding `stored`, is what `request`
/// commits: the same size and, index by index, the same chunk ids, sizes
/// and CRCs. Chunk ids are never handed out twice, so only a finalize of
/// this upload can match; replicas are not compared (a repair may have
/// added some since).
pub fn is_same_commit(info: &FileInfo, stored: &[StoredChunk], request: &FinalizeRequest) -> bool {
    if info.size != request.size || stored.len() != request.chunks.len() {
        return false;
    }
    let by_index: HashMap<u64, &StoredChunk> = stored.iter().map(|c| (c.index, c)).collect();
    request.chunks.iter().all(|chunk| {
        by_index.get(&chunk.index).is_some_and(|have| {
            have.chunk_id == chunk.chunk_id
                && have.size == chunk.size
                && have.crc32c == chunk.crc32c
        })
    })
}

/// Where chunk `index` of a committed file lives, live replicas first.
pub async fn location(naming: &Naming, file_id: &str, index: u64) -> DomainResult<ChunkLocation> {
    let (info, chunks, directory) =
        files::committed_with_nodes(naming, file_id, WhichChunks::One(index)).await?;
    match chunks.into_iter().next() {
        Some(chunk) if index < info.chunk_count => Ok(directory.locate(chunk)),
        _ => Err(DomainError::NotFound(out_of_range(index, &info))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(size: u64) -> FileInfo {
        FileInfo {
            file_id: "f".into(),
            name: "n".into(),
            size,
            chunk_size: 64,
            chunk_count: size.div_ceil(64),
            replication: 2,
            state: FileState::Committed,
            created_at_ms: 0,
        }
    }

    fn stored(index: u64, chunk_id: &str, size: u64, crc32c: u32) -> StoredChunk {
        StoredChunk {
            index,
            chunk_id: chunk_id.into(),
            size,
            crc32c,
            nodes: vec!["a".into(), "b".into(), "repaired-c".into()],
            bad: Vec::new(),
        }
    }

    fn sent(index: u64, chunk_id: &str, size: u64, crc32c: u32) -> FinalizedChunk {
        FinalizedChunk {
            index,
            chunk_id: chunk_id.into(),
            size,
            crc32c,
            replicas: vec!["a".into(), "b".into()],
        }
    }

    #[test]
    fn a_repeated_finalize_matches_what_it_committed() {
        let committed = [stored(0, "c0", 64, 1), stored(1, "c1", 36, 2)];
        let request = FinalizeRequest {
            size: 100,
            // In another order, with replicas a repair has added to since.
            chunks: vec![sent(1, "c1", 36, 2), sent(0, "c0", 64, 1)],
        };
        assert!(is_same_commit(&info(100), &committed, &request));
    }

    #[test]
    fn another_upload_never_matches() {
        let committed = [stored(0, "c0", 64, 1), stored(1, "c1", 36, 2)];
        let same = |chunks: Vec<FinalizedChunk>, size| {
            is_same_commit(&info(100), &committed, &FinalizeRequest { size, chunks })
        };
        // Another chunk id (another upload's allocation), CRC or size.
        assert!(!same(vec![sent(0, "c0", 64, 1), sent(1, "x1", 36, 2)], 100));
        assert!(!same(vec![sent(0, "c0", 64, 1), sent(1, "c1", 36, 3)], 100));
        assert!(!same(vec![sent(0, "c0", 64, 1), sent(1, "c1", 35, 2)], 99));
        // Missing, extra or misplaced chunks.
        assert!(!same(vec![sent(0, "c0", 64, 1)], 100));
        assert!(!same(
            vec![
                sent(0, "c0", 64, 1),
                sent(1, "c1", 36, 2),
                sent(2, "c2", 1, 3)
            ],
            100
        ));
        assert!(!same(vec![sent(1, "c0", 64, 1), sent(0, "c1", 36, 2)], 100));
        // An empty file commits no chunks: a repeat matches.
        assert!(is_same_commit(
            &info(0),
            &[],
            &FinalizeRequest {
                size: 0,
                chunks: vec![]
            }
        ));
    }
}
