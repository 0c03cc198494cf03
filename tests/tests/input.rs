//! Bad input, end to end: every route of both servers refuses it with a
//! 4xx and a JSON error naming the problem, never a 5xx; a malformed
//! replicate call is a 400, not a 502 naming the node itself.

use anyhow::{Context, Result, ensure};
use dfs_tests::{TestCluster, chunk_id};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const MAX_CHUNK_SIZE: u64 = 64 << 20;

/// Sends `body` (raw text, with `content_type` when given) and returns the
/// status, the `x-dfs-failed-node` header and the JSON body (`Null` when
/// empty); fails when a body is not JSON.
async fn send(
    method: Method,
    url: &str,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> Result<(StatusCode, Option<String>, Value)> {
    let mut request = reqwest::Client::new().request(method.clone(), url);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let response = request
        .body(body)
        .send()
        .await
        .with_context(|| format!("{method} {url}"))?;
    let status = response.status();
    let failed_node = response
        .headers()
        .get("x-dfs-failed-node")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = response.text().await?;
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text)
            .with_context(|| format!("{method} {url}: {status} with a non-JSON body {text:?}"))?
    };
    Ok((status, failed_node, value))
}

async fn post_json(url: &str, body: &Value) -> Result<(StatusCode, Option<String>, Value)> {
    send(
        Method::POST,
        url,
        Some("application/json"),
        body.to_string(),
    )
    .await
}

/// Expects `want` and an `{"error": …}` body containing `says`.
fn refused(got: &(StatusCode, Option<String>, Value), want: StatusCode, says: &str) -> Result<()> {
    let (status, _, body) = got;
    ensure!(*status == want, "expected {want}, got {status}: {body}");
    let error = body["error"].as_str().context("no error field")?;
    ensure!(error.contains(says), "{error:?} does not say {says:?}");
    Ok(())
}

#[tokio::test]
async fn malformed_replicate_calls_are_400_not_502() -> Result<()> {
    let cluster = TestCluster::builder().storage_nodes(2).start().await?;
    let (a, b) = (cluster.storage(0), cluster.storage(1));
    let url = |id: &str| format!("{}/chunks/{id}/replicate", b.url());
    let request = |source: &str, size: u64, downstream: Value| json!({"source": source, "size": size, "crc32c": 0, "downstream": downstream});
    let many: Vec<Value> = (0..17)
        .map(|i| json!({"node_id": format!("n{i}"), "url": "http://h"}))
        .collect();
    let bad_requests = [
        (request("nohost", 1, json!([])), "source address"),
        (request("h:0", 1, json!([])), "source address"),
        (request("h:65536", 1, json!([])), "source address"),
        (request("[00a]:1", 1, json!([])), "source address"),
        (request(" h:1", 1, json!([])), "source address"),
        (request("", 1, json!([])), "source address"),
        (
            request("h:1", 1, json!([{"node_id": "a/b", "url": "http://h"}])),
            "node id",
        ),
        (
            request("h:1", 1, json!([{"node_id": "a", "url": "ftp://h"}])),
            "URL",
        ),
        (
            request("h:1", 1, json!([{"node_id": "a", "url": "http://h,i"}])),
            "URL",
        ),
        (
            request(
                "h:1",
                1,
                json!([{"node_id": "a", "url": "http://h"}, {"node_id": "a", "url": "http://i"}]),
            ),
            "twice",
        ),
        (request("h:1", 1, Value::Array(many)), "longer than 16"),
        (
            request("h:1", 1, json!([{"node_id": b.node_id(), "url": b.url()}])),
            "names this node",
        ),
        (json!({"source": "h:1", "size": 1}), "crc32c"),
        (json!({"source": "h:1", "size": 1, "crc32c": -1}), "crc32c"),
        (
            json!({"source": "h:1", "size": 1, "crc32c": 4_294_967_296_u64}),
            "crc32c",
        ),
        (json!({"source": "h:1", "size": "big", "crc32c": 0}), "size"),
    ];
    for (body, says) in &bad_requests {
        let got = post_json(&url(&chunk_id("c1")), body).await?;
        refused(&got, StatusCode::BAD_REQUEST, says).with_context(|| body.to_string())?;
        ensure!(got.1.is_none(), "{body}: names a failed node {:?}", got.1);
    }
    let too_big = post_json(
        &url(&chunk_id("c1")),
        &request("h:1", MAX_CHUNK_SIZE + 1, json!([])),
    )
    .await?;
    refused(&too_big, StatusCode::PAYLOAD_TOO_LARGE, "larger than")?;
    let bad_id = post_json(&url("a.b"), &request("h:1", 1, json!([]))).await?;
    refused(&bad_id, StatusCode::BAD_REQUEST, "chunk id")?;
    for (content_type, body) in [
        (Some("application/json"), ""),
        (Some("application/json"), "not json"),
        (Some("application/json"), "[]"),
        (
            Some("text/plain"),
            "{\"source\": \"h:1\", \"size\": 1, \"crc32c\": 0}",
        ),
        (None, "{\"source\": \"h:1\", \"size\": 1, \"crc32c\": 0}"),
    ] {
        let got = send(Method::POST, &url(&chunk_id("c1")), content_type, body).await?;
        ensure!(
            got.0 == StatusCode::BAD_REQUEST,
            "{content_type:?} {body:?}: {got:?}"
        );
        ensure!(got.2["error"].is_string(), "{got:?}");
    }

    // A chunk has at least one byte.
    refused(
        &post_json(&url(&chunk_id("c1")), &request("h:1", 0, json!([]))).await?,
        StatusCode::BAD_REQUEST,
        "size 0",
    )?;
    let put = |body: &'static [u8]| {
        reqwest::Client::new()
            .put(format!("{}/chunks/{}", a.url(), chunk_id("one")))
            .header("x-dfs-crc32c", crc32c::crc32c(body).to_string())
            .body(body)
            .send()
    };
    let empty = put(b"").await?;
    ensure!(
        empty.status() == StatusCode::BAD_REQUEST,
        "{}",
        empty.status()
    );
    ensure!(empty.text().await?.contains("empty body"));
    // The smallest chunk, pulled from a node holding it.
    ensure!(put(b"1").await?.status() == StatusCode::CREATED);
    let mut one = request(a.peer_addr(), 1, json!([]));
    one["crc32c"] = json!(crc32c::crc32c(b"1"));
    let pulled = post_json(&url(&chunk_id("one")), &one).await?;
    ensure!(pulled.0 == StatusCode::OK, "{pulled:?}");
    ensure!(pulled.2["size"] == 1, "{pulled:?}");
    // Held here with another CRC32C: a conflict, whatever the source.
    let other = request("127.0.0.1:1", 1, json!([]));
    refused(
        &post_json(&url(&chunk_id("one")), &other).await?,
        StatusCode::CONFLICT,
        "CRC32C",
    )?;
    // A well-formed call this node cannot carry out (its registered source
    // does not hold the chunk) is still its failure.
    let (status, failed_node, body) =
        post_json(&url(&chunk_id("c2")), &request(a.peer_addr(), 1, json!([]))).await?;
    ensure!(status == StatusCode::BAD_GATEWAY, "{status}: {body}");
    ensure!(
        failed_node.as_deref() == Some(b.node_id()),
        "{failed_node:?}"
    );
    Ok(())
}

