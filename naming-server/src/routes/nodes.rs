//! Storage-node registration, heartbeats and the node list.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use dfs_common::api::{
    ChunkReport, ChunkReportReply, ErrorBody, HeartbeatRequest, HeartbeatResponse,
    MAX_CHUNK_REPORT, NodeInfo, NodeList, RegisterRequest, RegisterResponse,
};
use dfs_common::validate;

use super::{alive_since, is_alive, record_span};
use crate::error::{ApiError, AppJson, AppPath};
use crate::store::{NodeRecord, StoreError};
use crate::{AppState, now_ms};

/// Chunk ids handed to a node per heartbeat at most.
const MAX_DELETES_PER_HEARTBEAT: usize = 1000;

fn check_node_id(node_id: &str) -> Result<(), ApiError> {
    validate::chunk_id(node_id).map_err(|e| {
        ApiError::BadRequest(format!(
            "invalid node id: {}",
            e.to_string().replace("chunk id ", "")
        ))
    })
}

/// Register a storage node, or update a known one (url, address, stats).
#[utoipa::path(post, path = "/register_storage", tag = "nodes",
    request_body = RegisterRequest,
    responses(
        (status = 200, body = RegisterResponse, description = "Registered; heartbeat at the given interval"),
        (status = 400, body = ErrorBody, description = "Bad node id, url or address"),
        (status = 401, body = ErrorBody), (status = 503, body = ErrorBody, description = "Redis unreachable"),
    ),
    security(("bearer" = [])))]
pub async fn register(
    State(state): State<AppState>,
    AppJson(request): AppJson<RegisterRequest>,
) -> Result<Json<RegisterResponse>, ApiError> {
    record_span("node_id", &request.node_id);
    check_node_id(&request.node_id)?;
    if !(request.url.starts_with("http://") || request.url.starts_with("https://")) {
        return Err(ApiError::BadRequest(format!(
            "url must start with http:// or https://, got {:?}",
            request.url
        )));
    }
    if request.tcp_addr.is_empty() {
        return Err(ApiError::BadRequest("tcp_addr is empty".into()));
    }
    let node = NodeRecord {
        node_id: request.node_id.clone(),
        url: request.url.trim_end_matches('/').to_owned(),
        tcp_addr: request.tcp_addr,
        last_heartbeat_ms: now_ms(),
        stats: request.stats,
    };
    state.store.register_node(node).await?;
    let cluster_id = state.store.cluster_id().await?;
    tracing::info!(url = %request.url, "storage node registered");
    let interval = state.settings.heartbeat_timeout / 3;
    Ok(Json(RegisterResponse {
        node_id: request.node_id,
        heartbeat_interval_ms: u64::try_from(interval.as_millis())
            .unwrap_or(u64::MAX)
            .max(1),
        cluster_id,
    }))
}

/// Heartbeat of a registered node: updates its stats, acknowledges deleted
/// chunks and returns chunk ids to delete.
#[utoipa::path(post, path = "/nodes/{node_id}/heartbeat", tag = "nodes",
    params(("node_id" = String, Path, description = "Id the node registered with")),
    request_body = HeartbeatRequest,
    responses(
        (status = 200, body = HeartbeatResponse),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "Unknown node: register again"),
        (status = 503, body = ErrorBody, description = "Redis unreachable"),
    ),
    security(("bearer" = [])))]
pub async fn heartbeat(
    State(state): State<AppState>,
    AppPath(node_id): AppPath<String>,
    AppJson(request): AppJson<HeartbeatRequest>,
) -> Result<Json<HeartbeatResponse>, ApiError> {
    record_span("node_id", &node_id);
    check_node_id(&node_id)?;
    let delete = state
        .store
        .heartbeat(
            &node_id,
            request.stats,
            &request.deleted,
            now_ms(),
            MAX_DELETES_PER_HEARTBEAT,
        )
        .await?;
    Ok(Json(HeartbeatResponse { delete }))
}

