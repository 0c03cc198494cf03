//! [`NodeStore`]: storage-node registrations, heartbeats, the chunks each
//! node must delete, and the bookkeeping of background repair scans.

use dfs_common::api::NodeStats;

use super::error::StoreFuture;

/// A registered storage node as stored.
#[derive(Debug, Clone)]
pub struct NodeRecord {
    pub node_id: String,
    pub url: String,
    pub tcp_addr: String,
    pub last_heartbeat_ms: u64,
    pub stats: NodeStats,
}

/// What a heartbeat hands back to its node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeartbeatWork {
    /// Chunk ids to delete.
    pub delete: Vec<String>,
    /// Chunk ids to verify.
    pub verify: Vec<String>,
}

/// Node metadata. Every method is safe to call from many naming servers
/// at once.
pub trait NodeStore: Send + Sync {
    /// Adds a node or updates its url, address and stats; counts as a heartbeat.
    fn register_node(&self, node: NodeRecord) -> StoreFuture<'_, ()>;

    /// Records a heartbeat, forgets the `deleted` chunk ids from the node's
    /// trash and returns up to `max` chunk ids it should delete, and up to
    /// `max` suspect chunk ids it should verify (which leave the suspect
    /// set). `NotFound` for an unknown node.
    fn heartbeat<'a>(
        &'a self,
        node_id: &'a str,
        stats: NodeStats,
        deleted: &'a [String],
        now_ms: u64,
        max: usize,
    ) -> StoreFuture<'a, HeartbeatWork>;

    /// Takes `chunk_ids` out of node `node_id`'s trash.
    fn untrash<'a>(&'a self, node_id: &'a str, chunk_ids: &'a [String]) -> StoreFuture<'a, ()>;

    /// Asks node `node_id` to verify its copy of `chunk_id` (a reader got
    /// bad bytes from it); handed out with its next heartbeat.
    fn suspect<'a>(&'a self, node_id: &'a str, chunk_id: &'a str) -> StoreFuture<'a, ()>;

    /// Queues file `file_id` for a repair (a replica of it was found bad);
    /// any naming-server replica may take it with [`NodeStore::next_repair`].
    fn queue_repair<'a>(&'a self, file_id: &'a str) -> StoreFuture<'a, ()>;

    /// Takes one queued file for repair, if any.
    fn next_repair(&self) -> StoreFuture<'_, Option<String>>;

    /// Every node registered and not forgotten, ordered by id.
    fn nodes(&self) -> StoreFuture<'_, Vec<NodeRecord>>;

    /// Sends each (node id, chunk id) to the node's trash.
    fn trash_chunks(&self, items: Vec<(String, String)>) -> StoreFuture<'_, ()>;

    /// The id of this metadata store: made on the first call, the same on
    /// every later one (until the store is wiped).
    fn cluster_id(&self) -> StoreFuture<'_, String>;

    /// Forgets a node that has not heartbeaten since `alive_since_ms`: its
    /// registration and its trash go (its chunks stay listed as replicas,
    /// shown as unknown). `NotFound` for an unknown node, `Conflict` for a
    /// live one. A forgotten node that comes back registers again.
    fn forget_node<'a>(&'a self, node_id: &'a str, alive_since_ms: u64) -> StoreFuture<'a, ()>;

    /// Starts a background repair scan if one is due: a node in `lost` not
    /// covered by an earlier scan, or a scan asked for (a node was
    /// forgotten), and no scan running anywhere. Returns the lost nodes to
    /// pass to [`NodeStore::finish_repair_scan`], or `None`: no scan.
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
}