/// One operation of a committed spec, with the statuses it documents.
struct Operation {
    method: Method,
    /// The path with every parameter replaced by `param(name)`.
    path: String,
    takes_json: bool,
    has_params: bool,
    statuses: Vec<String>,
}

/// Every operation of the committed spec of `server`.
fn operations(server: &str, param: impl Fn(&str) -> String) -> Result<Vec<Operation>> {
    let path = format!("{}/../openapi/{server}.json", env!("CARGO_MANIFEST_DIR"));
    let spec: Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let mut found = Vec::new();
    for (template, item) in spec["paths"].as_object().context("no paths")? {
        for (method, operation) in item.as_object().context("bad path item")? {
            let mut path = template.clone();
            let mut has_params = false;
            while let Some((start, end)) = path.find('{').zip(path.find('}')) {
                let name = path[start + 1..end].to_owned();
                path.replace_range(start..=end, &param(&name));
                has_params = true;
            }
            found.push(Operation {
                method: method.to_uppercase().parse()?,
                path,
                takes_json: operation["requestBody"]["content"]["application/json"].is_object(),
                has_params,
                statuses: operation["responses"]
                    .as_object()
                    .context("no responses")?
                    .keys()
                    .cloned()
                    .collect(),
            });
        }
    }
    Ok(found)
}

/// Expects `want`, a JSON error (but to HEAD), and `want` among the
/// documented statuses.
fn documented(
    op: &Operation,
    got: &(StatusCode, Option<String>, Value),
    want: StatusCode,
) -> Result<()> {
    let what = format!("{} {}", op.method, op.path);
    let error_body = got.2["error"].is_string() || op.method == Method::HEAD;
    ensure!(got.0 == want && error_body, "{what}: {got:?}");
    ensure!(
        op.statuses.iter().any(|s| s == want.as_str()),
        "{what} answers {want}, which its spec does not document"
    );
    Ok(())
}

