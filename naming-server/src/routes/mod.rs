//! HTTP handlers, one module per resource, and the helpers they share.

use std::collections::HashMap;

use dfs_common::api::{ChunkLocation, FileRecord, Replica};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::store::{NodeRecord, StoredChunk};
use crate::{AppState, Settings, now_ms, openapi};

pub mod chunks;
pub mod distributions;
pub mod files;
pub mod nodes;
pub mod system;

/// The API routes behind the token check, and the open ones, with their
/// OpenAPI documentation.
pub fn routers() -> (OpenApiRouter<AppState>, OpenApiRouter<AppState>) {
    let protected = OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(nodes::register))
        .routes(routes!(nodes::heartbeat))
        .routes(routes!(nodes::chunk_report))
        .routes(routes!(nodes::list))
        .routes(routes!(nodes::forget))
        .routes(routes!(files::init))
        .routes(routes!(files::find))
        .routes(routes!(files::get, files::delete))
        .routes(routes!(files::size))
        .routes(routes!(files::repair))
        .routes(routes!(chunks::allocate))
        .routes(routes!(chunks::finalize))
        .routes(routes!(chunks::location))
        .routes(routes!(distributions::start, distributions::list))
        .routes(routes!(distributions::get))
        .routes(routes!(distributions::report));
    let public = OpenApiRouter::new()
        .routes(routes!(system::health))
        .routes(routes!(system::metrics));
    (protected, public)
}

/// Heard from within the heartbeat timeout.
pub fn is_alive(node: &NodeRecord, settings: &Settings, now_ms: u64) -> bool {
    node.last_heartbeat_ms >= alive_since(settings, now_ms)
}

/// The earliest heartbeat time (ms) that still makes a node alive at `now_ms`.
pub fn alive_since(settings: &Settings, now_ms: u64) -> u64 {
    let timeout_ms = u64::try_from(settings.heartbeat_timeout.as_millis()).unwrap_or(u64::MAX);
    now_ms.saturating_sub(timeout_ms)
}

/// Every live node.
pub async fn live_nodes(state: &AppState) -> Result<Vec<NodeRecord>, ApiError> {
    let now = now_ms();
    let mut nodes = state.store.nodes().await?;
    nodes.retain(|node| is_alive(node, &state.settings, now));
    Ok(nodes)
}

/// 503 unless `have >= need`.
pub fn require_nodes(need: u32, have: usize) -> Result<(), ApiError> {
    if have < need as usize {
        return Err(ApiError::Unavailable(format!(
            "need {need} live storage nodes, have {have}"
        )));
    }
    Ok(())
}

/// Node lookups for building chunk locations.
pub struct NodeDirectory {
    nodes: HashMap<String, NodeRecord>,
    settings: std::sync::Arc<Settings>,
    now_ms: u64,
}

impl NodeDirectory {
    pub async fn load(state: &AppState) -> Result<Self, ApiError> {
        let nodes = state.store.nodes().await?;
        Ok(Self {
            nodes: nodes.into_iter().map(|n| (n.node_id.clone(), n)).collect(),
            settings: state.settings.clone(),
            now_ms: now_ms(),
        })
    }

    /// The live nodes, ordered by id.
    pub fn live(&self) -> Vec<&NodeRecord> {
        let mut live: Vec<&NodeRecord> = self
            .nodes
            .values()
            .filter(|node| is_alive(node, &self.settings, self.now_ms))
            .collect();
        live.sort_by(|a, b| a.node_id.cmp(&b.node_id));
        live
    }

    /// The node called `node_id`, if registered.
    pub fn record(&self, node_id: &str) -> Option<&NodeRecord> {
        self.nodes.get(node_id)
    }

    /// Where `chunk` lives, live replicas first.
    pub fn locate(&self, chunk: StoredChunk) -> ChunkLocation {
        let mut replicas: Vec<Replica> = chunk
            .nodes
            .into_iter()
            .map(|node_id| match self.nodes.get(&node_id) {
                Some(node) => Replica {
                    url: node.url.clone(),
                    alive: is_alive(node, &self.settings, self.now_ms),
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
        }
    }
}

/// A committed file with all its chunks located.
pub async fn file_record(state: &AppState, file_id: &str) -> Result<FileRecord, ApiError> {
    let info = files::committed(state, file_id).await?;
    let chunks = state.store.chunks(file_id).await?;
    let directory = NodeDirectory::load(state).await?;
    Ok(FileRecord {
        info,
        chunks: chunks.into_iter().map(|c| directory.locate(c)).collect(),
    })
}

/// Puts ids on the request's span.
pub fn record_span(field: &str, value: &str) {
    tracing::Span::current().record(field, value);
}
