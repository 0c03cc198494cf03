//! The operators' page (`/ui`) in a real browser: headless Chromium
//! (Debian's `chromium`) loads it from a running cluster while a capped
//! distribution is under way, runs its script, and hands back the DOM it
//! built (`--dump-dom`) or a screenshot. The page must list the nodes and
//! the job, and a node's progress must move between two looks. Where a
//! user types (the token prompt), `ui/enter_token.py` drives Chromium over
//! the DevTools protocol.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use dfs_tests::{TestCluster, wait_until, write_random_file};
use tokio::process::Command;

const CHUNK: u64 = 256 * 1024;
/// Longest a browser run may take.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(60);

/// Headless Chromium on `url`, with `args` (`--dump-dom`, `--screenshot=…`);
/// its stdout. The page's timers get `budget_ms` of (virtual) time to run.
async fn chromium(url: &str, args: &[&str], budget_ms: u32, profile: &Path) -> Result<String> {
    let budget = format!("--virtual-time-budget={budget_ms}");
    let profile = format!("--user-data-dir={}", profile.display());
    let run = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-dev-shm-usage",
            &budget,
            &profile,
        ])
        .args(args)
        .arg(url)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(BROWSER_TIMEOUT, run)
        .await
        .context("chromium took too long")?
        .context("cannot run chromium (apt-get install chromium)")?;
    ensure!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// The bytes each node of job `job_id` shows on the page: the
/// `data-bytes` of the rows in the job's box, by `data-node`.
fn job_rows(dom: &str, job_id: &str) -> Vec<(String, u64)> {
    let Some(start) = dom.find(&format!("data-job=\"{job_id}\"")) else {
        return Vec::new();
    };
    let job = &dom[start..];
    let job = &job[..job.find("</table>").unwrap_or(job.len())];
    job.split("<tr ")
        .skip(1)
        .filter_map(|row| {
            let attr = |name: &str| {
                let from = row.find(&format!("{name}=\""))? + name.len() + 2;
                Some(row[from..from + row[from..].find('"')?].to_owned())
            };
            Some((attr("data-node")?, attr("data-bytes")?.parse().ok()?))
        })
        .collect()
}

fn screenshot_path() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("dfs-ui.png")
}

