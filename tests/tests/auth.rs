//! A cluster with a token, end to end: every storage-node route and peer
//! connection needs it, nodes store only chunk ids the naming server
//! allocated, replication chains reach only registered nodes, the token
//! never shows in a log, and every `dfs` command still works; `peer`: the
//! peer port's challenge; `tls`: the same over HTTPS with a private CA.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use dfs_common::auth::Token;
use dfs_tests::{TestCluster, chunk_id, wait_until, write_random_file};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[path = "auth/peer.rs"]
mod peer;
#[path = "auth/tls.rs"]
mod tls;

/// Distinctive enough that finding it in a log cannot be an accident.
const TOKEN: &str = "tok-5e1f3c9a7d2b48e6";
const KIB64: u64 = 64 * 1024;

pub(crate) async fn cluster(nodes: usize) -> Result<TestCluster> {
    TestCluster::builder()
        .storage_nodes(nodes)
        .token(TOKEN)
        .start()
        .await
}

pub(crate) fn token() -> Result<Token> {
    Token::from_setting(Some(TOKEN)).context("token")
}

fn path_arg(path: &Path) -> Result<&str> {
    path.to_str().context("utf-8 path")
}

/// Uploads `len` random bytes as `name` with `dfs create`; returns the local copy.
pub(crate) async fn create(
    cluster: &TestCluster,
    name: &str,
    len: u64,
    replication: u32,
) -> Result<std::path::PathBuf> {
    let local = cluster.scratch_dir().join(name);
    write_random_file(&local, len, 8)?;
    let replication = replication.to_string();
    let args = [
        "create",
        path_arg(&local)?,
        name,
        "--chunk-size",
        "64KiB",
        "--replication",
        &replication,
    ];
    cluster.dfs_ok(args).await?;
    Ok(local)
}

/// `dfs read` of `name` gives exactly the bytes of `local`.
pub(crate) async fn read_back(cluster: &TestCluster, name: &str, local: &Path) -> Result<()> {
    let out = cluster.scratch_dir().join(format!("{name}.read"));
    cluster.dfs_ok(["read", name, path_arg(&out)?]).await?;
    ensure!(
        std::fs::read(&out)? == std::fs::read(local)?,
        "dfs read of {name} gives other bytes"
    );
    Ok(())
}

/// A 401 with `WWW-Authenticate: Bearer` and a JSON error body.
async fn expect_401(response: reqwest::Response, what: &str) -> Result<()> {
    ensure!(
        response.status() == StatusCode::UNAUTHORIZED,
        "{what}: {}",
        response.status()
    );
    let challenge = response.headers().get("www-authenticate").cloned();
    ensure!(
        challenge.is_some_and(|v| v == "Bearer"),
        "{what}: no WWW-Authenticate: Bearer"
    );
    let body: Value = response.json().await?;
    ensure!(body["error"].is_string(), "{what}: {body}");
    Ok(())
}

/// The JSON error text of a response with status `status`.
async fn expect_error(response: reqwest::Response, status: StatusCode) -> Result<String> {
    let got = response.status();
    let text = response.text().await?;
    ensure!(got == status, "{got} (wanted {status}): {text}");
    let body: Value = serde_json::from_str(&text)?;
    body["error"].as_str().map(str::to_owned).context("error")
}

