//! Corruption and loss on disk, done for real to chunk files: found by a
//! read and by the scrubber, quarantined, reported, repaired from a good
//! copy; and replicas above the replication factor trimmed when a lost
//! node comes back. Every test checks the bytes afterwards.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use dfs_tests::{TestCluster, wait_until, write_random_file};
use serde_json::Value;

const KIB64: u64 = 64 * 1024;
const CHUNKS: u64 = 4;
/// How long detection plus repair may take (heartbeats every ~0.7 s).
const HEALING: Duration = Duration::from_secs(30);

/// Writes a local file of `CHUNKS` 64 KiB chunks and stores it as `name`.
async fn create_file(cluster: &TestCluster, name: &str) -> Result<PathBuf> {
    let local = cluster.scratch_dir().join(name);
    write_random_file(&local, CHUNKS * KIB64, 7)?;
    let path = local.to_str().context("utf-8 path")?;
    cluster
        .dfs_ok(["create", path, name, "--chunk-size", "64KiB"])
        .await?;
    Ok(local)
}

/// `dfs read`s `name` and checks it is `local`, byte for byte.
async fn read_back(cluster: &TestCluster, name: &str, local: &Path) -> Result<()> {
    let copy = cluster.scratch_dir().join(format!("{name}.copy"));
    let path = copy.to_str().context("utf-8 path")?;
    cluster.dfs_ok(["read", name, path]).await?;
    ensure!(
        std::fs::read(&copy)? == std::fs::read(local)?,
        "{name} read back other bytes"
    );
    Ok(())
}

/// Each chunk of file `name`: its id and its record.
async fn chunks(cluster: &TestCluster, name: &str) -> Result<Vec<(String, Value)>> {
    let record = cluster.file_record(name).await?;
    record["chunks"]
        .as_array()
        .context("chunks")?
        .iter()
        .map(|c| Ok((c["chunk_id"].as_str().context("id")?.to_owned(), c.clone())))
        .collect()
}

fn node_ids(list: &Value) -> Vec<&str> {
    list.as_array()
        .map(|items| items.iter().filter_map(|r| r["node_id"].as_str()).collect())
        .unwrap_or_default()
}

/// Flips one byte in the middle of node `i`'s copy of `chunk_id`.
fn rot(cluster: &TestCluster, i: usize, chunk_id: &str) -> Result<()> {
    let path = cluster
        .storage(i)
        .chunk_path(chunk_id)
        .with_context(|| format!("node {i} holds no {chunk_id}"))?;
    let mut bytes = std::fs::read(&path)?;
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x5a;
    std::fs::write(&path, bytes)?;
    Ok(())
}

/// Whether node `i` still has `chunk_id` anywhere on disk (stored or in
/// quarantine).
fn on_disk(cluster: &TestCluster, i: usize, chunk_id: &str) -> bool {
    let node = cluster.storage(i);
    node.chunk_path(chunk_id).is_some()
        || node
            .data_dir()
            .join("quarantine")
            .join(format!("{chunk_id}.meta"))
            .exists()
}

/// Waits until every chunk of `name` has exactly three live replicas, none
/// on `avoid` (node id, chunk id) pairs, no bad copies listed, and every
/// replica serves the right bytes.
async fn wait_healed(
    cluster: &TestCluster,
    name: &str,
    local: &Path,
    avoid: &[(String, String)],
) -> Result<()> {
    let healed = wait_until(HEALING, || async {
        let Ok(chunks) = chunks(cluster, name).await else {
            return false;
        };
        let settled = chunks.iter().all(|(id, chunk)| {
            let replicas = node_ids(&chunk["replicas"]);
            let alive = chunk["replicas"]
                .as_array()
                .is_some_and(|r| r.iter().all(|r| r["alive"] == true));
            replicas.len() == 3
                && alive
                && chunk.get("bad_replicas").is_none()
                && !avoid
                    .iter()
                    .any(|(node, chunk)| chunk == id && replicas.contains(&node.as_str()))
        });
        settled && cluster.check_replicas(name, local, 3).await.is_ok()
    })
    .await;
    if healed.is_err() {
        let record = cluster.file_record(name).await?;
        anyhow::bail!("{name} never healed: {record}");
    }
    Ok(())
}

