//! The naming server's rules. HTTP handlers (`http`) and background tasks
//! (`tasks`) call down into it; it calls down into the metadata store
//! (`store`) and, through [`dfs_client::StorageClient`], the storage nodes.
//! It knows nothing of HTTP: its functions take and return the wire types
//! of `dfs_common::api` and fail with a [`DomainError`].
//!
//! - [`nodes`]: registration, heartbeats and liveness; which nodes hold
//!   what ([`nodes::NodeDirectory`]); orphan reports; forgetting a node.
//! - [`files`]: names, pending uploads, look-ups, listings, deletes, expiry.
//! - [`chunks`]: chunk targets, finalize, chunk locations.
//! - [`placement`]: which nodes get a new chunk copy (room, then weighted
//!   by free space), for writes and repairs.
//! - [`distribution`]: plan a job, hand it out, take the nodes' reports,
//!   and derive a job's state from them.
//! - [`integrity`]: bad replicas, reported by readers and by the nodes'
//!   scrubbers, set aside and queued for repair.
//! - [`repair`]: bring chunks back to their replication factor (and trim
//!   those above it), on demand, for queued files, and in background scans
//!   after a node is lost or comes back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dfs_client::StorageClient;
use dfs_common::auth::Token;

use crate::metrics::Metrics;
use crate::store::MetadataStore;

pub mod chunks;
pub mod distribution;
mod error;
pub mod files;
pub mod integrity;
pub mod nodes;
pub mod placement;
pub mod repair;

pub use error::{DomainError, DomainResult};

/// The server-wide settings the rules depend on.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Replicas per chunk when a file does not ask for a number.
    pub replication: u32,
    /// Chunk size when a file does not ask for one.
    pub chunk_size: u64,
    /// A node silent this long is dead.
    pub heartbeat_timeout: Duration,
    /// Free space every node keeps: no chunk is placed where it would eat
    /// into it.
    pub free_space_reserve: u64,
    /// A pending upload not finalized within this time expires.
    pub pending_ttl: Duration,
    /// Silence after which a node's chunks are re-replicated; `None`: never
    /// in the background.
    pub repair_after: Option<Duration>,
}

/// What the rules work with: one [`Parts`] behind an `Arc`, so the clone
/// every request takes is one reference count. Every naming-server replica
/// has its own, and keeps nothing another replica would need (its caches
/// only save it reads, and are short-lived or checked before use).
#[derive(Clone)]
pub struct Naming(Arc<Parts>);

impl Naming {
    pub fn new(parts: Parts) -> Self {
        Self(Arc::new(parts))
    }
}

impl std::ops::Deref for Naming {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        &self.0
    }
}

/// What a [`Naming`] holds.
pub struct Parts {
    pub store: Arc<dyn MetadataStore>,
    /// Calls to storage nodes (assignments, GCS look-ups, repair copies),
    /// with the cluster's token.
    pub storage: StorageClient,
    /// The cluster's token (`DFS_TOKEN`), when it has one: it guards the
    /// HTTP routes and signs the chunk ids this server allocates.
    pub token: Option<Token>,
    pub settings: Arc<Settings>,
    pub metrics: Arc<Metrics>,
    /// The node records this replica read last, reused for up to a second
    /// ([`nodes::DirectoryCache`]).
    pub directory: Arc<nodes::DirectoryCache>,
    /// File ids of names looked up lately, each checked before use
    /// ([`files::NameHints`]).
    pub names: Arc<files::NameHints>,
    /// When this replica last judged each running job for nodes to pull
    /// around ([`distribution::adapt::Schedule`]).
    pub judged: Arc<distribution::adapt::Schedule>,
    /// When this process started. For its first `HEARTBEAT_TIMEOUT` it may
    /// not have heard from every live node yet (they heartbeat at a third
    /// of it), which matters after a restart of the only replica.
    pub started: Instant,
}

impl Parts {
    /// The signature storage nodes need to store chunk `chunk_id`; `None`
    /// without a token (a token-less cluster trusts its network).
    pub fn sign_chunk_id(&self, chunk_id: &str) -> Option<String> {
        self.token
            .as_ref()
            .map(|token| token.sign_chunk_id(chunk_id))
    }

    /// Fails when the metadata store does not answer.
    pub async fn check_store(&self) -> DomainResult<()> {
        Ok(self.store.ping().await?)
    }

    /// The error for too few storage nodes able to take part, saying
    /// `message`: worth trying again shortly while this process is too new
    /// to have heard from every live node, plainly unavailable otherwise.
    pub fn shortage(&self, message: String) -> DomainError {
        if self.started.elapsed() < self.settings.heartbeat_timeout {
            DomainError::TryLater(message)
        } else {
            DomainError::Unavailable(message)
        }
    }
}

/// `d` in milliseconds, saturating.
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
