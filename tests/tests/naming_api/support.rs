//! A small client for the naming-server API, and simulated storage nodes
//! that register and heartbeat through the real API.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use dfs_tests::TestCluster;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Heartbeat timeout for tests that do not test liveness: registered nodes
/// stay alive without heartbeat loops.
pub const LONG_TIMEOUT: &str = "60s";
pub const WAIT: Duration = Duration::from_secs(15);
pub const KIB64: u64 = 64 * 1024;
/// Disk size and free space a simulated node reports when it registers,
/// and in its heartbeats: plenty of room beyond the default reserve.
pub const CAPACITY: u64 = 1 << 40;
pub const REGISTERED_FREE: u64 = 500 << 30;
pub const HEARTBEAT_FREE: u64 = 400 << 30;

/// A cluster with no storage processes; tests register nodes themselves.
pub async fn cluster(env: &[(&str, &str)]) -> Result<TestCluster> {
    let mut builder = TestCluster::builder().naming_env("HEARTBEAT_TIMEOUT", LONG_TIMEOUT);
    for (key, value) in env {
        builder = builder.naming_env(key, value);
    }
    builder.start().await
}

pub struct Api {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
}

impl Api {
    pub fn new(cluster: &TestCluster) -> Self {
        Self::with_token(cluster, None)
    }

    pub fn with_token(cluster: &TestCluster, token: Option<&str>) -> Self {
        Self {
            base: cluster.naming_url().to_owned(),
            http: reqwest::Client::new(),
            token: token.map(str::to_owned),
        }
    }

