//! Naming-server HTTP API, end to end: a real redis-server and the real
//! naming-server binary. Storage nodes are simulated by registering and
//! heartbeating through the API itself, so these tests need no storage server.

#[path = "naming_api/big_jobs.rs"]
mod big_jobs;
#[path = "naming_api/cleanup.rs"]
mod cleanup;
#[path = "naming_api/distributions.rs"]
mod distributions;
#[path = "naming_api/files.rs"]
mod files;
#[path = "naming_api/placement.rs"]
mod placement;
#[path = "naming_api/round_trips.rs"]
mod round_trips;
#[path = "naming_api/support.rs"]
mod support;

use std::collections::{HashMap, HashSet};

use anyhow::{Context, Result, ensure};
use dfs_tests::wait_until;
use reqwest::{Method, StatusCode};
use serde_json::json;
use support::{
    Api, HEARTBEAT_FREE, KIB64, REGISTERED_FREE, WAIT, cluster, error_text, id, rejected,
};

#[tokio::test]
async fn nodes_register_heartbeat_and_go_dead() -> Result<()> {
    let cluster = cluster(&[("HEARTBEAT_TIMEOUT", "1s")]).await?;
    let api = Api::new(&cluster);
    let reply = api.register("alpha").await?;
    assert_eq!(reply["heartbeat_interval_ms"], 333);
    api.register("beta").await?;

    let (status, body) = api.get("/nodes").await?;
    assert_eq!(status, StatusCode::OK);
    let nodes = body["nodes"].as_array().context("nodes")?;
    assert_eq!(nodes.len(), 2);
    assert!(
        nodes.iter().all(|n| n["alive"] == true
            && n["free_bytes"] == REGISTERED_FREE
            && n["full"] == false)
    );

    // A heartbeat updates the stats; re-registering updates the url.
    let (status, body) = api.heartbeat("alpha", &[]).await?;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"delete": [], "verify": []}))
    );
    let moved = json!({"node_id": "beta", "url": "http://moved.invalid:1", "tcp_addr": "moved.invalid:2",
                       "capacity_bytes": 9, "free_bytes": 8, "chunk_count": 7});
    api.expect(
        Method::POST,
        "/register_storage",
        Some(moved),
        StatusCode::OK,
    )
    .await?;
    let body = api.get("/nodes").await?.1;
    let beta = &body["nodes"][1];
    assert_eq!(
        (beta["node_id"].as_str(), beta["url"].as_str()),
        (Some("beta"), Some("http://moved.invalid:1"))
    );
    assert_eq!(body["nodes"][0]["free_bytes"], HEARTBEAT_FREE);

    // Unknown node: 404, so it registers again. Bad registrations: 400.
    let (status, body) = api.heartbeat("nobody", &[]).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    error_text(&body)?;
    for bad in [
        json!({"node_id": "a/b", "url": "http://x", "tcp_addr": "x:1", "capacity_bytes": 0, "free_bytes": 0, "chunk_count": 0}),
        json!({"node_id": "ok", "url": "ftp://x", "tcp_addr": "x:1", "capacity_bytes": 0, "free_bytes": 0, "chunk_count": 0}),
        json!({"node_id": "ok", "url": "http://x"}),
    ] {
        let (status, body) = api.post("/register_storage", bad).await?;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        error_text(&body)?;
    }

    // alpha keeps beating, beta falls silent and is declared dead.
    let alive = |name: &'static str| {
        let api = &api;
        async move {
            let body = api.get("/nodes").await.map(|r| r.1).unwrap_or_default();
            let nodes = body["nodes"].as_array().cloned().unwrap_or_default();
            nodes
                .iter()
                .any(|n| n["node_id"] == name && n["alive"] == true)
        }
    };
    wait_until(WAIT, || async {
        let _ = api.heartbeat("alpha", &[]).await;
        alive("alpha").await && !alive("beta").await
    })
    .await?;
    // It comes back with its next heartbeat.
    api.heartbeat("beta", &[]).await?;
    assert!(alive("beta").await);
    Ok(())
}

