//! Distribution over the chain, end to end: real redis-server, naming
//! server, storage servers and fake-gcs-server; `dfs seed`, `dfs distribute`
//! and `dfs jobs` as users run them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use dfs_tests::{FakeGcs, TestCluster, job_node_states, wait_until, write_random_file};
use serde_json::Value;

const KIB: u64 = 1024;
const CHUNK: u64 = 256 * KIB;
/// Longest a job in these tests may take.
const JOB_TIMEOUT: Duration = Duration::from_secs(90);

fn arg(path: &Path) -> &str {
    path.to_str().unwrap_or_default()
}

/// A cluster of `nodes` storage servers reading GCS from `gcs`.
async fn cluster_with_gcs(
    gcs: &FakeGcs,
    nodes: usize,
    env: &[(&str, &str)],
) -> Result<TestCluster> {
    let mut builder = TestCluster::builder()
        .storage_nodes(nodes)
        .storage_env("STORAGE_EMULATOR_HOST", &gcs.url());
    for (key, value) in env {
        builder = builder.storage_env(key, value);
    }
    builder.start().await
}

/// One storage node capped at `cap` holding file `name` (`chunks` chunks of
/// random bytes, one replica), then `new_nodes` empty nodes with the same cap.
async fn one_holder(
    cap: &str,
    chunks: u64,
    name: &str,
    new_nodes: usize,
) -> Result<(TestCluster, PathBuf)> {
    let mut cluster = TestCluster::builder()
        .storage_nodes(1)
        .storage_env("TEST_ONLY_LIMIT_P2P_BANDWIDTH", cap)
        .start()
        .await?;
    let local = cluster.scratch_dir().join("in");
    write_random_file(&local, chunks * CHUNK, chunks)?;
    cluster
        .dfs_ok([
            "create",
            arg(&local),
            name,
            "--chunk-size",
            "256KiB",
            "--replication",
            "1",
        ])
        .await?;
    for _ in 0..new_nodes {
        cluster.add_storage().await?;
    }
    cluster.wait_for_live_nodes(new_nodes + 1).await?;
    Ok((cluster, local))
}

#[tokio::test]
async fn seed_reaches_every_node_over_sendfile() -> Result<()> {
    let gcs = FakeGcs::start().await?;
    gcs.create_bucket("fleet-images").await?;
    let cluster = cluster_with_gcs(
        &gcs,
        5,
        &[("GCS_PARALLEL_DOWNLOADS", "3"), ("GCS_BATCH_CHUNKS", "2")],
    )
    .await?;
    let local = cluster.scratch_dir().join("object");
    let size = 21 * CHUNK / 4; // 5.25 chunks
    write_random_file(&local, size, 7)?;
    gcs.upload("fleet-images", "os/image.bin", std::fs::read(&local)?)
        .await?;

    let out = cluster
        .dfs_ok([
            "seed",
            "gs://fleet-images/os/image.bin",
            "images/os.bin",
            "--chunk-size",
            "256KiB",
        ])
        .await?;
    ensure!(
        out.contains("images/os.bin") && out.contains("5 more node"),
        "{out}"
    );

    // Every node holds every chunk, byte for byte, and the metadata says so.
    ensure!(cluster.check_replicas("images/os.bin", &local, 5).await? == 6);
    let copy = cluster.scratch_dir().join("copy");
    cluster
        .dfs_ok(["read", "images/os.bin", arg(&copy)])
        .await?;
    ensure!(
        std::fs::read(&copy)? == std::fs::read(&local)?,
        "read back differs"
    );
    ensure!(cluster.dfs_ok(["size", "images/os.bin"]).await?.trim() == size.to_string());

    // Four hops down the chain, every byte sent with sendfile().
    let sent = cluster
        .metric_total("dfs_peer_sendfile_bytes_total")
        .await?;
    let received = cluster
        .metric_total("dfs_peer_received_bytes_total")
        .await?;
    ensure!(
        sent == 4 * size && received == 4 * size,
        "sent {sent}, received {received}, size {size}"
    );
    ensure!(
        cluster
            .metric_total("dfs_peer_crc_mismatches_total")
            .await?
            == 0
    );
    // The head read each chunk from GCS once; each arrival timed.
    let (mut from_gcs, mut gcs_chunks) = (0, 0);
    for i in 0..5 {
        let scrape = cluster.storage_scrape(i).await?;
        from_gcs += scrape.count("dfs_bytes_received_total", &[("path", "gcs")])?;
        gcs_chunks += scrape.histogram_count(
            "dfs_chunk_receive_rate_bytes_per_second",
            &[("path", "gcs")],
        )?;
    }
    ensure!(
        from_gcs == size && gcs_chunks == 6,
        "{from_gcs} bytes in {gcs_chunks} chunks"
    );

    // The job is listed, done on all five nodes.
    let jobs = cluster.dfs_ok(["jobs"]).await?;
    ensure!(
        jobs.contains("done")
            && jobs.contains("5/5")
            && jobs.contains("gs://fleet-images/os/image.bin"),
        "{jobs}"
    );
    Ok(())
}

