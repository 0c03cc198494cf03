//! The dfs naming server: a stateless axum service keeping file → chunk
//! metadata and storage-node registrations in Redis. Any number of replicas
//! can run side by side on one Redis (or Redis Cluster).
//!
//! # Layout
//!
//! - [`config`]: flags and their environment variables.
//! - [`routes`]: one module per resource (`files`, `chunks`, `nodes`,
//!   `system`); handlers validate input and call the store.
//! - [`store`]: the [`store::MetadataStore`] trait and its Redis
//!   implementation; `store/keys.rs` documents the key layout,
//!   `store/scripts.rs` holds the Lua scripts that make commits atomic.
//! - [`reaper`]: the background loop expiring unfinished uploads.
//! - [`error`]: [`error::ApiError`], mapped once to statuses and JSON, and
//!   the extractors that reject bad input in the same shape.
//! - [`auth`], [`metrics`]: bearer-token check and Prometheus counters.
//! - [`openapi`]: the generated OpenAPI document (committed under `openapi/`).
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
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::from_fn_with_state;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::trace::TraceLayer;
use utoipa_swagger_ui::SwaggerUi;

pub mod auth;
pub mod chain;
pub mod config;
pub mod error;
pub mod metrics;
pub mod openapi;
pub mod reaper;
pub mod repair;
pub mod routes;
pub mod store;

use config::Config;
use metrics::Metrics;
use store::jobs::JobStore;
use store::{MetadataStore, StoreResult, redis::RedisStore};

/// Largest request body: a finalize of a very large file lists every chunk.
const MAX_BODY_BYTES: usize = 64 << 20;

/// The server-wide settings handlers need.
#[derive(Debug, Clone)]
pub struct Settings {
    pub replication: u32,
    pub chunk_size: u64,
    pub heartbeat_timeout: Duration,
    pub pending_ttl: Duration,
    /// Silence after which a node's chunks are re-replicated; `None`: never
    /// in the background.
    pub repair_after: Option<Duration>,
    pub token: Option<String>,
}

/// Shared by every handler and the reaper.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn MetadataStore>,
    pub jobs: Arc<dyn JobStore>,
    /// Calls to storage nodes (assignments, GCS lookups).
    pub http: reqwest::Client,
    pub settings: Arc<Settings>,
    pub metrics: Arc<Metrics>,
}

impl AppState {
    /// State backed by the Redis at `config.redis_url` (connected lazily).
    pub fn new(config: &Config) -> StoreResult<Self> {
        let store = Arc::new(RedisStore::new(&config.redis_url)?);
        Ok(Self {
            store: store.clone(),
            jobs: store,
            http: reqwest::Client::new(),
            settings: Arc::new(Settings {
                replication: config.replication_factor,
                chunk_size: config.chunk_size,
                heartbeat_timeout: config.heartbeat_timeout,
                pending_ttl: config.pending_ttl,
                repair_after: config.repair_after.0,
                token: config.dfs_token.clone().filter(|t| !t.is_empty()),
            }),
            metrics: Arc::new(Metrics::default()),
        })
    }
}

/// Unix time in milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The whole HTTP service.
pub fn app(state: AppState) -> Router {
    let (protected, public) = routes::routers();
    let protected = protected.route_layer(from_fn_with_state(state.clone(), auth::require_token));
    let (router, spec) = protected.merge(public).split_for_parts();
    router
        .merge(SwaggerUi::new("/swagger-ui").url("/openapi.json", spec))
        .fallback(routes::system::no_route)
        .layer(from_fn_with_state(state.clone(), metrics::track))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request| {
                let path = request
                    .extensions()
                    .get::<MatchedPath>()
                    .map_or(request.uri().path(), MatchedPath::as_str);
                tracing::info_span!(
                    "http",
                    method = %request.method(),
                    path,
                    file_id = tracing::field::Empty,
                    node_id = tracing::field::Empty,
                )
            }),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Serves `listener` and runs the reaper until `shutdown` is cancelled,
/// then drains in-flight requests.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let reaper = tokio::spawn(reaper::run(state.clone(), shutdown.clone()));
    let repairs = tokio::spawn(repair::run(state.clone(), shutdown.clone()));
    let served = axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await;
    shutdown.cancel();
    if let Err(e) = reaper.await {
        tracing::error!(error = %e, "reaper task failed");
    }
    if let Err(e) = repairs.await {
        tracing::error!(error = %e, "repair task failed");
    }
    served
}