#[tokio::test]
async fn a_read_that_meets_rot_gets_it_replaced_and_two_losses_later_the_file_reads() -> Result<()>
{
    // Every chunk on the same three nodes, then a fourth to repair onto.
    let mut cluster = TestCluster::builder().storage_nodes(3).start().await?;
    let local = create_file(&cluster, "rot.bin").await?;
    let spare = cluster.add_storage().await?;
    cluster.wait_for_live_nodes(4).await?;

    // Rot node 0's copy of every chunk, and read on node 0's host: its
    // copies are the ones the reader tries first.
    let chunks_before = chunks(&cluster, "rot.bin").await?;
    let rotten = cluster.storage(0).node_id().to_owned();
    let mut avoid = Vec::new();
    for (id, _) in &chunks_before {
        rot(&cluster, 0, id)?;
        avoid.push((rotten.clone(), id.clone()));
    }

    let copy = cluster.scratch_dir().join("rot.bin.copy");
    let data_dir = cluster.storage(0).data_dir().to_string_lossy().into_owned();
    let read = cluster
        .dfs_with_env(
            ["read", "rot.bin", copy.to_str().context("utf-8 path")?],
            &[("DFS_LOCAL_DATA_DIR", &data_dir)],
        )
        .await?;
    ensure!(read.status.success(), "dfs read: {read:?}");
    ensure!(
        std::fs::read(&copy)? == std::fs::read(&local)?,
        "rot.bin read back other bytes"
    );
    wait_healed(&cluster, "rot.bin", &local, &avoid).await?;
    ensure!(cluster.metric_total("dfs_chunks_corrupt_total").await? >= CHUNKS);
    ensure!(cluster.naming_metric("dfs_suspect_reports_total").await? >= CHUNKS);
    ensure!(cluster.naming_metric("dfs_bad_replicas_total").await? >= CHUNKS);
    // The quarantined copies go once the chunks are whole again.
    wait_until(HEALING, || async {
        avoid.iter().all(|(node, id)| {
            cluster
                .storage_index(node)
                .is_ok_and(|i| !on_disk(&cluster, i, id))
        })
    })
    .await
    .context("the rotten copies were never deleted")?;

    // Before, a rotten copy plus the loss of the two nodes holding the good
    // ones meant a lost chunk; now its good copies are elsewhere too.
    let (_, chunk0) = &chunks_before[0];
    for good in node_ids(&chunk0["replicas"])
        .iter()
        .filter(|&&n| n != rotten)
    {
        cluster.stop_storage(cluster.storage_index(good)?).await?;
    }
    ensure!(cluster.storage(spare).is_running());
    read_back(&cluster, "rot.bin", &local).await
}

#[tokio::test]
async fn the_scrubber_finds_rotten_and_deleted_chunk_files() -> Result<()> {
    let cluster = TestCluster::builder()
        .storage_nodes(4)
        .storage_env("SCRUB_INTERVAL", "1s")
        .storage_env("SCRUB_BANDWIDTH", "8g")
        .start()
        .await?;
    let local = create_file(&cluster, "scrub.bin").await?;
    let chunks_before = chunks(&cluster, "scrub.bin").await?;
    let mut avoid = Vec::new();
    // Chunk 0 rots on one node; chunk 1's file is deleted on another.
    let (id0, chunk0) = &chunks_before[0];
    let rotten = node_ids(&chunk0["replicas"])[0].to_owned();
    rot(&cluster, cluster.storage_index(&rotten)?, id0)?;
    avoid.push((rotten.clone(), id0.clone()));
    let (id1, chunk1) = &chunks_before[1];
    let robbed = node_ids(&chunk1["replicas"])[1].to_owned();
    let path = cluster
        .storage(cluster.storage_index(&robbed)?)
        .chunk_path(id1)
        .context("chunk 1 on disk")?;
    std::fs::remove_file(path)?;
    avoid.push((robbed.clone(), id1.clone()));

    // No read: the scrubbers find both on their own.
    wait_healed(&cluster, "scrub.bin", &local, &avoid).await?;
    ensure!(cluster.metric_total("dfs_chunks_corrupt_total").await? >= 1);
    ensure!(cluster.metric_total("dfs_chunks_missing_total").await? >= 1);
    ensure!(cluster.metric_total("dfs_scrub_passes_total").await? >= 4);
    read_back(&cluster, "scrub.bin", &local).await
}

