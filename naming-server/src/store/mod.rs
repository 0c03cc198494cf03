//! The metadata store: everything the naming server remembers, behind
//! small traits so the layers above never see Redis. [`redis::RedisStore`]
//! is the implementation (and the product); `redis/keys.rs` documents the
//! key layout, `redis/scripts.rs` the Lua scripts that make commits atomic.
//!
//! - [`files`]: [`FileStore`], files, chunks and allocations.
//! - [`nodes`]: [`NodeStore`], storage nodes, their trash, repair scans.
//! - [`jobs`]: [`JobStore`], distribution jobs.
//! - [`ids`]: file and chunk ids.
//! - [`error`]: [`StoreError`] and the future every method returns.

pub mod error;
pub mod files;
pub mod ids;
pub mod jobs;
pub mod nodes;
pub mod redis;

pub use error::{StoreError, StoreFuture, StoreResult};
pub use files::{
    Allocation, Edited, FilePage, FileRead, FileStore, ReplicaEdit, StoredChunk, WhichChunks,
};
pub use jobs::{ChainNode, JobPlan, JobRecord, JobStore, ReportContext, SourceStart, StoredReport};
pub use nodes::{HeartbeatWork, NodeRecord, NodeStore};

/// All of the metadata, as the naming server holds it.
pub trait MetadataStore: FileStore + NodeStore + JobStore + 'static {
    /// Fails when the store does not answer.
    fn ping(&self) -> StoreFuture<'_, ()>;
}
