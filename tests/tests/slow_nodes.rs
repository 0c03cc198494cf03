//! Placement that uses what the fleet knows: storage nodes report how fast
//! they send chunks to peers, and a distribution puts the ones much slower
//! than the rest at the chain's tail, where they hold no one up; a node
//! that slows down during a job is pulled around.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use dfs_tests::{TestCluster, job_nodes, wait_until, write_random_file};
use serde_json::{Value, json};

const CHUNK: u64 = 1024 * 1024;
const CHUNKS: u64 = 16;
const CAP: &str = "TEST_ONLY_LIMIT_P2P_BANDWIDTH";
/// Every node's sending cap, and the slow nodes' (a quarter of it).
const FAST: &str = "100m";
const SLOW: &str = "25m";
/// The fast nodes' link, bytes per second.
const B: f64 = 100e6 / 8.0;

fn arg(path: &Path) -> &str {
    path.to_str().unwrap_or_default()
}

/// Distributes file `name`; returns the job once it is done.
async fn distribute(cluster: &TestCluster, name: &str) -> Result<Value> {
    let job = cluster
        .post_json("/distributions", &json!({ "name": name }))
        .await?;
    let job = cluster
        .finished_job(job["job_id"].as_str().context("job_id")?)
        .await?;
    ensure!(job["state"] == "done", "{job}");
    Ok(job)
}

/// The job's nodes in chain order, with the seconds each took.
fn chain(job: &Value) -> Vec<(String, f64)> {
    job_nodes(job, |n| {
        let id = n["node_id"].as_str().unwrap_or_default().to_owned();
        (id, n["elapsed_ms"].as_f64().unwrap_or(f64::NAN) / 1e3)
    })
}

#[tokio::test]
async fn slow_senders_go_to_the_tail_and_hold_no_one_up() -> Result<()> {
    // One node holds both files; 11 empty nodes join; all send at 100 Mbit/s.
    let mut cluster = TestCluster::builder()
        .storage_nodes(1)
        .storage_env(CAP, FAST)
        .start()
        .await?;
    let size = CHUNKS * CHUNK;
    let mut files = Vec::new();
    for (seed, name) in [(31, "warm-up"), (32, "model")] {
        let local = cluster.scratch_dir().join(name);
        write_random_file(&local, size, seed)?;
        cluster
            .dfs_ok([
                "create",
                arg(&local),
                name,
                "--chunk-size",
                "1MiB",
                "--replication",
                "1",
            ])
            .await?;
        files.push(local);
    }
    for _ in 0..11 {
        cluster.add_storage().await?;
    }
    cluster.wait_for_live_nodes(12).await?;

    // The two nodes a plan without measured rates puts first (the lowest
    // ids) send at a quarter of the others' rate.
    let mut joined: Vec<usize> = (1..12).collect();
    joined.sort_by(|&a, &b| {
        cluster
            .storage(a)
            .node_id()
            .cmp(cluster.storage(b).node_id())
    });
    let slow = [joined[0], joined[1]];
    for &i in &slow {
        cluster.restart_storage_with(i, &[(CAP, SLOW)]).await?;
    }
    let slow_ids: Vec<String> = slow
        .iter()
        .map(|&i| cluster.storage(i).node_id().to_owned())
        .collect();
    let urls: Vec<String> = slow
        .iter()
        .map(|&i| cluster.storage(i).url().to_owned())
        .collect();
    wait_until(Duration::from_secs(30), || async {
        let nodes = cluster.get_json("/nodes").await.unwrap_or_default();
        let listed = nodes["nodes"].as_array().cloned().unwrap_or_default();
        urls.iter().all(|url| {
            listed
                .iter()
                .any(|n| n["url"] == url.as_str() && n["alive"] == true)
        }) && listed.iter().filter(|n| n["alive"] == true).count() == 12
    })
    .await
    .context("the restarted nodes never re-registered")?;

    // The first job: no node has sent anything yet, so the chain is in id
    // order, the slow nodes first, and every node below runs at their pace.
    let first = chain(&distribute(&cluster, "warm-up").await?);
    ensure!(
        first.len() == 11 && first[..2].iter().map(|n| &n.0).eq(slow_ids.iter()),
        "first chain: {first:?}"
    );

    // Now the nodes report their send rates: the slow ones a quarter of the rest.
    wait_until(Duration::from_secs(10), || async {
        let nodes = cluster.get_json("/nodes").await.unwrap_or_default();
        let listed = nodes["nodes"].as_array().cloned().unwrap_or_default();
        let rate = |id: &str| {
            listed
                .iter()
                .find(|n| n["node_id"] == id)
                .and_then(|n| n["peer_send_rate_bytes_per_sec"].as_u64())
                .unwrap_or(0)
        };
        slow_ids
            .iter()
            .all(|id| rate(id) > 0 && (rate(id) as f64) < B / 2.0)
    })
    .await
    .context("the slow nodes never reported their send rates")?;

    // The second job puts them last: every fast node finishes within 1.2 ×
    // what the chain allows, S/B + (k−1)·c/B.
    let second = chain(&distribute(&cluster, "model").await?);
    ensure!(
        second.len() == 11 && second[9..].iter().all(|n| slow_ids.contains(&n.0)),
        "second chain: {second:?}"
    );
    let bound = (size as f64 + 10.0 * CHUNK as f64) / B;
    for (position, (node, took)) in second[..9].iter().enumerate() {
        ensure!(
            *took <= 1.2 * bound,
            "fast node {node} at position {position} took {took:.2} s, bound {bound:.2} s: {second:?}"
        );
    }
    let slowest_fast = |c: &[(String, f64)]| {
        c.iter()
            .filter(|n| !slow_ids.contains(&n.0))
            .map(|n| n.1)
            .fold(0.0, f64::max)
    };
    eprintln!(
        "fast nodes done in {:.2} s with the slow nodes first, {:.2} s with them last \
         (S/B + (k−1)·c/B = {bound:.2} s)",
        slowest_fast(&first),
        slowest_fast(&second),
    );
    ensure!(
        cluster.check_replicas("model", &files[1], 12).await? == CHUNKS as usize,
        "model is not whole on every node"
    );
    Ok(())
}

