//! Storage nodes: registration, heartbeats and the liveness rule, orphan
//! reports, forgetting a dead node, and [`NodeDirectory`], which answers
//! where a chunk lives.
//!
//! A node is alive while its last heartbeat is younger than
//! `HEARTBEAT_TIMEOUT`; nothing else makes it alive or dead.

use std::collections::HashMap;

use dfs_common::api::{
    ChunkLocation, ChunkReport, ChunkReportReply, HeartbeatRequest, HeartbeatResponse, NodeInfo,
    NodeList, NodeStats, RegisterRequest, RegisterResponse, Replica,
};
use dfs_common::check;
use dfs_common::now_ms;

use super::{DomainError, DomainResult, Naming, Settings, integrity, millis, placement};
use crate::store::{NodeRecord, StoreError, StoredChunk};

/// Chunk ids handed to a node per heartbeat at most.
const MAX_DELETES_PER_HEARTBEAT: usize = 1000;

/// Heard from within the heartbeat timeout.
pub fn is_alive(node: &NodeRecord, settings: &Settings, now_ms: u64) -> bool {
    node.last_heartbeat_ms >= alive_since(settings, now_ms)
}

/// The earliest heartbeat time (ms) that still makes a node alive at `now_ms`.
pub fn alive_since(settings: &Settings, now_ms: u64) -> u64 {
    now_ms.saturating_sub(millis(settings.heartbeat_timeout))
}

/// Every live node, ordered by id.
pub async fn live(naming: &Naming) -> DomainResult<Vec<NodeRecord>> {
    let now = now_ms();
    let mut nodes = naming.store.nodes().await?;
    nodes.retain(|node| is_alive(node, &naming.settings, now));
    Ok(nodes)
}

/// A [`Naming::shortage`] unless `have >= need` live nodes.
pub fn require(naming: &Naming, need: u32, have: usize) -> DomainResult<()> {
    if have < need as usize {
        return Err(naming.shortage(format!("need {need} live storage nodes, have {have}")));
    }
    Ok(())
}

/// Every registered node, with liveness, read once: where chunks live.
pub struct NodeDirectory {
    nodes: HashMap<String, NodeRecord>,
    alive_since: u64,
}

impl NodeDirectory {
    /// Every registered node, as the store has them now.
    pub async fn load(naming: &Naming) -> DomainResult<Self> {
        let nodes = naming.store.nodes().await?;
        Ok(Self::from_records(
            nodes,
            alive_since(&naming.settings, now_ms()),
        ))
    }

    /// A directory of `nodes`, each alive when heard from at or after
    /// `alive_since` (ms).
    pub fn from_records(nodes: Vec<NodeRecord>, alive_since: u64) -> Self {
        Self {
            nodes: nodes.into_iter().map(|n| (n.node_id.clone(), n)).collect(),
            alive_since,
        }
    }

    fn is_alive(&self, node: &NodeRecord) -> bool {
        node.last_heartbeat_ms >= self.alive_since
    }

    /// The live nodes, ordered by id.
    pub fn live(&self) -> Vec<&NodeRecord> {
        let mut live: Vec<&NodeRecord> = self
            .nodes
            .values()
            .filter(|node| self.is_alive(node))
            .collect();
        live.sort_by(|a, b| a.node_id.cmp(&b.node_id));
        live
    }

    /// The node called `node_id`, if registered.
    pub fn record(&self, node_id: &str) -> Option<&NodeRecord> {
        self.nodes.get(node_id)
    }

    /// Whether `node_id` is registered and alive.
    pub fn alive(&self, node_id: &str) -> bool {
        self.record(node_id).is_some_and(|node| self.is_alive(node))
    }

    /// Where `chunk` lives, live replicas first.
    pub fn locate(&self, chunk: StoredChunk) -> ChunkLocation {
        let mut replicas: Vec<Replica> = chunk
            .nodes
            .into_iter()
            .map(|node_id| match self.nodes.get(&node_id) {
                Some(node) => Replica {
                    url: node.url.clone(),
                    alive: self.is_alive(node),
                    node_id,
                },
                None => Replica {
                    node_id,
                    url: String::new(),
                    alive: false,
                },
            })
            .collect();
        replicas.sort_by_key(|replica| !replica.alive);
        ChunkLocation {
            chunk_id: chunk.chunk_id,
            index: chunk.index,
            size: chunk.size,
            crc32c: chunk.crc32c,
            replicas,
            bad_replicas: chunk.bad,
        }
    }
}

