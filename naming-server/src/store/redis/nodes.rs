//! [`NodeStore`] on Redis: node hashes, the node set, trash sets and the
//! repair-scan keys, all under the hash tag `{nodes}`.

use std::collections::HashMap;

use dfs_common::api::NodeStats;
use redis::{AsyncCommands, ScriptInvocation};

use super::keys::{self, CLUSTER_ID, NODES, REPAIR_LEASE, REPAIR_QUEUE, REPAIR_WANTED, REPAIRED};
use super::parse::node_record;
use super::{RedisStore, trash};
use crate::store::{HeartbeatWork, NodeRecord, NodeStore, StoreError, StoreFuture, StoreResult};

impl RedisStore {
    /// The [`super::scripts::NODES`] call: every registered node, in one command.
    pub(super) fn nodes_call(&self) -> ScriptInvocation<'_> {
        let mut call = self.scripts.nodes.key(NODES);
        call.arg(keys::node_key(""));
        call
    }
}

/// The reply of [`RedisStore::nodes_call`] as records ordered by id.
pub(super) fn node_records(
    rows: Vec<(String, HashMap<String, String>)>,
) -> StoreResult<Vec<NodeRecord>> {
    let mut nodes = rows
        .into_iter()
        .map(|(id, fields)| node_record(id, &fields))
        .collect::<StoreResult<Vec<_>>>()?;
    nodes.sort_by(|a, b| a.node_id.cmp(&b.node_id));
    Ok(nodes)
}

