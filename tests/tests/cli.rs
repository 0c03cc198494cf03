//! End-to-end tests of the `dfs` binary against a real cluster: redis,
//! a naming server and storage servers, all real processes.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use dfs_tests::{TestCluster, file_crc32c, wait_until, write_random_file};

const KIB64: u64 = 64 * 1024;

async fn cluster(nodes: usize) -> Result<TestCluster> {
    TestCluster::builder().storage_nodes(nodes).start().await
}

fn scratch(cluster: &TestCluster, name: &str) -> PathBuf {
    cluster.scratch_dir().join(name)
}

/// Writes `len` seeded pseudo-random bytes to a new scratch file.
fn random_file(cluster: &TestCluster, name: &str, len: u64, seed: u64) -> Result<PathBuf> {
    let path = scratch(cluster, name);
    write_random_file(&path, len, seed)?;
    Ok(path)
}

/// Runs `dfs` expecting failure; checks stderr is exactly one `error: ` line
/// containing `needle` (case-insensitive) and returns that line.
fn expect_failure(output: &Output, needle: &str) -> Result<String> {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    ensure!(
        !output.status.success(),
        "dfs succeeded, expected failure; stderr: {stderr}"
    );
    ensure!(
        output.status.code() == Some(1),
        "exit status {:?}, expected 1",
        output.status
    );
    let lines: Vec<&str> = stderr.lines().collect();
    ensure!(lines.len() == 1, "expected one stderr line, got {lines:?}");
    ensure!(
        lines[0].starts_with("error: "),
        "stderr does not start with 'error: ': {stderr}"
    );
    ensure!(
        stderr.to_lowercase().contains(&needle.to_lowercase()),
        "stderr {stderr:?} does not mention {needle:?}"
    );
    Ok(lines[0].to_owned())
}

/// Same length and bytes, compared by streaming CRC32C (files may be large).
fn assert_same_file(expected: &Path, actual: &Path) -> Result<()> {
    let (e, a) = (
        std::fs::metadata(expected)?.len(),
        std::fs::metadata(actual)?.len(),
    );
    ensure!(e == a, "{} has {a} bytes, expected {e}", actual.display());
    ensure!(
        file_crc32c(expected)? == file_crc32c(actual)?,
        "{} differs from {}",
        actual.display(),
        expected.display()
    );
    Ok(())
}

fn path_arg(path: &Path) -> &str {
    path.to_str().unwrap_or_default()
}

/// `create` then `read` back and compare; returns the read-back path.
async fn round_trip(
    cluster: &TestCluster,
    local: &Path,
    name: &str,
    extra: &[&str],
) -> Result<PathBuf> {
    let mut args = vec!["create", path_arg(local), name];
    args.extend_from_slice(extra);
    let out = cluster.dfs_ok(&args).await?;
    ensure!(out.contains(name), "create printed {out:?}");
    let back = scratch(cluster, &format!("{}.back", name.replace('/', "_")));
    cluster.dfs_ok(["read", name, path_arg(&back)]).await?;
    assert_same_file(local, &back)?;
    Ok(back)
}

/// The committed record of `name`, as the naming server has it.
async fn record(cluster: &TestCluster, name: &str) -> Result<serde_json::Value> {
    cluster.get_json(&format!("/files?name={name}")).await
}

#[tokio::test]
async fn round_trips_are_byte_exact_at_edge_sizes() -> Result<()> {
    let cluster = cluster(3).await?;
    let sizes = [0, 1, KIB64 - 1, KIB64, KIB64 + 1, 5 * KIB64 + 123];
    for (seed, size) in sizes.into_iter().enumerate() {
        let local = random_file(&cluster, &format!("in-{size}"), size, seed as u64)?;
        let name = format!("edge/{size}");
        round_trip(
            &cluster,
            &local,
            &name,
            &["--chunk-size", "64KiB", "--replication", "2"],
        )
        .await?;
        let printed = cluster.dfs_ok(["size", &name]).await?;
        ensure!(
            printed == format!("{size}\n"),
            "size printed {printed:?}, expected {size}"
        );
        let expected_chunks = size.div_ceil(KIB64);
        let rec = record(&cluster, &name).await?;
        ensure!(rec["chunk_count"] == expected_chunks, "record {rec}");
    }
    // Nothing half-written is left behind on any node.
    for node in cluster.storage_nodes() {
        ensure!(
            node.temp_files().is_empty(),
            "temp files left: {:?}",
            node.temp_files()
        );
    }
    Ok(())
}

