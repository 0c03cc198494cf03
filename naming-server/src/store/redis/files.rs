//! [`FileStore`] on Redis. Multi-key changes of one file are Lua scripts on
//! one slot; the cross-file indexes (names, expiry, trash) are updated right
//! after, in an order that a crash can only leave repairable:
//!
//! - commit: script (name + state + chunks), then `names` ZADD, then the
//!   expiry entry is removed, then unused chunks are trashed. A crash before
//!   the ZREM leaves the expiry entry, and the reaper re-adds the name.
//! - delete: `names` ZREM (committed files only), then the script, then
//!   trash. Listing skips names that no longer resolve.
//! - expiry: claim ids with a lease, mark the file `expired` (finalize and
//!   allocate then fail), trash its chunks, delete its keys, drop the entry.

use std::collections::HashMap;

use dfs_common::api::{FileInfo, FileState};
use redis::AsyncCommands;

use super::keys::{self, CLUSTER_ID, EXPIRY, FileKeys, NAMES};
use super::nodes::node_records;
use super::parse::{allocation_targets, file_info, file_keys, state_error, stored_chunks};
use super::{RedisStore, query_with_script, trash};
use crate::store::ids::chunk_owner;
use crate::store::{
    Allocation, Edited, FilePage, FileRead, FileStore, ReplicaEdit, StoreError, StoreFuture,
    StoreResult, StoredChunk, WhichChunks,
};

/// How long a reaper owns a claimed expired id before another may retry it.
const EXPIRY_LEASE_MS: u64 = 60_000;