#[tokio::test]
async fn distribute_copies_a_file_to_every_node_and_then_has_nothing_to_do() -> Result<()> {
    let mut cluster = TestCluster::builder().storage_nodes(3).start().await?;
    let local = cluster.scratch_dir().join("in");
    write_random_file(&local, 7 * CHUNK + 99, 3)?;
    cluster
        .dfs_ok([
            "create",
            arg(&local),
            "tools/kit.tar",
            "--chunk-size",
            "256KiB",
            "--replication",
            "1",
        ])
        .await?;
    // Two more nodes join: they hold nothing yet.
    cluster.add_storage().await?;
    cluster.add_storage().await?;
    cluster.wait_for_live_nodes(5).await?;

    // Started through a second naming server on the same Redis, while the
    // nodes report to the first: job state lives in Redis, not in a process.
    let (_replica, replica_url) = cluster.naming_replica().await?;
    let out = cluster
        .dfs([
            "--naming-url",
            &replica_url,
            "distribute",
            "tools/kit.tar",
            "--no-wait",
        ])
        .await?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let job_id = String::from_utf8(out.stdout)?;
    let job_id = job_id.trim();
    let job = cluster.finished_job(job_id).await?;
    ensure!(job["state"] == "done", "{job}");
    ensure!(
        job_node_states(&job).iter().all(|(_, s)| s == "done"),
        "{job}"
    );
    cluster.check_replicas("tools/kit.tar", &local, 5).await?;

    let shown = cluster.dfs_ok(["jobs", job_id]).await?;
    ensure!(
        shown.contains("state:       done") && shown.matches(" done ").count() >= 1,
        "{shown}"
    );
    for node in cluster.storage_nodes() {
        ensure!(
            node.temp_files().is_empty(),
            "temp files left on {}",
            node.node_id()
        );
    }

    // Already everywhere: the second distribution finishes at once.
    let started = Instant::now();
    let out = cluster.dfs_ok(["distribute", "tools/kit.tar"]).await?;
    ensure!(out.contains("on 0 more node"), "{out}");
    ensure!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    Ok(())
}

#[tokio::test]
async fn a_corrupted_copy_is_refetched_never_forwarded() -> Result<()> {
    let mut cluster = TestCluster::builder().storage_nodes(3).start().await?;
    let local = cluster.scratch_dir().join("in");
    write_random_file(&local, 4 * CHUNK, 5)?;
    cluster
        .dfs_ok([
            "create",
            arg(&local),
            "db/snapshot",
            "--chunk-size",
            "256KiB",
            "--replication",
            "3",
        ])
        .await?;
    // Chunk 0 rots on two of its three holders; the new node meets them
    // first (holders are asked in replica order).
    let record = cluster.file_record("db/snapshot").await?;
    let chunk0 = &record["chunks"][0];
    let chunk_id = chunk0["chunk_id"].as_str().context("chunk_id")?;
    for replica in chunk0["replicas"]
        .as_array()
        .context("replicas")?
        .iter()
        .take(2)
    {
        let i = cluster.storage_index(replica["node_id"].as_str().context("node_id")?)?;
        let path = cluster
            .storage(i)
            .chunk_path(chunk_id)
            .context("chunk file")?;
        let mut bytes = std::fs::read(&path)?;
        bytes[1000] ^= 0xff;
        std::fs::write(&path, bytes)?;
    }
    let fresh = cluster.add_storage().await?;
    cluster.wait_for_live_nodes(4).await?;

    cluster.dfs_ok(["distribute", "db/snapshot"]).await?;
    let mismatches = cluster
        .storage_metric(fresh, "dfs_peer_crc_mismatches_total")
        .await?;
    ensure!(
        mismatches == 2,
        "the new node saw {mismatches} CRC mismatches, not 2"
    );
    let path = cluster
        .storage(fresh)
        .chunk_path(chunk_id)
        .context("chunk 0 on the new node")?;
    let expected = &std::fs::read(&local)?[..usize::try_from(CHUNK)?];
    ensure!(
        std::fs::read(path)? == expected,
        "the new node stored bad bytes"
    );
    Ok(())
}