#[tokio::test]
async fn read_to_stdout_streams_in_order() -> Result<()> {
    let cluster = cluster(2).await?;
    let local = random_file(&cluster, "in", 9 * KIB64 + 7, 42)?;
    let args = [
        "create",
        path_arg(&local),
        "stdout.bin",
        "--chunk-size",
        "64K",
    ];
    cluster
        .dfs_ok(args.iter().chain(&["--replication", "2"]))
        .await?;
    let output = cluster.dfs(["read", "stdout.bin", "-"]).await?;
    ensure!(
        output.status.success(),
        "read -: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    ensure!(
        output.stdout == std::fs::read(&local)?,
        "stdout differs from the file"
    );
    ensure!(
        output.stderr.is_empty(),
        "stderr not quiet: {:?}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

#[tokio::test]
async fn one_gib_round_trip() -> Result<()> {
    let cluster = cluster(2).await?;
    let started = Instant::now();
    let local = random_file(&cluster, "big", 1 << 30, 7)?;
    eprintln!("generated 1 GiB in {:?}", started.elapsed());
    let started = Instant::now();
    cluster
        .dfs_ok(["create", path_arg(&local), "big.bin", "--replication", "2"])
        .await?;
    eprintln!("dfs create 1 GiB (replication 2): {:?}", started.elapsed());
    let back = scratch(&cluster, "big.back");
    let started = Instant::now();
    cluster.dfs_ok(["read", "big.bin", path_arg(&back)]).await?;
    eprintln!("dfs read 1 GiB: {:?}", started.elapsed());
    assert_same_file(&local, &back)?;
    let printed = cluster.dfs_ok(["size", "big.bin"]).await?;
    ensure!(
        printed.trim() == (1u64 << 30).to_string(),
        "size printed {printed:?}"
    );
    Ok(())
}

#[tokio::test]
async fn delete_frees_the_name_and_read_then_fails() -> Result<()> {
    let cluster = cluster(1).await?;
    let local = random_file(&cluster, "in", 1000, 1)?;
    cluster
        .dfs_ok(["create", path_arg(&local), "doomed", "--replication", "1"])
        .await?;
    cluster.dfs_ok(["delete", "doomed"]).await?;
    let back = scratch(&cluster, "back");
    let output = cluster.dfs(["read", "doomed", path_arg(&back)]).await?;
    expect_failure(&output, "no file named")?;
    ensure!(!back.exists(), "a failed read created {}", back.display());
    expect_failure(&cluster.dfs(["size", "doomed"]).await?, "no file named")?;
    expect_failure(&cluster.dfs(["delete", "doomed"]).await?, "no file named")?;
    ensure!(
        !cluster.dfs_ok(["ls"]).await?.contains("doomed"),
        "ls still shows it"
    );
    // The name is free again.
    cluster
        .dfs_ok(["create", path_arg(&local), "doomed", "--replication", "1"])
        .await?;
    Ok(())
}

#[tokio::test]
async fn ls_lists_by_prefix_with_sizes_and_chunks() -> Result<()> {
    let cluster = cluster(1).await?;
    let local = random_file(&cluster, "in", 3 * KIB64, 3)?;
    for name in ["logs/a", "logs/b", "other/c"] {
        cluster
            .dfs_ok([
                "create",
                path_arg(&local),
                name,
                "--chunk-size",
                "64KiB",
                "--replication",
                "1",
            ])
            .await?;
    }
    let all = cluster.dfs_ok(["ls"]).await?;
    let logs = cluster.dfs_ok(["ls", "logs/"]).await?;
    let names = |out: &str| -> Vec<String> {
        out.lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
            .collect()
    };
    ensure!(names(&all) == ["logs/a", "logs/b", "other/c"], "ls:\n{all}");
    ensure!(names(&logs) == ["logs/a", "logs/b"], "ls logs/:\n{logs}");
    for line in logs.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        ensure!(
            cols[1..] == [(3 * KIB64).to_string().as_str(), "3"],
            "line {line:?}"
        );
    }
    ensure!(
        cluster.dfs_ok(["ls", "nothing-here/"]).await?.is_empty(),
        "empty prefix not empty"
    );
    Ok(())
}

#[tokio::test]
async fn stat_shows_chunks_crcs_and_replicas() -> Result<()> {
    let cluster = cluster(3).await?;
    let local = random_file(&cluster, "in", 2 * KIB64 + 5, 4)?;
    let args = [
        "create",
        path_arg(&local),
        "stat/me",
        "--chunk-size",
        "64KiB",
        "--replication",
        "2",
    ];
    cluster.dfs_ok(args).await?;
    let out = cluster.dfs_ok(["stat", "stat/me"]).await?;
    let rec = record(&cluster, "stat/me").await?;
    ensure!(
        out.contains(&format!("size:         {}", 2 * KIB64 + 5)),
        "stat:\n{out}"
    );
    let chunks = rec["chunks"].as_array().context("chunks")?;
    ensure!(chunks.len() == 3, "record {rec}");
    for chunk in chunks {
        let id = chunk["chunk_id"].as_str().context("chunk_id")?;
        let line = out
            .lines()
            .find(|l| l.contains(id))
            .with_context(|| format!("{id} missing:\n{out}"))?;
        let crc = chunk["crc32c"].as_u64().context("crc32c")?;
        ensure!(
            line.contains(&format!("{crc:08x}")),
            "crc missing from {line:?}"
        );
        let replicas = chunk["replicas"].as_array().context("replicas")?;
        ensure!(replicas.len() == 2, "replicas {replicas:?}");
        for replica in replicas {
            let node = replica["node_id"].as_str().context("node_id")?;
            ensure!(
                line.contains(&format!("{node}(alive)")),
                "{node} missing from {line:?}"
            );
        }
    }
    Ok(())
}

#[tokio::test]
async fn nodes_shows_liveness_space_and_chunks() -> Result<()> {
    let mut cluster = cluster(2).await?;
    let out = cluster.dfs_ok(["nodes"]).await?;
    for node in cluster.storage_nodes() {
        let line = out
            .lines()
            .find(|l| l.contains(node.node_id()))
            .context("node missing")?;
        ensure!(
            line.contains(node.url()) && line.contains("alive"),
            "line {line:?}"
        );
        ensure!(line.contains("iB"), "no human-readable space in {line:?}");
    }
    let dead_id = cluster.storage(0).node_id().to_owned();
    cluster.stop_storage(0).await?;
    let (cluster, dead_id) = (&cluster, dead_id.as_str());
    let shows_dead = move || async move {
        let out = cluster.dfs_ok(["nodes"]).await.unwrap_or_default();
        out.lines()
            .any(|l| l.contains(dead_id) && l.contains("dead"))
    };
    wait_until(Duration::from_secs(20), shows_dead)
        .await
        .context("node never shown dead")?;
    Ok(())
}

#[tokio::test]
async fn read_survives_a_stopped_node() -> Result<()> {
    let mut cluster = cluster(3).await?;
    let local = random_file(&cluster, "in", 6 * KIB64 + 1, 5)?;
    let args = [
        "create",
        path_arg(&local),
        "resilient",
        "--chunk-size",
        "64KiB",
        "--replication",
        "3",
    ];
    cluster.dfs_ok(args).await?;
    // Stop the node listed first for chunk 0, so at least that chunk must fall back.
    let rec = record(&cluster, "resilient").await?;
    let first = rec["chunks"][0]["replicas"][0]["node_id"]
        .as_str()
        .context("replica")?;
    cluster.stop_storage(cluster.storage_index(first)?).await?;
    let back = scratch(&cluster, "back");
    cluster
        .dfs_ok(["read", "resilient", path_arg(&back)])
        .await?;
    assert_same_file(&local, &back)?;
    Ok(())
}

#[tokio::test]
async fn read_survives_a_corrupted_replica() -> Result<()> {
    let cluster = cluster(3).await?;
    let local = random_file(&cluster, "in", 4 * KIB64 + 9, 6)?;
    let args = [
        "create",
        path_arg(&local),
        "rotten",
        "--chunk-size",
        "64KiB",
        "--replication",
        "2",
    ];
    cluster.dfs_ok(args).await?;
    // Flip one byte in the first-listed copy of every chunk.
    let rec = record(&cluster, "rotten").await?;
    for chunk in rec["chunks"].as_array().context("chunks")? {
        let id = chunk["chunk_id"].as_str().context("chunk_id")?;
        let node = chunk["replicas"][0]["node_id"]
            .as_str()
            .context("replica")?;
        let path = find_file(cluster.storage(cluster.storage_index(node)?).data_dir(), id)?
            .with_context(|| format!("chunk {id} not on node {node}"))?;
        let mut bytes = std::fs::read(&path)?;
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x5a;
        std::fs::write(&path, bytes)?;
    }
    let back = scratch(&cluster, "back");
    cluster.dfs_ok(["read", "rotten", path_arg(&back)]).await?;
    assert_same_file(&local, &back)?;
    let piped = cluster.dfs(["read", "rotten", "-"]).await?;
    ensure!(
        piped.status.success() && piped.stdout == std::fs::read(&local)?,
        "read - differs"
    );
    Ok(())
}

/// Walks `dir` (bounded depth) for a file named exactly `name`.
fn find_file(dir: &Path, name: &str) -> Result<Option<PathBuf>> {
    let mut stack = vec![(dir.to_owned(), 0)];
    while let Some((dir, depth)) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                if depth < 8 {
                    stack.push((path, depth + 1));
                }
            } else if entry.file_name() == name {
                return Ok(Some(path));
            }
        }
    }
    Ok(None)
}