    /// Sends a request with an optional JSON body; returns status and JSON
    /// body (`Null` when empty). Fails when a body is not JSON.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value)> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = response.status();
        let text = response.text().await?;
        if text.is_empty() {
            return Ok((status, Value::Null));
        }
        let value = serde_json::from_str(&text)
            .with_context(|| format!("{method} {path}: {status} with a non-JSON body {text:?}"))?;
        Ok((status, value))
    }

    /// Posts raw bytes as `application/json`.
    pub async fn post_raw(&self, path: &str, body: &str) -> Result<(StatusCode, Value)> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await?;
        let status = response.status();
        Ok((
            status,
            response.json().await.context("error body is not JSON")?,
        ))
    }

    /// POSTs `body`; the status and the reply's `Retry-After`, if any.
    pub async fn post_retry_after(
        &self,
        path: &str,
        body: &Value,
    ) -> Result<(StatusCode, Option<String>)> {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok((response.status(), retry_after))
    }

    pub async fn get(&self, path: &str) -> Result<(StatusCode, Value)> {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Result<(StatusCode, Value)> {
        self.call(Method::POST, path, Some(&body)).await
    }

    pub async fn delete(&self, path: &str) -> Result<(StatusCode, Value)> {
        self.call(Method::DELETE, path, None).await
    }

    /// Calls and expects `want`; returns the body.
    pub async fn expect(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        want: StatusCode,
    ) -> Result<Value> {
        let (status, value) = self.call(method.clone(), path, body.as_ref()).await?;
        if status != want {
            bail!("{method} {path}: expected {want}, got {status}: {value}");
        }
        Ok(value)
    }

    /// Registers a simulated storage node.
    pub async fn register(&self, node_id: &str) -> Result<Value> {
        let body = json!({
            "node_id": node_id,
            "url": format!("http://{node_id}.invalid:5001"),
            "tcp_addr": format!("{node_id}.invalid:50051"),
            "capacity_bytes": CAPACITY, "free_bytes": REGISTERED_FREE, "chunk_count": 0,
        });
        self.expect(
            Method::POST,
            "/register_storage",
            Some(body),
            StatusCode::OK,
        )
        .await
    }

    /// Registers `n` nodes named `{prefix}{i}`.
    pub async fn register_nodes(&self, prefix: &str, n: usize) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        for i in 0..n {
            let id = format!("{prefix}{i}");
            self.register(&id).await?;
            ids.push(id);
        }
        Ok(ids)
    }

    pub async fn heartbeat(
        &self,
        node_id: &str,
        deleted: &[String],
    ) -> Result<(StatusCode, Value)> {
        let body = json!({"capacity_bytes": CAPACITY, "free_bytes": HEARTBEAT_FREE, "chunk_count": 1, "deleted": deleted});
        self.post(&format!("/nodes/{node_id}/heartbeat"), body)
            .await
    }

    /// The chunk ids the node is told to delete.
    pub async fn trash_of(&self, node_id: &str) -> Result<Vec<String>> {
        let (status, body) = self.heartbeat(node_id, &[]).await?;
        if status != StatusCode::OK {
            bail!("heartbeat of {node_id}: {status}: {body}");
        }
        Ok(strings(&body["delete"]))
    }

    pub async fn init(
        &self,
        name: &str,
        size: u64,
        chunk_size: u64,
        replication: u32,
    ) -> Result<Value> {
        let body = json!({"name": name, "size": size, "chunk_size": chunk_size, "replication": replication});
        self.expect(Method::POST, "/files/init", Some(body), StatusCode::CREATED)
            .await
    }

    pub async fn allocate(&self, file_id: &str, index: u64) -> Result<Value> {
        let path = format!("/files/{file_id}/chunks");
        self.expect(
            Method::POST,
            &path,
            Some(json!({"index": index})),
            StatusCode::CREATED,
        )
        .await
    }

    /// Allocates every chunk of a pending file; returns the finalize body
    /// that reports them all written to every target.
    pub async fn allocate_all(&self, info: &Value) -> Result<Value> {
        let file_id = info["file_id"].as_str().context("no file_id")?;
        let mut chunks = Vec::new();
        for index in 0..info["chunk_count"].as_u64().context("no chunk_count")? {
            let allocation = self.allocate(file_id, index).await?;
            chunks.push(finalized(&allocation));
        }
        Ok(json!({"size": info["size"], "chunks": chunks}))
    }

    /// Creates and commits a file; returns its record.
    pub async fn upload(&self, name: &str, size: u64, replication: u32) -> Result<Value> {
        let info = self.init(name, size, KIB64, replication).await?;
        let body = self.allocate_all(&info).await?;
        let path = format!("/files/{}/finalize", id(&info));
        self.expect(Method::POST, &path, Some(body), StatusCode::OK)
            .await
    }
}

/// The finalize entry for an allocation written to all its targets.
pub fn finalized(allocation: &Value) -> Value {
    let replicas: Vec<Value> = allocation["targets"]
        .as_array()
        .map(|targets| targets.iter().map(|t| t["node_id"].clone()).collect())
        .unwrap_or_default();
    json!({
        "index": allocation["index"],
        "chunk_id": allocation["chunk_id"],
        "size": allocation["size"],
        "crc32c": 12345,
        "replicas": replicas,
    })
}

pub fn id(value: &Value) -> String {
    value["file_id"].as_str().unwrap_or_default().to_owned()
}

pub fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Fails unless the body is `{"error": "<non-empty text>"}`, and returns the text.
pub fn error_text(body: &Value) -> Result<String> {
    match body["error"].as_str() {
        Some(text) if !text.is_empty() && body.as_object().is_some_and(|o| o.len() == 1) => {
            Ok(text.to_owned())
        }
        _ => bail!("not an error body: {body}"),
    }
}

/// Expects `status` and an error body.
pub async fn rejected(
    api: &Api,
    method: Method,
    path: &str,
    body: Option<Value>,
    status: StatusCode,
) -> Result<String> {
    let (got, value) = api.call(method.clone(), path, body.as_ref()).await?;
    ensure!(
        got == status,
        "{method} {path}: expected {status}, got {got}: {value}"
    );
    error_text(&value)
}
