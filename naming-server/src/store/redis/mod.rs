//! The metadata store on Redis (a single server, Cluster or Sentinel: see
//! [`backend`]; [`keys`] for the layout): one multiplexed connection and
//! the Lua scripts, shared by the trait implementations beside this file
//! (`files.rs`, `nodes.rs`, `jobs.rs`).
//!
//! Every request shares the one connection ([`backend::Backend`], timed
//! by [`timed::TimedConnection`]):
//! commands from concurrent requests are pipelined on it, and nothing is
//! sent but the request's own commands (no PING or UNWATCH per use, as a
//! pool's checkout would). Reads that belong together go out as one
//! pipeline, so they cost one round trip.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::{ErrorKind, FromRedisValue, Pipeline, RedisError, Script, ServerErrorKind};

use crate::metrics::RedisMetrics;
use crate::store::{MetadataStore, StoreError, StoreFuture, StoreResult};
use backend::{Backend, Topology};
use timed::TimedConnection;

mod backend;
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
    /// `None` on a single Redis: no failover can promote a replica there.
    replication: Option<Replication>,
    metrics: RedisMetrics,
}

/// How long, after a replica failed to acknowledge a write in time, writes
/// are not waited for (so a master left without a replica, as after a
/// failover, does not hold every commit for the whole timeout).
const WAIT_PAUSE: Duration = Duration::from_secs(10);

/// How commits wait for a replica ([`RedisStore::replicated`]).
struct Replication {
    timeout: Duration,
    /// When a replica last failed to acknowledge in time.
    short_since: Mutex<Option<Instant>>,
}

impl RedisStore {
    /// Sets the connection up without connecting: it connects on first
    /// use, so a server starts while Redis is down (and reports it on
    /// `/health`). A lost connection is made again on the next use; while
    /// Redis is down, each use fails within a few seconds
    /// ([`StoreError::Unavailable`]). Round trips are timed into `metrics`.
    ///
    /// Where a failover can promote a replica (Cluster, Sentinel), each
    /// write a client is told is done waits for a replica to have it, up to
    /// `wait_timeout` (see [`RedisStore::replicated`]).
    pub fn new(url: &str, wait_timeout: Duration, metrics: RedisMetrics) -> StoreResult<Self> {
        let topology = Topology::parse(url).map_err(StoreError::BadUrl)?;
        let conn = Backend::new(&topology).map_err(|e| StoreError::BadUrl(e.to_string()))?;
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
        let replication = topology.fails_over().then(|| Replication {
            timeout: wait_timeout,
            short_since: Mutex::new(None),
        });
        Ok(Self {
            conn: TimedConnection::new(conn, metrics.clone()),
            scripts,
            replication,
            metrics,
        })
    }

    /// Called after a write the client is about to be told is done (a
    /// finalize, a delete, a replica change, a node's registration): where
    /// masters have replicas,
    /// waits (`WAIT 1`) until at least one replica has every write sent so
    /// far, so that a failover cannot lose it. When none acknowledges within
    /// the timeout (the replica is down or far behind), the write stands on
    /// the master only: it is logged and counted
    /// (`dfs_redis_unreplicated_writes_total`), and for [`WAIT_PAUSE`] after
    /// that writes are counted without waiting. The client's request
    /// succeeds either way: the write is done on the master.
    async fn replicated(&self, conn: &mut TimedConnection) {
        let Some(replication) = &self.replication else {
            return;
        };
        let paused = replication
            .short_since
            .lock()
            .expect("lock")
            .is_some_and(|since| since.elapsed() < WAIT_PAUSE);
        if paused {
            self.metrics.unreplicated_writes.inc();
            return;
        }
        let timeout_ms = u64::try_from(replication.timeout.as_millis()).unwrap_or(u64::MAX);
        let acked: Result<i64, _> = redis::cmd("WAIT")
            .arg(1)
            .arg(timeout_ms)
            .query_async(conn)
            .await;
        let short = match acked {
            Ok(n) if n >= 1 => false,
            Ok(_) => {
                tracing::warn!(
                    timeout_ms,
                    "no Redis replica acknowledged a write in time: it is on the master only \
                     (not waiting for replicas again for {} s)",
                    WAIT_PAUSE.as_secs()
                );
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "waiting for a Redis replica failed");
                true
            }
        };
        if short {
            self.metrics.unreplicated_writes.inc();
        }
        *replication.short_since.lock().expect("lock") = short.then(Instant::now);
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
            // Redirections still not settled after the retries, a slot
            // without a master, a demoted master: a failover under way.
            || e.is_cluster_error()
            || matches!(
                e.kind(),
                ErrorKind::Server(ServerErrorKind::MasterDown | ServerErrorKind::ReadOnly)
            )
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
