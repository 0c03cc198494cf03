//! Storage-server HTTP API, end to end against the real binary.
//!
//! Most tests run a lone storage server whose naming server is unreachable
//! (it must keep serving chunks while it retries registration); the last
//! ones run a whole [`TestCluster`] to check registration across restarts.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use dfs_tests::{TestCluster, bin_path, chunk_id, wait_until};
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

const CRC_HEADER: &str = "x-dfs-crc32c";
const WAIT: Duration = Duration::from_secs(15);

/// A storage server on its own: NAMING_URL points at a closed port.
struct Lone {
    child: Child,
    url: String,
    node_id: String,
    data_dir: PathBuf,
}

impl Lone {
    async fn start(data_dir: &Path) -> Result<Self> {
        let mut child = Command::new(bin_path("storage-server"))
            .env("LISTEN_ADDR", "127.0.0.1:0")
            .env("TCP_PORT", "0")
            .env("NAMING_URL", "http://127.0.0.1:9")
            .env("DATA_DIR", data_dir)
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("spawn storage-server")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .context("storage-server did not start in time")??
            .context("storage-server exited before listening")?;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        // storage-server listening on http://IP:PORT peer=IP:PORT node_id=ID
        let words: Vec<&str> = line.split_whitespace().collect();
        let (url, node_id) = match words.as_slice() {
            ["storage-server", "listening", "on", url, peer, id] if peer.starts_with("peer=") => {
                (*url, id.strip_prefix("node_id="))
            }
            _ => bail!("unexpected first line {line:?}"),
        };
        Ok(Self {
            url: url.to_owned(),
            node_id: node_id.context("no node_id= in the first line")?.to_owned(),
            data_dir: data_dir.to_owned(),
            child,
        })
    }

    /// URL of the chunk this test calls `label` (an id in the naming
    /// server's form, which is all a node stores).
    fn chunk(&self, label: &str) -> String {
        self.raw_chunk(&chunk_id(label))
    }

    /// URL of chunk `id`, whatever it looks like.
    fn raw_chunk(&self, id: &str) -> String {
        format!("{}/chunks/{id}", self.url)
    }

    fn addr(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    fn temp_files(&self) -> Vec<PathBuf> {
        files_under(&self.data_dir.join("tmp"))
    }

    /// SIGTERM, then wait for a clean exit.
    async fn terminate(mut self) -> Result<()> {
        let pid = self.child.id().context("already exited")?;
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await?;
        assert!(status.success(), "kill -TERM failed");
        let exit = tokio::time::timeout(WAIT, self.child.wait()).await??;
        assert!(exit.success(), "storage-server exited with {exit}");
        Ok(())
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

fn crc(data: &[u8]) -> String {
    crc32c::crc32c(data).to_string()
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

async fn put(http: &reqwest::Client, url: &str, body: &[u8]) -> Result<reqwest::Response> {
    Ok(http
        .put(url)
        .header(CRC_HEADER, crc(body))
        .body(body.to_vec())
        .send()
        .await?)
}

async fn error_text(response: reqwest::Response) -> Result<String> {
    let json: serde_json::Value = response.json().await?;
    json["error"]
        .as_str()
        .map(str::to_owned)
        .context("no error field")
}

fn header(headers: &HeaderMap, name: header::HeaderName) -> &str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Sends `request` (which should say `Connection: close`) verbatim over TCP,
/// e.g. with paths reqwest would normalise, and returns the status code and
/// the whole response.
async fn raw(addr: &str, request: &[u8]) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(request).await?;
    let mut response = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut response)).await??;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no status in {text:?}"))?;
    Ok((status, text))
}

#[tokio::test]
async fn put_get_head_delete_round_trip() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let node = Lone::start(dir.path()).await?;
    let http = reqwest::Client::new();
    let body = data(100_000, 1);
    let etag = format!("\"{:08x}\"", crc32c::crc32c(&body));

    let created = put(&http, &node.chunk("round-trip_1"), &body).await?;
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(header(created.headers(), header::ETAG), etag);
    let json: serde_json::Value = created.json().await?;
    assert_eq!(json["size"], 100_000);
    assert_eq!(json["crc32c"], crc32c::crc32c(&body));

    let got = http.get(node.chunk("round-trip_1")).send().await?;
    assert_eq!(got.status(), StatusCode::OK);
    let headers = got.headers().clone();
    assert_eq!(header(&headers, header::ETAG), etag);
    assert_eq!(header(&headers, header::ACCEPT_RANGES), "bytes");
    assert_eq!(
        header(&headers, header::CONTENT_TYPE),
        "application/octet-stream"
    );
    assert_eq!(header(&headers, header::CONTENT_LENGTH), "100000");
    assert_eq!(got.bytes().await?.as_ref(), body.as_slice());

