//! Chain replication on write, end to end: `dfs create` sends each chunk
//! once, to the first target, and the storage servers copy it down the chain:
//! over their TCP protocol with `sendfile()`, or, a chunk of up to 1 MiB, in
//! a PUT to the next node while the first one commits.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use dfs_tests::{TestCluster, chunk_id, write_random_file};
use reqwest::StatusCode;
use serde_json::json;

const MIB: u64 = 1024 * 1024;

async fn cluster(nodes: usize) -> Result<TestCluster> {
    TestCluster::builder().storage_nodes(nodes).start().await
}

fn path_arg(path: &Path) -> &str {
    path.to_str().unwrap_or_default()
}

#[tokio::test]
async fn create_sends_each_chunk_once_and_the_chain_copies_it() -> Result<()> {
    let cluster = cluster(3).await?;
    // Each node advertises the peer port it actually bound (TCP_PORT=0).
    let nodes = cluster.get_json("/nodes").await?;
    for node in cluster.storage_nodes() {
        let listed = nodes["nodes"]
            .as_array()
            .context("nodes")?
            .iter()
            .find(|n| n["node_id"] == node.node_id())
            .context("node not listed")?;
        ensure!(
            listed["tcp_addr"] == node.peer_addr(),
            "{listed} vs {}",
            node.peer_addr()
        );
    }

    // Chunks above 1 MiB, the last one too: all pulled over the peer port.
    let size = 5 * MIB + 12_345;
    let local = cluster.scratch_dir().join("in");
    write_random_file(&local, size, 21)?;
    cluster
        .dfs_ok([
            "create",
            path_arg(&local),
            "chained",
            "--chunk-size",
            "2MiB",
            "--replication",
            "3",
        ])
        .await?;
    let chunks = cluster.check_replicas("chained", &local, 3).await?;
    ensure!(chunks == 3, "{chunks} chunks");

    // The client sent every byte once; the nodes sent the other two copies
    // to each other with sendfile().
    let put = cluster.metric_total("dfs_http_put_bytes_total").await?;
    ensure!(
        put == size,
        "{put} bytes PUT over HTTP for a {size}-byte file"
    );
    let received = cluster
        .metric_total("dfs_peer_received_bytes_total")
        .await?;
    ensure!(received == 2 * size, "{received} bytes received from peers");
    let sent = cluster
        .metric_total("dfs_peer_sendfile_bytes_total")
        .await?;
    ensure!(sent == 2 * size, "{sent} bytes sent with sendfile");
    let calls = cluster
        .metric_total("dfs_peer_sendfile_calls_total")
        .await?;
    ensure!(calls >= 2 * chunks as u64, "{calls} sendfile calls");
    ensure!(
        cluster
            .metric_total("dfs_peer_crc_mismatches_total")
            .await?
            == 0
    );
    Ok(())
}

#[tokio::test]
async fn small_chunks_go_down_the_chain_in_puts() -> Result<()> {
    let cluster = cluster(3).await?;
    // 1 MiB chunks and a last one of 12,345 bytes: each is passed on in a
    // PUT while it commits, none over the peer port.
    let size = 3 * MIB + 12_345;
    let local = cluster.scratch_dir().join("in");
    write_random_file(&local, size, 23)?;
    cluster
        .dfs_ok([
            "create",
            path_arg(&local),
            "small-chunks",
            "--chunk-size",
            "1MiB",
            "--replication",
            "3",
        ])
        .await?;
    let chunks = cluster.check_replicas("small-chunks", &local, 3).await?;
    ensure!(chunks == 4, "{chunks} chunks");

    // Every node took its copy in a PUT; the client sent one of them, the
    // first two nodes the others.
    let put = cluster.metric_total("dfs_http_put_bytes_total").await?;
    ensure!(put == 3 * size, "{put} bytes PUT for 3 copies of {size}");
    let mut pushed = 0;
    for i in 0..3 {
        pushed += cluster
            .storage_scrape(i)
            .await?
            .count("dfs_bytes_sent_total", &[("path", "http")])?;
    }
    // check_replicas read every copy back over HTTP too: 3 × size.
    ensure!(
        pushed == 2 * size + 3 * size,
        "{pushed} bytes sent over HTTP, {size} per copy pushed or read back"
    );
    let peer = cluster
        .metric_total("dfs_peer_received_bytes_total")
        .await?;
    ensure!(peer == 0, "{peer} bytes went over the peer port");
    Ok(())
}

