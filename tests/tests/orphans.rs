//! Orphan sweeps: storage nodes list their chunks to the naming server and
//! delete the ones no file refers to, and never anything else, not even
//! after the metadata store was wiped.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use dfs_tests::{TestCluster, wait_until, write_random_file};
use reqwest::StatusCode;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

/// Stores `body` as chunk `id` on node `i` directly, as a cut-short upload
/// would have left it.
async fn put_chunk(cluster: &TestCluster, i: usize, id: &str, body: &[u8]) -> Result<()> {
    let url = format!("{}/chunks/{id}", cluster.storage(i).url());
    let response = reqwest::Client::new()
        .put(&url)
        .header("x-dfs-crc32c", crc32c::crc32c(body).to_string())
        .body(body.to_vec())
        .send()
        .await?;
    ensure!(response.status().is_success(), "PUT {url}: {response:?}");
    Ok(())
}

/// Waits until node `i` completes (or gives up, with `failed`) two more
/// sweeps than it had: at least one whole sweep then ran from start to end.
async fn two_more_sweeps(cluster: &TestCluster, i: usize, failed: bool) -> Result<()> {
    let metric = if failed {
        "dfs_orphan_sweeps_failed_total"
    } else {
        "dfs_orphan_sweeps_total"
    };
    let start = cluster.storage_metric(i, metric).await?;
    wait_until(WAIT, || async {
        cluster
            .storage_metric(i, metric)
            .await
            .is_ok_and(|n| n >= start + 2)
    })
    .await
    .with_context(|| format!("node {i}: {metric} stuck at {start}"))
}

#[tokio::test]
async fn sweeps_delete_orphans_and_nothing_else() -> Result<()> {
    let mut cluster = TestCluster::builder()
        .storage_nodes(3)
        .storage_env("ORPHAN_SWEEP_INTERVAL", "100ms")
        .storage_env("ORPHAN_GRACE", "0s")
        .start()
        .await?;
    let local = cluster.scratch_dir().join("kept.bin");
    write_random_file(&local, 200 * 1024, 5)?;
    let path = local.to_str().context("utf-8 path")?;
    cluster
        .dfs_ok(["create", path, "kept.bin", "--chunk-size", "64KiB"])
        .await?;
    let record = cluster.file_record("kept.bin").await?;
    let file_id = record["file_id"].as_str().context("file_id")?.to_owned();
    let pending = cluster
        .post_json("/files/init", &json!({"name": "pending.bin", "size": 10}))
        .await?;
    let pending_id = pending["file_id"].as_str().context("file_id")?;

    let orphans = [
        // a file that does not exist (deleted, or expired and purged)
        "0123456789abcdef-0123456789abcdef-0-00c0ffee".to_owned(),
        // a chunk of the committed file that a retry replaced
        format!("{file_id}-0-00000000"),
        // an index the committed file does not have
        format!("{file_id}-99-00000000"),
    ];
    let kept = [
        // an upload still in progress
        format!("{pending_id}-0-00000000"),
    ];
    // Not an id the naming server makes: never its to judge. A node
    // refuses to store one, but older versions did not.
    let foreign = "not-a-dfs-chunk".to_owned();
    for id in orphans.iter().chain(&kept) {
        put_chunk(&cluster, 0, id, b"some bytes").await?;
    }
    cluster.storage(0).plant_chunk(&foreign, b"some bytes")?;
    let kept: Vec<String> = kept.into_iter().chain([foreign]).collect();

    wait_until(WAIT, || async {
        orphans
            .iter()
            .all(|id| cluster.storage(0).chunk_path(id).is_none())
    })
    .await
    .context("the orphans were not deleted")?;
    // Whole sweeps ran on every node since, and deleted nothing else.
    for i in 0..3 {
        two_more_sweeps(&cluster, i, false).await?;
    }
    ensure!(
        cluster
            .storage_metric(0, "dfs_orphan_chunks_deleted_total")
            .await?
            == 3
    );
    for i in [1, 2] {
        ensure!(
            cluster
                .storage_metric(i, "dfs_orphan_chunks_deleted_total")
                .await?
                == 0
        );
    }
    for id in &kept {
        ensure!(cluster.storage(0).chunk_path(id).is_some(), "{id} deleted");
    }
    ensure!(cluster.check_replicas("kept.bin", &local, 3).await? == 4);

    // A wiped metadata store calls every chunk unknown: the nodes must
    // refuse to sweep rather than delete them.
    let flushed = tokio::process::Command::new("redis-cli")
        .arg("-s")
        .arg(cluster.redis.single()?.socket())
        .arg("FLUSHALL")
        .output()
        .await
        .context("redis-cli")?;
    ensure!(flushed.status.success(), "FLUSHALL: {flushed:?}");
    for i in 0..3 {
        two_more_sweeps(&cluster, i, true).await?;
    }
    for chunk in record["chunks"].as_array().context("chunks")? {
        let id = chunk["chunk_id"].as_str().context("chunk_id")?;
        for i in 0..3 {
            ensure!(
                cluster.storage(i).chunk_path(id).is_some(),
                "{id} deleted from node {i} after the store was wiped"
            );
        }
    }
    for i in 0..3 {
        let deleted = cluster
            .storage_metric(i, "dfs_orphan_chunks_deleted_total")
            .await?;
        ensure!(deleted == if i == 0 { 3 } else { 0 }, "node {i}: {deleted}");
    }
    Ok(())
}

