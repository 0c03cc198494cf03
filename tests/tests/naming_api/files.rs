//! Creating, finalizing, looking up and listing files, and bad input.

use anyhow::{Context, Result, ensure};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::support::{Api, KIB64, cluster, error_text, finalized, id, rejected};

#[tokio::test]
async fn upload_lookup_and_empty_file() -> Result<()> {
    let cluster = cluster(&[]).await?;
    let api = Api::new(&cluster);
    api.register_nodes("n", 3).await?;
    let size = 2 * KIB64 + 100;
    let info = api.init("dir/hello.bin", size, KIB64, 2).await?;
    assert_eq!(
        (info["state"].as_str(), info["chunk_count"].as_u64()),
        (Some("pending"), Some(3))
    );
    let file_id = id(&info);
    // Pending files are invisible.
    assert_eq!(
        api.get(&format!("/files/{file_id}")).await?.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.get("/files?name=dir/hello.bin").await?.0,
        StatusCode::NOT_FOUND
    );

    let body = api.allocate_all(&info).await?;
    assert_eq!(body["chunks"][2]["size"], 100);
    let record = api
        .expect(
            Method::POST,
            &format!("/files/{file_id}/finalize"),
            Some(body.clone()),
            StatusCode::OK,
        )
        .await?;
    assert_eq!(record["state"], "committed");
    assert_eq!(record["chunks"].as_array().map(Vec::len), Some(3));
    for (path, want) in [
        (format!("/files/{file_id}"), &record),
        ("/files?name=dir/hello.bin".to_owned(), &record),
        (format!("/files/{file_id}/size"), &json!({"size": size})),
    ] {
        assert_eq!(
            &api.expect(Method::GET, &path, None, StatusCode::OK).await?,
            want,
            "{path}"
        );
    }
    let location = api
        .expect(
            Method::GET,
            &format!("/files/{file_id}/chunks/1"),
            None,
            StatusCode::OK,
        )
        .await?;
    assert_eq!(location["chunk_id"], body["chunks"][1]["chunk_id"]);
    assert_eq!(
        (location["index"].as_u64(), location["crc32c"].as_u64()),
        (Some(1), Some(12345))
    );
    let replicas = location["replicas"].as_array().context("replicas")?;
    assert_eq!(replicas.len(), 2);
    for replica in replicas {
        let node = replica["node_id"].as_str().context("node_id")?;
        assert_eq!(replica["url"], format!("http://{node}.invalid:5001"));
        assert_eq!(replica["alive"], true);
    }

    // An empty file has no chunks and commits at once.
    let empty = api.init("dir/empty", 0, KIB64, 3).await?;
    assert_eq!(empty["chunk_count"], 0);
    let path = format!("/files/{}/finalize", id(&empty));
    let record = api
        .expect(
            Method::POST,
            &path,
            Some(json!({"size": 0, "chunks": []})),
            StatusCode::OK,
        )
        .await?;
    assert_eq!(
        (
            record["size"].as_u64(),
            record["chunks"].as_array().map(Vec::len)
        ),
        (Some(0), Some(0))
    );
    let size = api
        .expect(
            Method::GET,
            &format!("/files/{}/size", id(&empty)),
            None,
            StatusCode::OK,
        )
        .await?;
    assert_eq!(size, json!({"size": 0}));
    Ok(())
}