#[tokio::test]
async fn allocation_picks_distinct_live_nodes_and_spreads() -> Result<()> {
    let cluster = cluster(&[]).await?;
    let api = Api::new(&cluster);
    let nodes = api.register_nodes("n", 5).await?;
    let chunks = 60;
    let info = api.init("spread.bin", chunks * KIB64, KIB64, 3).await?;
    let file_id = id(&info);
    let mut per_node: HashMap<String, u32> = HashMap::new();
    let mut chunk_ids = HashSet::new();
    for index in 0..chunks {
        let allocation = api.allocate(&file_id, index).await?;
        assert_eq!(allocation["size"], KIB64);
        let chunk_id = allocation["chunk_id"]
            .as_str()
            .context("chunk_id")?
            .to_owned();
        ensure!(
            chunk_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{chunk_id}"
        );
        chunk_ids.insert(chunk_id);
        let targets: HashSet<String> = allocation["targets"]
            .as_array()
            .context("targets")?
            .iter()
            .map(|t| t["node_id"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(targets.len(), 3, "targets must be distinct: {allocation}");
        for target in targets {
            *per_node.entry(target).or_default() += 1;
        }
    }
    assert_eq!(
        chunk_ids.len() as u64,
        chunks,
        "every allocation gets a fresh chunk id"
    );
    // 180 placements over 5 nodes: 36 each on average; random but never this lopsided.
    for node in &nodes {
        let count = per_node.get(node).copied().unwrap_or(0);
        assert!(
            (15..=60).contains(&count),
            "{node} got {count} of 180: {per_node:?}"
        );
    }

    // A retry of one index gets a new id; excluded nodes are avoided.
    let exclude = json!({"index": 0, "exclude": ["n0", "n1"]});
    let retry = api
        .expect(
            Method::POST,
            &format!("/files/{file_id}/chunks"),
            Some(exclude),
            StatusCode::CREATED,
        )
        .await?;
    assert!(!chunk_ids.contains(retry["chunk_id"].as_str().unwrap_or_default()));
    let targets: HashSet<&str> = retry["targets"]
        .as_array()
        .context("targets")?
        .iter()
        .filter_map(|t| t["node_id"].as_str())
        .collect();
    assert_eq!(targets, HashSet::from(["n2", "n3", "n4"]));
    let exclude = json!({"index": 0, "exclude": ["n0", "n1", "n2"]});
    let (status, body) = api
        .post(&format!("/files/{file_id}/chunks"), exclude)
        .await?;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error_text(&body)?, "need 3 live storage nodes, have 2");
    Ok(())
}

#[tokio::test]
async fn too_few_live_nodes_is_503() -> Result<()> {
    let cluster = cluster(&[]).await?;
    let api = Api::new(&cluster);
    let (status, body) = api
        .post("/files/init", json!({"name": "x", "size": 1}))
        .await?;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error_text(&body)?, "need 3 live storage nodes, have 0");
    api.register_nodes("n", 2).await?;
    let (status, body) = api
        .post(
            "/files/init",
            json!({"name": "x", "size": 1, "replication": 3}),
        )
        .await?;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error_text(&body)?, "need 3 live storage nodes, have 2");
    api.init("x", 1, KIB64, 2).await?;
    Ok(())
}

#[tokio::test]
async fn a_new_naming_server_asks_to_retry_a_shortage() -> Result<()> {
    // Right after a start, live nodes may not have been heard from yet:
    // a shortage carries Retry-After. Once a heartbeat timeout has passed
    // it is a plain 503, not worth waiting for.
    let cluster = cluster(&[("HEARTBEAT_TIMEOUT", "3s")]).await?;
    let api = Api::new(&cluster);
    let init = json!({"name": "x", "size": 1, "replication": 1});
    let (status, retry_after) = api.post_retry_after("/files/init", &init).await?;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(retry_after.as_deref(), Some("1"));
    wait_until(WAIT, || async {
        api.post_retry_after("/files/init", &init)
            .await
            .is_ok_and(|reply| reply == (StatusCode::SERVICE_UNAVAILABLE, None))
    })
    .await
    .context("the shortage never became a plain 503")?;
    Ok(())
}