#[tokio::test]
async fn create_of_an_existing_name_fails_and_keeps_the_original() -> Result<()> {
    let cluster = cluster(1).await?;
    let original = random_file(&cluster, "original", 3 * KIB64, 8)?;
    let other = random_file(&cluster, "other", 2 * KIB64, 9)?;
    cluster
        .dfs_ok(["create", path_arg(&original), "taken", "--replication", "1"])
        .await?;
    let output = cluster
        .dfs(["create", path_arg(&other), "taken", "--replication", "1"])
        .await?;
    expect_failure(&output, "already exists")?;
    let back = scratch(&cluster, "back");
    cluster.dfs_ok(["read", "taken", path_arg(&back)]).await?;
    assert_same_file(&original, &back)?;
    Ok(())
}

#[tokio::test]
async fn concurrent_creates_of_one_name_have_one_winner() -> Result<()> {
    let cluster = cluster(2).await?;
    let a = random_file(&cluster, "a", 8 * KIB64, 10)?;
    let b = random_file(&cluster, "b", 8 * KIB64 + 1, 11)?;
    let args = |path: &Path| {
        [
            "create",
            path_arg(path),
            "contested",
            "--chunk-size",
            "64KiB",
            "--replication",
            "2",
        ]
        .map(str::to_owned)
    };
    let (ra, rb) = tokio::join!(cluster.dfs(args(&a)), cluster.dfs(args(&b)));
    let (ra, rb) = (ra?, rb?);
    let winner = match (ra.status.success(), rb.status.success()) {
        (true, false) => {
            expect_failure(&rb, "already exists")?;
            &a
        }
        (false, true) => {
            expect_failure(&ra, "already exists")?;
            &b
        }
        (sa, sb) => bail!("expected exactly one success, got {sa} and {sb}"),
    };
    let back = scratch(&cluster, "back");
    cluster
        .dfs_ok(["read", "contested", path_arg(&back)])
        .await?;
    assert_same_file(winner, &back)?;
    Ok(())
}

