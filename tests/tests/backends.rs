//! The same core cases on each metadata backend `REDIS_URL` can name: a
//! single Redis, Redis Cluster (3 masters, 3 replicas) and Redis Sentinel
//! (a master, a replica, 3 sentinels), all real `redis-server` processes.

use std::cell::RefCell;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use dfs_tests::{Metadata, MetadataKind, TestCluster, same_file, wait_until, write_random_file};

/// create, read, size, stat, ls and delete of files whose names land in
/// different hash slots; distribute to every node; repair after a node is
/// lost.
async fn core_cases(kind: MetadataKind) -> Result<()> {
    let mut cluster = TestCluster::builder()
        .metadata(kind)
        .storage_nodes(4)
        .naming_env("REPAIR_AFTER", "off")
        .start()
        .await?;
    let names = ["core/a.bin", "core/b.bin", "other/c.bin", "z"];
    let mut locals = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let len = 100_000 + 40_000 * i as u64;
        locals.push(cluster.create_random(name, len, 2).await?);
    }
    for (name, local) in names.iter().zip(&locals) {
        let copy = cluster.scratch_dir().join("copy");
        cluster
            .dfs_ok(["read", name, copy.to_str().context("utf-8 path")?])
            .await?;
        same_file(local, &copy)?;
        let size = cluster.dfs_ok(["size", name]).await?;
        ensure!(
            size == format!("{}\n", std::fs::metadata(local)?.len()),
            "{name}: size {size:?}"
        );
        let stat = cluster.dfs_ok(["stat", name]).await?;
        ensure!(stat.contains("replication:  2"), "{name}: stat\n{stat}");
    }
    let listed = |out: &str| -> Vec<String> {
        out.lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
            .collect()
    };
    let all = cluster.dfs_ok(["ls"]).await?;
    ensure!(listed(&all) == names, "ls:\n{all}");
    let core = cluster.dfs_ok(["ls", "core/"]).await?;
    ensure!(listed(&core) == names[..2], "ls core/:\n{core}");

    cluster.dfs_ok(["delete", "core/b.bin"]).await?;
    let gone = cluster.dfs(["size", "core/b.bin"]).await?;
    ensure!(
        !gone.status.success() && String::from_utf8_lossy(&gone.stderr).contains("no file named"),
        "size of a deleted file: {gone:?}"
    );
    let all = cluster.dfs_ok(["ls"]).await?;
    ensure!(
        listed(&all) == ["core/a.bin", "other/c.bin", "z"],
        "ls after delete:\n{all}"
    );

    // Every node gets every chunk.
    cluster.dfs_ok(["distribute", "other/c.bin"]).await?;
    cluster.check_replicas("other/c.bin", &locals[2], 4).await?;

    // A node is lost: repair brings core/a.bin back to 2 live replicas.
    let record = cluster.file_record("core/a.bin").await?;
    let holder = record["chunks"][0]["replicas"][0]["node_id"]
        .as_str()
        .context("node_id")?
        .to_owned();
    cluster
        .stop_storage(cluster.storage_index(&holder)?)
        .await?;
    wait_until(Duration::from_secs(15), || async {
        cluster.live_nodes().await.is_ok_and(|n| n == 3)
    })
    .await
    .context("the stopped node never counted as dead")?;
    let out = cluster.dfs_ok(["repair", "core/a.bin"]).await?;
    ensure!(out.contains("repaired"), "repair: {out}");
    let record = cluster.file_record("core/a.bin").await?;
    for chunk in record["chunks"].as_array().context("chunks")? {
        let live = chunk["replicas"]
            .as_array()
            .context("replicas")?
            .iter()
            .filter(|r| r["alive"] == true)
            .count();
        ensure!(live == 2, "after repair: {chunk}");
    }
    let copy = cluster.scratch_dir().join("repaired");
    cluster
        .dfs_ok(["read", "core/a.bin", copy.to_str().context("utf-8 path")?])
        .await?;
    same_file(&locals[0], &copy)?;

    // Where a failover can promote a replica, every finalize, delete and
    // replica change waited for one (WAIT), and one always answered.
    let scrape = cluster.naming_scrape().await?;
    let waits =
        scrape.histogram_count("dfs_redis_command_duration_seconds", &[("command", "WAIT")])?;
    let unreplicated = scrape.count("dfs_redis_unreplicated_writes", &[])?;
    match kind {
        MetadataKind::Single => ensure!(waits == 0, "{waits} WAITs on a single Redis"),
        _ => ensure!(
            waits >= 5 && unreplicated == 0,
            "{waits} WAITs, {unreplicated} writes unreplicated"
        ),
    }
    Ok(())
}

#[tokio::test]
async fn core_cases_on_a_single_redis() -> Result<()> {
    core_cases(MetadataKind::Single).await
}