#[tokio::test]
async fn bad_input_is_rejected_and_changes_nothing() -> Result<()> {
    let cluster = cluster(&[]).await?;
    let api = Api::new(&cluster);
    api.register_nodes("n", 3).await?;
    let kept = api.upload("kept", 3 * KIB64, 2).await?;
    let kept_id = id(&kept);
    let listing = api.get("/files").await?.1;

    // init
    let bad = StatusCode::BAD_REQUEST;
    for raw in [
        "{\"name\": \"a\"",
        "not json",
        "[]",
        "{\"name\": \"a\", \"size\": \"big\"}",
    ] {
        let (status, body) = api.post_raw("/files/init", raw).await?;
        assert_eq!(status, bad, "{raw}: {body}");
        error_text(&body)?;
    }
    let long = "x".repeat(1025);
    for body in [
        json!({"size": 1}),
        json!({"name": "a"}),
        json!({"name": "", "size": 1}),
        json!({"name": long, "size": 1}),
        json!({"name": "a\u{0}b", "size": 1}),
        json!({"name": "a/../b", "size": 1}),
        json!({"name": "..", "size": 1}),
        json!({"name": "a", "size": -1}),
        json!({"name": "a", "size": 1e30}),
        json!({"name": "a", "size": 1, "chunk_size": KIB64 - 1}),
        json!({"name": "a", "size": 1, "chunk_size": (64 << 20) + 1}),
        json!({"name": "a", "size": 1, "replication": 0}),
        json!({"name": "a", "size": 1, "replication": 17}),
    ] {
        rejected(&api, Method::POST, "/files/init", Some(body), bad).await?;
    }
    let huge = json!({"name": "a", "size": 1u64 << 60});
    rejected(
        &api,
        Method::POST,
        "/files/init",
        Some(huge),
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await?;
    let text = rejected(
        &api,
        Method::POST,
        "/files/init",
        Some(json!({"name": "kept", "size": 1})),
        StatusCode::CONFLICT,
    )
    .await?;
    assert!(text.contains("kept"), "{text}");
    api.init(&"y".repeat(1024), 1, KIB64, 1).await?;

    // allocate
    let info = api.init("fresh", 2 * KIB64, KIB64, 2).await?;
    let file_id = id(&info);
    let alloc = |id: &str| format!("/files/{id}/chunks");
    for unknown in ["0123456789abcdef-0123456789abcdef", "nonsense"] {
        rejected(
            &api,
            Method::POST,
            &alloc(unknown),
            Some(json!({"index": 0})),
            StatusCode::NOT_FOUND,
        )
        .await?;
    }
    let text = rejected(
        &api,
        Method::POST,
        &alloc(&file_id),
        Some(json!({"index": 2})),
        bad,
    )
    .await?;
    assert!(text.contains("2 chunks"), "{text}");
    rejected(
        &api,
        Method::POST,
        &alloc(&file_id),
        Some(json!({"index": -1})),
        bad,
    )
    .await?;
    rejected(&api, Method::POST, &alloc(&file_id), Some(json!({})), bad).await?;
    rejected(
        &api,
        Method::POST,
        &alloc(&kept_id),
        Some(json!({"index": 0})),
        StatusCode::CONFLICT,
    )
    .await?;

    // finalize
    let first = api.allocate(&file_id, 0).await?;
    let second = api.allocate(&file_id, 1).await?;
    let good = json!({"size": 2 * KIB64, "chunks": [finalized(&first), finalized(&second)]});
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut body = good.clone();
        edit(&mut body);
        body
    };
    let finalize = format!("/files/{file_id}/finalize");
    for body in [
        with(&|b| b["size"] = json!(2 * KIB64 + 1)),
        with(&|b| b["chunks"] = json!([b["chunks"][0].clone()])),
        with(&|b| b["chunks"][1] = b["chunks"][0].clone()),
        with(&|b| b["chunks"][1]["size"] = json!(KIB64 - 1)),
        with(&|b| b["chunks"][1]["index"] = json!(2)),
        with(&|b| b["chunks"][1]["chunk_id"] = json!("never-allocated")),
        with(&|b| b["chunks"][1]["chunk_id"] = b["chunks"][0]["chunk_id"].clone()),
        with(&|b| b["chunks"][1]["replicas"] = json!([])),
        with(&|b| b["chunks"][1]["replicas"] = json!(["n0", "n1", "n2"])),
        with(&|b| b["chunks"][1]["replicas"] = json!(["elsewhere"])),
        with(&|b| b["chunks"][1]["crc32c"] = json!(-5)),
        json!({"size": 2 * KIB64}),
    ] {
        rejected(&api, Method::POST, &finalize, Some(body), bad).await?;
    }
    let unknown = "/files/0123456789abcdef-0123456789abcdef/finalize";
    rejected(
        &api,
        Method::POST,
        unknown,
        Some(good.clone()),
        StatusCode::NOT_FOUND,
    )
    .await?;

    // lookups
    rejected(
        &api,
        Method::GET,
        &format!("/files/{kept_id}/chunks/x"),
        None,
        bad,
    )
    .await?;
    let text = rejected(
        &api,
        Method::GET,
        &format!("/files/{kept_id}/chunks/3"),
        None,
        StatusCode::NOT_FOUND,
    )
    .await?;
    assert!(text.contains("3 chunks"), "{text}");
    for query in ["limit=0", "limit=1001", "limit=abc", "name="] {
        rejected(&api, Method::GET, &format!("/files?{query}"), None, bad).await?;
    }
    rejected(
        &api,
        Method::GET,
        "/no/such/route",
        None,
        StatusCode::NOT_FOUND,
    )
    .await?;

    // Nothing stored changed, and the pending file still commits.
    assert_eq!(api.get(&format!("/files/{kept_id}")).await?.1, kept);
    assert_eq!(api.get("/files").await?.1, listing);
    let committed = api
        .expect(Method::POST, &finalize, Some(good.clone()), StatusCode::OK)
        .await?;
    // The same finalize again (its reply was lost, the client retries):
    // the same record, not a conflict. Anything else: 409.
    let again = api
        .expect(Method::POST, &finalize, Some(good.clone()), StatusCode::OK)
        .await?;
    assert_eq!(again, committed);
    for body in [
        with(&|b| b["chunks"][1]["crc32c"] = json!(54321)),
        with(&|b| b["chunks"][1]["chunk_id"] = json!("another-upload")),
    ] {
        let text = rejected(
            &api,
            Method::POST,
            &finalize,
            Some(body),
            StatusCode::CONFLICT,
        )
        .await?;
        assert!(text.contains("already committed"), "{text}");
    }
    Ok(())
}

