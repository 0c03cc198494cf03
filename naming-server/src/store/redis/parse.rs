//! Conversions between Redis replies and store types, and Redis errors
//! as [`StoreError`]s.

use std::collections::HashMap;
use std::str::FromStr;

use dfs_common::api::{FileInfo, FileState, NodeStats};
use dfs_common::chunk_count;

use super::keys::FileKeys;
use crate::store::{Allocation, NodeRecord, StoreError, StoreResult, StoredChunk};

fn field<T: FromStr>(fields: &HashMap<String, String>, key: &str, owner: &str) -> StoreResult<T> {
    fields
        .get(key)
        .and_then(|value| value.parse().ok())
        .ok_or_else(|| StoreError::Internal(format!("{owner}: missing or bad field {key:?}")))
}

/// The error for a file whose state forbids the operation.
pub(super) fn state_error(file_id: &str, state: &str) -> StoreError {
    match state {
        "missing" => StoreError::NotFound(format!("file {file_id} not found")),
        "expired" => StoreError::NotFound(format!(
            "upload expired: file {file_id} was not finalized in time"
        )),
        "committed" => StoreError::Conflict(format!("file {file_id} is already committed")),
        other => StoreError::Internal(format!("file {file_id}: unexpected state {other:?}")),
    }
}

/// A file hash as [`FileInfo`]; `NotFound` when empty or expired.
pub(super) fn file_info(file_id: &str, fields: &HashMap<String, String>) -> StoreResult<FileInfo> {
    let owner = format!("file {file_id}");
    let state = match fields.get("state").map(String::as_str) {
        None => return Err(state_error(file_id, "missing")),
        Some("pending") => FileState::Pending,
        Some("committed") => FileState::Committed,
        Some(other) => return Err(state_error(file_id, other)),
    };
    let size = field(fields, "size", &owner)?;
    let chunk_size: u64 = field(fields, "chunk_size", &owner)?;
    if chunk_size == 0 {
        return Err(StoreError::Internal(format!("{owner}: chunk size 0")));
    }
    Ok(FileInfo {
        file_id: file_id.to_owned(),
        name: field(fields, "name", &owner)?,
        size,
        chunk_size,
        chunk_count: chunk_count(size, chunk_size),
        replication: field(fields, "replication", &owner)?,
        state,
        created_at_ms: field(fields, "created_at_ms", &owner)?,
    })
}

/// A node hash as [`NodeRecord`].
pub(super) fn node_record(
    node_id: String,
    fields: &HashMap<String, String>,
) -> StoreResult<NodeRecord> {
    let owner = format!("node {node_id}");
    Ok(NodeRecord {
        url: field(fields, "url", &owner)?,
        tcp_addr: field(fields, "tcp_addr", &owner)?,
        last_heartbeat_ms: field(fields, "last_heartbeat_ms", &owner)?,
        stats: NodeStats {
            capacity_bytes: field(fields, "capacity_bytes", &owner)?,
            free_bytes: field(fields, "free_bytes", &owner)?,
            chunk_count: field(fields, "chunk_count", &owner)?,
            // Absent in records written before nodes reported it.
            full: fields.get("full").is_some_and(|v| v == "1"),
            quarantined_chunks: field(fields, "quarantined_chunks", &owner).unwrap_or(0),
            peer_send_bytes_per_sec: field(fields, "peer_send_bytes_per_sec", &owner).unwrap_or(0),
            peer_receive_bytes_per_sec: field(fields, "peer_receive_bytes_per_sec", &owner)
                .unwrap_or(0),
            peer_send_rate_bytes_per_sec: field(fields, "peer_send_rate_bytes_per_sec", &owner)
                .unwrap_or(0),
        },
        node_id,
    })
}

/// A file's chunks from its chunk hash (index → JSON), in index order.
pub(super) fn stored_chunks(
    raw: impl IntoIterator<Item = (u64, String)>,
) -> StoreResult<Vec<StoredChunk>> {
    let mut chunks = raw
        .into_iter()
        .map(|(index, json)| {
            let chunk: StoredChunk = serde_json::from_str(&json)?;
            Ok(StoredChunk { index, ..chunk })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    chunks.sort_by_key(|c| c.index);
    Ok(chunks)
}

pub(super) fn file_keys(file_id: &str) -> StoreResult<FileKeys> {
    FileKeys::of(file_id).ok_or_else(|| StoreError::NotFound(format!("file {file_id} not found")))
}

/// (node, chunk id) for every target of allocations given as id/JSON pairs.
pub(super) fn allocation_targets(pairs: &[String]) -> StoreResult<Vec<(String, String)>> {
    let mut items = Vec::new();
    for pair in pairs.chunks_exact(2) {
        let allocation: Allocation = serde_json::from_str(&pair[1])?;
        items.extend(
            allocation
                .targets
                .into_iter()
                .map(|node| (node, pair[0].clone())),
        );
    }
    Ok(items)
}
