//! Local-first reads: `dfs read` on a host that runs a storage node
//! (`DFS_LOCAL_DATA_DIR`) takes that node's chunks from its files and asks
//! no node over HTTP for them; a bad local copy is skipped and reported;
//! readers without a local node spread over the live replicas. What the
//! nodes served is read from their `dfs_http_chunk_gets_total` counters.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use dfs_tests::{TestCluster, same_file};

const KIB64: u64 = 64 * 1024;
const GETS: &str = "dfs_http_chunk_gets_total";

/// Three nodes holding `chunks` chunks of 64 KiB (the last one short) of a
/// file stored as `name` with three replicas: every node has every chunk.
async fn cluster_with_file(name: &str, chunks: u64) -> Result<(TestCluster, PathBuf)> {
    let cluster = TestCluster::builder().storage_nodes(3).start().await?;
    let local = cluster
        .create_random(name, (chunks - 1) * KIB64 + 777, 3)
        .await?;
    Ok((cluster, local))
}

/// Chunk GETs each node has answered so far.
async fn gets(cluster: &TestCluster) -> Result<Vec<u64>> {
    let mut counts = Vec::new();
    for i in 0..cluster.storage_nodes().len() {
        counts.push(cluster.storage_metric(i, GETS).await?);
    }
    Ok(counts)
}

/// `dfs read name -> copy` with `DFS_LOCAL_DATA_DIR` set to `data_dir`
/// when given; fails unless it succeeds.
async fn read(
    cluster: &TestCluster,
    name: &str,
    copy: &Path,
    data_dir: Option<&Path>,
) -> Result<()> {
    let dir = data_dir.map(|d| d.to_string_lossy().into_owned());
    let env: Vec<(&str, &str)> = dir
        .as_deref()
        .map(|d| vec![("DFS_LOCAL_DATA_DIR", d)])
        .unwrap_or_default();
    let copy = copy.to_str().context("utf-8 path")?;
    let output = cluster.dfs_with_env(["read", name, copy], &env).await?;
    ensure!(
        output.status.success(),
        "dfs read failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

/// The chunk ids of `name`, in order.
async fn chunk_ids(cluster: &TestCluster, name: &str) -> Result<Vec<String>> {
    let record = cluster.file_record(name).await?;
    record["chunks"]
        .as_array()
        .context("chunks")?
        .iter()
        .map(|c| Ok(c["chunk_id"].as_str().context("chunk_id")?.to_owned()))
        .collect()
}

#[tokio::test]
async fn a_read_on_a_node_that_holds_the_file_asks_no_node_for_chunks() -> Result<()> {
    let (cluster, local) = cluster_with_file("here.bin", 5).await?;
    let before = gets(&cluster).await?;
    for i in 0..3 {
        let copy = cluster.scratch_dir().join(format!("copy{i}"));
        read(
            &cluster,
            "here.bin",
            &copy,
            Some(cluster.storage(i).data_dir()),
        )
        .await?;
        same_file(&local, &copy)?;
    }
    let after = gets(&cluster).await?;
    ensure!(
        after == before,
        "chunk GETs went from {before:?} to {after:?} during local reads"
    );
    Ok(())
}

#[tokio::test]
async fn a_bad_local_copy_is_skipped_read_elsewhere_and_reported() -> Result<()> {
    let (cluster, local) = cluster_with_file("bad.bin", 4).await?;
    let ids = chunk_ids(&cluster, "bad.bin").await?;
    let node = cluster.storage(1);
    // Chunk 0 rots on node 1; chunk 1's file is gone from it.
    let rotten = node.chunk_path(&ids[0]).context("chunk 0 on node 1")?;
    let mut bytes = std::fs::read(&rotten)?;
    bytes[100] ^= 0x5a;
    std::fs::write(&rotten, bytes)?;
    std::fs::remove_file(node.chunk_path(&ids[1]).context("chunk 1 on node 1")?)?;

    let reports = cluster.naming_metric("dfs_suspect_reports_total").await?;
    let before = gets(&cluster).await?;
    let copy = cluster.scratch_dir().join("copy");
    read(&cluster, "bad.bin", &copy, Some(node.data_dir())).await?;
    same_file(&local, &copy)?;
    let after = gets(&cluster).await?;
    let fetched: u64 = after.iter().zip(&before).map(|(a, b)| a - b).sum();
    ensure!(
        fetched == 2 && after[1] == before[1],
        "expected the two bad chunks fetched once each from the other nodes: \
         GETs went from {before:?} to {after:?}"
    );
    let reported = cluster.naming_metric("dfs_suspect_reports_total").await? - reports;
    ensure!(reported == 2, "{reported} bad copies reported, expected 2");
    Ok(())
}

#[tokio::test]
async fn readers_without_a_local_node_spread_over_the_replicas() -> Result<()> {
    let (cluster, local) = cluster_with_file("spread.bin", 6).await?;
    let before = gets(&cluster).await?;
    let copy = cluster.scratch_dir().join("copy");
    read(&cluster, "spread.bin", &copy, None).await?;
    same_file(&local, &copy)?;
    let after = gets(&cluster).await?;
    let served: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    // Each reader starts at its own place and moves one replica on per chunk.
    ensure!(
        served == [2, 2, 2],
        "6 chunks of 3 replicas were served {served:?} by the 3 nodes"
    );
    Ok(())
}

#[tokio::test]
async fn a_local_data_dir_without_a_node_is_a_clear_error() -> Result<()> {
    let (cluster, _) = cluster_with_file("none.bin", 1).await?;
    let empty = cluster.scratch_dir().join("not-a-node");
    std::fs::create_dir_all(&empty)?;
    let dir = empty.to_string_lossy().into_owned();
    let copy = cluster.scratch_dir().join("copy");
    let output = cluster
        .dfs_with_env(
            ["read", "none.bin", copy.to_str().context("utf-8 path")?],
            &[("DFS_LOCAL_DATA_DIR", &dir)],
        )
        .await?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    ensure!(
        !output.status.success() && stderr.lines().count() == 1 && stderr.contains("node id"),
        "expected one error line about the node id, got {:?}: {stderr}",
        output.status
    );
    ensure!(!copy.exists(), "a file appeared at {}", copy.display());
    Ok(())
}