#[tokio::test]
async fn core_cases_on_redis_cluster() -> Result<()> {
    core_cases(MetadataKind::Cluster).await
}

#[tokio::test]
async fn core_cases_on_redis_sentinel() -> Result<()> {
    core_cases(MetadataKind::Sentinel).await
}

/// What a stream of `dfs create`s and `dfs read`s saw around a failover.
#[derive(Default)]
struct Seen {
    /// Files whose create succeeded, with their local copies.
    created: Vec<(String, PathBuf)>,
    /// Files whose create failed (the name may or may not exist).
    failed: Vec<(String, PathBuf)>,
    reads_ok: usize,
    reads_failed: usize,
    killed_at: Option<Instant>,
    creates_after_kill: usize,
    reads_after_kill: usize,
    last_create: Option<Instant>,
    /// Longest time between two successful creates.
    longest_gap: Duration,
    stop: bool,
}

/// Upper bound on the stream, whatever happens.
const STREAM_LIMIT: Duration = Duration::from_secs(120);

/// Streams creates (one after another) and reads of the files made so far
/// (one after another, beside the creates); once 10 creates succeeded,
/// SIGKILLs process `pid` (a Redis master); stops when 10 creates and 10
/// reads succeeded after the kill. Returns what was seen.
async fn stream_through_failover(cluster: &TestCluster, pid: u32) -> Result<Seen> {
    let seen = RefCell::new(Seen::default());
    let started = Instant::now();
    let creates = async {
        for i in 0..1_000u64 {
            if seen.borrow().stop || started.elapsed() > STREAM_LIMIT {
                break;
            }
            let name = format!("stream/{i}");
            let local = cluster.scratch_dir().join(format!("stream-{i}"));
            write_random_file(&local, 4096 + i, i)?;
            let out = cluster
                .dfs([
                    "create",
                    local.to_str().context("utf-8 path")?,
                    &name,
                    "--replication",
                    "2",
                ])
                .await?;
            let mut seen = seen.borrow_mut();
            if out.status.success() {
                let now = Instant::now();
                if let Some(last) = seen.last_create {
                    seen.longest_gap = seen.longest_gap.max(now - last);
                }
                seen.last_create = Some(now);
                seen.created.push((name, local));
                if seen.killed_at.is_some() {
                    seen.creates_after_kill += 1;
                }
            } else {
                seen.failed.push((name, local));
            }
        }
        anyhow::Ok(())
    };
    let reads = async {
        for i in 0..1_000usize {
            if seen.borrow().stop || started.elapsed() > STREAM_LIMIT {
                break;
            }
            let picked = {
                let seen = seen.borrow();
                (!seen.created.is_empty()).then(|| seen.created[i % seen.created.len()].clone())
            };
            let Some((name, local)) = picked else {
                // Nothing to read yet: wait for the first create.
                wait_until(Duration::from_secs(30), || async {
                    !seen.borrow().created.is_empty()
                })
                .await?;
                continue;
            };
            let copy = cluster.scratch_dir().join("read-copy");
            let out = cluster
                .dfs(["read", &name, copy.to_str().context("utf-8 path")?])
                .await?;
            let mut seen = seen.borrow_mut();
            if out.status.success() {
                same_file(&local, &copy)?;
                seen.reads_ok += 1;
                if seen.killed_at.is_some() {
                    seen.reads_after_kill += 1;
                }
            } else {
                seen.reads_failed += 1;
            }
        }
        anyhow::Ok(())
    };
    let killer = async {
        wait_until(Duration::from_secs(60), || async {
            seen.borrow().created.len() >= 10
        })
        .await
        .context("10 creates before the kill")?;
        let killed = tokio::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .await?;
        ensure!(killed.success(), "kill -KILL {pid} failed");
        seen.borrow_mut().killed_at = Some(Instant::now());
        let recovered = wait_until(STREAM_LIMIT, || async {
            let seen = seen.borrow();
            seen.creates_after_kill >= 10 && seen.reads_after_kill >= 10
        })
        .await;
        seen.borrow_mut().stop = true;
        recovered.context("creates and reads did not both come back after the master was killed")
    };
    let (c, r, k) = futures::join!(creates, reads, killer);
    c?;
    r?;
    k?;
    Ok(seen.into_inner())
}

