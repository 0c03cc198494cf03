//! A storage node whose disk fills up, for real: every node's data dir is
//! a small tmpfs of its own, so the kernel answers ENOSPC. The full node
//! refuses writes with 507, says it is full (`/health`, `dfs nodes`), and
//! no further chunk is placed on it, while files keep being written to the
//! other nodes and read back intact.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use dfs_common::api::CRC32C_HEADER;
use dfs_common::chain::{FAILED_NODE_HEADER, REPLICATE_TO_HEADER};
use dfs_tests::{TestCluster, chunk_id, same_file, wait_until, write_random_file};
use reqwest::StatusCode;
use serde_json::Value;

const MIB: u64 = 1 << 20;
/// Each node's disk.
const DISK: u64 = 40 * MIB;

/// Stores `len` pseudo-random bytes as chunk `chunk_id` on the node at
/// `url` (passing it on to `chain`, `node_id=url` pairs, when given);
/// returns the status, the failed-node header and the body.
async fn put(
    url: &str,
    chunk_id: &str,
    len: u64,
    seed: u64,
    chain: Option<&str>,
) -> Result<(StatusCode, Option<String>, Value)> {
    use rand::{RngCore, SeedableRng};
    let mut bytes = vec![0u8; usize::try_from(len)?];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut bytes);
    let mut request = reqwest::Client::new()
        .put(format!("{url}/chunks/{chunk_id}"))
        .header(CRC32C_HEADER, crc32c::crc32c(&bytes).to_string());
    if let Some(chain) = chain {
        request = request.header(REPLICATE_TO_HEADER, chain);
    }
    let response = request.body(bytes).send().await?;
    let status = response.status();
    let failed = response
        .headers()
        .get(FAILED_NODE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok((status, failed, response.json().await.unwrap_or_default()))
}

/// Node `node_id` as `GET /nodes` lists it.
async fn listed(cluster: &TestCluster, node_id: &str) -> Result<Value> {
    let nodes = cluster.get_json("/nodes").await?;
    nodes["nodes"]
        .as_array()
        .and_then(|nodes| nodes.iter().find(|n| n["node_id"] == node_id))
        .cloned()
        .with_context(|| format!("{node_id} not in {nodes}"))
}

#[tokio::test]
async fn a_full_node_says_so_and_gets_no_more_chunks() -> Result<()> {
    let cluster = TestCluster::builder()
        .storage_nodes(4)
        .storage_tmpfs(DISK)
        // The disks are tiny: no reserve, so they fill to the last byte.
        .naming_env("FREE_SPACE_RESERVE", "0")
        .start()
        .await?;
    let (full, next) = (cluster.storage(0), cluster.storage(1));
    let full_id = full.node_id().to_owned();

    // Fill node 0 with 1 MiB chunks until its disk says no.
    let mut refused = None;
    let mut stored = 0;
    for i in 0..2 * DISK / MIB {
        match put(full.url(), &chunk_id(&format!("fill-{i}")), MIB, i, None).await? {
            (StatusCode::CREATED, ..) => stored += 1,
            (StatusCode::INSUFFICIENT_STORAGE, _, body) => {
                refused = Some(body);
                break;
            }
            (status, _, body) => bail!("PUT fill-{i}: {status} {body}"),
        }
    }
    let refused = refused.context("the disk never filled up")?;
    ensure!(stored > 20, "only {stored} MiB fit on a {DISK}-byte disk");
    let message = refused["error"].as_str().unwrap_or_default();
    ensure!(
        message.contains("disk is full") && message.contains("no space left on device"),
        "507 body: {refused}"
    );
    ensure!(
        full.temp_files().is_empty(),
        "partial upload left behind: {:?}",
        full.temp_files()
    );

    // It says so: to the naming server (at once), on /health, in `dfs nodes`.
    wait_until(Duration::from_secs(10), || async {
        listed(&cluster, &full_id)
            .await
            .is_ok_and(|n| n["full"] == true)
    })
    .await
    .context("the naming server never heard that the node is full")?;
    let health: Value = reqwest::get(format!("{}/health", full.url()))
        .await?
        .error_for_status()?
        .json()
        .await?;
    ensure!(health["status"] == "full", "{health}");
    let nodes = cluster.dfs_ok(["nodes"]).await?;
    let line = nodes.lines().find(|l| l.starts_with(&full_id));
    ensure!(
        line.is_some_and(|l| l.contains("alive (full)")),
        "dfs nodes: {nodes}"
    );

    // A chained write that reaches it (a 1 MiB chunk: pushed in a PUT)
    // fails, naming it.
    let chain = format!("{full_id}={}", full.url());
    let (status, failed, body) =
        put(next.url(), &chunk_id("chained"), MIB, 99, Some(&chain)).await?;
    ensure!(status == StatusCode::BAD_GATEWAY, "{status} {body}");
    ensure!(failed.as_deref() == Some(full_id.as_str()), "{failed:?}");
    ensure!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("507") && e.contains("disk is full")),
        "{body}"
    );

    // One chunk deleted frees 1 MiB: more than the chunks below need, but
    // not enough to take chunks again. It stays full.
    let deleted = reqwest::Client::new()
        .delete(format!("{}/chunks/{}", full.url(), chunk_id("fill-0")))
        .send()
        .await?;
    ensure!(deleted.status() == StatusCode::NO_CONTENT);
    wait_until(Duration::from_secs(10), || async {
        listed(&cluster, &full_id)
            .await
            .is_ok_and(|n| n["free_bytes"].as_u64() >= Some(MIB))
    })
    .await
    .context("the freed space never showed")?;

    // Files keep going to the three others, without one attempt at node 0.
    let writes = "dfs_chunk_writes_total";
    let before = cluster.storage_metric(0, writes).await?;
    for n in 0..3 {
        let local = cluster.scratch_dir().join(format!("file{n}"));
        write_random_file(&local, 4 * MIB + 1234, n)?;
        let name = format!("kept/{n}");
        let output = cluster
            .dfs_with_env(
                [
                    "create",
                    local.to_str().unwrap_or_default(),
                    &name,
                    "--chunk-size",
                    "256KiB",
                ],
                &[("DFS_LOG", "dfs_cli=info,dfs_client=warn")],
            )
            .await?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        ensure!(output.status.success(), "create {name}: {stderr}");
        ensure!(
            !stderr.contains("failed"),
            "create {name} had to retry: {stderr}"
        );
        ensure!(cluster.check_replicas(&name, &local, 3).await? == 17);
        let record = cluster.file_record(&name).await?;
        ensure!(
            !record.to_string().contains(&full_id),
            "a chunk on the full node: {record}"
        );
        let back = cluster.scratch_dir().join(format!("back{n}"));
        cluster
            .dfs_ok(["read", &name, back.to_str().unwrap_or_default()])
            .await?;
        same_file(&local, &back)?;
    }
    ensure!(
        cluster.storage_metric(0, writes).await? == before,
        "chunk writes reached the full node"
    );
    ensure!(listed(&cluster, &full_id).await?["full"] == true);

    // Its chunks are still there to read.
    let chunk = reqwest::get(format!("{}/chunks/{}", full.url(), chunk_id("fill-1"))).await?;
    ensure!(chunk.status() == StatusCode::OK);
    ensure!(chunk.bytes().await?.len() as u64 == MIB);
    Ok(())
}