#[tokio::test]
async fn storage_routes_need_the_token_and_forgeries_change_nothing() -> Result<()> {
    let cluster = TestCluster::builder()
        .storage_nodes(3)
        .token(TOKEN)
        .capture_logs()
        .naming_env("RUST_LOG", "debug")
        .storage_env("RUST_LOG", "debug")
        .start()
        .await?;
    let local = create(&cluster, "kept.bin", 3 * KIB64, 3).await?;
    let record = cluster.file_record("kept.bin").await?;
    let chunk = &record["chunks"][0];
    let id = chunk["chunk_id"].as_str().context("chunk_id")?;
    let original = std::fs::read(&local)?[..KIB64 as usize].to_vec();
    // Small: a refused PUT is answered before its body is read, so the
    // client must be done sending first to read the answer.
    let forged = vec![0x66u8; 1000];
    let forged_crc = crc32c::crc32c(&forged).to_string();
    let replicas: Vec<(String, String)> = chunk["replicas"]
        .as_array()
        .context("replicas")?
        .iter()
        .map(|r| {
            let field = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
            (field("node_id"), field("url"))
        })
        .collect();
    let chain = replicas[1..]
        .iter()
        .map(|(node, url)| format!("{node}={url}"))
        .collect::<Vec<_>>()
        .join(",");
    let http = cluster.http();
    let signature = token()?.sign_chunk_id(id);

    let attempts: [(Option<String>, &str); 3] = [
        (None, "no token"),
        (Some("Bearer guess".to_owned()), "a wrong token"),
        (Some(format!("Basic {TOKEN}")), "another scheme"),
    ];
    for (authorization, what) in attempts {
        let with = |request: reqwest::RequestBuilder| match &authorization {
            Some(value) => request.header("authorization", value.clone()),
            None => request,
        };
        for (_, url) in &replicas {
            let chunk_url = format!("{url}/chunks/{id}");
            expect_401(with(http.delete(&chunk_url)).send().await?, what).await?;
            let put = http
                .put(&chunk_url)
                .header("x-dfs-crc32c", &forged_crc)
                .header("x-dfs-chunk-signature", &signature)
                .header("x-dfs-replicate-to", &chain)
                .body(forged.clone());
            expect_401(with(put).send().await?, what).await?;
            expect_401(with(http.get(&chunk_url)).send().await?, what).await?;
            let head = with(http.head(&chunk_url)).send().await?;
            ensure!(head.status() == StatusCode::UNAUTHORIZED, "HEAD, {what}");
            let replicate = http
                .post(format!("{chunk_url}/replicate"))
                .json(&json!({"source": "127.0.0.1:9", "size": 1, "crc32c": 0}));
            expect_401(with(replicate).send().await?, what).await?;
            let assign = http.post(format!("{url}/distributions")).json(&json!({}));
            expect_401(with(assign).send().await?, what).await?;
            let gcs = http.get(format!("{url}/gcs/object?url=gs://b/o"));
            expect_401(with(gcs).send().await?, what).await?;
        }
    }

    // Health, metrics and the docs stay open.
    let (_, url) = &replicas[0];
    for open in ["/health", "/metrics", "/openapi.json"] {
        let response = http.get(format!("{url}{open}")).send().await?;
        ensure!(response.status().is_success(), "{open}: {response:?}");
    }
    // The scheme's name is case-insensitive.
    for scheme in ["bearer", "BEARER"] {
        let response = http
            .get(format!("{url}/chunks/{id}"))
            .header("authorization", format!("{scheme} {TOKEN}"))
            .send()
            .await?;
        ensure!(
            response.status() == StatusCode::OK,
            "{scheme}: {response:?}"
        );
        ensure!(response.bytes().await?[..] == original[..], "{scheme}");
    }

    // Every replica still holds the original bytes, and dfs reads them.
    ensure!(cluster.check_replicas("kept.bin", &local, 3).await? == 3);
    read_back(&cluster, "kept.bin", &local).await?;

    // Debug logs of every server, and not a trace of the token.
    let logs = cluster.server_logs()?;
    ensure!(logs.contains("DEBUG"), "no debug logs captured");
    ensure!(
        !logs.contains(TOKEN),
        "the token shows in the servers' logs"
    );
    Ok(())
}

