//! Distribution jobs seen from the naming server alone: planning, bad
//! requests, hand-out failures, node reports and the replicas they add.
//! The storage side of the chain is tested in `tests/distribution.rs`.

use anyhow::{Context, Result};
use dfs_tests::job_node_states;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::support::{Api, cluster, error_text, id, rejected};

#[tokio::test]
async fn bad_requests_start_nothing() -> Result<()> {
    let cluster = cluster(&[]).await?;
    let api = Api::new(&cluster);
    api.register_nodes("n", 3).await?;
    api.upload("there", 100, 3).await?;

    let post =
        |body: Value, status| rejected(&api, Method::POST, "/distributions", Some(body), status);
    post(json!({"name": "nothing-here"}), StatusCode::NOT_FOUND).await?;
    post(json!({"name": ""}), StatusCode::BAD_REQUEST).await?;
    post(json!({"name": "a/../b"}), StatusCode::BAD_REQUEST).await?;
    post(json!({"nome": "there"}), StatusCode::BAD_REQUEST).await?;
    post(
        json!({"name": "there", "chunk_size": 65536}),
        StatusCode::BAD_REQUEST,
    )
    .await?;
    for source in [
        "http://bucket/object",
        "gs://bucket",
        "gs:///object",
        "gs://bucket/",
    ] {
        let text = post(
            json!({"name": "new", "source": source}),
            StatusCode::BAD_REQUEST,
        )
        .await?;
        assert!(text.contains("gs://"), "{text}");
    }
    let text = post(
        json!({"name": "there", "source": "gs://bucket/object"}),
        StatusCode::CONFLICT,
    )
    .await?;
    assert!(text.contains("already exists"), "{text}");
    post(
        json!({"name": "new", "source": "gs://bucket/object", "chunk_size": 1}),
        StatusCode::BAD_REQUEST,
    )
    .await?;

    rejected(
        &api,
        Method::GET,
        "/distributions/nope",
        None,
        StatusCode::NOT_FOUND,
    )
    .await?;
    let report = json!({"node_id": "n0", "state": "done", "chunks_done": 0, "bytes_done": 0, "elapsed_ms": 1});
    rejected(
        &api,
        Method::POST,
        "/distributions/nope/progress",
        Some(report),
        StatusCode::NOT_FOUND,
    )
    .await?;
    let (status, body) = api.get("/distributions").await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["jobs"], json!([]), "nothing may have started");
    Ok(())
}

#[tokio::test]
async fn a_file_already_everywhere_is_done_at_once() -> Result<()> {
    let cluster = cluster(&[]).await?;
    let api = Api::new(&cluster);
    api.register_nodes("n", 3).await?;
    api.upload("everywhere", 200_000, 3).await?;

    let (status, job) = api
        .post("/distributions", json!({"name": "everywhere"}))
        .await?;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    assert_eq!(job["state"], "done");
    assert_eq!(job["nodes"], json!([]));
    assert_eq!(job["source"], "dfs");
    assert_eq!(
        (job["size"].as_u64(), job["chunk_count"].as_u64()),
        (Some(200_000), Some(4))
    );
    let job_id = job["job_id"].as_str().context("job_id")?;

    let (status, again) = api.get(&format!("/distributions/{job_id}")).await?;
    assert_eq!((status, &again["state"]), (StatusCode::OK, &json!("done")));
    let listed = api.get("/distributions").await?.1;
    assert_eq!(listed["jobs"][0]["job_id"], job_id);
    Ok(())
}

#[tokio::test]
async fn reports_drive_node_states_and_add_replicas() -> Result<()> {
    let cluster = cluster(&[]).await?;
    let api = Api::new(&cluster);
    api.register_nodes("old", 2).await?;
    let record = api.upload("spread", 150_000, 2).await?;
    let file_id = id(&record);
    // Two nodes join; their URLs do not resolve, so handing out fails.
    api.register_nodes("new", 2).await?;

    let (status, job) = api
        .post("/distributions", json!({"name": "spread"}))
        .await?;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    let job_id = job["job_id"].as_str().context("job_id")?.to_owned();
    let chain: Vec<String> = job_node_states(&job).into_iter().map(|(n, _)| n).collect();
    let mut sorted = chain.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        ["new0", "new1"],
        "only nodes lacking the file form the chain"
    );
    for node in &job["nodes"].as_array().context("nodes")?.clone() {
        assert_eq!(node["state"], "failed", "{node}");
        assert!(
            node["error"]
                .as_str()
                .unwrap_or_default()
                .contains("hand out"),
            "{node}"
        );
    }
    assert_eq!(job["state"], "failed");
    error_text(&json!({"error": job["error"]}))?;

    // A node outside the chain may not report.
    let report = |node: &str, state: &str, chunks: u64| {
        json!({"node_id": node, "state": state, "chunks_done": chunks,
               "bytes_done": chunks * 65_536, "elapsed_ms": 500})
    };
    let path = format!("/distributions/{job_id}/progress");
    rejected(
        &api,
        Method::POST,
        &path,
        Some(report("old0", "done", 3)),
        StatusCode::BAD_REQUEST,
    )
    .await?;
    rejected(
        &api,
        Method::POST,
        &path,
        Some(json!({"node_id": "new0"})),
        StatusCode::BAD_REQUEST,
    )
    .await?;

    // Chain nodes report: running, then done; each done node becomes a replica.
    let (status, ack) = api.post(&path, report(&chain[0], "running", 1)).await?;
    assert_eq!(
        (status, &ack["state"]),
        (StatusCode::OK, &json!("running")),
        "{ack}"
    );
    let job = api.get(&format!("/distributions/{job_id}")).await?.1;
    assert_eq!(job["nodes"][0]["chunks_done"], 1);
    assert_eq!(job["nodes"][0]["throughput_bytes_per_sec"], 131_072);

    api.post(&path, report(&chain[0], "done", 3)).await?;
    let (_, ack) = api.post(&path, report(&chain[1], "done", 3)).await?;
    assert_eq!(ack["state"], "done");
    let job = api.get(&format!("/distributions/{job_id}")).await?.1;
    assert_eq!(
        job_node_states(&job)
            .iter()
            .filter(|(_, s)| s == "done")
            .count(),
        2
    );
    assert!(job["finished_at_ms"].as_u64().is_some(), "{job}");
    assert_eq!(job["bytes_done"], 6 * 65_536);

    let record = api.get(&format!("/files/{file_id}")).await?.1;
    for chunk in record["chunks"].as_array().context("chunks")? {
        let mut replicas: Vec<&str> = chunk["replicas"]
            .as_array()
            .context("replicas")?
            .iter()
            .filter_map(|r| r["node_id"].as_str())
            .collect();
        replicas.sort_unstable();
        assert_eq!(replicas, ["new0", "new1", "old0", "old1"], "{chunk}");
    }

    // Now everywhere: the next distribution has nothing to do.
    let again = api
        .post("/distributions", json!({"name": "spread"}))
        .await?
        .1;
    assert_eq!(
        (&again["state"], &again["nodes"]),
        (&json!("done"), &json!([]))
    );
    Ok(())
}