    let head = http.head(node.chunk("round-trip_1")).send().await?;
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(header(head.headers(), header::CONTENT_LENGTH), "100000");
    assert_eq!(header(head.headers(), header::ETAG), etag);
    assert!(head.bytes().await?.is_empty());

    let deleted = http.delete(node.chunk("round-trip_1")).send().await?;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let gone = http.get(node.chunk("round-trip_1")).send().await?;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    assert!(error_text(gone).await?.contains("not found"));
    let head = http.head(node.chunk("round-trip_1")).send().await?;
    assert_eq!(head.status(), StatusCode::NOT_FOUND);
    let again = http.delete(node.chunk("round-trip_1")).send().await?;
    assert_eq!(again.status(), StatusCode::NOT_FOUND);

    let health: serde_json::Value = http
        .get(format!("{}/health", node.url))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(health["status"], "ok");
    let spec = http
        .get(format!("{}/openapi.json", node.url))
        .send()
        .await?;
    assert_eq!(spec.status(), StatusCode::OK);
    // The test-only cap route exists only on a node started with a cap.
    let cap = http
        .put(format!("{}/test-only/p2p-bandwidth", node.url))
        .body("5m")
        .send()
        .await?;
    assert_eq!(cap.status(), StatusCode::NOT_FOUND);
    Ok(())
}

#[tokio::test]
async fn put_is_idempotent_and_detects_conflicts() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let node = Lone::start(dir.path()).await?;
    let http = reqwest::Client::new();
    let (first, other) = (data(5000, 2), data(5000, 3));

    assert_eq!(
        put(&http, &node.chunk("same"), &first).await?.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        put(&http, &node.chunk("same"), &first).await?.status(),
        StatusCode::OK
    );
    let conflict = put(&http, &node.chunk("same"), &other).await?;
    assert_eq!(conflict.status(), StatusCode::CONFLICT);
    assert!(error_text(conflict).await?.contains("already stored"));
    let got = http.get(node.chunk("same")).send().await?.bytes().await?;
    assert_eq!(got.as_ref(), first.as_slice());

    // Concurrent uploads of one id: exactly one creates it.
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let (http, url, body) = (http.clone(), node.chunk("racy"), data(300_000, 4));
            tokio::spawn(async move { put(&http, &url, &body).await.map(|r| r.status()) })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await??);
    }
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::CREATED || *s == StatusCode::OK)
    );
    assert!(node.temp_files().is_empty());
    Ok(())
}

#[tokio::test]
async fn bad_uploads_store_nothing() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let node = Lone::start(dir.path()).await?;
    let http = reqwest::Client::new();
    let body = data(70_000, 5);

    let mismatch = http
        .put(node.chunk("bad-crc"))
        .header(CRC_HEADER, (crc32c::crc32c(&body) ^ 1).to_string())
        .body(body.clone())
        .send()
        .await?;
    assert_eq!(mismatch.status(), StatusCode::BAD_REQUEST);
    assert!(error_text(mismatch).await?.contains("CRC32C mismatch"));
    assert_eq!(
        http.get(node.chunk("bad-crc")).send().await?.status(),
        StatusCode::NOT_FOUND
    );

    let missing = http
        .put(node.chunk("no-crc"))
        .body(body.clone())
        .send()
        .await?;
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
    assert!(error_text(missing).await?.contains(CRC_HEADER));
    let garbage = http
        .put(node.chunk("no-crc"))
        .header(CRC_HEADER, "zz")
        .body(body)
        .send()
        .await?;
    assert_eq!(garbage.status(), StatusCode::BAD_REQUEST);

    // Declared larger than 64 MiB: refused before any byte is read.
    let request = format!(
        "PUT /chunks/{} HTTP/1.1\r\nHost: x\r\n{CRC_HEADER}: 0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        chunk_id("huge"),
        64 * 1024 * 1024 + 1
    );
    let (status, text) = raw(node.addr(), request.as_bytes()).await?;
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("\"error\""), "{text}");

    // A body cut short by the client.
    let request = format!(
        "PUT /chunks/{} HTTP/1.1\r\nHost: x\r\n{CRC_HEADER}: 0\r\nContent-Length: 100000\r\n\r\n{}",
        chunk_id("cut"),
        "x".repeat(30_000)
    );
    let mut stream = TcpStream::connect(node.addr()).await?;
    stream.write_all(request.as_bytes()).await?;
    drop(stream);
    assert_eq!(
        http.get(node.chunk("cut")).send().await?.status(),
        StatusCode::NOT_FOUND
    );
    wait_until(WAIT, || async { node.temp_files().is_empty() }).await?;
    assert!(files_under(&dir.path().join("chunks")).is_empty());
    Ok(())
}