#[tokio::test]
async fn chained_put_names_the_node_that_failed() -> Result<()> {
    let mut cluster = cluster(3).await?;
    let (a, b, c) = (
        cluster.storage(0).url().to_owned(),
        cluster.storage(1).url().to_owned(),
        cluster.storage(2).url().to_owned(),
    );
    let (b_id, c_id) = (
        cluster.storage(1).node_id().to_owned(),
        cluster.storage(2).node_id().to_owned(),
    );
    let http = reqwest::Client::new();
    // One chunk pushed down the chain in PUTs, one pulled over the peer port.
    let (small, large) = (vec![7u8; 200_000], vec![8u8; 1_500_000]);
    let bad = chunk_id("bad-1");
    let put = |id: &str, chain: String, body: &[u8]| {
        http.put(format!("{a}/chunks/{id}"))
            .header("x-dfs-crc32c", crc32c::crc32c(body).to_string())
            .header("x-dfs-replicate-to", chain)
            .body(body.to_vec())
            .send()
    };

    for (ok, data) in [(chunk_id("ok-1"), &small), (chunk_id("ok-2"), &large)] {
        let response = put(&ok, format!("{b_id}={b},{c_id}={c}"), data).await?;
        ensure!(
            response.status() == StatusCode::CREATED,
            "{}",
            response.status()
        );
        for node in [&b, &c] {
            let got = http.get(format!("{node}/chunks/{ok}")).send().await?;
            ensure!(got.bytes().await?[..] == data[..], "{node} lacks the chunk");
        }
    }

    // Malformed chains are refused before anything is stored (and before
    // the body is read: a small body, so the client is done sending first).
    let own_id = cluster.storage(0).node_id().to_owned();
    for chain in [
        b_id.clone(),
        format!("{b_id}={b},"),
        format!("{b_id}=ftp://x"),
        format!("{b_id}={b},{b_id}={c}"),
        format!("{own_id}={a}"),
    ] {
        let response = put(&bad, chain.clone(), b"tiny").await?;
        ensure!(
            response.status() == StatusCode::BAD_REQUEST,
            "{chain:?}: {}",
            response.status()
        );
    }
    let response = http.head(format!("{a}/chunks/{bad}")).send().await?;
    ensure!(response.status() == StatusCode::NOT_FOUND);

    // The last node of the chain is down: the 502 names it, in the header
    // and the body; the nodes above it keep their copies.
    cluster.stop_storage(2).await?;
    for (dead, data) in [(chunk_id("dead-1"), &small), (chunk_id("dead-2"), &large)] {
        let response = put(&dead, format!("{b_id}={b},{c_id}={c}"), data).await?;
        ensure!(
            response.status() == StatusCode::BAD_GATEWAY,
            "{}",
            response.status()
        );
        let header = response
            .headers()
            .get("x-dfs-failed-node")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        ensure!(
            header.as_deref() == Some(c_id.as_str()),
            "header {header:?}"
        );
        let body: serde_json::Value = response.json().await?;
        ensure!(body["failed_node"] == c_id.as_str(), "{body}");
        ensure!(
            body["error"].as_str().is_some_and(|e| e.contains(&c_id)),
            "{body}"
        );
        for node in [&a, &b] {
            let got = http.head(format!("{node}/chunks/{dead}")).send().await?;
            ensure!(got.status() == StatusCode::OK, "{node}: {}", got.status());
        }
    }
    Ok(())
}

#[tokio::test]
async fn create_retries_around_a_dead_chain_node() -> Result<()> {
    let mut cluster = cluster(4).await?;
    let dead = cluster.storage(3).node_id().to_owned();
    cluster.stop_storage(3).await?;
    // Keep the stopped node alive in the naming server's eyes (as if it had
    // just died), so allocations keep naming it while the upload runs.
    let keep_alive = async {
        let body =
            json!({"capacity_bytes": 1u64 << 40, "free_bytes": 1u64 << 40, "chunk_count": 0});
        for _ in 0..600 {
            let _ = cluster
                .post_json(&format!("/nodes/{dead}/heartbeat"), &body)
                .await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let size = 24 * 64 * 1024;
    let local = cluster.scratch_dir().join("in");
    write_random_file(&local, size, 22)?;
    let args = [
        "create",
        path_arg(&local),
        "detour",
        "--chunk-size",
        "64KiB",
        "--replication",
        "3",
    ];
    let upload = cluster.dfs_with_env(args, &[("DFS_LOG", "dfs_cli=info")]);
    let output = tokio::select! {
        output = upload => output?,
        () = keep_alive => anyhow::bail!("the upload took over two minutes"),
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    ensure!(output.status.success(), "create failed: {stderr}");
    // Half of the first attempts put the dead node below the first target
    // (2^-24 odds that none does): the storage servers named it.
    ensure!(
        stderr
            .lines()
            .any(|l| l.contains("chain write failed") && l.contains(&dead)),
        "no chain failure naming {dead}: {stderr}"
    );
    cluster.check_replicas("detour", &local, 3).await?;
    let record = cluster.get_json("/files?name=detour").await?;
    ensure!(
        !record.to_string().contains(&dead),
        "a chunk is recorded on the stopped node: {record}"
    );
    Ok(())
}
