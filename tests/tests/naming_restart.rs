//! `dfs create` and `dfs read` ride out a restart of the naming server:
//! its calls are retried through the outage, and the bytes arrive intact.
//! Killed for good, the naming server makes them fail with one clear line
//! once the retries run out.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use dfs_tests::{TestCluster, same_file, wait_until, write_random_file};

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
