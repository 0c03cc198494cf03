//! `dfs create` and `dfs read` ride out a restart of the naming server:
//! its calls are retried through the outage, and the bytes arrive intact.
//! Killed for good, the naming server makes them fail with one clear line
//! once the retries run out. Given several naming servers, the CLI and the
//! storage nodes move to the next when one cannot be reached.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use dfs_tests::{RunningDfs, TestCluster, same_file, wait_until, write_random_file};

const MIB: u64 = 1 << 20;
/// How the CLI's retries show in its log (`DFS_LOG`).
const RETRYING: &str = "failed; retrying";
const LOG: (&str, &str) = ("DFS_LOG", "dfs_client=warn");
/// Longer than the CLI's whole patience (about 15 to 30 s).
const PATIENCE: Duration = Duration::from_secs(90);

fn arg(path: &Path) -> &str {
    path.to_str().unwrap_or_default()
}

#[tokio::test]
async fn create_and_read_ride_out_a_naming_server_restart() -> Result<()> {
    let mut cluster = TestCluster::builder()
        .storage_nodes(3)
        // Paces the chain so the upload is still under way when the
        // naming server goes (what this test needs, not a speed claim).
        .storage_env("TEST_ONLY_LIMIT_P2P_BANDWIDTH", "100m")
        .start()
        .await?;
    let local = cluster.scratch_dir().join("big");
    write_random_file(&local, 64 * MIB, 1)?;

    // The naming server dies once some chunks are written, and comes back
    // on the same address when the CLI has noticed.
    let create = cluster.spawn_dfs(
        &["create", arg(&local), "big", "--chunk-size", "1MiB"],
        &[LOG],
    )?;
    wait_until(Duration::from_secs(60), || async {
        cluster
            .metric_total("dfs_http_put_bytes_total")
            .await
            .is_ok_and(|bytes| bytes >= 8 * MIB)
    })
    .await
    .context("the upload never got going")?;
    cluster.stop_naming().await?;
    create.wait_for_stderr(RETRYING, PATIENCE).await?;
    cluster.start_naming().await?;
    let created = create.finish(PATIENCE).await?;
    ensure!(
        created.status.success(),
        "create failed: {:?}",
        created.stderr
    );
    ensure!(
        created.stdout.starts_with("created big "),
        "{}",
        created.stdout
    );
    ensure!(cluster.check_replicas("big", &local, 3).await? == 64);
    let listed = cluster.dfs_ok(["ls"]).await?;
    ensure!(
        listed.lines().count() == 2,
        "one file (and a header): {listed}"
    );

    // A read that starts while the naming server is down waits for it.
    cluster.stop_naming().await?;
    let back = cluster.scratch_dir().join("back");
    let read = cluster.spawn_dfs(&["read", "big", arg(&back)], &[LOG])?;
    read.wait_for_stderr(RETRYING, PATIENCE).await?;
    cluster.start_naming().await?;
    let done = read.finish(PATIENCE).await?;
    ensure!(done.status.success(), "read failed: {:?}", done.stderr);
    same_file(&local, &back)?;
    Ok(())
}

#[tokio::test]
async fn a_naming_server_gone_for_good_is_one_clear_line() -> Result<()> {
    let mut cluster = TestCluster::builder().storage_nodes(1).start().await?;
    let local = cluster.scratch_dir().join("small");
    write_random_file(&local, 1000, 2)?;
    cluster
        .dfs_ok(["create", arg(&local), "small", "--replication", "1"])
        .await?;
    cluster.stop_naming().await?;
    let back = cluster.scratch_dir().join("back");
    let read = cluster.spawn_dfs(&["read", "small", arg(&back)], &[])?;
    let done = read.finish(PATIENCE).await?;
    ensure!(
        !done.status.success(),
        "read succeeded without a naming server"
    );
    ensure!(done.stderr.len() == 1, "{:?}", done.stderr);
    let line = &done.stderr[0];
    ensure!(
        line.starts_with("error: cannot reach ")
            && line.contains("the naming server stayed unavailable; gave up looking up \"small\""),
        "{line}"
    );
    ensure!(!back.exists(), "a partial file was left behind");
    Ok(())
}

/// `dfs ARGS` given the naming servers `urls`.
fn via(cluster: &TestCluster, urls: &str, args: &[&str]) -> Result<RunningDfs> {
    cluster.spawn_dfs(args, &[LOG, ("DFS_NAMING_URL", urls)])
}

#[tokio::test]
async fn with_a_list_of_naming_servers_losing_the_first_is_no_outage() -> Result<()> {
    let mut cluster = TestCluster::builder().storage_nodes(2).start().await?;
    let first = cluster.naming_url().to_owned();
    let second = cluster.add_naming().await?;
    let urls = format!("{first}, {second}");
    for i in 0..2 {
        cluster
            .restart_storage_with(i, &[("NAMING_URL", &urls)])
            .await?;
    }
    cluster.wait_for_live_nodes(2).await?;
    let local = cluster.scratch_dir().join("kept");
    write_random_file(&local, 3 * MIB, 3)?;
    let created = via(
        &cluster,
        &urls,
        &[
            "create",
            arg(&local),
            "kept",
            "--chunk-size",
            "1MiB",
            "--replication",
            "2",
        ],
    )?
    .finish(PATIENCE)
    .await?;
    ensure!(created.status.success(), "{:?}", created.stderr);

    // The first naming server goes for good.
    cluster.stop_naming().await?;
    let stopped_ms = dfs_common::now_ms();
    let back = cluster.scratch_dir().join("back");
    let read = via(&cluster, &urls, &["read", "kept", arg(&back)])?
        .finish(PATIENCE)
        .await?;
    ensure!(read.status.success(), "{:?}", read.stderr);
    same_file(&local, &back)?;
    let moved = "naming server unreachable; trying the next one";
    ensure!(
        read.stderr.iter().any(|l| l.contains(moved))
            && !read.stderr.iter().any(|l| l.contains(RETRYING)),
        "the read should have moved on at once: {:?}",
        read.stderr
    );
    let local_2 = cluster.scratch_dir().join("new");
    write_random_file(&local_2, MIB + 7, 4)?;
    let created = via(
        &cluster,
        &urls,
        &["create", arg(&local_2), "new", "--replication", "2"],
    )?
    .finish(PATIENCE)
    .await?;
    ensure!(created.status.success(), "{:?}", created.stderr);
    let back_2 = cluster.scratch_dir().join("back-new");
    let read = via(&cluster, &urls, &["read", "new", arg(&back_2)])?
        .finish(PATIENCE)
        .await?;
    ensure!(read.status.success(), "{:?}", read.stderr);
    same_file(&local_2, &back_2)?;

    // The storage nodes heartbeat to the second one now.
    wait_until(Duration::from_secs(20), || async {
        let nodes: serde_json::Value = match cluster
            .authorized(cluster.http().get(format!("{second}/nodes")))
            .send()
            .await
        {
            Ok(reply) => reply.json().await.unwrap_or_default(),
            Err(_) => return false,
        };
        let listed = nodes["nodes"].as_array().cloned().unwrap_or_default();
        listed.len() == 2
            && listed
                .iter()
                .all(|n| n["alive"] == true && n["last_heartbeat_ms"].as_u64() > Some(stopped_ms))
    })
    .await
    .context("the storage nodes did not move to the second naming server")?;
    Ok(())
}