#[tokio::test]
async fn create_retries_around_a_dead_node() -> Result<()> {
    let mut cluster = cluster(3).await?;
    let dead = cluster.storage(0).node_id().to_owned();
    let local = random_file(&cluster, "in", 8 * KIB64, 12)?;
    // The naming server still believes the node alive for a while, so some
    // allocations name it and the client must retry elsewhere.
    cluster.stop_storage(0).await?;
    let args = [
        "create",
        path_arg(&local),
        "detour",
        "--chunk-size",
        "64KiB",
        "--replication",
        "2",
    ];
    cluster.dfs_ok(args).await?;
    let rec = record(&cluster, "detour").await?;
    for chunk in rec["chunks"].as_array().context("chunks")? {
        let on_dead = chunk["replicas"]
            .as_array()
            .context("replicas")?
            .iter()
            .any(|r| r["node_id"] == dead.as_str());
        ensure!(!on_dead, "chunk recorded on the stopped node: {chunk}");
    }
    let back = scratch(&cluster, "back");
    cluster.dfs_ok(["read", "detour", path_arg(&back)]).await?;
    assert_same_file(&local, &back)?;
    Ok(())
}

#[tokio::test]
async fn create_fails_clearly_when_too_few_nodes_work() -> Result<()> {
    let mut cluster = cluster(2).await?;
    let dead = cluster.storage(0).node_id().to_owned();
    cluster.stop_storage(0).await?;
    let local = random_file(&cluster, "in", KIB64, 13)?;
    let output = cluster
        .dfs(["create", path_arg(&local), "doomed", "--replication", "2"])
        .await?;
    // Either the write to the stopped node fails (and the message names it),
    // or the naming server already counts it dead and refuses up front.
    let line = expect_failure(&output, "")?;
    ensure!(
        line.contains(&dead) || line.contains("live storage nodes"),
        "unclear: {line}"
    );
    expect_failure(&cluster.dfs(["size", "doomed"]).await?, "no file named")?;
    Ok(())
}