#[tokio::test]
async fn a_node_slowed_during_a_job_is_pulled_around() -> Result<()> {
    // One node holds the file; five empty nodes form the chain, all
    // sending at 100 Mbit/s.
    let mut cluster = TestCluster::builder()
        .storage_nodes(1)
        .storage_env(CAP, FAST)
        .start()
        .await?;
    let chunks = 48;
    let size = chunks * CHUNK;
    let local = cluster.scratch_dir().join("dataset");
    write_random_file(&local, size, 33)?;
    cluster
        .dfs_ok([
            "create",
            arg(&local),
            "dataset",
            "--chunk-size",
            "1MiB",
            "--replication",
            "1",
        ])
        .await?;
    for _ in 0..5 {
        cluster.add_storage().await?;
    }
    cluster.wait_for_live_nodes(6).await?;

    let job = cluster
        .post_json("/distributions", &json!({ "name": "dataset" }))
        .await?;
    let job_id = job["job_id"].as_str().context("job_id")?.to_owned();
    let order = job_nodes(&job, |n| {
        n["node_id"].as_str().unwrap_or_default().to_owned()
    });
    ensure!(order.len() == 5, "chain: {order:?}");
    // The second node of the chain drops to a 25th of its rate once a few
    // chunks went by: without a change of plan, the three nodes below it
    // would get the rest of the file at 4 Mbit/s.
    let slowed = order[1].clone();
    let node = cluster
        .storage_nodes()
        .iter()
        .find(|n| n.node_id() == slowed)
        .context("the slowed node is not in the cluster")?;
    wait_until(Duration::from_secs(30), || async {
        let job = cluster
            .get_json(&format!("/distributions/{job_id}"))
            .await
            .unwrap_or_default();
        job_nodes(&job, |n| {
            (n["node_id"] == slowed.as_str(), n["chunks_done"].as_u64())
        })
        .iter()
        .any(|&(is, done)| is && done.unwrap_or(0) >= 4)
    })
    .await
    .context("the second node never got going")?;
    let slow_rate = 4e6 / 8.0;
    let set_cap = |cap: &'static str| {
        cluster
            .authorized(
                cluster
                    .http()
                    .put(format!("{}/test-only/p2p-bandwidth", node.url()))
                    .body(cap),
            )
            .send()
    };
    let refused = set_cap("slow").await?;
    ensure!(refused.status() == 400, "a bad cap: {}", refused.status());
    let reply = set_cap("4m").await?;
    ensure!(reply.status() == 204, "setting the cap: {}", reply.status());

    let job = cluster.finished_job(&job_id).await?;
    ensure!(job["state"] == "done", "{job}");
    let nodes = job_nodes(&job, |n| {
        (
            n["node_id"].as_str().unwrap_or_default().to_owned(),
            n["bypassed"] == true,
            n["elapsed_ms"].as_f64().unwrap_or(f64::NAN) / 1e3,
        )
    });
    eprintln!("chain after the job (node, bypassed, seconds): {nodes:?}");
    // It, and only it, is pulled around.
    let bypassed: Vec<&String> = nodes.iter().filter(|n| n.1).map(|n| &n.0).collect();
    ensure!(
        bypassed == [&slowed],
        "bypassed {bypassed:?}, slowed {slowed}: {job}"
    );
    // The nodes below it did not wait for the slowed link: it alone
    // would have taken a quarter of this to send them the file.
    let slow_link = size as f64 / slow_rate;
    for (id, _, took) in &nodes[2..] {
        ensure!(
            *took < slow_link / 4.0,
            "node {id} took {took:.1} s; the slowed link needs {slow_link:.0} s for the file: {nodes:?}"
        );
    }
    ensure!(
        cluster.check_replicas("dataset", &local, 6).await? == chunks as usize,
        "the file is not whole on every node"
    );
    Ok(())
}