/// `Invalid` unless `node_id` (from a path) is a node id.
fn check_node_id(node_id: &str) -> DomainResult<()> {
    check::id("node id", node_id).map_err(|e| DomainError::Invalid(e.to_string()))
}

/// Registers a storage node, or updates a known one (url, address, stats).
/// The request keeps its `Check` rules (id, URL, address).
pub async fn register(naming: &Naming, request: RegisterRequest) -> DomainResult<RegisterResponse> {
    let node = NodeRecord {
        node_id: request.node_id.clone(),
        url: request.url.trim_end_matches('/').to_owned(),
        tcp_addr: request.tcp_addr,
        last_heartbeat_ms: now_ms(),
        stats: request.stats,
    };
    naming.store.register_node(node).await?;
    let cluster_id = naming.store.cluster_id().await?;
    tracing::info!(url = %request.url, "storage node registered");
    let interval = naming.settings.heartbeat_timeout / 3;
    Ok(RegisterResponse {
        node_id: request.node_id,
        heartbeat_interval_ms: millis(interval).max(1),
        cluster_id,
    })
}

/// A registered node's heartbeat: keeps its stats, takes its acknowledged
/// deletions and hands it the chunk ids it should delete next.
pub async fn heartbeat(
    naming: &Naming,
    node_id: &str,
    request: HeartbeatRequest,
) -> DomainResult<HeartbeatResponse> {
    check_node_id(node_id)?;
    // Before the heartbeat hands out suspects to verify: a failure here
    // leaves them for the next one.
    for bad in &request.bad {
        integrity::record_bad(naming, node_id, bad).await?;
    }
    let work = naming
        .store
        .heartbeat(
            node_id,
            request.stats,
            &request.deleted,
            now_ms(),
            MAX_DELETES_PER_HEARTBEAT,
        )
        .await?;
    // Never tell a node to delete a chunk it is listed as holding (it was
    // trashed, then chosen again, say as a repair target): it stays.
    let kept = naming.store.held_by(node_id, &work.delete).await?;
    naming.store.untrash(node_id, &kept).await?;
    let delete = work
        .delete
        .into_iter()
        .filter(|id| !kept.contains(id))
        .collect();
    Ok(HeartbeatResponse {
        delete,
        verify: work.verify,
    })
}

/// Of the chunk ids a node lists, the ones no file refers to, which it may
/// delete. Refused when the node registered with another metadata store,
/// so a wiped store never empties the nodes.
pub async fn chunk_report(
    naming: &Naming,
    node_id: &str,
    report: ChunkReport,
) -> DomainResult<ChunkReportReply> {
    check_node_id(node_id)?;
    let orphans = match naming
        .store
        .orphans(&report.cluster_id, &report.chunk_ids)
        .await
    {
        Err(StoreError::Conflict(message)) => {
            tracing::warn!(%message, "chunk report refused");
            return Err(DomainError::Conflict(format!("node {node_id}: {message}")));
        }
        result => result?,
    };
    if !orphans.is_empty() {
        tracing::info!(count = orphans.len(), "orphan chunks reported");
    }
    Ok(ChunkReportReply { orphans })
}

/// Forgets a dead node: it leaves the node list and its pending deletions
/// are dropped; replicas it held stay listed, as dead. A live node is
/// refused; a forgotten node that comes back registers again.
pub async fn forget(naming: &Naming, node_id: &str) -> DomainResult<()> {
    check_node_id(node_id)?;
    let alive_since = alive_since(&naming.settings, now_ms());
    naming.store.forget_node(node_id, alive_since).await?;
    tracing::info!("storage node forgotten");
    Ok(())
}

/// Every registered storage node, alive or not; `full` when it said so or
/// has no room beyond the reserve for even the smallest chunk.
pub async fn list(naming: &Naming) -> DomainResult<NodeList> {
    let now = now_ms();
    let nodes = naming.store.nodes().await?;
    let nodes = nodes
        .into_iter()
        .map(|node| NodeInfo {
            alive: is_alive(&node, &naming.settings, now),
            stats: NodeStats {
                full: placement::is_full(&node, naming.settings.free_space_reserve),
                ..node.stats
            },
            node_id: node.node_id,
            url: node.url,
            tcp_addr: node.tcp_addr,
            last_heartbeat_ms: node.last_heartbeat_ms,
        })
        .collect();
    Ok(NodeList { nodes })
}
