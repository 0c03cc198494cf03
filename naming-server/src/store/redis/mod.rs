//! The metadata store on Redis (a single server, or Cluster: see
//! [`keys`] for the layout): a pool of connections and the Lua scripts,
//! shared by the trait implementations beside this file (`files.rs`,
//! `nodes.rs`, `jobs.rs`).

use std::collections::BTreeMap;
use std::time::Duration;

use deadpool_redis::{Connection, Manager, Pool, Runtime};
use redis::{AsyncConnectionConfig, RedisError, Script};

use crate::store::{MetadataStore, StoreError, StoreFuture, StoreResult};

mod files;
mod jobs;
pub mod keys;
mod nodes;
mod parse;
mod scripts;

struct Scripts {
    create: Script,
    allocate: Script,
    commit: Script,
    delete: Script,
    claim_expired: Script,
    expire: Script,
    purge_expired: Script,
    heartbeat: Script,
    forget_node: Script,
    claim_repair: Script,
    finish_repair: Script,
    edit_replicas: Script,
    add_file_replicas: Script,
}

/// The Redis store: a deadpool of multiplexed connections plus the scripts.
pub struct RedisStore {
    pool: Pool,
    scripts: Scripts,
}

impl RedisStore {
    /// Builds the pool; connects lazily, so a server starts while Redis is
    /// down (and reports it on `/health`).
    pub fn new(url: &str) -> StoreResult<Self> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(10)));
        let manager =
            Manager::new_with_config(url, config).map_err(|e| StoreError::BadUrl(e.to_string()))?;
        let pool = Pool::builder(manager)
            .max_size(32)
            .wait_timeout(Some(Duration::from_secs(5)))
            .create_timeout(Some(Duration::from_secs(3)))
            .recycle_timeout(Some(Duration::from_secs(2)))
            .runtime(Runtime::Tokio1)
            .build()
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
            forget_node: Script::new(scripts::FORGET_NODE),
            claim_repair: Script::new(scripts::CLAIM_REPAIR),
            finish_repair: Script::new(scripts::FINISH_REPAIR),
            edit_replicas: Script::new(scripts::EDIT_REPLICAS),
            add_file_replicas: Script::new(scripts::ADD_FILE_REPLICAS),
        };
        Ok(Self { pool, scripts })
    }

    async fn conn(&self) -> StoreResult<Connection> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))
    }
}

/// Adds each (node, chunk id) to the node's trash set.
async fn trash(conn: &mut Connection, items: Vec<(String, String)>) -> StoreResult<()> {
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
            let mut conn = self.conn().await?;
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

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        Self::Internal(format!("bad JSON in metadata: {e}"))
    }
}