#[tokio::test]
async fn only_chunk_ids_the_naming_server_allocated_are_stored() -> Result<()> {
    let cluster = cluster(2).await?;
    let file = cluster
        .post_json(
            "/files/init",
            &json!({"name": "signed.bin", "size": 1000, "replication": 1}),
        )
        .await?;
    let file_id = file["file_id"].as_str().context("file_id")?;
    let allocation = cluster
        .post_json(&format!("/files/{file_id}/chunks"), &json!({"index": 0}))
        .await?;
    let id = allocation["chunk_id"].as_str().context("chunk_id")?;
    let signature = allocation["signature"].as_str().context("signature")?;
    ensure!(signature.len() == 32, "{allocation}");
    let node_id = allocation["targets"][0]["node_id"]
        .as_str()
        .context("target")?;
    let node = cluster.storage(cluster.storage_index(node_id)?);
    let body = vec![5u8; 1000];
    let put = |id: &str, signature: Option<&str>| {
        let request = cluster
            .http()
            .put(format!("{}/chunks/{id}", node.url()))
            .header("x-dfs-crc32c", crc32c::crc32c(&body).to_string())
            .body(body.clone());
        let request = match signature {
            Some(signature) => request.header("x-dfs-chunk-signature", signature),
            None => request,
        };
        cluster.authorized(request).send()
    };

    let unallocated = chunk_id("never-allocated");
    let wrong = "0".repeat(32);
    for (id, signature, what) in [
        (id, None, "no signature"),
        (id, Some(wrong.as_str()), "a wrong signature"),
        (
            unallocated.as_str(),
            Some(signature),
            "another id's signature",
        ),
        (unallocated.as_str(), None, "an unallocated id"),
    ] {
        let error = expect_error(put(id, signature).await?, StatusCode::FORBIDDEN).await?;
        ensure!(error.contains("allocated"), "{what}: {error}");
        ensure!(node.chunk_path(id).is_none(), "{what}: stored");
    }
    for malformed in ["forged-chunk", "0123456789abcdef-1-deadbeef"] {
        let error = expect_error(
            put(malformed, Some(signature)).await?,
            StatusCode::BAD_REQUEST,
        )
        .await?;
        ensure!(error.contains("naming server"), "{malformed}: {error}");
        ensure!(node.chunk_path(malformed).is_none());
    }
    // A replicate call brings nothing unsigned in either.
    let replicate = cluster
        .http()
        .post(format!("{}/chunks/{unallocated}/replicate", node.url()))
        .json(&json!({"source": node.peer_addr(), "size": 1000, "crc32c": 0}));
    expect_error(
        cluster.authorized(replicate).send().await?,
        StatusCode::FORBIDDEN,
    )
    .await?;
    ensure!(node.chunk_path(&unallocated).is_none());
    ensure!(node.temp_files().is_empty(), "{:?}", node.temp_files());

    // The allocation's own signature opens the door.
    let stored = put(id, Some(signature)).await?;
    ensure!(stored.status() == StatusCode::CREATED, "{stored:?}");
    ensure!(std::fs::read(node.chunk_path(id).context("stored")?)? == body);
    Ok(())
}

#[tokio::test]
async fn without_a_token_ids_need_only_the_naming_servers_form() -> Result<()> {
    let cluster = TestCluster::builder().storage_nodes(1).start().await?;
    let node = cluster.storage(0);
    let put = |id: &str| {
        reqwest::Client::new()
            .put(format!("{}/chunks/{id}", node.url()))
            .header("x-dfs-crc32c", crc32c::crc32c(b"bytes").to_string())
            .body("bytes")
            .send()
    };
    expect_error(put("forged-chunk").await?, StatusCode::BAD_REQUEST).await?;
    ensure!(node.chunk_path("forged-chunk").is_none());
    let id = chunk_id("unsigned");
    ensure!(put(&id).await?.status() == StatusCode::CREATED);
    ensure!(node.chunk_path(&id).is_some());
    Ok(())
}

