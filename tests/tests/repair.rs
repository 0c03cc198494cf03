//! `dfs repair`: chunks that lost replicas to dead nodes are copied to live
//! ones until each has the file's replication factor again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use dfs_tests::{TestCluster, wait_until, write_random_file};

const KIB64: u64 = 64 * 1024;
const CHUNKS: u64 = 6;

/// For each chunk, how many live replicas hold exactly its bytes of
/// `local`; fails on a live replica that holds anything else.
async fn live_copies(cluster: &TestCluster, name: &str, local: &Path) -> Result<Vec<usize>> {
    let record = cluster.file_record(name).await?;
    let bytes = std::fs::read(local)?;
    let mut counts = Vec::new();
    for chunk in record["chunks"].as_array().context("chunks")? {
        let index = usize::try_from(chunk["index"].as_u64().context("index")?)?;
        let id = chunk["chunk_id"].as_str().context("chunk_id")?;
        let start = index * KIB64 as usize;
        let expected = &bytes[start..(start + KIB64 as usize).min(bytes.len())];
        let mut live = 0;
        for replica in chunk["replicas"].as_array().context("replicas")? {
            if replica["alive"] != true {
                continue;
            }
            let url = format!("{}/chunks/{id}", replica["url"].as_str().context("url")?);
            let body = reqwest::get(&url)
                .await?
                .error_for_status()?
                .bytes()
                .await?;
            ensure!(body[..] == *expected, "{url} holds other bytes");
            live += 1;
        }
        counts.push(live);
    }
    Ok(counts)
}

async fn wait_dead(cluster: &TestCluster, node_id: &str) -> Result<()> {
    wait_until(Duration::from_secs(15), || async {
        cluster.get_json("/nodes").await.is_ok_and(|body| {
            body["nodes"].as_array().is_some_and(|nodes| {
                nodes
                    .iter()
                    .any(|n| n["node_id"] == node_id && n["alive"] == false)
            })
        })
    })
    .await
    .with_context(|| format!("{node_id} never counted as dead"))
}

#[tokio::test]
async fn repair_restores_the_replication_factor() -> Result<()> {
    let mut cluster = TestCluster::builder().storage_nodes(5).start().await?;
    let local = create_file(&cluster, "r.bin").await?;
    let out = cluster.dfs_ok(["repair", "r.bin"]).await?;
    ensure!(out == "r.bin: every chunk has 3 live replicas\n", "{out}");
    let (_, lost) = stop_busiest_node(&mut cluster, "r.bin").await?;
    let before = live_copies(&cluster, "r.bin", &local).await?;
    ensure!(
        before.iter().filter(|&&n| n == 2).count() == lost,
        "{before:?}"
    );

    let out = cluster.dfs_ok(["repair", "r.bin"]).await?;
    ensure!(
        out == format!(
            "r.bin: repaired {lost} of {lost} under-replicated chunks ({lost} new copies)\n"
        ),
        "{out}"
    );
    let after = live_copies(&cluster, "r.bin", &local).await?;
    ensure!(after == vec![3; CHUNKS as usize], "{after:?}");
    let out = cluster.dfs_ok(["repair", "r.bin"]).await?;
    ensure!(out == "r.bin: every chunk has 3 live replicas\n", "{out}");

    // Two live nodes cannot hold three replicas: repair does what it can
    // and says what is left.
    let running: Vec<String> = cluster
        .storage_nodes()
        .iter()
        .filter(|n| n.is_running())
        .map(|n| n.node_id().to_owned())
        .collect();
    for node in &running[..2] {
        cluster.stop_storage(cluster.storage_index(node)?).await?;
        wait_dead(&cluster, node).await?;
    }
    let output = cluster.dfs(["repair", "r.bin"]).await?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    ensure!(!output.status.success(), "{stderr}");
    ensure!(
        stderr.starts_with("error: r.bin: ")
            && stderr.contains("chunks still have fewer than 3 live replicas")
            && stderr.lines().count() == 1,
        "{stderr}"
    );
    let left = live_copies(&cluster, "r.bin", &local).await?;
    ensure!(left == vec![2; CHUNKS as usize], "{left:?}");
    let copy = cluster.scratch_dir().join("copy");
    cluster
        .dfs_ok(["read", "r.bin", copy.to_str().context("utf-8 path")?])
        .await?;
    ensure!(std::fs::read(&copy)? == std::fs::read(&local)?);

    let output = cluster.dfs(["repair", "nope"]).await?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    ensure!(
        !output.status.success() && stderr.contains("no file named"),
        "{stderr}"
    );
    Ok(())
}