#[tokio::test]
async fn malformed_json_and_paths_are_refused_as_documented() -> Result<()> {
    let cluster = TestCluster::builder().storage_nodes(1).start().await?;
    // Parameters that pass, so the body is what is refused.
    let fine = |name: &str| match name {
        "file_id" => "0123456789abcdef-0123456789abcdef".to_owned(),
        "index" => "0".to_owned(),
        _ => "n1".to_owned(),
    };
    for (server, base) in [
        ("naming-server", cluster.naming_url()),
        ("storage-server", cluster.storage(0).url()),
    ] {
        for op in operations(server, fine)?.iter().filter(|op| op.takes_json) {
            let url = format!("{base}{}", op.path);
            for (content_type, body) in [
                (Some("application/json"), ""),
                (Some("application/json"), "{"),
                (Some("application/json"), "[1, 2]"),
                (Some("application/json"), "{\"node_id\": 5}"),
                (Some("text/plain"), "{}"),
                (None, "{}"),
            ] {
                let got = send(op.method.clone(), &url, content_type, body).await?;
                documented(op, &got, StatusCode::BAD_REQUEST)
                    .with_context(|| format!("{content_type:?} {body:?}"))?;
            }
            // One byte over the 64 MiB a JSON body may have: refused before
            // parsing. Exactly one over, so the server has read every byte
            // sent when it answers and closes; a larger body would leave
            // unread bytes, the close would be a reset, and the client could
            // lose the 413 to it.
            let frame = "{\"pad\": \"\"}".len();
            let huge = format!("{{\"pad\": \"{}\"}}", "x".repeat((64 << 20) + 1 - frame));
            assert_eq!(huge.len(), (64 << 20) + 1);
            let got = send(op.method.clone(), &url, Some("application/json"), huge).await?;
            documented(op, &got, StatusCode::PAYLOAD_TOO_LARGE)?;
        }
        // A path parameter that is not UTF-8 once decoded.
        for op in operations(server, |_| "%FF".to_owned())?
            .iter()
            .filter(|op| op.has_params)
        {
            let url = format!("{base}{}", op.path);
            let got = send(op.method.clone(), &url, Some("application/json"), "{}").await?;
            documented(op, &got, StatusCode::BAD_REQUEST)?;
        }
    }
    Ok(())
}

#[tokio::test]
async fn ids_addresses_and_queries_keep_their_rules() -> Result<()> {
    let cluster = TestCluster::builder().storage_nodes(1).start().await?;
    let naming = cluster.naming_url();
    let register = |node_id: &str, url: &str, tcp_addr: &str| {
        json!({"node_id": node_id, "url": url, "tcp_addr": tcp_addr,
               "capacity_bytes": 0, "free_bytes": 0, "chunk_count": 0})
    };
    let url = format!("{naming}/register_storage");
    for (body, says) in [
        // A comma would break the x-dfs-replicate-to header of every chain.
        (register("n1", "http://h:1,x", "h:2"), "node URL"),
        (register("n1", "http://h 1", "h:2"), "node URL"),
        (register("n1", "http://", "h:2"), "node URL"),
        (register("n1", "http://h:1", "h"), "tcp_addr"),
        (register("n1", "http://h:1", "h:99999"), "tcp_addr"),
        (register(&"n".repeat(129), "http://h:1", "h:2"), "node id"),
    ] {
        refused(
            &post_json(&url, &body).await?,
            StatusCode::BAD_REQUEST,
            says,
        )
        .with_context(|| body.to_string())?;
    }
    let ok = post_json(&url, &register("n1", "http://[::1]:1", "[::1]:2")).await?;
    ensure!(ok.0 == StatusCode::OK, "{ok:?}");

    let report = json!({"cluster_id": "c", "chunk_ids": ["../x"]});
    let got = post_json(&format!("{naming}/nodes/n1/chunk_report"), &report).await?;
    refused(&got, StatusCode::BAD_REQUEST, "chunk id")?;
    let heartbeat =
        json!({"capacity_bytes": 0, "free_bytes": 0, "chunk_count": 0, "deleted": ["a b"]});
    let got = post_json(&format!("{naming}/nodes/n1/heartbeat"), &heartbeat).await?;
    refused(&got, StatusCode::BAD_REQUEST, "chunk id")?;
    let allocate = json!({"index": 0, "exclude": ["a/b"]});
    let got = post_json(
        &format!("{naming}/files/0123456789abcdef-0123456789abcdef/chunks"),
        &allocate,
    )
    .await?;
    refused(&got, StatusCode::BAD_REQUEST, "node id")?;
    let seed = json!({"name": "x", "source": "gs://Bad/o"});
    refused(
        &post_json(&format!("{naming}/distributions"), &seed).await?,
        StatusCode::BAD_REQUEST,
        "source",
    )?;

    let long = "x".repeat(1025);
    for (query, says) in [
        (format!("prefix={long}"), "prefix"),
        (format!("after={long}"), "after"),
        (format!("name={long}"), "1025 bytes"),
        ("name=".to_owned(), "empty"),
        ("name=a%00b".to_owned(), "NUL"),
        ("limit=0".to_owned(), "limit"),
        ("limit=1001".to_owned(), "limit"),
        ("limit=-1".to_owned(), "limit"),
    ] {
        let got = send(Method::GET, &format!("{naming}/files?{query}"), None, "").await?;
        refused(&got, StatusCode::BAD_REQUEST, says).with_context(|| query.clone())?;
    }
    let page = send(
        Method::GET,
        &format!("{naming}/files?limit=1000&prefix={}", "x".repeat(1024)),
        None,
        "",
    )
    .await?;
    ensure!(page.0 == StatusCode::OK, "{page:?}");

    let storage = cluster.storage(0).url();
    for query in ["url=s3://b/o", "url=gs://b/o", "url=gs://bkt/", "url="] {
        let got = send(
            Method::GET,
            &format!("{storage}/gcs/object?{query}"),
            None,
            "",
        )
        .await?;
        ensure!(got.0 == StatusCode::BAD_REQUEST, "{query}: {got:?}");
    }
    Ok(())
}