#[tokio::test]
async fn replicate_reaches_only_registered_nodes() -> Result<()> {
    let cluster = cluster(2).await?;
    let (a, b) = (cluster.storage(0), cluster.storage(1));
    // A listener the test owns: nothing may ever connect to it.
    let trap = std::net::TcpListener::bind("127.0.0.1:0")?;
    trap.set_nonblocking(true)?;
    let trap_addr = trap.local_addr()?.to_string();
    let id = chunk_id("registered-only");
    let signature = token()?.sign_chunk_id(&id);
    let replicate = |body: Value| {
        let request = cluster
            .http()
            .post(format!("{}/chunks/{id}/replicate", a.url()))
            .json(&body);
        cluster.authorized(request).send()
    };
    let base = json!({"size": 4, "crc32c": crc32c::crc32c(b"data"), "signature": signature});
    let with = |extra: Value| {
        let mut body = base.clone();
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        body
    };
    let trap_url = format!("http://{trap_addr}");
    let cases = [
        (
            with(json!({"source": trap_addr})),
            "not the peer address of any registered storage node",
        ),
        (
            with(json!({"source": b.peer_addr(),
                "downstream": [{"node_id": b.node_id(), "url": trap_url}]})),
            "is not a registered storage node",
        ),
        (
            with(json!({"source": b.peer_addr(),
                "downstream": [{"node_id": "intruder", "url": trap_url}]})),
            "is not a registered storage node",
        ),
    ];
    for (body, message) in cases {
        let error = expect_error(replicate(body.clone()).await?, StatusCode::BAD_REQUEST).await?;
        ensure!(error.contains(message), "{body}: {error}");
    }
    // A PUT's chain is checked the same way, before anything is stored.
    let put = |chain: String| {
        let request = cluster
            .http()
            .put(format!("{}/chunks/{id}", a.url()))
            .header("x-dfs-crc32c", crc32c::crc32c(b"data").to_string())
            .header("x-dfs-chunk-signature", &signature)
            .header("x-dfs-replicate-to", chain)
            .body("data");
        cluster.authorized(request).send()
    };
    let error = expect_error(
        put(format!("{}={trap_url}", b.node_id())).await?,
        StatusCode::BAD_REQUEST,
    )
    .await?;
    ensure!(error.contains("not a registered"), "{error}");
    ensure!(a.chunk_path(&id).is_none(), "stored despite a bad chain");
    let knock = trap.accept();
    ensure!(
        knock
            .as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock),
        "a node connected to the test's listener: {knock:?}"
    );

    // Registered nodes at their registered URLs: the chain works.
    let stored = put(format!("{}={}", b.node_id(), b.url())).await?;
    ensure!(stored.status() == StatusCode::CREATED, "{stored:?}");
    ensure!(std::fs::read(b.chunk_path(&id).context("chained")?)? == b"data");
    Ok(())
}

/// For each chunk of `name`: its live replicas, each checked to serve
/// exactly its bytes of `local`.
async fn live_replicas(cluster: &TestCluster, name: &str, local: &Path) -> Result<Vec<usize>> {
    let record = cluster.file_record(name).await?;
    let bytes = std::fs::read(local)?;
    let mut counts = Vec::new();
    for chunk in record["chunks"].as_array().context("chunks")? {
        let start = usize::try_from(chunk["index"].as_u64().context("index")? * KIB64)?;
        let expected = &bytes[start..(start + KIB64 as usize).min(bytes.len())];
        let id = chunk["chunk_id"].as_str().context("chunk_id")?;
        let mut live = 0;
        for replica in chunk["replicas"].as_array().context("replicas")? {
            if replica["alive"] != true {
                continue;
            }
            let url = format!("{}/chunks/{id}", replica["url"].as_str().context("url")?);
            let got = cluster.authorized(cluster.http().get(&url)).send().await?;
            ensure!(
                got.bytes().await?[..] == *expected,
                "{url} holds other bytes"
            );
            live += 1;
        }
        counts.push(live);
    }
    Ok(counts)
}

#[tokio::test]
async fn dfs_commands_work_with_a_token() -> Result<()> {
    let mut cluster = cluster(4).await?;
    let local = create(&cluster, "tok.bin", 6 * KIB64 + 5, 2).await?;
    read_back(&cluster, "tok.bin", &local).await?;
    ensure!(live_replicas(&cluster, "tok.bin", &local).await? == vec![2; 7]);

    // Repair: a holder dies; the naming server has the others copy its chunks.
    let record = cluster.file_record("tok.bin").await?;
    let victim = record["chunks"][0]["replicas"][0]["node_id"]
        .as_str()
        .context("replica")?
        .to_owned();
    let victim = cluster.storage_index(&victim)?;
    cluster.stop_storage(victim).await?;
    wait_until(Duration::from_secs(15), || async {
        cluster.live_nodes().await.ok() == Some(3)
    })
    .await?;
    cluster.dfs_ok(["repair", "tok.bin"]).await?;
    ensure!(live_replicas(&cluster, "tok.bin", &local).await? == vec![2; 7]);

    // Distribute: every live node gets every chunk over the peer chain.
    cluster.dfs_ok(["distribute", "tok.bin"]).await?;
    ensure!(live_replicas(&cluster, "tok.bin", &local).await? == vec![3; 7]);
    read_back(&cluster, "tok.bin", &local).await?;
    Ok(())
}
