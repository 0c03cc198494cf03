//! Storage-node registration, heartbeats, orphan reports and the node list.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use dfs_common::api::patterns::NodeId;
use dfs_common::api::{
    ChunkReport, ChunkReportReply, ErrorBody, HeartbeatRequest, HeartbeatResponse, NodeList,
    RegisterRequest, RegisterResponse,
};
use dfs_common::http::{AppJson, AppPath};

use super::error::ApiError;
use super::observe::record_span;
use crate::domain::{Naming, nodes};

/// Register a storage node, or update a known one (url, address, stats).
#[utoipa::path(post, path = "/register_storage", tag = "nodes",
    request_body = RegisterRequest,
    responses(
        (status = 200, body = RegisterResponse, description = "Registered; heartbeat at the given interval"),
        (status = 400, body = ErrorBody, description = "Bad node id, url or address"),
        (status = 401, body = ErrorBody),
        (status = 413, body = ErrorBody, description = "Body over 64 MiB"),
        (status = 503, body = ErrorBody, description = "Redis unreachable"),
    ),
    security(("bearer" = [])))]
pub async fn register_storage(
    State(naming): State<Naming>,
    AppJson(request): AppJson<RegisterRequest>,
) -> Result<Json<RegisterResponse>, ApiError> {
    record_span("node_id", &request.node_id);
    Ok(Json(nodes::register(&naming, request).await?))
}

/// Heartbeat of a registered node: updates its stats, acknowledges deleted
/// chunks and returns chunk ids to delete.
#[utoipa::path(post, path = "/nodes/{node_id}/heartbeat", tag = "nodes",
    params(("node_id" = NodeId, Path, description = "Id the node registered with")),
    request_body = HeartbeatRequest,
    responses(
        (status = 200, body = HeartbeatResponse),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "Unknown node: register again"),
        (status = 413, body = ErrorBody, description = "Body over 64 MiB"),
        (status = 503, body = ErrorBody, description = "Redis unreachable"),
    ),
    security(("bearer" = [])))]
pub async fn heartbeat(
    State(naming): State<Naming>,
    AppPath(node_id): AppPath<String>,
    AppJson(request): AppJson<HeartbeatRequest>,
) -> Result<Json<HeartbeatResponse>, ApiError> {
    record_span("node_id", &node_id);
    Ok(Json(nodes::heartbeat(&naming, &node_id, request).await?))
}

/// A node lists some chunk ids it holds; the reply names the ones no file
/// refers to, which the node may delete (orphans of uploads, deletes or
/// seeds that were cut short). Refused when the node registered with
/// another metadata store, so a wiped store never empties the nodes.
#[utoipa::path(post, path = "/nodes/{node_id}/chunk_report", tag = "nodes",
    params(("node_id" = NodeId, Path, description = "Id the node registered with")),
    request_body = ChunkReport,
    responses(
        (status = 200, body = ChunkReportReply),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The node knows another cluster id: this metadata store is not the one it registered with"),
        (status = 413, body = ErrorBody, description = "Too many chunk ids in one report, or a body over 64 MiB"),
        (status = 503, body = ErrorBody, description = "Redis unreachable"),
    ),
    security(("bearer" = [])))]
pub async fn report_chunks(
    State(naming): State<Naming>,
    AppPath(node_id): AppPath<String>,
    AppJson(report): AppJson<ChunkReport>,
) -> Result<Json<ChunkReportReply>, ApiError> {
    record_span("node_id", &node_id);
    Ok(Json(nodes::chunk_report(&naming, &node_id, report).await?))
}

/// Forget a dead storage node (decommissioned, or gone for good): it leaves
/// `GET /nodes` and its pending deletions are dropped. Replicas it held stay
/// listed, as dead. A live node is refused; a forgotten node that comes back
/// simply registers again.
#[utoipa::path(delete, path = "/nodes/{node_id}", tag = "nodes",
    params(("node_id" = NodeId, Path, description = "Id the node registered with")),
    responses(
        (status = 204, description = "Forgotten"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "Unknown node"),
        (status = 409, body = ErrorBody, description = "The node is alive"),
        (status = 503, body = ErrorBody, description = "Redis unreachable"),
    ),
    security(("bearer" = [])))]
pub async fn forget_node(
    State(naming): State<Naming>,
    AppPath(node_id): AppPath<String>,
) -> Result<StatusCode, ApiError> {
    record_span("node_id", &node_id);
    nodes::forget(&naming, &node_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every registered storage node, alive or not.
#[utoipa::path(get, path = "/nodes", tag = "nodes",
    responses(
        (status = 200, body = NodeList),
        (status = 401, body = ErrorBody), (status = 503, body = ErrorBody, description = "Redis unreachable"),
    ),
    security(("bearer" = [])))]
pub async fn list_nodes(State(naming): State<Naming>) -> Result<Json<NodeList>, ApiError> {
    Ok(Json(nodes::list(&naming).await?))
}
