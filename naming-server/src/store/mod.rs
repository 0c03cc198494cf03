//! The metadata store: everything the naming server remembers, behind a
//! small trait so handlers never see Redis. [`redis::RedisStore`] is the
//! implementation (and the product); see its module for the key layout.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use dfs_common::api::{FileInfo, NodeStats};
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub mod jobs;
pub mod keys;
mod parse;
pub mod redis;
mod scripts;

/// What a store operation can fail with.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("metadata store unavailable: {0}")]
    Unavailable(String),
    #[error("invalid metadata store URL: {0}")]
    BadUrl(String),
    /// Unexpected data or a failing script: a bug, not the caller's fault.
    #[error("metadata store error: {0}")]
    Internal(String),
}

pub type StoreResult<T> = Result<T, StoreError>;
/// The future every store method returns (boxed so the trait is `dyn`-safe).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = StoreResult<T>> + Send + 'a>>;

/// A registered storage node as stored.
#[derive(Debug, Clone)]
pub struct NodeRecord {
    pub node_id: String,
    pub url: String,
    pub tcp_addr: String,
    pub last_heartbeat_ms: u64,
    pub stats: NodeStats,
}

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
    /// Node ids holding a copy.
    pub nodes: Vec<String>,
}

/// A page of committed files ordered by name, and the cursor of the next one.
pub struct FilePage {
    pub files: Vec<FileInfo>,
    pub next: Option<String>,
}

/// All metadata operations. Every method is safe to call from many naming
/// servers at once; the ones that must be atomic say so.
pub trait MetadataStore: Send + Sync + 'static {
    /// Fails when the store does not answer.
    fn ping(&self) -> StoreFuture<'_, ()>;

    /// Adds a node or updates its url, address and stats; counts as a heartbeat.
    fn register_node(&self, node: NodeRecord) -> StoreFuture<'_, ()>;

    /// Records a heartbeat, forgets the `deleted` chunk ids from the node's
    /// trash and returns up to `max` chunk ids it should delete.
    /// `NotFound` for an unknown node.
    fn heartbeat<'a>(
        &'a self,
        node_id: &'a str,
        stats: NodeStats,
        deleted: &'a [String],
        now_ms: u64,
        max: usize,
    ) -> StoreFuture<'a, Vec<String>>;

    /// The id of this metadata store: made on the first call, the same on
    /// every later one (until the store is wiped).
    fn cluster_id(&self) -> StoreFuture<'_, String>;

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

    /// Forgets a node that has not heartbeaten since `alive_since_ms`: its
    /// registration and its trash go (its chunks stay listed as replicas,
    /// shown as unknown). `NotFound` for an unknown node, `Conflict` for a
    /// live one. A forgotten node that comes back registers again.
    fn forget_node<'a>(&'a self, node_id: &'a str, alive_since_ms: u64) -> StoreFuture<'a, ()>;

    /// Starts a background repair scan if one is due: a node in `lost` not
    /// covered by an earlier scan, or a scan asked for (a node was
    /// forgotten), and no scan running anywhere. Returns the lost nodes to
    /// pass to [`MetadataStore::finish_repair_scan`], or `None`: no scan.
    /// Nodes in `alive` count as new losses if they are lost again later.
    fn claim_repair_scan<'a>(
        &'a self,
        lost: &'a [String],
        alive: &'a [String],
        lease_ms: u64,
    ) -> StoreFuture<'a, Option<Vec<String>>>;

    /// Ends the claimed scan: `lost` are covered when it `completed`;
    /// otherwise another scan is asked for.
    fn finish_repair_scan<'a>(&'a self, lost: &'a [String], completed: bool)
    -> StoreFuture<'a, ()>;

    /// Every node registered and not forgotten, ordered by id.
    fn nodes(&self) -> StoreFuture<'_, Vec<NodeRecord>>;

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

    /// The chunks of a committed file, ordered by index.
    fn chunks<'a>(&'a self, file_id: &'a str) -> StoreFuture<'a, Vec<StoredChunk>>;

    /// One chunk of a committed file.
    fn chunk<'a>(&'a self, file_id: &'a str, index: u64) -> StoreFuture<'a, Option<StoredChunk>>;

    /// Adds `node_ids` to the replicas of chunk `index` of a committed file,
    /// atomically with the check that the chunk is still `chunk_id`. False
    /// (nothing changed) when the file or chunk is gone.
    fn add_chunk_replicas<'a>(
        &'a self,
        file_id: &'a str,
        index: u64,
        chunk_id: &'a str,
        node_ids: &'a [String],
    ) -> StoreFuture<'a, bool>;

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
}