/// A node lists some chunk ids it holds; the reply names the ones no file
/// refers to, which the node may delete (orphans of uploads, deletes or
/// seeds that were cut short). Refused when the node registered with
/// another metadata store, so a wiped store never empties the nodes.
#[utoipa::path(post, path = "/nodes/{node_id}/chunk_report", tag = "nodes",
    params(("node_id" = String, Path, description = "Id the node registered with")),
    request_body = ChunkReport,
    responses(
        (status = 200, body = ChunkReportReply),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The node knows another cluster id: this metadata store is not the one it registered with"),
        (status = 413, body = ErrorBody, description = "Too many chunk ids in one report"),
        (status = 503, body = ErrorBody, description = "Redis unreachable"),
    ),
    security(("bearer" = [])))]
pub async fn chunk_report(
    State(state): State<AppState>,
    AppPath(node_id): AppPath<String>,
    AppJson(report): AppJson<ChunkReport>,
) -> Result<Json<ChunkReportReply>, ApiError> {
    record_span("node_id", &node_id);
    check_node_id(&node_id)?;
    if report.chunk_ids.len() > MAX_CHUNK_REPORT {
        return Err(ApiError::TooLarge(format!(
            "{} chunk ids in one report; at most {MAX_CHUNK_REPORT}",
            report.chunk_ids.len()
        )));
    }
    let orphans = match state
        .store
        .orphans(&report.cluster_id, &report.chunk_ids)
        .await
    {
        Err(StoreError::Conflict(message)) => {
            tracing::warn!(%message, "chunk report refused");
            return Err(ApiError::Conflict(format!("node {node_id}: {message}")));
        }
        result => result?,
    };
    if !orphans.is_empty() {
        tracing::info!(count = orphans.len(), "orphan chunks reported");
    }
    Ok(Json(ChunkReportReply { orphans }))
}

/// Forget a dead storage node (decommissioned, or gone for good): it leaves
/// `GET /nodes` and its pending deletions are dropped. Replicas it held stay
/// listed, as dead. A live node is refused; a forgotten node that comes back
/// simply registers again.
#[utoipa::path(delete, path = "/nodes/{node_id}", tag = "nodes",
    params(("node_id" = String, Path, description = "Id the node registered with")),
    responses(
        (status = 204, description = "Forgotten"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "Unknown node"),
        (status = 409, body = ErrorBody, description = "The node is alive"),
        (status = 503, body = ErrorBody, description = "Redis unreachable"),
    ),
    security(("bearer" = [])))]
pub async fn forget(
    State(state): State<AppState>,
    AppPath(node_id): AppPath<String>,
) -> Result<StatusCode, ApiError> {
    record_span("node_id", &node_id);
    check_node_id(&node_id)?;
    let alive_since = alive_since(&state.settings, now_ms());
    state.store.forget_node(&node_id, alive_since).await?;
    tracing::info!("storage node forgotten");
    Ok(StatusCode::NO_CONTENT)
}

/// Every registered storage node, alive or not.
#[utoipa::path(get, path = "/nodes", tag = "nodes",
    responses(
        (status = 200, body = NodeList),
        (status = 401, body = ErrorBody), (status = 503, body = ErrorBody, description = "Redis unreachable"),
    ),
    security(("bearer" = [])))]
pub async fn list(State(state): State<AppState>) -> Result<Json<NodeList>, ApiError> {
    let now = now_ms();
    let nodes = state.store.nodes().await?;
    let nodes = nodes
        .into_iter()
        .map(|node| NodeInfo {
            alive: is_alive(&node, &state.settings, now),
            node_id: node.node_id,
            url: node.url,
            tcp_addr: node.tcp_addr,
            last_heartbeat_ms: node.last_heartbeat_ms,
            stats: node.stats,
        })
        .collect();
    Ok(Json(NodeList { nodes }))
}