#[tokio::test]
async fn failed_read_leaves_no_partial_file() -> Result<()> {
    let mut cluster = cluster(1).await?;
    let local = random_file(&cluster, "in", 3 * KIB64, 14)?;
    let args = [
        "create",
        path_arg(&local),
        "gone",
        "--chunk-size",
        "64KiB",
        "--replication",
        "1",
    ];
    cluster.dfs_ok(args).await?;
    let out_dir = scratch(&cluster, "out");
    std::fs::create_dir(&out_dir)?;
    std::fs::write(out_dir.join("dest"), b"old contents")?;
    cluster.stop_storage(0).await?;
    let output = cluster
        .dfs(["read", "gone", path_arg(&out_dir.join("dest"))])
        .await?;
    // Chunks are fetched side by side: any of the three may be the one named.
    let stderr = expect_failure(&output, "could be read")?;
    ensure!(
        ["chunk 0:", "chunk 1:", "chunk 2:"]
            .iter()
            .any(|c| stderr.contains(c)),
        "{stderr}"
    );
    let left: Vec<_> = std::fs::read_dir(&out_dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    ensure!(left == ["dest"], "directory holds {left:?}");
    ensure!(
        std::fs::read(out_dir.join("dest"))? == b"old contents",
        "destination was touched"
    );
    Ok(())
}

#[tokio::test]
async fn bad_local_paths_fail_clearly() -> Result<()> {
    let cluster = cluster(1).await?;
    let missing = scratch(&cluster, "does-not-exist");
    let output = cluster.dfs(["create", path_arg(&missing), "x"]).await?;
    expect_failure(&output, "does-not-exist")?;
    expect_failure(
        &cluster
            .dfs(["create", path_arg(cluster.scratch_dir()), "x"])
            .await?,
        "not a regular file",
    )?;
    ensure!(
        !cluster.dfs_ok(["ls"]).await?.contains('x'),
        "a failed create left a file"
    );
    let local = random_file(&cluster, "in", 10, 15)?;
    cluster
        .dfs_ok(["create", path_arg(&local), "x", "--replication", "1"])
        .await?;
    let into_missing_dir = scratch(&cluster, "no/such/dir/out");
    expect_failure(
        &cluster
            .dfs(["read", "x", path_arg(&into_missing_dir)])
            .await?,
        "no/such/dir",
    )?;
    let usage = cluster
        .dfs(["create", path_arg(&local), "y", "--chunk-size", "lots"])
        .await?;
    ensure!(
        usage.status.code() == Some(2),
        "bad flag exit {:?}",
        usage.status
    );
    Ok(())
}

#[tokio::test]
async fn wrong_token_is_refused_clearly() -> Result<()> {
    let cluster = TestCluster::builder()
        .storage_nodes(1)
        .token("s3cret")
        .start()
        .await?;
    let local = random_file(&cluster, "in", 100, 16)?;
    cluster
        .dfs_ok(["create", path_arg(&local), "guarded", "--replication", "1"])
        .await?;
    for args in [
        vec!["ls"],
        vec!["read", "guarded", "-"],
        vec!["create", path_arg(&local), "guarded2"],
    ] {
        let mut with_token = vec!["--token", "wrong"];
        with_token.extend(args);
        expect_failure(&cluster.dfs(&with_token).await?, "token")?;
    }
    ensure!(
        cluster.dfs_ok(["size", "guarded"]).await? == "100\n",
        "right token refused"
    );
    Ok(())
}

#[tokio::test]
async fn unreachable_naming_server_is_one_clear_line() -> Result<()> {
    let mut cluster = cluster(1).await?;
    cluster.stop_naming().await?;
    expect_failure(&cluster.dfs(["ls"]).await?, "cannot reach")?;
    Ok(())
}

/// Waits until `dfs nodes` shows `node_id` in `state` (alive or dead).
async fn wait_for_node_state(cluster: &TestCluster, node_id: &str, state: &str) -> Result<()> {
    wait_until(Duration::from_secs(15), || async {
        cluster.dfs_ok(["nodes"]).await.is_ok_and(|out| {
            out.lines()
                .any(|l| l.starts_with(node_id) && l.contains(state))
        })
    })
    .await
    .with_context(|| format!("dfs nodes never showed {node_id} {state}"))
}

#[tokio::test]
async fn dead_nodes_can_be_forgotten_and_come_back() -> Result<()> {
    let mut cluster = cluster(3).await?;
    let local = random_file(&cluster, "kept", 2 * KIB64, 21)?;
    cluster
        .dfs_ok(["create", path_arg(&local), "kept", "--chunk-size", "64KiB"])
        .await?;
    let gone = cluster.storage(2).node_id().to_owned();
    let alive = cluster.storage(0).node_id().to_owned();
    cluster.stop_storage(2).await?;
    wait_for_node_state(&cluster, &gone, "dead").await?;

    expect_failure(&cluster.dfs(["forget-node", &alive]).await?, "is alive")?;
    expect_failure(
        &cluster.dfs(["forget-node", "no-such-node"]).await?,
        "not registered",
    )?;
    expect_failure(
        &cluster.dfs(["forget-node", "a..b"]).await?,
        "invalid node id",
    )?;
    let out = cluster.dfs_ok(["forget-node", &gone]).await?;
    ensure!(out == format!("forgot node {gone}\n"), "{out}");
    let nodes = cluster.dfs_ok(["nodes"]).await?;
    ensure!(!nodes.contains(&gone), "{nodes}");
    ensure!(nodes.contains(&alive), "{nodes}");

    // Its replicas stay listed, as dead; reads use the others.
    let stat = cluster.dfs_ok(["stat", "kept"]).await?;
    ensure!(stat.contains(&format!("{gone}(dead)")), "{stat}");
    let copy = scratch(&cluster, "copy");
    cluster.dfs_ok(["read", "kept", path_arg(&copy)]).await?;
    assert_same_file(&local, &copy)?;

    // Back again, it registers anew with its chunks.
    cluster.start_storage(2).await?;
    wait_for_node_state(&cluster, &gone, "alive").await?;
    ensure!(cluster.check_replicas("kept", &local, 3).await? == 2);
    Ok(())
}

#[tokio::test]
async fn ls_prints_a_listing_of_several_pages_in_order() -> Result<()> {
    let cluster = cluster(1).await?;
    // 2,500 empty files (committed through the API: no chunks to write),
    // across three of the pages `dfs ls` asks for, 8 at a time.
    let names: Vec<String> = (0..2_500).map(|i| format!("many/{i:05}")).collect();
    let cluster = &cluster;
    for batch in names.chunks(8) {
        futures::future::try_join_all(batch.iter().map(|name| async move {
            let init = cluster
                .post_json(
                    "/files/init",
                    &serde_json::json!({"name": name, "size": 0, "replication": 1}),
                )
                .await?;
            let id = init["file_id"].as_str().context("file_id")?;
            cluster
                .post_json(
                    &format!("/files/{id}/finalize"),
                    &serde_json::json!({"size": 0, "chunks": []}),
                )
                .await
        }))
        .await?;
    }
    let out = cluster.dfs_ok(["ls", "many/"]).await?;
    let mut lines = out.lines();
    ensure!(
        lines.next().is_some_and(|h| h.starts_with("NAME")),
        "no header: {out:.200}"
    );
    let listed: Vec<&str> = lines.filter_map(|l| l.split_whitespace().next()).collect();
    ensure!(
        listed == names,
        "{} names listed, not the 2,500 in order (first {:?}, header lines {})",
        listed.len(),
        listed.first(),
        out.lines().filter(|l| l.starts_with("NAME")).count()
    );
    Ok(())
}

#[tokio::test]
async fn create_stores_several_files_under_a_prefix() -> Result<()> {
    let cluster = cluster(3).await?;
    let dir = scratch(&cluster, "batch");
    std::fs::create_dir_all(&dir)?;
    let mut args = vec!["create".to_owned()];
    let mut locals = Vec::new();
    for i in 0..12u64 {
        let local = dir.join(format!("f{i:02}.bin"));
        write_random_file(&local, 1000 + 5000 * i, i)?;
        args.push(path_arg(&local).to_owned());
        locals.push(local);
    }
    // One source is missing: it alone fails, the rest are stored.
    args.push(path_arg(&dir.join("missing.bin")).to_owned());
    args.extend([
        "batch/".to_owned(),
        "--chunk-size".to_owned(),
        "64KiB".to_owned(),
    ]);
    let output = cluster.dfs(&args).await?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    ensure!(
        output.status.code() == Some(1),
        "status {:?}: {stderr}",
        output.status
    );
    ensure!(
        stderr.lines().count() == 1
            && stderr
                .starts_with("error: 1 of 13 files not created: batch/missing.bin (cannot open"),
        "stderr: {stderr}"
    );
    // Reported in the order given.
    let reported: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("created ")?.split_whitespace().next())
        .collect();
    let expected: Vec<String> = (0..12).map(|i| format!("batch/f{i:02}.bin")).collect();
    ensure!(reported == expected, "stdout: {stdout}");
    for (name, local) in expected.iter().zip(&locals) {
        let copy = scratch(&cluster, "batch-copy");
        cluster.dfs_ok(["read", name, path_arg(&copy)]).await?;
        ensure!(std::fs::read(&copy)? == std::fs::read(local)?, "{name}");
    }
    // Several files need a prefix to go under.
    let output = cluster
        .dfs([
            "create",
            path_arg(&locals[0]),
            path_arg(&locals[1]),
            "batch2",
        ])
        .await?;
    expect_failure(&output, "a prefix ending in '/'")?;
    // One file and a prefix: stored under its own name.
    cluster
        .dfs_ok(["create", path_arg(&locals[0]), "single/"])
        .await?;
    ensure!(cluster.dfs_ok(["size", "single/f00.bin"]).await? == "1000\n");
    Ok(())
}