#[tokio::test]
async fn killing_a_middle_node_the_rest_complete() -> Result<()> {
    // 20 Mbit/s per sender: about 6 s for the file, time to kill a node.
    let (mut cluster, local) = one_holder("20m", 64, "big/model.bin", 4).await?;

    let job_id = cluster
        .dfs_ok(["distribute", "big/model.bin", "--no-wait"])
        .await?;
    let job_id = job_id.trim().to_owned();
    let path = format!("/distributions/{job_id}");
    let job = cluster.get_json(&path).await?;
    let chain: Vec<String> = job_node_states(&job).into_iter().map(|(n, _)| n).collect();
    ensure!(chain.len() == 4, "{job}");
    let victim = chain[1].clone();
    // Once the victim has a few chunks (and is forwarding them), kill it.
    wait_until(JOB_TIMEOUT, || async {
        let job = cluster.get_json(&path).await.unwrap_or_default();
        job["nodes"][1]["chunks_done"].as_u64().unwrap_or(0) >= 4
    })
    .await
    .context("the victim never got going")?;
    let victim_index = cluster.storage_index(&victim)?;
    cluster.stop_storage(victim_index).await?;

    let job = cluster.finished_job(&job_id).await?;
    eprintln!("{job:#}");
    ensure!(job["state"] == "done", "{job}");
    for (node, state) in job_node_states(&job) {
        let expected = if node == victim { "failed" } else { "done" };
        ensure!(state == expected, "{node} is {state}: {job}");
    }
    ensure!(
        job["nodes"][1]["error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{job}"
    );
    // Every survivor holds every chunk, byte for byte.
    let bytes = std::fs::read(&local)?;
    let record = cluster.file_record("big/model.bin").await?;
    for (i, node) in cluster.storage_nodes().iter().enumerate() {
        if i == victim_index {
            continue;
        }
        for chunk in record["chunks"].as_array().context("chunks")? {
            let index = usize::try_from(chunk["index"].as_u64().context("index")?)?;
            let id = chunk["chunk_id"].as_str().context("chunk_id")?;
            let path = node
                .chunk_path(id)
                .with_context(|| format!("chunk {index} missing on {}", node.node_id()))?;
            let start = index * usize::try_from(CHUNK)?;
            ensure!(std::fs::read(path)?[..] == bytes[start..start + usize::try_from(CHUNK)?]);
        }
    }
    Ok(())
}

#[tokio::test]
async fn object_crc_mismatch_fails_the_seed_and_commits_nothing() -> Result<()> {
    let gcs = FakeGcs::start().await?;
    gcs.create_bucket("rotten").await?;
    let cluster = cluster_with_gcs(&gcs, 2, &[]).await?;
    let data = vec![42u8; usize::try_from(3 * CHUNK)?];
    gcs.upload("rotten", "blob", data).await?;
    gcs.corrupt("rotten", "blob", CHUNK + 5, b"rot")?;

    let out = cluster
        .dfs([
            "seed",
            "gs://rotten/blob",
            "rotten/blob",
            "--chunk-size",
            "256KiB",
        ])
        .await?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(!out.status.success(), "seed of a corrupt object succeeded");
    ensure!(
        stderr.contains("CRC32C mismatch") && stderr.lines().count() == 1,
        "{stderr}"
    );
    let size = cluster.dfs(["size", "rotten/blob"]).await?;
    ensure!(!size.status.success(), "the name became visible");
    let jobs = cluster.get_json("/distributions").await?;
    ensure!(jobs["jobs"][0]["state"] == "failed", "{jobs}");
    // Watching the failed job shows its table and exits non-zero, why said.
    let job_id = jobs["jobs"][0]["job_id"].as_str().context("job_id")?;
    let out = cluster.dfs(["jobs", job_id, "--watch"]).await?;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    ensure!(!out.status.success(), "watching a failed job exited 0");
    ensure!(stdout.contains("state:       failed"), "{stdout}");
    ensure!(
        stderr.contains(&format!("distribution {job_id} failed")) && stderr.contains("CRC32C"),
        "{stderr}"
    );

    // A missing object fails before anything starts, with the reason.
    let out = cluster
        .dfs(["seed", "gs://rotten/nothing", "rotten/nothing"])
        .await?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success() && stderr.contains("not found"),
        "{stderr}"
    );
    Ok(())
}

