//! The dfs naming server: a stateless axum service keeping file → chunk
//! metadata and storage-node registrations in Redis. Any number of replicas
//! can run side by side on one Redis (or Redis Cluster).
//!
//! # Layout, top to bottom (each layer calls only the ones below it)
//!
//! - this file: [`naming`] builds the domain from the [`config::Config`],
//!   [`app`] the HTTP service, [`run`] serves it with the background tasks.
//! - [`http`]: the handlers, one module per resource, the bearer-token
//!   check, request spans and metrics; [`http::spec`] is the OpenAPI
//!   document (committed under `openapi/`). Errors become statuses once,
//!   in `http/error.rs`.
//! - [`tasks`]: the background loops (expiring uploads, repair scans).
//! - [`domain`]: the rules: files, chunks, nodes and liveness, distribution
//!   planning and job views, repair. Its own error type, no HTTP.
//! - [`store`]: the metadata store traits and their Redis implementation;
//!   storage nodes are called through `dfs_client::StorageClient`.
//! - [`metrics`], [`config`]: counters and settings, used from above.
//!
//! # Invariants
//!
//! - A name points at a committed file, and only a finalize's Lua script sets
//!   it: two finalizes of one name cannot both win.
//! - A pending file that is not finalized within `PENDING_TTL` is marked
//!   `expired` before its chunks go to the trash, so no finalize can commit
//!   chunks that are being collected.
//! - Chunk ids are never reused, so a chunk id in a node's trash refers to
//!   nothing alive.

use std::sync::Arc;

use axum::Router;
use dfs_client::{ClusterAccess, StorageClient};
use dfs_common::auth::Token;
use dfs_common::serve::Tls;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub mod config;
pub mod domain;
pub mod http;
pub mod metrics;
pub mod store;
pub mod tasks;

use config::Config;
use domain::{Naming, Parts, Settings};
use metrics::Metrics;
use store::StoreError;
use store::redis::RedisStore;

/// Why the server could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Client(#[from] dfs_client::Error),
}

/// The domain on the Redis at `config.redis_url` (connected lazily, so the
/// server starts while Redis is down and says so on `/health`), calling
/// storage nodes with the cluster's token and CA.
pub fn naming(config: &Config) -> Result<Naming, SetupError> {
    let access = ClusterAccess::new(config.cluster.dfs_token.as_deref())
        .with_ca_cert(config.cluster.dfs_ca_cert.as_deref())?;
    let metrics = Arc::new(Metrics::new());
    Ok(Naming::new(Parts {
        store: Arc::new(RedisStore::new(
            &config.redis_url,
            config.redis_wait_timeout,
            metrics.redis.clone(),
        )?),
        storage: StorageClient::new(&access)?,
        token: Token::from_setting(config.cluster.dfs_token.as_deref()),
        settings: Arc::new(Settings {
            replication: config.replication_factor,
            chunk_size: config.chunk_size,
            heartbeat_timeout: config.heartbeat_timeout,
            free_space_reserve: config.free_space_reserve,
            pending_ttl: config.pending_ttl,
            repair_after: config.repair_after.0,
        }),
        metrics,
        directory: Arc::default(),
        names: Arc::default(),
        judged: Arc::default(),
        started: std::time::Instant::now(),
    }))
}

/// The whole HTTP service; the cluster's token, when it has one, guards
/// every route but health, metrics and the docs.
pub fn app(naming: Naming) -> Router {
    http::router(naming)
}

/// Serves `listener` (HTTPS only with `tls`) and runs the background tasks
/// until `shutdown` is cancelled, then drains in-flight requests.
pub async fn run(
    listener: TcpListener,
    naming: Naming,
    tls: Option<Tls>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let reaper = tokio::spawn(tasks::reaper::run(naming.clone(), shutdown.clone()));
    let repairs = tokio::spawn(tasks::repair::run(naming.clone(), shutdown.clone()));
    let served = dfs_common::serve::serve(listener, app(naming), tls, shutdown.clone()).await;
    shutdown.cancel();
    for (name, task) in [("reaper", reaper), ("repair", repairs)] {
        if let Err(e) = task.await {
            tracing::error!(error = %e, "{name} task failed");
        }
    }
    served
}