impl FileStore for RedisStore {
    fn create_file(&self, info: FileInfo, expires_at_ms: u64) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let keys = file_keys(&info.file_id)?;
            let mut conn = self.conn();
            // The expiry entry first: a crash after it leaves nothing the
            // reaper cannot clean.
            conn.zadd::<_, _, _, ()>(EXPIRY, &info.file_id, expires_at_ms)
                .await?;
            let mut call = self.scripts.create.key(keys::name_key(&info.name));
            call.key(&keys.file)
                .arg("name")
                .arg(&info.name)
                .arg("size")
                .arg(info.size)
                .arg("chunk_size")
                .arg(info.chunk_size)
                .arg("replication")
                .arg(info.replication)
                .arg("state")
                .arg("pending")
                .arg("created_at_ms")
                .arg(info.created_at_ms);
            let created: i64 = call.invoke_async(&mut conn).await?;
            if created == 0 {
                conn.zrem::<_, _, ()>(EXPIRY, &info.file_id).await?;
                return Err(StoreError::Conflict(format!(
                    "a file named {:?} already exists",
                    info.name
                )));
            }
            Ok(())
        })
    }

    fn file<'a>(&'a self, file_id: &'a str) -> StoreFuture<'a, FileInfo> {
        Box::pin(async move {
            let keys = file_keys(file_id)?;
            let mut conn = self.conn();
            let fields: HashMap<String, String> = conn.hgetall(&keys.file).await?;
            file_info(file_id, &fields)
        })
    }

    fn file_id_by_name<'a>(&'a self, name: &'a str) -> StoreFuture<'a, String> {
        Box::pin(async move {
            let mut conn = self.conn();
            let id: Option<String> = conn.get(keys::name_key(name)).await?;
            id.ok_or_else(|| StoreError::NotFound(format!("no file named {name:?}")))
        })
    }

    fn add_allocation<'a>(
        &'a self,
        file_id: &'a str,
        chunk_id: &'a str,
        allocation: &'a Allocation,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let keys = file_keys(file_id)?;
            let json = serde_json::to_string(allocation)?;
            let mut conn = self.conn();
            let mut call = self.scripts.allocate.key(&keys.file);
            call.key(&keys.alloc).arg(chunk_id).arg(json);
            let outcome: String = call.invoke_async(&mut conn).await?;
            match outcome.as_str() {
                "ok" => Ok(()),
                state => Err(state_error(file_id, state)),
            }
        })
    }

    fn allocations<'a>(&'a self, file_id: &'a str) -> StoreFuture<'a, HashMap<String, Allocation>> {
        Box::pin(async move {
            let keys = file_keys(file_id)?;
            let mut conn = self.conn();
            let raw: HashMap<String, String> = conn.hgetall(&keys.alloc).await?;
            raw.into_iter()
                .map(|(id, json)| Ok((id, serde_json::from_str(&json)?)))
                .collect()
        })
    }

    fn commit<'a>(&'a self, info: &'a FileInfo, chunks: &'a [StoredChunk]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let keys = file_keys(&info.file_id)?;
            let mut conn = self.conn();
            let mut call = self.scripts.commit.key(&keys.file);
            call.key(keys::name_key(&info.name))
                .key(&keys.chunks)
                .key(&keys.alloc)
                .arg(&info.file_id);
            for chunk in chunks {
                call.arg(chunk.index).arg(serde_json::to_string(chunk)?);
            }
            let reply: Vec<String> = call.invoke_async(&mut conn).await?;
            match reply.first().map(String::as_str) {
                Some("ok") => {}
                Some("taken") => {
                    return Err(StoreError::Conflict(format!(
                        "a file named {:?} already exists",
                        info.name
                    )));
                }
                Some(state) => return Err(state_error(&info.file_id, state)),
                None => return Err(StoreError::Internal("empty reply from commit".into())),
            }
            // Committed. What follows only updates indexes; a failure is
            // logged, and repaired by the reaper (see the module doc).
            let used: HashMap<&str, &StoredChunk> =
                chunks.iter().map(|c| (c.chunk_id.as_str(), c)).collect();
            let mut unused = Vec::new();
            for (node, chunk_id) in allocation_targets(&reply[1..])? {
                let kept = used
                    .get(chunk_id.as_str())
                    .is_some_and(|c| c.nodes.contains(&node));
                if !kept {
                    unused.push((node, chunk_id));
                }
            }
            let indexes = async {
                conn.zadd::<_, _, _, ()>(NAMES, &info.name, 0).await?;
                conn.zrem::<_, _, ()>(EXPIRY, &info.file_id).await?;
                trash(&mut conn, unused).await
            };
            if let Err(e) = indexes.await {
                tracing::warn!(file_id = %info.file_id, error = %e, "committed, but updating indexes failed");
            }
            self.replicated(&mut conn).await;
            Ok(())
        })
    }

    fn keep_pending<'a>(&'a self, file_id: &'a str, expires_at_ms: u64) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut conn = self.conn();
            // XX: only while still pending; GT: never shorten it.
            redis::cmd("ZADD")
                .arg(EXPIRY)
                .arg("XX")
                .arg("GT")
                .arg(expires_at_ms)
                .arg(file_id)
                .query_async::<()>(&mut conn)
                .await?;
            Ok(())
        })
    }

    fn chunks<'a>(&'a self, file_id: &'a str) -> StoreFuture<'a, Vec<StoredChunk>> {
        Box::pin(async move {
            let keys = file_keys(file_id)?;
            let mut conn = self.conn();
            let raw: HashMap<u64, String> = conn.hgetall(&keys.chunks).await?;
            let chunks = stored_chunks(raw)?;
            Ok(chunks)
        })
    }

    fn read_file<'a>(
        &'a self,
        file_id: &'a str,
        which: WhichChunks,
        with_nodes: bool,
    ) -> StoreFuture<'a, FileRead> {
        Box::pin(async move {
            let keys = file_keys(file_id)?;
            let mut pipe = redis::pipe();
            pipe.hgetall(&keys.file);
            match which {
                WhichChunks::All => pipe.hgetall(&keys.chunks),
                WhichChunks::One(index) => pipe.hget(&keys.chunks, index),
            };
            let nodes_call = self.nodes_call();
            if with_nodes {
                pipe.invoke_script(&nodes_call);
            }
            let mut conn = self.conn();
            let mut replies: Vec<redis::Value> =
                query_with_script(&mut conn, &pipe, &self.scripts.nodes).await?;
            let nodes = match with_nodes {
                true => {
                    let rows = replies.pop().map(redis::from_redis_value).transpose()?;
                    Some(node_records(rows.unwrap_or_default())?)
                }
                false => None,
            };
            let mut replies = replies.into_iter();
            let (Some(file), Some(chunks)) = (replies.next(), replies.next()) else {
                return Err(StoreError::Internal("short reply to a file read".into()));
            };
            let info = file_info(file_id, &redis::from_redis_value(file)?)?;
            let raw: Vec<(u64, String)> = match which {
                WhichChunks::All => redis::from_redis_value::<HashMap<u64, String>>(chunks)?
                    .into_iter()
                    .collect(),
                WhichChunks::One(index) => redis::from_redis_value::<Option<String>>(chunks)?
                    .map(|json| (index, json))
                    .into_iter()
                    .collect(),
            };
            let chunks = stored_chunks(raw)?;
            Ok(FileRead {
                info,
                chunks,
                nodes,
            })
        })
    }

    fn edit_replicas<'a>(
        &'a self,
        file_id: &'a str,
        index: u64,
        chunk_id: &'a str,
        edit: &'a ReplicaEdit,
    ) -> StoreFuture<'a, Edited> {
        Box::pin(async move {
            let keys = file_keys(file_id)?;
            let mut conn = self.conn();
            let mut call = self.scripts.edit_replicas.key(&keys.file);
            call.key(&keys.chunks).arg(index).arg(chunk_id);
            match edit {
                ReplicaEdit::Add(nodes) => call.arg("add").arg(nodes),
                ReplicaEdit::Remove(nodes) => call.arg("remove").arg(nodes),
                ReplicaEdit::MarkBad(bad) => call
                    .arg("bad")
                    .arg(&bad.node_id)
                    .arg(bad.problem.to_string()),
                ReplicaEdit::ClearBad => call.arg("clear_bad"),
            };
            let outcome: i64 = call.invoke_async(&mut conn).await?;
            if outcome == 1 {
                self.replicated(&mut conn).await;
            }
            Ok(match outcome {
                1 => Edited::Changed,
                2 => Edited::AlreadySo,
                _ => Edited::Gone,
            })
        })
    }

    fn add_file_replicas<'a>(
        &'a self,
        file_id: &'a str,
        node_ids: &'a [String],
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            if node_ids.is_empty() {
                return Ok(());
            }
            let keys = file_keys(file_id)?;
            let mut conn = self.conn();
            let mut call = self.scripts.add_file_replicas.key(&keys.file);
            call.key(&keys.chunks).arg(node_ids);
            call.invoke_async::<()>(&mut conn).await?;
            self.replicated(&mut conn).await;
            Ok(())
        })
    }

    fn held_by<'a>(
        &'a self,
        node_id: &'a str,
        chunk_ids: &'a [String],
    ) -> StoreFuture<'a, Vec<String>> {
        Box::pin(async move {
            let owned = ChunkLookup::of(chunk_ids);
            if owned.is_empty() {
                return Ok(Vec::new());
            }
            let mut pipe = redis::pipe();
            ChunkLookup::queue(&owned, &mut pipe);
            let mut conn = self.conn();
            let replies: Vec<Option<String>> = pipe.query_async(&mut conn).await?;
            let mut held = Vec::new();
            for (lookup, reply) in owned.iter().zip(replies.chunks_exact(2)) {
                if let Found::Committed(Some(chunk)) = lookup.found(reply)?
                    && chunk.nodes.iter().any(|n| n == node_id)
                {
                    held.push(lookup.id.clone());
                }
            }
            Ok(held)
        })
    }

    fn list<'a>(
        &'a self,
        prefix: &'a str,
        after: Option<&'a str>,
        limit: usize,
    ) -> StoreFuture<'a, FilePage> {
        Box::pin(async move {
            let min = match after {
                Some(after) if after >= prefix => [b"(", after.as_bytes()].concat(),
                _ if prefix.is_empty() => b"-".to_vec(),
                _ => [b"[", prefix.as_bytes()].concat(),
            };
            // 0xFF never occurs in UTF-8, so it sorts after every name with the prefix.
            let max = match prefix {
                "" => b"+".to_vec(),
                _ => [b"[", prefix.as_bytes(), b"\xff"].concat(),
            };
            let mut conn = self.conn();
            let mut names: Vec<String> = redis::cmd("ZRANGEBYLEX")
                .arg(NAMES)
                .arg(min)
                .arg(max)
                .arg("LIMIT")
                .arg(0)
                .arg(limit + 1)
                .query_async(&mut conn)
                .await?;
            let next = (names.len() > limit).then(|| names[limit - 1].clone());
            names.truncate(limit);
            if names.is_empty() {
                return Ok(FilePage {
                    files: Vec::new(),
                    next,
                });
            }
            let ids: Vec<Option<String>> = conn
                .mget(names.iter().map(|n| keys::name_key(n)).collect::<Vec<_>>())
                .await?;
            let ids: Vec<String> = ids.into_iter().flatten().collect();
            let mut pipe = redis::pipe();
            for id in &ids {
                pipe.hgetall(file_keys(id)?.file);
            }
            let rows: Vec<HashMap<String, String>> = match ids.is_empty() {
                true => Vec::new(),
                false => pipe.query_async(&mut conn).await?,
            };
            let mut files = Vec::with_capacity(rows.len());
            for (id, fields) in ids.iter().zip(rows) {
                // A name deleted since the range read: skip it.
                match file_info(id, &fields) {
                    Ok(info) if info.state == FileState::Committed => files.push(info),
                    Ok(_) | Err(StoreError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(FilePage { files, next })
        })
    }

    fn delete_file<'a>(&'a self, file_id: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let keys = file_keys(file_id)?;
            let mut conn = self.conn();
            let (name, state): (Option<String>, Option<String>) =
                conn.hmget(&keys.file, &["name", "state"]).await?;
            let Some(name) = name else {
                return Err(StoreError::NotFound(format!("file {file_id} not found")));
            };
            if state.as_deref() == Some("committed") {
                // Unlisted first, so a new file of the same name committed
                // right after the delete is never unlisted by it.
                conn.zrem::<_, _, ()>(NAMES, &name).await?;
            }
            let mut call = self.scripts.delete.key(&keys.file);
            call.key(keys::name_key(&name))
                .key(&keys.chunks)
                .key(&keys.alloc)
                .arg(file_id);
            let (state, chunks, allocs): (String, Vec<String>, Vec<String>) =
                call.invoke_async(&mut conn).await?;
            if state == "missing" {
                return Err(StoreError::NotFound(format!("file {file_id} not found")));
            }
            conn.zrem::<_, _, ()>(EXPIRY, file_id).await?;
            let mut items = allocation_targets(&allocs)?;
            for json in chunks {
                let chunk: StoredChunk = serde_json::from_str(&json)?;
                items.extend(
                    chunk
                        .nodes
                        .into_iter()
                        .map(|node| (node, chunk.chunk_id.clone())),
                );
            }
            trash(&mut conn, items).await?;
            self.replicated(&mut conn).await;
            Ok(())
        })
    }

    fn reap_expired(&self, now_ms: u64, batch: usize) -> StoreFuture<'_, usize> {
        Box::pin(async move {
            let mut conn = self.conn();
            let mut claim = self.scripts.claim_expired.key(EXPIRY);
            claim.arg(now_ms).arg(now_ms + EXPIRY_LEASE_MS).arg(batch);
            let ids: Vec<String> = claim.invoke_async(&mut conn).await?;
            let mut reaped = 0;
            for id in ids {
                if let Some(keys) = FileKeys::of(&id) {
                    let mut expire = self.scripts.expire.key(&keys.file);
                    expire.key(&keys.alloc);
                    let reply: Vec<String> = expire.invoke_async(&mut conn).await?;
                    match reply.first().map(String::as_str) {
                        Some("expired") => {
                            trash(&mut conn, allocation_targets(&reply[1..])?).await?;
                            let mut purge = self.scripts.purge_expired.key(&keys.file);
                            purge.key(&keys.alloc).invoke_async::<()>(&mut conn).await?;
                            tracing::info!(file_id = %id, "pending upload expired");
                            reaped += 1;
                        }
                        // A commit whose index update was cut short: list it.
                        Some("committed") => {
                            if let Some(name) = reply.get(1) {
                                conn.zadd::<_, _, _, ()>(NAMES, name, 0).await?;
                            }
                        }
                        _ => {}
                    }
                }
                conn.zrem::<_, _, ()>(EXPIRY, &id).await?;
            }
            Ok(reaped)
        })
    }

    fn orphans<'a>(
        &'a self,
        cluster_id: &'a str,
        chunk_ids: &'a [String],
    ) -> StoreFuture<'a, Vec<String>> {
        Box::pin(async move {
            let owned = ChunkLookup::of(chunk_ids);
            // The cluster id before and after the lookups: equal and ours
            // means no wipe came in between (a new id is random).
            let mut pipe = redis::pipe();
            pipe.get(CLUSTER_ID);
            ChunkLookup::queue(&owned, &mut pipe);
            pipe.get(CLUSTER_ID);
            let mut conn = self.conn();
            let replies: Vec<Option<String>> = pipe.query_async(&mut conn).await?;
            let (before, after) = (replies.first(), replies.last());
            if before != after || before.and_then(Option::as_deref) != Some(cluster_id) {
                let current = after.and_then(Option::as_deref).unwrap_or("(none)");
                return Err(StoreError::Conflict(format!(
                    "the node joined cluster {cluster_id} but this metadata store is cluster \
                     {current}: it was wiped or replaced, so no chunk is called an orphan"
                )));
            }
            let lookups = &replies[1..replies.len() - 1];
            let mut orphans = Vec::new();
            for (lookup, reply) in owned.iter().zip(lookups.chunks_exact(2)) {
                let orphan = match lookup.found(reply)? {
                    Found::Pending => false,
                    Found::Committed(chunk) => chunk.is_none(),
                    Found::Gone => true,
                };
                if orphan {
                    orphans.push(lookup.id.clone());
                }
            }
            Ok(orphans)
        })
    }
}