impl NodeStore for RedisStore {
    fn register_node(&self, node: NodeRecord) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let mut conn = self.conn();
            let fields = [
                ("url", node.url),
                ("tcp_addr", node.tcp_addr),
                ("last_heartbeat_ms", node.last_heartbeat_ms.to_string()),
                ("capacity_bytes", node.stats.capacity_bytes.to_string()),
                ("free_bytes", node.stats.free_bytes.to_string()),
                ("chunk_count", node.stats.chunk_count.to_string()),
                ("full", u8::from(node.stats.full).to_string()),
                (
                    "quarantined_chunks",
                    node.stats.quarantined_chunks.to_string(),
                ),
                (
                    "peer_send_bytes_per_sec",
                    node.stats.peer_send_bytes_per_sec.to_string(),
                ),
                (
                    "peer_receive_bytes_per_sec",
                    node.stats.peer_receive_bytes_per_sec.to_string(),
                ),
                (
                    "peer_send_rate_bytes_per_sec",
                    node.stats.peer_send_rate_bytes_per_sec.to_string(),
                ),
            ];
            redis::pipe()
                .atomic()
                .hset_multiple(keys::node_key(&node.node_id), &fields)
                .ignore()
                .sadd(NODES, &node.node_id)
                .ignore()
                .query_async::<()>(&mut conn)
                .await?;
            self.replicated(&mut conn).await;
            Ok(())
        })
    }

    fn heartbeat<'a>(
        &'a self,
        node_id: &'a str,
        stats: NodeStats,
        deleted: &'a [String],
        now_ms: u64,
        max: usize,
    ) -> StoreFuture<'a, HeartbeatWork> {
        Box::pin(async move {
            let mut conn = self.conn();
            let mut call = self.scripts.heartbeat.key(keys::node_key(node_id));
            call.key(keys::trash_key(node_id))
                .key(keys::suspect_key(node_id))
                .arg(now_ms)
                .arg(stats.capacity_bytes)
                .arg(stats.free_bytes)
                .arg(stats.chunk_count)
                .arg(u8::from(stats.full))
                .arg(stats.quarantined_chunks)
                .arg(stats.peer_send_bytes_per_sec)
                .arg(stats.peer_receive_bytes_per_sec)
                .arg(stats.peer_send_rate_bytes_per_sec)
                .arg(max)
                .arg(deleted);
            let work: Option<(Vec<String>, Vec<String>)> = call.invoke_async(&mut conn).await?;
            let (delete, verify) = work.ok_or_else(|| {
                StoreError::NotFound(format!("storage node {node_id} is not registered"))
            })?;
            Ok(HeartbeatWork { delete, verify })
        })
    }

    fn untrash<'a>(&'a self, node_id: &'a str, chunk_ids: &'a [String]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            if chunk_ids.is_empty() {
                return Ok(());
            }
            let mut conn = self.conn();
            conn.srem::<_, _, ()>(keys::trash_key(node_id), chunk_ids)
                .await?;
            Ok(())
        })
    }

    fn suspect<'a>(&'a self, node_id: &'a str, chunk_id: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut conn = self.conn();
            conn.sadd::<_, _, ()>(keys::suspect_key(node_id), chunk_id)
                .await?;
            Ok(())
        })
    }

    fn queue_repair<'a>(&'a self, file_id: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut conn = self.conn();
            conn.sadd::<_, _, ()>(REPAIR_QUEUE, file_id).await?;
            Ok(())
        })
    }

    fn next_repair(&self) -> StoreFuture<'_, Option<String>> {
        Box::pin(async move {
            let mut conn = self.conn();
            Ok(conn.spop(REPAIR_QUEUE).await?)
        })
    }

    fn nodes(&self) -> StoreFuture<'_, Vec<NodeRecord>> {
        Box::pin(async move {
            let mut conn = self.conn();
            let rows: Vec<(String, HashMap<String, String>)> =
                self.nodes_call().invoke_async(&mut conn).await?;
            node_records(rows)
        })
    }

    fn trash_chunks(&self, items: Vec<(String, String)>) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let mut conn = self.conn();
            trash(&mut conn, items).await
        })
    }

    fn cluster_id(&self) -> StoreFuture<'_, String> {
        Box::pin(async move {
            let mut conn = self.conn();
            let fresh = format!("{:032x}", rand::random::<u128>());
            // SET NX GET: the id already there, or nil when ours was set.
            let existing: Option<String> = redis::cmd("SET")
                .arg(CLUSTER_ID)
                .arg(&fresh)
                .arg("NX")
                .arg("GET")
                .query_async(&mut conn)
                .await?;
            Ok(existing.unwrap_or(fresh))
        })
    }

    fn forget_node<'a>(&'a self, node_id: &'a str, alive_since_ms: u64) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut conn = self.conn();
            let mut call = self.scripts.forget_node.key(keys::node_key(node_id));
            call.key(keys::trash_key(node_id))
                .key(keys::suspect_key(node_id))
                .key(NODES)
                .key(REPAIR_WANTED)
                .arg(node_id)
                .arg(alive_since_ms);
            let outcome: String = call.invoke_async(&mut conn).await?;
            match outcome.as_str() {
                "forgotten" => Ok(()),
                "missing" => Err(StoreError::NotFound(format!(
                    "storage node {node_id} is not registered"
                ))),
                "alive" => Err(StoreError::Conflict(format!(
                    "storage node {node_id} is alive; stop it before forgetting it"
                ))),
                other => Err(StoreError::Internal(format!(
                    "forgetting node {node_id}: unexpected {other:?}"
                ))),
            }
        })
    }

    fn claim_repair_scan<'a>(
        &'a self,
        lost: &'a [String],
        alive: &'a [String],
        lease_ms: u64,
    ) -> StoreFuture<'a, Option<Vec<String>>> {
        Box::pin(async move {
            let mut conn = self.conn();
            let mut call = self.scripts.claim_repair.key(REPAIRED);
            call.key(REPAIR_WANTED)
                .key(REPAIR_LEASE)
                .arg(lease_ms)
                .arg(lost.len())
                .arg(lost)
                .arg(alive);
            Ok(call.invoke_async(&mut conn).await?)
        })
    }

    fn finish_repair_scan<'a>(
        &'a self,
        lost: &'a [String],
        completed: bool,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut conn = self.conn();
            let mut call = self.scripts.finish_repair.key(REPAIRED);
            call.key(REPAIR_WANTED)
                .key(REPAIR_LEASE)
                .arg(if completed { "done" } else { "retry" })
                .arg(lost);
            call.invoke_async::<()>(&mut conn).await?;
            Ok(())
        })
    }
}