#[tokio::test]
async fn body_over_the_limit_without_content_length_is_413() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let node = Lone::start(dir.path()).await?;
    let http = reqwest::Client::new();
    let pieces = (0..65).map(|_| Ok::<_, std::io::Error>(vec![0u8; 1 << 20]));
    let response = http
        .put(node.chunk("too-big"))
        .header(CRC_HEADER, "0")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(pieces)))
        .send()
        .await;
    // The server answers 413 as soon as the count passes 64 MiB; the client
    // may still be sending and then sees the connection close instead.
    if let Ok(response) = response {
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
    wait_until(WAIT, || async { node.temp_files().is_empty() }).await?;
    assert!(files_under(&dir.path().join("chunks")).is_empty());
    Ok(())
}

#[tokio::test]
async fn ranges() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let node = Lone::start(dir.path()).await?;
    let http = reqwest::Client::new();
    let body = data(1000, 6);
    assert_eq!(
        put(&http, &node.chunk("ranged"), &body).await?.status(),
        StatusCode::CREATED
    );

    for (range, start, end) in [
        ("bytes=0-9", 0, 9),
        ("bytes=-10", 990, 999),
        ("bytes=990-", 990, 999),
        ("bytes=999-999", 999, 999),
        ("bytes=500-5000", 500, 999),
        // RFC 9110 §14.1.3: a suffix longer than the chunk is all of it.
        ("bytes=-2000", 0, 999),
    ] {
        let response = http
            .get(node.chunk("ranged"))
            .header(header::RANGE, range)
            .send()
            .await?;
        assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        let headers = response.headers().clone();
        assert_eq!(
            header(&headers, header::CONTENT_RANGE),
            format!("bytes {start}-{end}/1000")
        );
        assert_eq!(
            header(&headers, header::CONTENT_LENGTH),
            (end - start + 1).to_string()
        );
        assert_eq!(
            response.bytes().await?.as_ref(),
            &body[start..=end],
            "{range}"
        );
    }

    for range in ["bytes=1000-", "bytes=2000-3000", "bytes=-0"] {
        let response = http
            .get(node.chunk("ranged"))
            .header(header::RANGE, range)
            .send()
            .await?;
        assert_eq!(
            response.status(),
            StatusCode::RANGE_NOT_SATISFIABLE,
            "{range}"
        );
        assert_eq!(
            header(response.headers(), header::CONTENT_RANGE),
            "bytes */1000"
        );
        assert!(error_text(response).await?.contains("1000 bytes"));
    }

    let multi = http
        .get(node.chunk("ranged"))
        .header(header::RANGE, "bytes=0-1,10-11")
        .send()
        .await?;
    assert_eq!(multi.status(), StatusCode::OK);
    assert_eq!(multi.bytes().await?.as_ref(), body.as_slice());
    Ok(())
}

#[tokio::test]
async fn invalid_ids_touch_nothing_outside_data_dir() -> Result<()> {
    let root = tempfile::tempdir()?;
    let data_dir = root.path().join("data");
    let node = Lone::start(&data_dir).await?;
    let http = reqwest::Client::new();
    let node_id_file = std::fs::read_to_string(data_dir.join("node_id"))?;

    for id in ["a.b", "..%2F..%2Fescape", "a%2Fb", "node_id%00"] {
        let put = http
            .put(node.raw_chunk(id))
            .header(CRC_HEADER, "0")
            .body("")
            .send()
            .await?;
        assert_eq!(put.status(), StatusCode::BAD_REQUEST, "PUT {id}");
        assert!(put.json::<serde_json::Value>().await?["error"].is_string());
        let get = http.get(node.raw_chunk(id)).send().await?;
        assert_eq!(get.status(), StatusCode::BAD_REQUEST, "GET {id}");
        let delete = http.delete(node.raw_chunk(id)).send().await?;
        assert_eq!(delete.status(), StatusCode::BAD_REQUEST, "DELETE {id}");
    }
    // Literal dot segments, which HTTP clients would normalise away.
    for path in ["/chunks/..", "/chunks/../node_id", "/chunks/../../escape"] {
        for method in ["PUT", "GET", "DELETE"] {
            let request = format!(
                "{method} {path} HTTP/1.1\r\nHost: x\r\n{CRC_HEADER}: 0\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let (status, text) = raw(node.addr(), request.as_bytes()).await?;
            assert!(status == 400 || status == 404, "{method} {path}: {text}");
        }
    }

    let outside: Vec<_> = std::fs::read_dir(root.path())?
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(outside, vec![std::ffi::OsString::from("data")]);
    assert_eq!(
        std::fs::read_to_string(data_dir.join("node_id"))?,
        node_id_file
    );
    assert!(files_under(&data_dir.join("chunks")).is_empty());
    assert!(node.temp_files().is_empty());
    Ok(())
}

#[tokio::test]
async fn restart_keeps_node_id_and_chunks_and_cleans_tmp() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let node = Lone::start(dir.path()).await?;
    let http = reqwest::Client::new();
    let body = data(200_000, 7);
    assert_eq!(
        put(&http, &node.chunk("durable"), &body).await?.status(),
        StatusCode::CREATED
    );
    let node_id = node.node_id.clone();
    assert_eq!(node_id.len(), 32);
    node.terminate().await?;

    // Leftover of an upload interrupted by a crash.
    std::fs::write(dir.path().join("tmp").join("durable.crashed.part"), b"junk")?;
    let node = Lone::start(dir.path()).await?;
    assert_eq!(node.node_id, node_id);
    assert!(node.temp_files().is_empty());
    let got = http.get(node.chunk("durable")).send().await?;
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(got.bytes().await?.as_ref(), body.as_slice());
    node.terminate().await
}

