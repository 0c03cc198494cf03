//! Chunks of deleted, superseded and expired uploads reach the trash.

use std::collections::{HashMap, HashSet};

use anyhow::{Context, Result};
use dfs_tests::wait_until;
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::support::{Api, KIB64, WAIT, cluster, finalized, id, rejected, strings};

#[tokio::test]
async fn delete_frees_the_name_and_trashes_every_copy() -> Result<()> {
    let cluster = cluster(&[]).await?;
    let api = Api::new(&cluster);
    let nodes = api.register_nodes("n", 3).await?;
    let record = api.upload("doomed", 3 * KIB64, 2).await?;
    let file_id = id(&record);
    let mut expected: HashMap<String, HashSet<String>> = HashMap::new();
    for chunk in record["chunks"].as_array().context("chunks")? {
        for replica in chunk["replicas"].as_array().context("replicas")? {
            let node = replica["node_id"].as_str().context("node")?.to_owned();
            expected
                .entry(node)
                .or_default()
                .insert(chunk["chunk_id"].as_str().context("id")?.to_owned());
        }
    }
    for node in &nodes {
        assert!(
            api.trash_of(node).await?.is_empty(),
            "nothing to delete before the delete"
        );
    }

    assert_eq!(
        api.delete(&format!("/files/{file_id}")).await?.0,
        StatusCode::NO_CONTENT
    );
    for path in [
        format!("/files/{file_id}"),
        format!("/files/{file_id}/size"),
        "/files?name=doomed".into(),
    ] {
        rejected(&api, Method::GET, &path, None, StatusCode::NOT_FOUND).await?;
    }
    rejected(
        &api,
        Method::DELETE,
        &format!("/files/{file_id}"),
        None,
        StatusCode::NOT_FOUND,
    )
    .await?;
    assert_eq!(api.get("/files").await?.1, json!({"files": []}));
    for node in &nodes {
        let trash: HashSet<String> = api.trash_of(node).await?.into_iter().collect();
        assert_eq!(
            trash,
            expected.remove(node).unwrap_or_default(),
            "trash of {node}"
        );
        // Acknowledged deletions leave the list.
        let acked: Vec<String> = trash.into_iter().collect();
        let (status, body) = api.heartbeat(node, &acked).await?;
        assert_eq!(
            (status, strings(&body["delete"]).len()),
            (StatusCode::OK, 0),
            "{body}"
        );
    }
    // The name is free at once.
    api.upload("doomed", 1, 3).await?;

    // Abandoning a pending upload trashes what was allocated for it.
    let info = api.init("abandoned", KIB64, KIB64, 3).await?;
    let allocation = api.allocate(&id(&info), 0).await?;
    assert_eq!(
        api.delete(&format!("/files/{}", id(&info))).await?.0,
        StatusCode::NO_CONTENT
    );
    for node in &nodes {
        assert_eq!(
            api.trash_of(node).await?,
            [allocation["chunk_id"].as_str().unwrap_or_default()]
        );
    }
    Ok(())
}

#[tokio::test]
async fn finalize_trashes_unused_allocations() -> Result<()> {
    let cluster = cluster(&[]).await?;
    let api = Api::new(&cluster);
    api.register_nodes("n", 3).await?;
    let info = api.init("retried", KIB64, KIB64, 3).await?;
    let file_id = id(&info);
    let failed = api.allocate(&file_id, 0).await?;
    let used = api.allocate(&file_id, 0).await?;
    // Only two of the three targets acknowledged the write.
    let mut chunk = finalized(&used);
    let replicas = strings(&chunk["replicas"]);
    chunk["replicas"] = json!(replicas[..2]);
    let body = json!({"size": KIB64, "chunks": [chunk]});
    api.expect(
        Method::POST,
        &format!("/files/{file_id}/finalize"),
        Some(body),
        StatusCode::OK,
    )
    .await?;
    let failed_id = failed["chunk_id"].as_str().context("id")?.to_owned();
    let used_id = used["chunk_id"].as_str().context("id")?.to_owned();
    for node in ["n0", "n1", "n2"] {
        let mut want = vec![failed_id.clone()];
        if node == replicas[2] {
            want.push(used_id.clone());
        }
        let mut trash = api.trash_of(node).await?;
        trash.sort();
        want.sort();
        assert_eq!(trash, want, "trash of {node}");
    }
    Ok(())
}

#[tokio::test]
async fn pending_uploads_expire_into_the_trash() -> Result<()> {
    let cluster = cluster(&[("PENDING_TTL", "1s")]).await?;
    let api = Api::new(&cluster);
    api.register_nodes("n", 2).await?;
    let info = api.init("slow", 2 * KIB64, KIB64, 2).await?;
    let file_id = id(&info);
    let body = api.allocate_all(&info).await?;
    let allocated: HashSet<String> = body["chunks"]
        .as_array()
        .context("chunks")?
        .iter()
        .filter_map(|c| c["chunk_id"].as_str().map(str::to_owned))
        .collect();
    // A file committed in time is not touched.
    let kept = api.init("quick", 0, KIB64, 2).await?;
    let path = format!("/files/{}/finalize", id(&kept));
    api.expect(
        Method::POST,
        &path,
        Some(json!({"size": 0, "chunks": []})),
        StatusCode::OK,
    )
    .await?;

    wait_until(WAIT, || async {
        let trash = api.trash_of("n0").await.unwrap_or_default();
        trash.into_iter().collect::<HashSet<_>>() == allocated
    })
    .await
    .context("expired chunks never reached the trash")?;
    assert_eq!(
        api.trash_of("n1")
            .await?
            .into_iter()
            .collect::<HashSet<_>>(),
        allocated
    );
    rejected(
        &api,
        Method::POST,
        &format!("/files/{file_id}/finalize"),
        Some(body),
        StatusCode::NOT_FOUND,
    )
    .await?;
    rejected(
        &api,
        Method::POST,
        &format!("/files/{file_id}/chunks"),
        Some(json!({"index": 0})),
        StatusCode::NOT_FOUND,
    )
    .await?;
    api.expect(
        Method::GET,
        &format!("/files/{}", id(&kept)),
        None,
        StatusCode::OK,
    )
    .await?;
    let metrics = reqwest::get(format!("{}/metrics", cluster.naming_url()))
        .await?
        .text()
        .await?;
    assert!(metrics.contains("dfs_uploads_expired_total 1"), "{metrics}");
    Ok(())
}