#[tokio::test]
async fn the_p2p_cap_holds_the_sending_rate() -> Result<()> {
    // 16 Mbit/s = 2 MB/s from the one holder to the one new node.
    let (cluster, local) = one_holder("16m", 20, "capped", 1).await?;
    let size = std::fs::metadata(&local)?.len(); // 5 MiB: about 2.6 s at the cap

    let job_id = cluster
        .dfs_ok(["distribute", "capped", "--no-wait"])
        .await?;
    let job = cluster.finished_job(job_id.trim()).await?;
    ensure!(job["state"] == "done", "{job}");
    let took_ms = job["finished_at_ms"].as_u64().context("finished")?
        - job["created_at_ms"].as_u64().context("created")?;
    let ideal_ms = size * 1000 / 2_000_000;
    eprintln!("{size} bytes over one capped link: {took_ms} ms (ideal {ideal_ms} ms)");
    // Never faster than the cap allows (the throttle hands out no burst at a
    // job's start; 10 ms for rounding to milliseconds), and not much slower:
    // the chain's own overhead is small next to it.
    if took_ms + 10 < ideal_ms || took_ms > ideal_ms * 13 / 10 + 1000 {
        bail!("{size} bytes at 2 MB/s took {took_ms} ms; ideal {ideal_ms} ms");
    }
    Ok(())
}

#[tokio::test]
async fn a_seed_longer_than_the_pending_ttl_still_commits() -> Result<()> {
    let gcs = FakeGcs::start().await?;
    gcs.create_bucket("slow-bucket").await?;
    // Reading GCS at 8 Mbit/s takes about 3 s, three times the pending TTL.
    let cluster = TestCluster::builder()
        .storage_nodes(2)
        .naming_env("PENDING_TTL", "1s")
        .storage_env("STORAGE_EMULATOR_HOST", &gcs.url())
        .storage_env("TEST_ONLY_LIMIT_GCS_BANDWIDTH", "8m")
        .start()
        .await?;
    let local = cluster.scratch_dir().join("object");
    write_random_file(&local, 12 * CHUNK, 13)?;
    gcs.upload("slow-bucket", "slow.bin", std::fs::read(&local)?)
        .await?;
    cluster
        .dfs_ok([
            "seed",
            "gs://slow-bucket/slow.bin",
            "slow.bin",
            "--chunk-size",
            "256KiB",
        ])
        .await?;
    ensure!(cluster.check_replicas("slow.bin", &local, 2).await? == 12);
    Ok(())
}

#[tokio::test]
async fn a_node_pulls_every_chunk_over_one_connection() -> Result<()> {
    let (cluster, local) = one_holder("10g", 9, "pulled/once.bin", 1).await?;
    let before = cluster
        .storage_metric(0, "dfs_peer_connections_total")
        .await?;
    let requests = cluster.storage_metric(0, "dfs_peer_requests_total").await?;
    let out = cluster.dfs_ok(["distribute", "pulled/once.bin"]).await?;
    ensure!(out.contains("on 1 more node"), "{out}");
    cluster.check_replicas("pulled/once.bin", &local, 2).await?;
    let connections = cluster
        .storage_metric(0, "dfs_peer_connections_total")
        .await?
        - before;
    let requests = cluster.storage_metric(0, "dfs_peer_requests_total").await? - requests;
    ensure!(
        requests == 9,
        "the holder answered {requests} requests for 9 chunks"
    );
    ensure!(
        connections == 1,
        "the new node opened {connections} connections for 9 chunks"
    );
    Ok(())
}

