//! Storage nodes: registration, heartbeats and the liveness rule, orphan
//! reports, forgetting a dead node, and [`NodeDirectory`], which answers
//! where a chunk lives.
//!
//! A node is alive while its last heartbeat is younger than
//! `HEARTBEAT_TIMEOUT`; nothing else makes it alive or dead.
//!
//! The node records are read for nearly every request (where do this
//! file's chunks live, which nodes may take a new one), so each
//! naming-server replica keeps the last ones it read ([`DirectoryCache`])
//! for at most [`directory_ttl`]: min(1 s, `HEARTBEAT_TIMEOUT` / 4). This
//! replica drops them at once when it registers or forgets a node, or takes
//! a heartbeat that changes what they say: the node's room for chunks, or
//! its liveness (the heartbeat of a node the cached record would call dead
//! before it expires). So what a replica acts on is at most that old for
//! changes made through other replicas, and never stale for its own.
//! Liveness is always judged against the current time, from the cached
//! heartbeat times: those only lag the real ones, so a node is never taken
//! for alive longer than `HEARTBEAT_TIMEOUT` after its last heartbeat, and
//! a live node (heartbeating every third of it) never looks dead.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use dfs_common::api::{
    ChunkLocation, ChunkReport, ChunkReportReply, FileInfo, HeartbeatRequest, HeartbeatResponse,
    NodeInfo, NodeList, NodeStats, RegisterRequest, RegisterResponse, Replica,
};
use dfs_common::check;
use dfs_common::now_ms;

use super::{DomainError, DomainResult, Naming, Settings, integrity, millis, placement};
use crate::store::{FileRead, NodeRecord, StoreError, StoredChunk, WhichChunks};

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

/// Every live node, ordered by id (from the [`DirectoryCache`]).
pub async fn live(naming: &Naming) -> DomainResult<Vec<NodeRecord>> {
    let directory = NodeDirectory::load(naming).await?;
    Ok(directory.live().into_iter().cloned().collect())
}

/// How long a replica reuses the node records it read: min(1 s,
/// `HEARTBEAT_TIMEOUT` / 4). Short, because other replicas take
/// registrations and heartbeats too; a quarter of the timeout, so a cached
/// heartbeat time plus this age stays well within the timeout for a node
/// heartbeating every third of it.
pub fn directory_ttl(settings: &Settings) -> Duration {
    (settings.heartbeat_timeout / 4).min(Duration::from_secs(1))
}

/// The node records this replica read last, by id, shared by its requests
/// for [`directory_ttl`] (see the module doc for what drops them sooner).
#[derive(Default)]
pub struct DirectoryCache {
    state: Mutex<CacheState>,
}

#[derive(Default)]
struct CacheState {
    /// Bumped by every [`DirectoryCache::invalidate`]: records read before
    /// it are never kept.
    generation: u64,
    records: Option<(Instant, Arc<HashMap<String, NodeRecord>>)>,
}

/// A read of the node records begun at a [`DirectoryCache`] generation.
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

impl DirectoryCache {
    fn state(&self) -> std::sync::MutexGuard<'_, CacheState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The records when read less than `ttl` ago; otherwise the ticket to
    /// [`keep`](Self::keep) the records about to be read.
    fn get(&self, ttl: Duration) -> Result<Arc<HashMap<String, NodeRecord>>, Ticket> {
        let state = self.state();
        match &state.records {
            Some((read_at, records)) if read_at.elapsed() < ttl => Ok(records.clone()),
            _ => Err(Ticket(state.generation)),
        }
    }

    /// Keeps `records`, read with `ticket`, unless they were invalidated
    /// meanwhile; returns them either way.
    fn keep(&self, ticket: Ticket, records: Vec<NodeRecord>) -> Arc<HashMap<String, NodeRecord>> {
        let records: Arc<HashMap<String, NodeRecord>> = Arc::new(
            records
                .into_iter()
                .map(|node| (node.node_id.clone(), node))
                .collect(),
        );
        let mut state = self.state();
        if state.generation == ticket.0 {
            state.records = Some((Instant::now(), records.clone()));
        }
        records
    }

    /// The cached record of `node_id`: `Err` when nothing is cached,
    /// `Ok(None)` when the cache does not know the node.
    fn peek(&self, node_id: &str) -> Result<Option<NodeRecord>, ()> {
        match &self.state().records {
            Some((_, records)) => Ok(records.get(node_id).cloned()),
            None => Err(()),
        }
    }

    /// Drops the records, and any read still under way.
    pub fn invalidate(&self) {
        let mut state = self.state();
        state.generation += 1;
        state.records = None;
    }
}

/// A [`Naming::shortage`] unless `have >= need` live nodes.
pub fn require(naming: &Naming, need: u32, have: usize) -> DomainResult<()> {
    if have < need as usize {
        return Err(naming.shortage(format!("need {need} live storage nodes, have {have}")));
    }
    Ok(())
}

/// Every registered node, with liveness as of now: where chunks live.
pub struct NodeDirectory {
    nodes: Arc<HashMap<String, NodeRecord>>,
    alive_since: u64,
}