/// `GET /chunks/{id}` with `headers`: status, `Content-Range`, body.
async fn get_chunk(url: &str, headers: &[(&str, &str)]) -> Result<(StatusCode, String, Vec<u8>)> {
    let mut request = reqwest::Client::new().get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await?;
    let status = response.status();
    let content_range = response
        .headers()
        .get("content-range")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    Ok((status, content_range, response.bytes().await?.to_vec()))
}

#[tokio::test]
async fn range_headers_follow_rfc_9110() -> Result<()> {
    let cluster = TestCluster::builder().storage_nodes(1).start().await?;
    let base = cluster.storage(0).url();
    let http = reqwest::Client::new();
    let body: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    let crc = crc32c::crc32c(&body);
    let url = format!("{base}/chunks/{}", chunk_id("ranged"));
    let put = http
        .put(&url)
        .header("x-dfs-crc32c", crc.to_string())
        .body(body.clone())
        .send()
        .await?;
    ensure!(put.status() == StatusCode::CREATED, "{}", put.status());
    let etag = format!("\"{crc:08x}\"");

    // One satisfiable range: 206 with Content-Range.
    for (range, start, end) in [
        ("bytes=10-19", 10, 19),
        ("Bytes=990-", 990, 999),
        ("bytes=-5000", 0, 999),
        ("bytes=5-99999999999999999999999", 5, 999),
    ] {
        let (status, content_range, got) = get_chunk(&url, &[("range", range)]).await?;
        ensure!(status == StatusCode::PARTIAL_CONTENT, "{range}: {status}");
        ensure!(
            content_range == format!("bytes {start}-{end}/1000"),
            "{range}: {content_range}"
        );
        ensure!(got == body[start..=end], "{range}: wrong bytes");
    }
    let (status, _, got) = get_chunk(&url, &[("range", "bytes=0-9"), ("if-range", &etag)]).await?;
    ensure!(
        status == StatusCode::PARTIAL_CONTENT && got == body[..10],
        "If-Range {etag}: {status}"
    );

    // Unsatisfiable: 416 with Content-Range: bytes */LEN.
    for range in ["bytes=1000-", "bytes=5000-6000", "bytes=-0"] {
        let (status, content_range, _) = get_chunk(&url, &[("range", range)]).await?;
        ensure!(
            status == StatusCode::RANGE_NOT_SATISFIABLE,
            "{range}: {status}"
        );
        ensure!(content_range == "bytes */1000", "{range}: {content_range}");
    }

    // Invalid syntax, another unit, several ranges, a stale If-Range:
    // ignored, the whole chunk.
    for headers in [
        vec![("range", "bytes=5-3")],
        vec![("range", "bytes=abc")],
        vec![("range", "bytes=0 -1")],
        vec![("range", "bytes")],
        vec![("range", "items=0-9")],
        vec![("range", "bytes=0-1,10-11")],
        vec![("range", "bytes=0-1,2000-")],
        vec![("range", "bytes=0-9"), ("if-range", "\"00000000\"")],
    ] {
        let (status, content_range, got) = get_chunk(&url, &headers).await?;
        ensure!(status == StatusCode::OK, "{headers:?}: {status}");
        ensure!(content_range.is_empty(), "{headers:?}: {content_range}");
        ensure!(got == body, "{headers:?}: not the whole chunk");
    }
    Ok(())
}