#[tokio::test]
async fn json_logs_are_one_object_a_line_with_the_ids_of_their_work() -> Result<()> {
    let mut cluster = TestCluster::builder()
        .storage_nodes(1)
        .naming_env("LOG_FORMAT", "json")
        .storage_env("LOG_FORMAT", "json")
        // Request spans close with a debug event: each names its route.
        .naming_env("RUST_LOG", "info,tower_http=debug")
        .storage_env("RUST_LOG", "info")
        .capture_logs()
        .start()
        .await?;
    cluster.create_random("logged.bin", 3 * CHUNK, 1).await?;
    cluster.add_storage().await?;
    cluster.wait_for_live_nodes(2).await?;
    let job_id = cluster
        .dfs_ok(["distribute", "logged.bin", "--no-wait"])
        .await?;
    let job_id = job_id.trim();
    let job = cluster.finished_job(job_id).await?;
    ensure!(job["state"] == "done", "{job}");
    let file_id = cluster.file_record("logged.bin").await?["file_id"]
        .as_str()
        .context("file_id")?
        .to_owned();

    // The node's "distribution done" line sits in the job's span; the
    // naming server's report requests carry the job and the node.
    let logs = cluster.server_logs()?;
    let mut lines = Vec::new();
    for line in logs.lines().filter(|l| !l.trim().is_empty()) {
        let value: Value =
            serde_json::from_str(line).with_context(|| format!("not JSON: {line}"))?;
        ensure!(
            value["timestamp"].is_string() && value["level"].is_string(),
            "no timestamp or level: {line}"
        );
        lines.push(value);
    }
    let in_job_span = |v: &Value| {
        v["span"]["name"] == "distribution"
            && v["span"]["job_id"] == job_id
            && v["span"]["file_id"] == file_id.as_str()
            && v["span"]["node_id"].is_string()
    };
    ensure!(
        lines
            .iter()
            .any(|v| in_job_span(v) && v["message"] == "distribution done on this node"),
        "no 'done' line in the job's span:\n{logs}"
    );
    ensure!(
        lines.iter().any(|v| v["span"]["name"] == "http"
            && v["span"]["job_id"] == job_id
            && v["span"]["node_id"].is_string()),
        "no naming request line with the job and node ids:\n{logs}"
    );
    Ok(())
}

#[tokio::test]
async fn metrics_count_the_bytes_chunks_and_requests_of_the_work_done() -> Result<()> {
    const CHUNKS: u64 = 3;
    let (mut cluster, local) = one_holder("1000m", CHUNKS, "measured.bin", 0).await?;
    let size = CHUNKS * CHUNK;
    let scrape = cluster.storage_scrape(0).await?;
    let path = |p: &'static str| [("path", p)];
    ensure!(scrape.count("dfs_bytes_received_total", &path("http"))? == size);
    ensure!(
        scrape.histogram_count("dfs_chunk_receive_rate_bytes_per_second", &path("http"))? == CHUNKS
    );
    ensure!(scrape.count("dfs_chunks", &[])? == CHUNKS);
    ensure!(scrape.count("dfs_stored_bytes", &[])? == size);
    ensure!(scrape.count("dfs_disk_capacity_bytes", &[])? > 0);

    // GETs: each one observation of the chunk route, its bytes sent.
    const GETS: u64 = 4;
    let record = cluster.file_record("measured.bin").await?;
    let chunk_id = record["chunks"][0]["chunk_id"]
        .as_str()
        .context("chunk_id")?;
    let url = format!("{}/chunks/{chunk_id}", cluster.storage(0).url());
    let gets = |scrape: &dfs_tests::Scrape| {
        scrape.histogram_count(
            "dfs_http_request_duration_seconds",
            &[
                ("method", "GET"),
                ("route", "/chunks/{chunk_id}"),
                ("status", "206"),
            ],
        )
    };
    let before = cluster.storage_scrape(0).await?;
    for _ in 0..GETS {
        let response = cluster
            .http()
            .get(&url)
            .header("range", "bytes=0-4095")
            .send()
            .await?;
        ensure!(response.status() == 206, "{}", response.status());
        response.bytes().await?;
    }
    let after = cluster.storage_scrape(0).await?;
    ensure!(gets(&after)? - gets(&before)? == GETS);
    let sent_http = |s: &dfs_tests::Scrape| s.count("dfs_bytes_sent_total", &path("http"));
    ensure!(sent_http(&after)? - sent_http(&before)? == GETS * 4096);

    // A distribution to a new node: peer bytes out on one, in on the other.
    cluster.add_storage().await?;
    cluster.wait_for_live_nodes(2).await?;
    cluster.dfs_ok(["distribute", "measured.bin"]).await?;
    cluster.check_replicas("measured.bin", &local, 2).await?;
    let receiver = cluster.storage_scrape(1).await?;
    ensure!(receiver.count("dfs_bytes_received_total", &path("peer"))? == size);
    ensure!(
        receiver.histogram_count("dfs_chunk_receive_rate_bytes_per_second", &path("peer"))?
            == CHUNKS
    );
    ensure!(
        receiver.count(
            "dfs_distribution_jobs_finished_total",
            &[("outcome", "done")]
        )? == 1
    );
    ensure!(receiver.count("dfs_distribution_jobs_running", &[])? == 0);
    let sender = cluster.storage_scrape(0).await?;
    ensure!(sender.count("dfs_bytes_sent_total", &path("peer"))? == size);
    ensure!(sender.count("dfs_peer_sendfile_bytes_total", &[])? == size);
    let naming = cluster.naming_scrape().await?;
    ensure!(naming.count("dfs_distribution_jobs_started_total", &[])? == 1);
    ensure!(naming.count("dfs_distribution_jobs", &[("state", "done")])? == 1);
    Ok(())
}