#[tokio::test]
async fn chunk_reports_are_checked() -> Result<()> {
    let cluster = TestCluster::builder().storage_nodes(1).start().await?;
    let node_id = cluster.storage(0).node_id().to_owned();
    // The node keeps its cluster id once the registration reply reached it.
    let kept = cluster.storage(0).data_dir().join("cluster_id");
    wait_until(WAIT, || async { kept.exists() }).await?;
    let cluster_id = std::fs::read_to_string(&kept)?;
    let cluster_id = cluster_id.trim();
    let http = reqwest::Client::new();
    let report = |node: &str, body: serde_json::Value| {
        http.post(format!(
            "{}/nodes/{node}/chunk_report",
            cluster.naming_url()
        ))
        .json(&body)
        .send()
    };
    let ok = report(
        &node_id,
        json!({"cluster_id": cluster_id, "chunk_ids": ["0123456789abcdef-0123456789abcdef-0-00c0ffee", "x"]}),
    )
    .await?;
    ensure!(ok.status() == StatusCode::OK);
    let body: serde_json::Value = ok.json().await?;
    ensure!(
        body == json!({"orphans": ["0123456789abcdef-0123456789abcdef-0-00c0ffee"]}),
        "{body}"
    );

    let too_many: Vec<String> = (0..1001).map(|i| format!("c{i}")).collect();
    let cases = [
        (
            node_id.as_str(),
            json!({"cluster_id": "another", "chunk_ids": []}),
            StatusCode::CONFLICT,
            "wiped or replaced",
        ),
        (
            node_id.as_str(),
            json!({"cluster_id": cluster_id, "chunk_ids": too_many}),
            StatusCode::PAYLOAD_TOO_LARGE,
            "at most 1000",
        ),
        (
            "bad..id",
            json!({"cluster_id": cluster_id, "chunk_ids": []}),
            StatusCode::BAD_REQUEST,
            "invalid node id",
        ),
        (
            node_id.as_str(),
            json!({"chunk_ids": []}),
            StatusCode::BAD_REQUEST,
            "cluster_id",
        ),
    ];
    for (node, body, status, message) in cases {
        let response = report(node, body.clone()).await?;
        ensure!(response.status() == status, "{body}: {response:?}");
        let error: serde_json::Value = response.json().await?;
        let text = error["error"].as_str().context("error")?;
        ensure!(text.contains(message), "{body}: {text}");
    }
    Ok(())
}