#[tokio::test]
async fn a_bad_copy_that_cannot_be_replaced_shows_in_stat_nodes_and_repair() -> Result<()> {
    // Three nodes and three replicas: no node is left to repair onto.
    let cluster = TestCluster::builder()
        .storage_nodes(3)
        .storage_env("SCRUB_INTERVAL", "1s")
        .storage_env("SCRUB_BANDWIDTH", "8g")
        .start()
        .await?;
    let local = create_file(&cluster, "stuck.bin").await?;
    let (id0, chunk0) = chunks(&cluster, "stuck.bin").await?.remove(0);
    let rotten = node_ids(&chunk0["replicas"])[0].to_owned();
    rot(&cluster, cluster.storage_index(&rotten)?, &id0)?;

    let marked = format!("{rotten}(corrupt)");
    wait_until(HEALING, || async {
        cluster
            .dfs_ok(["stat", "stuck.bin"])
            .await
            .is_ok_and(|out| out.contains(&marked))
    })
    .await
    .context("dfs stat never showed the corrupt replica")?;
    let stat = cluster.dfs_ok(["stat", "stuck.bin"]).await?;
    let line = stat
        .lines()
        .find(|l| l.contains(&id0))
        .context("chunk 0 line")?;
    ensure!(
        line.matches("(alive)").count() == 2 && line.contains(&marked),
        "{stat}"
    );
    let nodes = cluster.dfs_ok(["nodes"]).await?;
    let row = nodes
        .lines()
        .find(|l| l.starts_with(&rotten))
        .context("node row")?;
    ensure!(row.split_whitespace().last() == Some("1"), "{nodes}");

    let output = cluster.dfs(["repair", "stuck.bin"]).await?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    ensure!(
        !output.status.success() && stderr.contains("no other live node"),
        "{stderr}"
    );
    read_back(&cluster, "stuck.bin", &local).await
}

#[tokio::test]
async fn a_node_that_comes_back_has_its_extra_copies_trimmed() -> Result<()> {
    let mut cluster = TestCluster::builder()
        .storage_nodes(4)
        .naming_env("REPAIR_AFTER", "1s")
        .start()
        .await?;
    let local = create_file(&cluster, "back.bin").await?;
    let chunks_before = chunks(&cluster, "back.bin").await?;
    let away = node_ids(&chunks_before[0].1["replicas"])[0].to_owned();
    let index = cluster.storage_index(&away)?;
    cluster.stop_storage(index).await?;
    // Re-replicated elsewhere while it is gone: its copy of chunk 0 stays
    // listed, dead, beside three live ones.
    wait_until(HEALING, || async {
        chunks(&cluster, "back.bin").await.is_ok_and(|chunks| {
            chunks.iter().all(|(_, c)| {
                c["replicas"].as_array().is_some_and(|r| {
                    r.iter().filter(|r| r["alive"] == true).count() == 3
                        && (r.len() == 3 || r.len() == 4)
                })
            }) && node_ids(&chunks[0].1["replicas"]).len() == 4
        })
    })
    .await
    .context("never re-replicated while the node was away")?;

    cluster.start_storage(index).await?;
    wait_healed(&cluster, "back.bin", &local, &[]).await?;
    // Exactly three copies of each chunk are left on disk.
    wait_until(HEALING, || async {
        chunks_before
            .iter()
            .all(|(id, _)| (0..4).filter(|&i| on_disk(&cluster, i, id)).count() == 3)
    })
    .await
    .context("trimmed copies stayed on disk")?;
    ensure!(cluster.naming_metric("dfs_repair_trims_total").await? >= 1);
    read_back(&cluster, "back.bin", &local).await
}