#[tokio::test]
async fn concurrent_finalizes_of_one_name_exactly_one_wins() -> Result<()> {
    let cluster = cluster(&[]).await?;
    let api = Api::new(&cluster);
    api.register_nodes("n", 2).await?;
    for round in 0..5 {
        let name = format!("race-{round}");
        let a = api.init(&name, KIB64, KIB64, 2).await?;
        let b = api.init(&name, KIB64, KIB64, 2).await?;
        let (body_a, body_b) = (api.allocate_all(&a).await?, api.allocate_all(&b).await?);
        let (path_a, path_b) = (
            format!("/files/{}/finalize", id(&a)),
            format!("/files/{}/finalize", id(&b)),
        );
        let (ra, rb) = tokio::join!(api.post(&path_a, body_a), api.post(&path_b, body_b));
        let (ra, rb) = (ra?, rb?);
        let mut statuses = [ra.0, rb.0];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::OK, StatusCode::CONFLICT],
            "{ra:?} {rb:?}"
        );
        let winner = if ra.0 == StatusCode::OK {
            id(&a)
        } else {
            id(&b)
        };
        let loser = if ra.0 == StatusCode::OK { &rb.1 } else { &ra.1 };
        assert!(error_text(loser)?.contains("already exists"), "{loser}");
        let found = api
            .expect(
                Method::GET,
                &format!("/files?name={name}"),
                None,
                StatusCode::OK,
            )
            .await?;
        assert_eq!(id(&found), winner);
    }
    Ok(())
}

/// Every name of a listing, following `next` page by page.
async fn list_all(api: &Api, query: &str, limit: usize) -> Result<(Vec<String>, usize)> {
    let (mut names, mut pages, mut after) = (Vec::new(), 0, None::<String>);
    loop {
        let mut url = reqwest::Url::parse("http://x/files")?;
        url.query_pairs_mut()
            .extend_pairs([("limit", limit.to_string())]);
        if !query.is_empty() {
            url.query_pairs_mut().append_pair("prefix", query);
        }
        if let Some(after) = &after {
            url.query_pairs_mut().append_pair("after", after);
        }
        let path = format!("/files?{}", url.query().unwrap_or_default());
        let page = api.expect(Method::GET, &path, None, StatusCode::OK).await?;
        let files = page["files"].as_array().context("files")?;
        ensure!(files.len() <= limit, "page over the limit: {page}");
        names.extend(
            files
                .iter()
                .filter_map(|f| f["name"].as_str().map(str::to_owned)),
        );
        pages += 1;
        ensure!(pages < 100, "listing does not end");
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => return Ok((names, pages)),
        }
    }
}

#[tokio::test]
async fn listing_by_prefix_with_pagination() -> Result<()> {
    let cluster = cluster(&[]).await?;
    let api = Api::new(&cluster);
    api.register_nodes("n", 1).await?;
    let names = [
        "logs/a", "logs/b", "logs/c", "logs/d", "logs/e", "logs/é", "logs", "logz", "other",
    ];
    for name in names {
        api.upload(name, 10, 1).await?;
    }
    api.init("logs/pending", 10, KIB64, 1).await?;

    let (all, _) = list_all(&api, "", 1000).await?;
    let mut sorted: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    sorted.sort();
    assert_eq!(
        all, sorted,
        "everything committed, by name; no pending file"
    );

    let (logs, pages) = list_all(&api, "logs/", 2).await?;
    assert_eq!(
        logs,
        ["logs/a", "logs/b", "logs/c", "logs/d", "logs/e", "logs/é"]
    );
    assert_eq!(pages, 3);
    let first = api.get("/files?prefix=logs/&limit=2").await?.1;
    assert_eq!(first["next"], "logs/b");
    let (prefixed, _) = list_all(&api, "log", 4).await?;
    assert_eq!(prefixed.len(), 8);
    let page = api.get("/files?prefix=nothing").await?.1;
    assert_eq!(page, json!({"files": []}));
    Ok(())
}
