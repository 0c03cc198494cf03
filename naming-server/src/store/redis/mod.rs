//! The metadata store on Redis (a single server, or Cluster: see
//! [`keys`] for the layout): one multiplexed connection and the Lua
//! scripts, shared by the trait implementations beside this file
//! (`files.rs`, `nodes.rs`, `jobs.rs`).
//!
//! Every request shares the one connection ([`ConnectionManager`], timed
//! by [`timed::TimedConnection`]):
//! commands from concurrent requests are pipelined on it, and nothing is
//! sent but the request's own commands (no PING or UNWATCH per use, as a
//! pool's checkout would). Reads that belong together go out as one
//! pipeline, so they cost one round trip.

use std::collections::BTreeMap;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, FromRedisValue, Pipeline, RedisError, Script, ServerErrorKind};

use crate::metrics::RedisMetrics;
use crate::store::{MetadataStore, StoreError, StoreFuture, StoreResult};
use timed::TimedConnection;

mod files;
mod jobs;
pub mod keys;
mod nodes;
mod parse;
mod scripts;
mod timed;

struct Scripts {
    create: Script,
    allocate: Script,
    commit: Script,
    delete: Script,
    claim_expired: Script,
    expire: Script,
    purge_expired: Script,
    heartbeat: Script,
    nodes: Script,
    forget_node: Script,
    claim_repair: Script,
    finish_repair: Script,
    edit_replicas: Script,
    add_file_replicas: Script,
}

/// The Redis store: one multiplexed connection plus the scripts.
pub struct RedisStore {
    conn: TimedConnection,
    scripts: Scripts,
}

impl RedisStore {
    /// Sets the connection up without connecting: it connects on first
    /// use, so a server starts while Redis is down (and reports it on
    /// `/health`). A lost connection is made again on the next use; while
    /// Redis is down, each use fails within a few seconds
    /// ([`StoreError::Unavailable`]). Round trips are timed into `metrics`.
    pub fn new(url: &str, metrics: RedisMetrics) -> StoreResult<Self> {
        let client = redis::Client::open(url).map_err(|e| StoreError::BadUrl(e.to_string()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(10)))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| StoreError::BadUrl(e.to_string()))?;
        let scripts = Scripts {
            create: Script::new(scripts::CREATE),
            allocate: Script::new(scripts::ALLOCATE),
            commit: Script::new(scripts::COMMIT),
            delete: Script::new(scripts::DELETE),
            claim_expired: Script::new(scripts::CLAIM_EXPIRED),
            expire: Script::new(scripts::EXPIRE),
            purge_expired: Script::new(scripts::PURGE_EXPIRED),
            heartbeat: Script::new(scripts::HEARTBEAT),
            nodes: Script::new(scripts::NODES),
            forget_node: Script::new(scripts::FORGET_NODE),
            claim_repair: Script::new(scripts::CLAIM_REPAIR),
            finish_repair: Script::new(scripts::FINISH_REPAIR),
            edit_replicas: Script::new(scripts::EDIT_REPLICAS),
            add_file_replicas: Script::new(scripts::ADD_FILE_REPLICAS),
        };
        Ok(Self {
            conn: TimedConnection::new(conn, metrics),
            scripts,
        })
    }

    /// The shared connection (a handle: cheap to clone).
    fn conn(&self) -> TimedConnection {
        self.conn.clone()
    }
}

/// Runs `pipe`, which invokes `script`; when Redis does not have the
/// script yet (a new or restarted server), loads it and runs `pipe` again.
async fn query_with_script<T: FromRedisValue>(
    conn: &mut TimedConnection,
    pipe: &Pipeline,
    script: &Script,
) -> StoreResult<T> {
    match pipe.query_async(conn).await {
        Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
            script.load_async(conn).await?;
            Ok(pipe.query_async(conn).await?)
        }
        result => Ok(result?),
    }
}

/// Adds each (node, chunk id) to the node's trash set.
async fn trash(conn: &mut TimedConnection, items: Vec<(String, String)>) -> StoreResult<()> {
    let mut by_node: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (node, chunk) in items {
        by_node.entry(node).or_default().push(chunk);
    }
    if by_node.is_empty() {
        return Ok(());
    }
    let mut pipe = redis::pipe();
    for (node, chunks) in &by_node {
        pipe.sadd(keys::trash_key(node), chunks).ignore();
    }
    pipe.query_async::<()>(conn).await?;
    Ok(())
}

impl MetadataStore for RedisStore {
    fn ping(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let mut conn = self.conn();
            redis::cmd("PING").query_async::<()>(&mut conn).await?;
            Ok(())
        })
    }
}

impl From<RedisError> for StoreError {
    fn from(e: RedisError) -> Self {
        if e.is_io_error()
            || e.is_timeout()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_unrecoverable_error()
        {
            Self::Unavailable(e.to_string())
        } else {
            Self::Internal(e.to_string())
        }
    }
}

impl From<redis::ParsingError> for StoreError {
    fn from(e: redis::ParsingError) -> Self {
        Self::Internal(format!("unexpected reply from Redis: {e}"))
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        Self::Internal(format!("bad JSON in metadata: {e}"))
    }
}
