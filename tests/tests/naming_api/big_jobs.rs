//! A thousand-node distribution handed out by the real naming server to
//! real HTTP listeners standing in for the storage nodes (one listener, a
//! path per node: `http://127.0.0.1:PORT/n17` is node n17's base URL),
//! then a round of the progress reports those nodes would send each second.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::post;
use futures::{StreamExt, TryStreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::support::{Api, CAPACITY, KIB64, REGISTERED_FREE, cluster};

const NODES: usize = 1000;

/// What each stand-in node was sent: its assignment's upstream list length
/// and size in bytes, by the node id in the URL path.
type Received = Arc<Mutex<HashMap<String, (String, usize, usize)>>>;

async fn take_assignment(
    State(received): State<Received>,
    Path(node): Path<String>,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    let Ok(assignment) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "not JSON"})));
    };
    let upstream = assignment["upstream"].as_array().map_or(0, Vec::len);
    let node_id = assignment["node_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if let Ok(mut received) = received.lock() {
        received.insert(node, (node_id, upstream, body.len()));
    }
    let ack = json!({"job_id": assignment["job_id"], "started": true});
    (StatusCode::ACCEPTED, Json(ack))
}

#[tokio::test]
async fn a_thousand_node_job_is_handed_out_with_short_upstream_lists() -> Result<()> {
    let cluster = cluster(&[]).await?;
    let api = Api::new(&cluster);
    let received = Received::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let app = Router::new()
        .route("/{node}/distributions", post(take_assignment))
        .with_state(Arc::clone(&received));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let api = &api;
    futures::stream::iter(0..NODES)
        .map(|i| async move {
            let body = json!({
                "node_id": format!("n{i}"),
                "url": format!("http://127.0.0.1:{port}/n{i}"),
                "tcp_addr": format!("127.0.0.1:{}", 20_000 + i),
                "capacity_bytes": CAPACITY, "free_bytes": REGISTERED_FREE, "chunk_count": 0,
            });
            api.expect(
                Method::POST,
                "/register_storage",
                Some(body),
                StatusCode::OK,
            )
            .await
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await?;
    // 16 chunks, each on one node: no node holds it all, all are in the chain.
    api.upload("big-job", 16 * KIB64, 1).await?;

    let started = Instant::now();
    let (status, job) = api
        .post("/distributions", json!({"name": "big-job"}))
        .await?;
    let took = started.elapsed();
    ensure!(status == StatusCode::CREATED, "{status}: {job}");
    let nodes = job["nodes"].as_array().context("the job's nodes")?;
    ensure!(nodes.len() == NODES, "{} nodes in the job", nodes.len());
    ensure!(
        nodes.iter().all(|n| n["state"] != "failed"),
        "a hand-out failed: {job}"
    );

    {
        let received = received.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        ensure!(
            received.len() == NODES,
            "{} nodes got an assignment",
            received.len()
        );
        for (path, (node_id, _, _)) in received.iter() {
            ensure!(path == node_id, "{path} was sent {node_id}'s assignment");
        }
        let longest = received.values().map(|r| r.1).max().unwrap_or(0);
        ensure!(
            longest == naming_server::domain::distribution::plan::UPSTREAM_LIST,
            "the longest upstream list has {longest} nodes"
        );
        let bytes: usize = received.values().map(|r| r.2).sum();
        eprintln!(
            "{NODES}-node job handed out in {:.2} s: {bytes} bytes of assignments, {} at most",
            took.as_secs_f64(),
            received.values().map(|r| r.2).max().unwrap_or(0)
        );
    }

    // A round of progress reports, one from every node, as they come each
    // second while a job runs: each is taken, and the job shows them.
    let job_id = job["job_id"].as_str().context("job_id")?;
    let path = format!("/distributions/{job_id}/progress");
    let path = &path;
    let started = Instant::now();
    futures::stream::iter(0..NODES)
        .map(|i| async move {
            let report = json!({
                "node_id": format!("n{i}"), "state": "running",
                "chunks_done": 1, "bytes_done": KIB64, "elapsed_ms": 1000,
            });
            api.expect(Method::POST, path, Some(report), StatusCode::OK)
                .await
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await?;
    let took = started.elapsed();
    let (status, job) = api.get(&format!("/distributions/{job_id}")).await?;
    ensure!(status == StatusCode::OK, "{status}: {job}");
    ensure!(job["bytes_done"] == NODES as u64 * KIB64, "{job}");
    eprintln!(
        "a round of {NODES} progress reports taken in {:.2} s ({:.0} a second)",
        took.as_secs_f64(),
        NODES as f64 / took.as_secs_f64()
    );
    Ok(())
}