/// Creates a six-chunk file `name` (replication 3, the last chunk short);
/// returns its local copy.
async fn create_file(cluster: &TestCluster, name: &str) -> Result<PathBuf> {
    let local = cluster.scratch_dir().join(name);
    write_random_file(&local, CHUNKS * KIB64 - 100, 31)?;
    let path = local.to_str().context("utf-8 path")?;
    cluster
        .dfs_ok(["create", path, name, "--chunk-size", "64KiB"])
        .await?;
    Ok(local)
}

/// Stops the node holding most chunks of `name` and waits until it counts
/// as dead; returns its index and how many chunks it held.
async fn stop_busiest_node(cluster: &mut TestCluster, name: &str) -> Result<(usize, usize)> {
    let record = cluster.file_record(name).await?;
    let mut held: HashMap<String, usize> = HashMap::new();
    for chunk in record["chunks"].as_array().context("chunks")? {
        for replica in chunk["replicas"].as_array().context("replicas")? {
            *held
                .entry(replica["node_id"].as_str().context("id")?.to_owned())
                .or_default() += 1;
        }
    }
    let (victim, count) = held
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .context("no replicas")?;
    let index = cluster.storage_index(&victim)?;
    cluster.stop_storage(index).await?;
    wait_dead(cluster, &victim).await?;
    Ok((index, count))
}

async fn wait_fully_replicated(cluster: &TestCluster, name: &str, local: &Path) -> Result<()> {
    wait_until(Duration::from_secs(30), || async {
        live_copies(cluster, name, local)
            .await
            .is_ok_and(|counts| counts == vec![3; CHUNKS as usize])
    })
    .await
    .context("the chunks never got three live replicas again")
}

#[tokio::test]
async fn lost_nodes_are_repaired_in_the_background() -> Result<()> {
    let mut cluster = TestCluster::builder()
        .storage_nodes(4)
        .naming_env("REPAIR_AFTER", "1s")
        .start()
        .await?;
    let local = create_file(&cluster, "bg.bin").await?;
    stop_busiest_node(&mut cluster, "bg.bin").await?;
    wait_fully_replicated(&cluster, "bg.bin", &local).await?;
    let out = cluster.dfs_ok(["repair", "bg.bin"]).await?;
    ensure!(out == "bg.bin: every chunk has 3 live replicas\n", "{out}");
    Ok(())
}

#[tokio::test]
async fn forgetting_a_node_repairs_its_chunks() -> Result<()> {
    // Background repair would wait an hour; forgetting the node is the
    // operator saying it is gone for good.
    let mut cluster = TestCluster::builder()
        .storage_nodes(4)
        .naming_env("REPAIR_AFTER", "1h")
        .start()
        .await?;
    let local = create_file(&cluster, "fg.bin").await?;
    let (index, _) = stop_busiest_node(&mut cluster, "fg.bin").await?;
    let counts = live_copies(&cluster, "fg.bin", &local).await?;
    ensure!(counts.contains(&2), "{counts:?}");
    let node_id = cluster.storage(index).node_id().to_owned();
    cluster.dfs_ok(["forget-node", &node_id]).await?;
    wait_fully_replicated(&cluster, "fg.bin", &local).await
}