/// A chunk id made by this naming server, and the keys to look it up by.
struct ChunkLookup<'a> {
    id: &'a String,
    file_id: &'a str,
    index: u64,
    keys: FileKeys,
}

/// What the store holds of a chunk id's file.
enum Found {
    /// The file is still being written.
    Pending,
    /// The file is committed; with the chunk when its index still has
    /// this id.
    Committed(Option<StoredChunk>),
    /// The file is deleted or expired.
    Gone,
}

impl<'a> ChunkLookup<'a> {
    /// The ids of `chunk_ids` this naming server made (others are left out).
    fn of(chunk_ids: &'a [String]) -> Vec<Self> {
        chunk_ids
            .iter()
            .filter_map(|id| {
                let (file_id, index) = chunk_owner(id)?;
                Some(Self {
                    id,
                    file_id,
                    index,
                    keys: FileKeys::of(file_id)?,
                })
            })
            .collect()
    }

    /// Adds two reads per lookup to `pipe`: the file's state, the chunk.
    fn queue(lookups: &[Self], pipe: &mut redis::Pipeline) {
        for lookup in lookups {
            pipe.hget(&lookup.keys.file, "state")
                .hget(&lookup.keys.chunks, lookup.index);
        }
    }

    /// Reads the two replies [`ChunkLookup::queue`] asked for.
    fn found(&self, reply: &[Option<String>]) -> StoreResult<Found> {
        Ok(match (reply[0].as_deref(), &reply[1]) {
            (Some("pending"), _) => Found::Pending,
            (Some("committed"), Some(json)) => {
                let chunk: StoredChunk = serde_json::from_str(json)?;
                Found::Committed((chunk.chunk_id == *self.id).then_some(chunk))
            }
            (Some("committed"), None) => Found::Committed(None),
            (None | Some("expired"), _) => Found::Gone,
            (Some(other), _) => {
                return Err(StoreError::Internal(format!(
                    "file {}: unexpected state {other:?}",
                    self.file_id
                )));
            }
        })
    }
}
