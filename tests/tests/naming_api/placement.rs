//! Chunk placement by free space: nodes without room beyond
//! `FREE_SPACE_RESERVE` (or that say they are full) are never chosen, and
//! a shortage says what is missing.

use std::collections::HashSet;

use anyhow::{Context, Result};
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::support::{Api, CAPACITY, KIB64, cluster, error_text, id};

const GIB: u64 = 1 << 30;

/// Registers node `node_id` reporting `free_bytes` free and `full`.
async fn register(api: &Api, node_id: &str, free_bytes: u64, full: bool) -> Result<()> {
    let body = json!({
        "node_id": node_id,
        "url": format!("http://{node_id}.invalid:5001"),
        "tcp_addr": format!("{node_id}.invalid:50051"),
        "capacity_bytes": CAPACITY, "free_bytes": free_bytes, "chunk_count": 0, "full": full,
    });
    api.expect(
        Method::POST,
        "/register_storage",
        Some(body),
        StatusCode::OK,
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn chunks_go_only_to_nodes_with_room() -> Result<()> {
    let cluster = cluster(&[("FREE_SPACE_RESERVE", "1GiB")]).await?;
    let api = Api::new(&cluster);
    register(&api, "roomy", 500 * GIB, false).await?;
    register(&api, "some", 20 * GIB, false).await?;
    register(&api, "little", 2 * GIB, false).await?;
    // Within the reserve but for 32 KiB: no room for a 64 KiB chunk.
    register(&api, "reserve", GIB + KIB64 / 2, false).await?;
    // Plenty free, but a write there failed for lack of space.
    register(&api, "said-full", 500 * GIB, true).await?;

    let info = api.init("placed.bin", 40 * KIB64, KIB64, 3).await?;
    let file_id = id(&info);
    let mut used = HashSet::new();
    for index in 0..40 {
        let allocation = api.allocate(&file_id, index).await?;
        for target in allocation["targets"].as_array().context("targets")? {
            used.insert(target["node_id"].as_str().unwrap_or_default().to_owned());
        }
    }
    let expected: HashSet<String> = ["roomy", "some", "little"].map(String::from).into();
    assert_eq!(used, expected);

    // `GET /nodes` shows which nodes are full.
    let nodes = api.get("/nodes").await?.1;
    let full: HashSet<&str> = nodes["nodes"]
        .as_array()
        .context("nodes")?
        .iter()
        .filter(|n| n["full"] == true)
        .filter_map(|n| n["node_id"].as_str())
        .collect();
    assert_eq!(full, HashSet::from(["reserve", "said-full"]));

    // Too few with room: 503 saying so.
    let (status, body) = api
        .post(
            &format!("/files/{file_id}/chunks"),
            json!({"index": 0, "exclude": ["little"]}),
        )
        .await?;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        error_text(&body)?,
        "need 3 storage nodes with room for a 64 KiB chunk, have 2 \
         (each node keeps FREE_SPACE_RESERVE = 1 GiB free)"
    );
    Ok(())
}