impl NodeDirectory {
    /// Every registered node, from the [`DirectoryCache`] when it is fresh,
    /// else from the store (one round trip).
    pub async fn load(naming: &Naming) -> DomainResult<Self> {
        let ttl = directory_ttl(&naming.settings);
        let nodes = match naming.directory.get(ttl) {
            Ok(nodes) => nodes,
            Err(ticket) => naming.directory.keep(ticket, naming.store.nodes().await?),
        };
        Ok(Self::now(naming, nodes))
    }

    /// A file, its chunks (`which`) and the directory, in one round trip to
    /// the store (the directory from the cache when it is fresh).
    pub async fn with_file(
        naming: &Naming,
        file_id: &str,
        which: WhichChunks,
    ) -> DomainResult<(FileInfo, Vec<StoredChunk>, Self)> {
        let ttl = directory_ttl(&naming.settings);
        let cached = naming.directory.get(ttl);
        let FileRead {
            info,
            chunks,
            nodes,
        } = naming
            .store
            .read_file(file_id, which, cached.is_err())
            .await?;
        let nodes = match (cached, nodes) {
            (Ok(cached), _) => cached,
            (Err(ticket), Some(read)) => naming.directory.keep(ticket, read),
            (Err(ticket), None) => naming.directory.keep(ticket, naming.store.nodes().await?),
        };
        Ok((info, chunks, Self::now(naming, nodes)))
    }

    fn now(naming: &Naming, nodes: Arc<HashMap<String, NodeRecord>>) -> Self {
        Self {
            nodes,
            alive_since: alive_since(&naming.settings, now_ms()),
        }
    }

    /// A directory of `nodes`, each alive when heard from at or after
    /// `alive_since` (ms).
    pub fn from_records(nodes: Vec<NodeRecord>, alive_since: u64) -> Self {
        Self {
            nodes: Arc::new(nodes.into_iter().map(|n| (n.node_id.clone(), n)).collect()),
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
    naming.directory.invalidate();
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
    let now = now_ms();
    let stats = request.stats;
    let work = naming
        .store
        .heartbeat(
            node_id,
            request.stats,
            &request.deleted,
            now,
            MAX_DELETES_PER_HEARTBEAT,
        )
        .await?;
    if changes_directory(naming, node_id, stats, now) {
        naming.directory.invalidate();
    }
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

/// Whether a heartbeat of `node_id` at `now` with `stats` changes what the
/// cached directory says of it: its room for chunks, or its liveness before
/// the cache expires (a node the cached record calls dead, or soon will).
/// Unsure when nothing is cached: a read may be under way.
fn changes_directory(naming: &Naming, node_id: &str, stats: NodeStats, now: u64) -> bool {
    let Ok(Some(cached)) = naming.directory.peek(node_id) else {
        return true;
    };
    let settings = &naming.settings;
    let expires = now.saturating_add(millis(directory_ttl(settings)));
    let fresh = NodeRecord {
        stats,
        last_heartbeat_ms: now,
        ..cached.clone()
    };
    let reserve = settings.free_space_reserve;
    placement::room(&cached, reserve) != placement::room(&fresh, reserve)
        || !is_alive(&cached, settings, expires)
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
    naming.directory.invalidate();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str) -> NodeRecord {
        NodeRecord {
            node_id: id.into(),
            url: format!("http://{id}.invalid"),
            tcp_addr: format!("{id}.invalid:1"),
            last_heartbeat_ms: 0,
            stats: NodeStats::default(),
        }
    }

    #[test]
    fn the_cache_lives_a_quarter_of_the_timeout_at_most_a_second() {
        let settings = |secs| Settings {
            replication: 3,
            chunk_size: 1,
            heartbeat_timeout: Duration::from_secs(secs),
            free_space_reserve: 0,
            pending_ttl: Duration::from_secs(1),
            repair_after: None,
        };
        assert_eq!(directory_ttl(&settings(15)), Duration::from_secs(1));
        assert_eq!(directory_ttl(&settings(2)), Duration::from_millis(500));
    }

    #[test]
    fn records_read_before_an_invalidation_are_never_kept() {
        let cache = DirectoryCache::default();
        let ttl = Duration::from_secs(60);
        let Err(ticket) = cache.get(ttl) else {
            panic!("an empty cache has nothing")
        };
        cache.invalidate();
        let read = cache.keep(ticket, vec![node("a")]);
        assert!(read.contains_key("a"), "the read is still used once");
        assert!(cache.get(ttl).is_err());
        assert!(cache.peek("a").is_err());

        let Err(ticket) = cache.get(ttl) else {
            panic!("nothing kept")
        };
        cache.keep(ticket, vec![node("a"), node("b")]);
        let kept = cache.get(ttl).expect("kept");
        assert_eq!(kept.len(), 2);
        assert!(matches!(cache.peek("b"), Ok(Some(_))));
        assert!(matches!(cache.peek("c"), Ok(None)));
        assert!(cache.get(Duration::ZERO).is_err(), "expired");
        cache.invalidate();
        assert!(cache.get(ttl).is_err());
    }
}
