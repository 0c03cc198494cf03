//! [`FileStore`]: files, their chunks and the chunk ids handed out while
//! they are written.

use std::collections::HashMap;

use dfs_common::api::{BadReplica, FileInfo};
use serde::{Deserialize, Deserializer, Serialize};

use super::error::StoreFuture;
use super::nodes::NodeRecord;

/// One chunk id handed out for a pending file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    pub index: u64,
    /// Node ids the chunk may be written to.
    pub targets: Vec<String>,
}

/// One chunk of a committed file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredChunk {
    #[serde(skip)]
    pub index: u64,
    pub chunk_id: String,
    pub size: u64,
    pub crc32c: u32,
    /// Node ids holding a good copy.
    #[serde(deserialize_with = "list")]
    pub nodes: Vec<String>,
    /// Copies their nodes found corrupt or missing (and quarantined), kept
    /// until the chunk has good replicas again.
    #[serde(
        default,
        deserialize_with = "list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub bad: Vec<BadReplica>,
}

/// A JSON list, where Redis's Lua `cjson` writes an empty list as `{}`.
fn list<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrEmpty<T> {
        List(Vec<T>),
        Empty {},
    }
    Ok(match ListOrEmpty::deserialize(d)? {
        ListOrEmpty::List(items) => items,
        ListOrEmpty::Empty {} => Vec::new(),
    })
}

/// What [`FileStore::edit_replicas`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edited {
    Changed,
    /// It was so already (nodes already listed, or not listed; a node
    /// already marked bad or not a replica; no bad copies).
    AlreadySo,
    /// The file is gone or not committed, or the chunk has another id.
    Gone,
}

/// A change to one chunk's replicas: see [`FileStore::edit_replicas`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicaEdit {
    /// These nodes now hold good copies.
    Add(Vec<String>),
    /// These nodes' copies are dropped (the chunk has more than enough).
    Remove(Vec<String>),
    /// This replica's node found its copy bad and quarantined it.
    MarkBad(BadReplica),
    /// The bad copies are forgotten (the chunk has good replicas again).
    ClearBad,
}

/// The chunks [`FileStore::read_file`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhichChunks {
    All,
    /// The chunk at this index (none when the file has no such chunk).
    One(u64),
}

/// What [`FileStore::read_file`] read.
#[derive(Debug, Clone)]
pub struct FileRead {
    pub info: FileInfo,
    pub chunks: Vec<StoredChunk>,
    /// Every registered node, when asked for.
    pub nodes: Option<Vec<NodeRecord>>,
}

/// A page of committed files ordered by name, and the cursor of the next one.
pub struct FilePage {
    pub files: Vec<FileInfo>,
    pub next: Option<String>,
}

/// File metadata. Every method is safe to call from many naming servers
/// at once; the ones that must be atomic say so.
pub trait FileStore: Send + Sync {
    /// Creates a pending file that expires at `expires_at_ms` unless
    /// committed. `Conflict` when a committed file already has the name.
    fn create_file(&self, info: FileInfo, expires_at_ms: u64) -> StoreFuture<'_, ()>;

    /// A pending or committed file. `NotFound` when unknown or expired.
    fn file<'a>(&'a self, file_id: &'a str) -> StoreFuture<'a, FileInfo>;

    /// Id of the committed file called `name`.
    fn file_id_by_name<'a>(&'a self, name: &'a str) -> StoreFuture<'a, String>;

    /// Records a chunk id handed out for a pending file, atomically with the
    /// check that it is still pending (`NotFound` if gone or expired,
    /// `Conflict` if committed).
    fn add_allocation<'a>(
        &'a self,
        file_id: &'a str,
        chunk_id: &'a str,
        allocation: &'a Allocation,
    ) -> StoreFuture<'a, ()>;

    /// Every chunk id handed out for a pending file, by chunk id.
    fn allocations<'a>(&'a self, file_id: &'a str) -> StoreFuture<'a, HashMap<String, Allocation>>;

    /// Commits a pending file with its validated chunks, atomically: the name
    /// is claimed, the state set and the chunks stored at once, or nothing
    /// changes (`Conflict` when the name is taken or the file committed,
    /// `NotFound` when it expired). Allocations that were not used are then
    /// sent to their nodes' trash.
    fn commit<'a>(&'a self, info: &'a FileInfo, chunks: &'a [StoredChunk]) -> StoreFuture<'a, ()>;

    /// Pushes a pending file's expiry out to `expires_at_ms` (never earlier),
    /// so a seed that takes longer than the pending TTL is not reaped while
    /// its chain still works on it.
    fn keep_pending<'a>(&'a self, file_id: &'a str, expires_at_ms: u64) -> StoreFuture<'a, ()>;

    /// The chunks of a committed file, ordered by index.
    fn chunks<'a>(&'a self, file_id: &'a str) -> StoreFuture<'a, Vec<StoredChunk>>;

    /// A file with its chunks (`which` of them, ordered by index) and,
    /// when `with_nodes`, every registered node (as [`NodeStore::nodes`]),
    /// read at once: one round trip to the store. `NotFound` when the file
    /// is unknown or expired.
    ///
    /// [`NodeStore::nodes`]: super::NodeStore::nodes
    fn read_file<'a>(
        &'a self,
        file_id: &'a str,
        which: WhichChunks,
        with_nodes: bool,
    ) -> StoreFuture<'a, FileRead>;

    /// Changes the replicas of chunk `index` of a committed file,
    /// atomically with the check that the chunk is still `chunk_id`.
    fn edit_replicas<'a>(
        &'a self,
        file_id: &'a str,
        index: u64,
        chunk_id: &'a str,
        edit: &'a ReplicaEdit,
    ) -> StoreFuture<'a, Edited>;

    /// Adds the nodes to every chunk's replicas of a committed file, at once,
    /// and raises its replication factor to the replicas every chunk now has
    /// (no-op for other files).
    fn add_file_replicas<'a>(
        &'a self,
        file_id: &'a str,
        node_ids: &'a [String],
    ) -> StoreFuture<'a, ()>;

    /// Of `chunk_ids`, the ones whose chunk lists `node_id` among its good
    /// replicas now (made by this naming server, file committed).
    fn held_by<'a>(
        &'a self,
        node_id: &'a str,
        chunk_ids: &'a [String],
    ) -> StoreFuture<'a, Vec<String>>;

    /// Committed files whose names start with `prefix`, after `after`.
    fn list<'a>(
        &'a self,
        prefix: &'a str,
        after: Option<&'a str>,
        limit: usize,
    ) -> StoreFuture<'a, FilePage>;

    /// Purges a file's metadata (its name is free at once), then sends every
    /// copy of its chunks to the nodes' trash. `NotFound` when unknown.
    fn delete_file<'a>(&'a self, file_id: &'a str) -> StoreFuture<'a, ()>;

    /// Expires up to `batch` pending files whose time is up: their chunks go
    /// to the trash and their metadata is removed. Returns how many.
    fn reap_expired(&self, now_ms: u64, batch: usize) -> StoreFuture<'_, usize>;

    /// Of `chunk_ids`, the ones no file refers to any more: their file is
    /// gone or expired, or it is committed with another chunk at that index.
    /// Chunks of pending files and ids not made by this naming server are
    /// never orphans. `Conflict` unless the store's cluster id is
    /// `cluster_id` both before and after the lookups, so a store wiped
    /// meanwhile never makes every chunk look orphaned.
    fn orphans<'a>(
        &'a self,
        cluster_id: &'a str,
        chunk_ids: &'a [String],
    ) -> StoreFuture<'a, Vec<String>>;
}
