//! [`AppState`]: what every HTTP handler can reach.

use std::sync::Arc;

use dfs_common::auth::Token;

use crate::admission::Admission;
use crate::distribution::Distributor;
use crate::replication::Replicator;
use crate::store::ChunkStore;
use crate::throttle::Throttle;

/// Shared state of the HTTP handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    /// This node's id, as registered with the naming server.
    pub node_id: Arc<str>,
    /// The chunks on this node's disk.
    pub store: Arc<ChunkStore>,
    /// Passes written chunks down their replication chain.
    pub replicator: Arc<Replicator>,
    /// Runs this node's part of distribution jobs.
    pub distributor: Arc<Distributor>,
    /// The cluster's token: when set, every route but health, metrics and
    /// the docs requires it.
    pub token: Option<Token>,
    /// Which chunk ids a write may store.
    pub admission: Admission,
    /// The peer send cap, on a node started with a test-only one: tests
    /// may change it while the node runs.
    pub test_only_p2p_throttle: Option<Arc<Throttle>>,
}