#[tokio::test]
async fn jobs_watch_follows_each_node_until_the_job_ends() -> Result<()> {
    // 8 chunks at 8 Mbit/s (1 MB/s) a hop: about 2 s, many polls.
    const CHUNKS: u64 = 8;
    let (cluster, local) = one_holder("8m", CHUNKS, "watched", 2).await?;
    cluster.wait_for_live_nodes(3).await?;
    let job_id = cluster
        .dfs_ok(["distribute", "watched", "--no-wait"])
        .await?;
    let job_id = job_id.trim();
    // On a terminal (a pseudo-terminal through script(1)): a bar per node.
    let dfs = dfs_tests::bin_path("dfs");
    let on_terminal = tokio::process::Command::new("script")
        .args(["-q", "-e", "-c"])
        .arg(format!("{} jobs {job_id} --watch", dfs.display()))
        .arg("/dev/null")
        .env("DFS_NAMING_URL", cluster.naming_url())
        .env("TERM", "xterm")
        .env("COLUMNS", "120")
        .output();
    // Not a terminal: a line each time a node's state or chunk count moves.
    let (on_terminal, out) = tokio::join!(on_terminal, cluster.dfs_ok(["jobs", job_id, "--watch"]));
    let (on_terminal, out) = (on_terminal.context("script(1), from util-linux")?, out?);
    let screen = String::from_utf8_lossy(&on_terminal.stdout);
    ensure!(on_terminal.status.success(), "{screen}");
    let job = cluster
        .get_json(&format!("/distributions/{job_id}"))
        .await?;
    ensure!(job["state"] == "done", "{job}");
    let nodes: Vec<&str> = job["nodes"]
        .as_array()
        .context("nodes")?
        .iter()
        .filter_map(|n| n["node_id"].as_str())
        .collect();
    ensure!(nodes.len() == 2, "{job}");
    for node in &nodes {
        // NODE_ID CHUNKS/TOTAL BYTES STATE RATE
        let seen: Vec<(u64, String)> = out
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                if fields.first() != Some(node) {
                    return None;
                }
                let done = fields.get(1)?.split('/').next()?.parse().ok()?;
                Some((done, fields.get(3)?.to_string()))
            })
            .collect();
        ensure!(seen.len() >= 3, "few progress lines for {node}:\n{out}");
        ensure!(
            seen.windows(2).all(|w| w[0].0 <= w[1].0),
            "chunk counts went back for {node}:\n{out}"
        );
        ensure!(
            seen.last() == Some(&(CHUNKS, "done".to_owned())),
            "{node} did not end done:\n{out}"
        );
    }
    ensure!(out.contains("state:       done"), "{out}");
    ensure!(out.contains("on 2 more node(s)"), "{out}");
    for node in &nodes {
        ensure!(screen.contains(&node[..12]), "no bar for {node}:\n{screen}");
    }
    // Bars are redrawn in place as they fill, and end with the table.
    ensure!(
        screen.contains("\u{1b}[") && screen.contains("=>"),
        "{screen}"
    );
    ensure!(screen.contains("on 2 more node(s)"), "{screen}");
    cluster.check_replicas("watched", &local, 3).await?;
    Ok(())
}