#[tokio::test]
async fn registers_and_comes_back_as_the_same_node() -> Result<()> {
    let mut cluster = TestCluster::builder().storage_nodes(1).start().await?;
    let node_id = cluster.storage(0).node_id().to_owned();
    let nodes = cluster.get_json("/nodes").await?;
    let listed = nodes["nodes"].as_array().context("nodes")?;
    assert_eq!(listed.len(), 1, "{nodes}");
    assert_eq!(listed[0]["node_id"], node_id.as_str());
    assert_eq!(listed[0]["url"], cluster.storage(0).url());

    let http = reqwest::Client::new();
    let kept = chunk_id("kept-across-restart");
    let url = format!("{}/chunks/{kept}", cluster.storage(0).url());
    assert_eq!(
        put(&http, &url, b"survivor").await?.status(),
        StatusCode::CREATED
    );
    wait_until(WAIT, || async {
        let nodes = cluster.get_json("/nodes").await.unwrap_or_default();
        nodes["nodes"][0]["chunk_count"] == 1
    })
    .await?;

    cluster.stop_storage(0).await?;
    cluster.start_storage(0).await?;
    assert_eq!(cluster.storage(0).node_id(), node_id);
    let new_url = cluster.storage(0).url().to_owned();
    wait_until(WAIT, || async {
        let nodes = cluster.get_json("/nodes").await.unwrap_or_default();
        nodes["nodes"]
            .as_array()
            .is_some_and(|list| list.len() == 1)
            && nodes["nodes"][0]["url"] == new_url.as_str()
            && nodes["nodes"][0]["alive"] == true
    })
    .await?;
    let got = http.get(format!("{new_url}/chunks/{kept}")).send().await?;
    assert_eq!(got.bytes().await?.as_ref(), b"survivor");
    Ok(())
}

#[tokio::test]
async fn deletes_chunks_the_naming_server_lists_in_heartbeats() -> Result<()> {
    let cluster = TestCluster::builder().storage_nodes(1).start().await?;
    let http = reqwest::Client::new();
    let naming = cluster.naming_url();
    let body = data(1000, 8);
    let init: serde_json::Value = http
        .post(format!("{naming}/files/init"))
        .json(&serde_json::json!({"name": "trash-me", "size": 1000, "replication": 1}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let file_id = init["file_id"].as_str().context("file_id")?;
    let alloc: serde_json::Value = http
        .post(format!("{naming}/files/{file_id}/chunks"))
        .json(&serde_json::json!({"index": 0}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let chunk_id = alloc["chunk_id"].as_str().context("chunk_id")?;
    let target = alloc["targets"][0]["url"].as_str().context("target url")?;
    let url = format!("{target}/chunks/{chunk_id}");
    assert_eq!(put(&http, &url, &body).await?.status(), StatusCode::CREATED);
    let finalize = serde_json::json!({"size": 1000, "chunks": [{
        "index": 0, "chunk_id": chunk_id, "size": 1000,
        "crc32c": crc32c::crc32c(&body), "replicas": [cluster.storage(0).node_id()],
    }]});
    http.post(format!("{naming}/files/{file_id}/finalize"))
        .json(&finalize)
        .send()
        .await?
        .error_for_status()?;
    assert!(cluster.storage(0).chunk_path(chunk_id).is_some());

    http.delete(format!("{naming}/files/{file_id}"))
        .send()
        .await?
        .error_for_status()?;
    wait_until(WAIT, || async {
        cluster.storage(0).chunk_path(chunk_id).is_none()
    })
    .await?;
    assert_eq!(http.get(&url).send().await?.status(), StatusCode::NOT_FOUND);
    // The next heartbeats report the deletion and the new chunk count.
    wait_until(WAIT, || async {
        let nodes = cluster.get_json("/nodes").await.unwrap_or_default();
        nodes["nodes"][0]["chunk_count"] == 0
    })
    .await?;
    Ok(())
}