#[tokio::test]
async fn token_guards_everything_but_health_metrics_and_docs() -> Result<()> {
    let cluster = dfs_tests::TestCluster::builder()
        .token("s3cret")
        .start()
        .await?;
    let anonymous = Api::new(&cluster);
    let wrong = Api::with_token(&cluster, Some("guess"));
    let right = Api::with_token(&cluster, Some("s3cret"));
    for api in [&anonymous, &wrong] {
        for (method, path) in [
            (Method::GET, "/files"),
            (Method::GET, "/nodes"),
            (Method::POST, "/register_storage"),
        ] {
            let (status, body) = api.call(method.clone(), path, Some(&json!({}))).await?;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
            error_text(&body)?;
        }
    }
    right.register("n0").await?;
    right
        .expect(Method::GET, "/files", None, StatusCode::OK)
        .await?;
    for path in ["/health", "/metrics", "/openapi.json", "/swagger-ui/"] {
        let response = reqwest::get(format!("{}{path}", cluster.naming_url())).await?;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    Ok(())
}

#[tokio::test]
async fn health_is_503_while_redis_is_down_and_ok_once_back() -> Result<()> {
    let mut cluster = cluster(&[]).await?;
    let api = Api::new(&cluster);
    assert_eq!(
        api.get("/health").await?,
        (StatusCode::OK, json!({"status": "ok"}))
    );
    cluster.redis.single()?.stop().await?;
    let text = rejected(
        &api,
        Method::GET,
        "/health",
        None,
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await?;
    assert!(text.starts_with("metadata store unavailable"), "{text}");
    rejected(
        &api,
        Method::GET,
        "/nodes",
        None,
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await?;
    let init = json!({"name": "a", "size": 1});
    rejected(
        &api,
        Method::POST,
        "/files/init",
        Some(init.clone()),
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await?;
    // An outage: clients are told to try again shortly.
    let (status, retry_after) = api.post_retry_after("/files/init", &init).await?;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(retry_after.as_deref(), Some("1"));

    // Redis back (empty): the same server answers again.
    cluster.redis.single()?.start_again().await?;
    wait_until(WAIT, || async {
        matches!(api.get("/health").await, Ok((StatusCode::OK, _)))
    })
    .await?;
    api.register("back").await?;
    let (status, body) = api.get("/nodes").await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["nodes"][0]["node_id"], "back");
    Ok(())
}

#[tokio::test]
async fn metrics_and_docs_are_served() -> Result<()> {
    let cluster = cluster(&[]).await?;
    let api = Api::new(&cluster);
    api.register_nodes("n", 2).await?;
    let before = cluster.naming_scrape().await?;
    api.upload("counted", KIB64, 2).await?;
    const LOOKUPS: u64 = 7;
    for _ in 0..LOOKUPS {
        assert_eq!(api.get("/files?name=counted").await?.0, StatusCode::OK);
    }
    assert_eq!(
        api.get("/files?name=absent").await?.0,
        StatusCode::NOT_FOUND
    );
    let after = cluster.naming_scrape().await?;

    // Each request is one observation of its route's latency histogram.
    let requests = |scrape: &dfs_tests::Scrape, method: &str, route: &str, status: &str| {
        scrape.histogram_count(
            "dfs_http_request_duration_seconds",
            &[("method", method), ("route", route), ("status", status)],
        )
    };
    for (method, route, status, made) in [
        ("GET", "/files", "200", LOOKUPS),
        ("GET", "/files", "404", 1),
        ("POST", "/files/init", "201", 1),
        ("POST", "/files/{file_id}/finalize", "200", 1),
    ] {
        let grew =
            requests(&after, method, route, status)? - requests(&before, method, route, status)?;
        assert_eq!(grew, made, "{method} {route} {status}");
    }
    for (counter, grew) in [
        ("dfs_files_committed_total", 1),
        ("dfs_chunks_allocated_total", 1),
    ] {
        assert_eq!(
            after.count(counter, &[])? - before.count(counter, &[])?,
            grew,
            "{counter}"
        );
    }
    assert_eq!(after.count("dfs_live_storage_nodes", &[])?, 2);
    // Every request above went to Redis, through timed round trips.
    let redis = |scrape: &dfs_tests::Scrape| {
        scrape.histogram_count("dfs_redis_command_duration_seconds", &[])
    };
    assert!(redis(&after)? >= redis(&before)? + LOOKUPS);
    assert_eq!(after.count("dfs_redis_errors_total", &[])?, 0);

    let page = reqwest::get(format!("{}/swagger-ui/", cluster.naming_url())).await?;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await?.contains("swagger"), "no Swagger UI page");
    Ok(())
}