#[tokio::test]
async fn the_page_shows_nodes_files_and_a_job_moving() -> Result<()> {
    // 16 chunks of 256 KiB at 4 Mbit/s a hop, from one holder to four new
    // nodes: about 9.5 s of distribution.
    let mut cluster = TestCluster::builder()
        .storage_nodes(1)
        .storage_env("TEST_ONLY_LIMIT_P2P_BANDWIDTH", "4m")
        .start()
        .await?;
    let local = cluster.scratch_dir().join("model.bin");
    write_random_file(&local, 16 * CHUNK, 11)?;
    let path = local.to_str().context("path")?;
    cluster
        .dfs_ok([
            "create",
            path,
            "models/llm.bin",
            "--chunk-size",
            "256KiB",
            "--replication",
            "1",
        ])
        .await?;
    for _ in 0..4 {
        cluster.add_storage().await?;
    }
    cluster.wait_for_live_nodes(5).await?;
    let job_id = cluster
        .dfs_ok(["distribute", "models/llm.bin", "--no-wait"])
        .await?;
    let job_id = job_id.trim().to_owned();
    let job_url = format!("/distributions/{job_id}");
    // Under way: some node has bytes.
    wait_until(Duration::from_secs(20), || async {
        let job = cluster.get_json(&job_url).await;
        job.is_ok_and(|job| job["bytes_done"].as_u64().unwrap_or(0) > 0)
    })
    .await?;

    // Heartbeats carry each node's recent peer rates: the holder sends,
    // the new nodes receive.
    wait_until(Duration::from_secs(20), || async {
        let nodes = cluster.get_json("/nodes").await;
        nodes.is_ok_and(|nodes| {
            let rate = |field: &str| {
                nodes["nodes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|n| n[field].as_u64().unwrap_or(0) > 0)
                    .count()
            };
            rate("peer_send_bytes_per_sec") >= 1 && rate("peer_receive_bytes_per_sec") >= 1
        })
    })
    .await?;

    let profile = tempfile::tempdir()?;
    let page = format!("{}/ui", cluster.naming_url());
    let first = chromium(&page, &["--dump-dom"], 2000, profile.path()).await?;
    for node in cluster.storage_nodes() {
        ensure!(
            first.contains(&format!("data-node=\"{}\"", node.node_id())),
            "node {} is not on the page:\n{first}",
            node.node_id()
        );
    }
    ensure!(first.contains("5 of 5 nodes alive"), "{first}");
    // No token on this cluster: no prompt.
    ensure!(first.contains("id=\"token-form\" hidden"), "{first}");
    ensure!(first.contains("data-file=\"models/llm.bin\""), "{first}");
    let before = job_rows(&first, &job_id);
    ensure!(
        before.len() == 4,
        "the job's nodes are not on the page:\n{first}"
    );
    let shown: u64 = before.iter().map(|(_, b)| b).sum();

    // Wait until the API says the job moved past what the page showed.
    wait_until(Duration::from_secs(20), || async {
        let job = cluster.get_json(&job_url).await;
        job.is_ok_and(|job| job["bytes_done"].as_u64().unwrap_or(0) > shown)
    })
    .await?;
    let shot = screenshot_path();
    let shot_arg = format!("--screenshot={}", shot.display());
    chromium(
        &page,
        &[&shot_arg, "--window-size=1400,1000"],
        2000,
        profile.path(),
    )
    .await?;
    ensure!(std::fs::metadata(&shot)?.len() > 10_000, "empty screenshot");
    eprintln!("screenshot of /ui during the job: {}", shot.display());
    let second = chromium(&page, &["--dump-dom"], 2000, profile.path()).await?;
    let after = job_rows(&second, &job_id);
    let moved = before
        .iter()
        .any(|(node, then)| after.iter().any(|(other, now)| other == node && now > then));
    ensure!(moved, "no node's progress moved: {before:?} then {after:?}");

    // Once it is done: its total time and rate; every copy healthy.
    wait_until(Duration::from_secs(30), || async {
        let job = cluster.get_json(&job_url).await;
        job.is_ok_and(|job| job["state"] == "done")
    })
    .await?;
    let done = chromium(&page, &["--dump-dom"], 2000, profile.path()).await?;
    ensure!(
        done.contains(" · took "),
        "no total time for the job:\n{done}"
    );
    // The file search by name prefix, from the page's address.
    let other = format!("{page}?prefix=datasets/");
    let none = chromium(&other, &["--dump-dom"], 1000, profile.path()).await?;
    ensure!(
        none.contains("0 file(s)") && !none.contains("data-file="),
        "{none}"
    );
    let some = chromium(
        &format!("{page}?prefix=models/"),
        &["--dump-dom"],
        1000,
        profile.path(),
    )
    .await?;
    ensure!(some.contains("data-file=\"models/llm.bin\""), "{some}");

    // A holder gone: the file's chunks stand out as under-replicated.
    let record = cluster.file_record("models/llm.bin").await?;
    let holder = record["chunks"][0]["replicas"][0]["node_id"]
        .as_str()
        .context("replica")?
        .to_owned();
    let record_replication = record["replication"].as_u64().context("replication")?;
    ensure!(record_replication == 5, "{record}");
    cluster
        .stop_storage(cluster.storage_index(&holder)?)
        .await?;
    wait_until(Duration::from_secs(20), || async {
        cluster.live_nodes().await.is_ok_and(|live| live == 4)
    })
    .await?;
    let degraded = chromium(&page, &["--dump-dom"], 2000, profile.path()).await?;
    ensure!(degraded.contains("class=\"under\""), "{degraded}");
    ensure!(degraded.contains("16 chunk(s) below 5"), "{degraded}");
    Ok(())
}

#[tokio::test]
async fn the_page_asks_for_the_token_and_says_why() -> Result<()> {
    let cluster = TestCluster::builder()
        .storage_nodes(1)
        .token("ui-secret")
        .start()
        .await?;
    let profile = tempfile::tempdir()?;
    let page = format!("{}/ui", cluster.naming_url());
    let dom = chromium(&page, &["--dump-dom"], 1000, profile.path()).await?;
    ensure!(dom.contains("this cluster needs a token"), "{dom}");
    ensure!(
        !dom.contains("id=\"token-form\" hidden"),
        "no token prompt:\n{dom}"
    );

    // A user types the token: the page keeps it for the tab, sends it, and
    // lists the node. A wrong one is refused in words.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("ui/enter_token.py");
    for (token, works) in [("ui-secret", true), ("guess", false)] {
        let profile = tempfile::tempdir()?;
        let run = Command::new("python3")
            .arg(&script)
            .args([page.as_str(), token])
            .arg(profile.path())
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(BROWSER_TIMEOUT, run)
            .await
            .context("the DevTools driver took too long")??;
        ensure!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let state: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        ensure!(state["stored"] == true, "{state}");
        if works {
            ensure!(
                state["rows"] == 1 && state["prompt_hidden"] == true && state["error"] == "",
                "{state}"
            );
        } else {
            ensure!(
                state["rows"] == 0
                    && state["error"]
                        .as_str()
                        .is_some_and(|e| e.contains("the token was refused")),
                "{state}"
            );
        }
    }
    Ok(())
}