/// After the stream: every create that succeeded reads back byte for byte
/// and is listed; every create that failed is either whole (listed, reads
/// back) or absent (not listed, no such name).
async fn nothing_lost(cluster: &TestCluster, seen: &Seen) -> Result<()> {
    let listing = cluster.dfs_ok(["ls", "stream/"]).await?;
    let listed: Vec<&str> = listing
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let copy = cluster.scratch_dir().join("check-copy");
    let copy_arg = copy.to_str().context("utf-8 path")?;
    for (name, local) in &seen.created {
        ensure!(
            listed.contains(&name.as_str()),
            "{name} was created but is not listed"
        );
        cluster.dfs_ok(["read", name, copy_arg]).await?;
        same_file(local, &copy).with_context(|| format!("{name} read back"))?;
    }
    for (name, local) in &seen.failed {
        let out = cluster.dfs(["read", name, copy_arg]).await?;
        if out.status.success() {
            same_file(local, &copy).with_context(|| format!("{name} (create failed) read back"))?;
            ensure!(
                listed.contains(&name.as_str()),
                "{name} reads but is not listed"
            );
        } else {
            let stderr = String::from_utf8_lossy(&out.stderr);
            ensure!(stderr.contains("no file named"), "{name}: {stderr}");
            ensure!(
                !listed.contains(&name.as_str()),
                "{name} is listed but does not read"
            );
        }
    }
    // A failover is a 503 while no master serves a slot, never a 500.
    let errors = cluster
        .naming_scrape()
        .await?
        .histogram_count("dfs_http_request_duration_seconds", &[("status", "500")])?;
    ensure!(
        errors == 0,
        "the naming server answered {errors} requests with 500"
    );
    eprintln!(
        "failover: {} creates ok, {} failed; {} reads ok, {} failed; longest pause between \
         creates {:.2} s",
        seen.created.len(),
        seen.failed.len(),
        seen.reads_ok,
        seen.reads_failed,
        seen.longest_gap.as_secs_f64()
    );
    Ok(())
}

#[tokio::test]
async fn a_cluster_master_killed_under_load_loses_no_commit() -> Result<()> {
    let cluster = TestCluster::builder()
        .metadata(MetadataKind::Cluster)
        .storage_nodes(3)
        .start()
        .await?;
    let Metadata::Cluster(redis) = &cluster.redis else {
        bail!("not on a Redis Cluster");
    };
    // The master of the node directory: every create and read needs it.
    let victim = redis.master_of("dfs:{nodes}:all").await?;
    let seen = stream_through_failover(&cluster, redis.pid(victim)?).await?;
    let now = redis.master_of("dfs:{nodes}:all").await?;
    ensure!(
        now != victim,
        "the slot is still on the killed master {victim}"
    );
    nothing_lost(&cluster, &seen).await
}

#[tokio::test]
async fn a_sentinel_master_killed_under_load_loses_no_commit() -> Result<()> {
    let cluster = TestCluster::builder()
        .metadata(MetadataKind::Sentinel)
        .storage_nodes(3)
        .start()
        .await?;
    let Metadata::Sentinel(redis) = &cluster.redis else {
        bail!("not on Redis Sentinel");
    };
    let seen = stream_through_failover(&cluster, redis.master_pid()?).await?;
    redis.wait_for_promotion().await?;
    nothing_lost(&cluster, &seen).await
}

/// Runs `dfs-metaload ARGS` against `cluster`; its JSON report.
async fn metaload(cluster: &TestCluster, args: &[&str]) -> Result<serde_json::Value> {
    let out = tokio::process::Command::new(dfs_tests::bin_path("dfs-metaload"))
        .args(args)
        .env("DFS_NAMING_URL", cluster.naming_url())
        .env_remove("DFS_TOKEN")
        .output()
        .await?;
    ensure!(
        out.status.success(),
        "dfs-metaload {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// `dfs-metaload` (bench/scale.sh) against a Redis Cluster: what it loads
/// through the API is there, file by file, and it lists and looks up all.
#[tokio::test]
async fn the_metadata_loader_fills_a_cluster_through_the_api() -> Result<()> {
    let cluster = TestCluster::builder()
        .metadata(MetadataKind::Cluster)
        .naming_env("FREE_SPACE_RESERVE", "0")
        // The loader's stand-in nodes never send a heartbeat.
        .naming_env("HEARTBEAT_TIMEOUT", "1h")
        .start()
        .await?;
    metaload(&cluster, &["nodes", "3"]).await?;
    let loaded = metaload(&cluster, &["load", "300", "--prefix", "m/"]).await?;
    ensure!(loaded["files"] == 300, "{loaded}");
    let listed = metaload(&cluster, &["list", "--prefix", "m/"]).await?;
    ensure!(listed["files"] == 300 && listed["pages"] == 1, "{listed}");
    let looked = metaload(
        &cluster,
        &["lookups", "300", "--prefix", "m/", "--requests", "100"],
    )
    .await?;
    ensure!(
        looked["p99_ms"].as_f64().is_some_and(|ms| ms > 0.0),
        "{looked}"
    );
    let record = cluster.file_record("m/0000299").await?;
    ensure!(
        record["size"] == 4096
            && record["chunks"][0]["replicas"].as_array().map(Vec::len) == Some(3),
        "{record}"
    );
    Ok(())
}
