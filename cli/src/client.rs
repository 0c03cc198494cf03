//! HTTP access to the naming server ([`NamingClient`], one method per route)
//! and to storage servers ([`put_chunk`], [`get_chunk`]).

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use dfs_common::api::{
    AllocateChunkRequest, CRC32C_HEADER, ChunkAllocation, ChunkLocation, Distribution,
    DistributionList, ErrorBody, FileInfo, FileList, FileRecord, FileSize, FinalizeRequest, Health,
    InitFileRequest, NodeList, NodeTarget, RepairReport, StartDistribution,
};
use dfs_common::chain::{
    ChainErrorBody, DownstreamNode, FAILED_NODE_HEADER, REPLICATE_TO_HEADER, format_replicate_to,
};
use reqwest::{RequestBuilder, Response, Url};
use serde::de::DeserializeOwned;

use crate::error::Error;

/// How long a naming-server call may take.
const NAMING_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a repair may take: it copies every under-replicated chunk.
const REPAIR_TIMEOUT: Duration = Duration::from_secs(3600);
/// How long to wait for a TCP connection to any server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest silence while a chunk body is on the wire.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// A client of one naming server. Cheap to clone; clones share connections.
#[derive(Debug, Clone)]
pub struct NamingClient {
    http: reqwest::Client,
    base: Url,
    token: Option<String>,
}

impl NamingClient {
    /// `base_url` is the naming server's root, e.g. `http://127.0.0.1:8000`.
    /// `token` is sent as `Authorization: Bearer …` on every call.
    pub fn new(base_url: &str, token: Option<String>) -> Result<Self, Error> {
        let base = Url::parse(base_url)
            .map_err(|e| Error::Invalid(format!("invalid naming URL {base_url:?}: {e}")))?;
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            return Err(Error::Invalid(format!(
                "invalid naming URL {base_url:?}: expected http://HOST:PORT"
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .build()
            .map_err(|e| Error::Invalid(format!("cannot set up HTTP: {e}")))?;
        let token = token.filter(|t| !t.is_empty());
        Ok(Self { http, base, token })
    }

    /// The naming server's base URL.
    pub fn base_url(&self) -> &str {
        self.base.as_str()
    }

    /// The HTTP client, shared with storage-server calls.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// `base` + the given path segments, each percent-encoded.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    fn request(&self, method: reqwest::Method, url: Url) -> RequestBuilder {
        let request = self.http.request(method, url).timeout(NAMING_TIMEOUT);
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    async fn send(&self, request: RequestBuilder) -> Result<Response, Error> {
        let (client, request) = request.build_split();
        let request = request.map_err(|e| Error::Invalid(format!("bad request: {e}")))?;
        let url = request.url().to_string();
        let response = client
            .execute(request)
            .await
            .map_err(|e| Error::from_reqwest(&url, &e))?;
        check_status(response, &url).await
    }

    async fn send_json<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T, Error> {
        let response = self.send(request).await?;
        let url = response.url().to_string();
        response
            .json()
            .await
            .map_err(|e| Error::from_reqwest(&url, &e))
    }

    /// `POST /files/init`: a pending file (409 when the name is committed).
    pub async fn init_file(&self, body: &InitFileRequest) -> Result<FileInfo, Error> {
        let url = self.url(&["files", "init"]);
        self.send_json(self.request(reqwest::Method::POST, url).json(body))
            .await
    }

    /// `POST /files/{file_id}/chunks`: targets and a fresh id for one chunk.
    pub async fn allocate_chunk(
        &self,
        file_id: &str,
        body: &AllocateChunkRequest,
    ) -> Result<ChunkAllocation, Error> {
        let url = self.url(&["files", file_id, "chunks"]);
        self.send_json(self.request(reqwest::Method::POST, url).json(body))
            .await
    }

    /// `POST /files/{file_id}/finalize`: commits the file under its name.
    pub async fn finalize(
        &self,
        file_id: &str,
        body: &FinalizeRequest,
    ) -> Result<FileRecord, Error> {
        let url = self.url(&["files", file_id, "finalize"]);
        self.send_json(self.request(reqwest::Method::POST, url).json(body))
            .await
    }

    /// `GET /files/{file_id}`.
    pub async fn file(&self, file_id: &str) -> Result<FileRecord, Error> {
        let url = self.url(&["files", file_id]);
        self.send_json(self.request(reqwest::Method::GET, url))
            .await
    }

    /// `GET /files?name=`: a committed file with all its chunks.
    pub async fn file_by_name(&self, name: &str) -> Result<FileRecord, Error> {
        let mut url = self.url(&["files"]);
        url.query_pairs_mut().append_pair("name", name);
        self.send_json(self.request(reqwest::Method::GET, url))
            .await
    }

    /// `GET /files?prefix=&limit=&after=`: one page of the listing.
    pub async fn list_files(
        &self,
        prefix: &str,
        limit: Option<u32>,
        after: Option<&str>,
    ) -> Result<FileList, Error> {
        let mut url = self.url(&["files"]);
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("prefix", prefix);
            if let Some(limit) = limit {
                query.append_pair("limit", &limit.to_string());
            }
            if let Some(after) = after {
                query.append_pair("after", after);
            }
        }
        self.send_json(self.request(reqwest::Method::GET, url))
            .await
    }

    /// `GET /files/{file_id}/chunks/{index}`.
    pub async fn chunk_location(&self, file_id: &str, index: u64) -> Result<ChunkLocation, Error> {
        let url = self.url(&["files", file_id, "chunks", &index.to_string()]);
        self.send_json(self.request(reqwest::Method::GET, url))
            .await
    }

    /// `GET /files/{file_id}/size`.
    pub async fn file_size(&self, file_id: &str) -> Result<FileSize, Error> {
        let url = self.url(&["files", file_id, "size"]);
        self.send_json(self.request(reqwest::Method::GET, url))
            .await
    }

    /// `DELETE /files/{file_id}`.
    pub async fn delete_file(&self, file_id: &str) -> Result<(), Error> {
        let url = self.url(&["files", file_id]);
        self.send(self.request(reqwest::Method::DELETE, url))
            .await
            .map(drop)
    }

    /// `GET /nodes`.
    pub async fn nodes(&self) -> Result<NodeList, Error> {
        let url = self.url(&["nodes"]);
        self.send_json(self.request(reqwest::Method::GET, url))
            .await
    }

    /// `POST /files/{file_id}/repair`: re-replicates under-replicated chunks.
    pub async fn repair_file(&self, file_id: &str) -> Result<RepairReport, Error> {
        let url = self.url(&["files", file_id, "repair"]);
        let request = self
            .request(reqwest::Method::POST, url)
            .timeout(REPAIR_TIMEOUT);
        self.send_json(request).await
    }

    /// `DELETE /nodes/{node_id}`: forgets a dead node.
    pub async fn forget_node(&self, node_id: &str) -> Result<(), Error> {
        let url = self.url(&["nodes", node_id]);
        self.send(self.request(reqwest::Method::DELETE, url))
            .await
            .map(drop)
    }

    /// `POST /distributions`: starts copying a file to every live node.
    pub async fn start_distribution(
        &self,
        body: &StartDistribution,
    ) -> Result<Distribution, Error> {
        let url = self.url(&["distributions"]);
        self.send_json(self.request(reqwest::Method::POST, url).json(body))
            .await
    }

    /// `GET /distributions/{job_id}`.
    pub async fn distribution(&self, job_id: &str) -> Result<Distribution, Error> {
        let url = self.url(&["distributions", job_id]);
        self.send_json(self.request(reqwest::Method::GET, url))
            .await
    }

    /// `GET /distributions`: the most recent jobs.
    pub async fn distributions(&self) -> Result<DistributionList, Error> {
        let url = self.url(&["distributions"]);
        self.send_json(self.request(reqwest::Method::GET, url))
            .await
    }

    /// `GET /health`.
    pub async fn health(&self) -> Result<Health, Error> {
        let url = self.url(&["health"]);
        self.send_json(self.request(reqwest::Method::GET, url))
            .await
    }
}

/// Passes 2xx responses through; turns the rest into [`Error::Api`] with the
/// server's `{"error": …}` text.
async fn check_status(response: Response, url: &str) -> Result<Response, Error> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = response.text().await.unwrap_or_default();
    let message = match serde_json::from_str::<ErrorBody>(&body) {
        Ok(body) if !body.error.trim().is_empty() => body.error,
        _ => {
            let snippet: String = body.trim().chars().take(200).collect();
            if snippet.is_empty() {
                format!("{url} answered {status}")
            } else {
                format!("{url} answered {status}: {snippet}")
            }
        }
    };
    Err(Error::Api { status, message })
}

/// `{base}/chunks/{chunk_id}` on a storage server.
fn chunk_url(base: &str, chunk_id: &str) -> Result<Url, Error> {
    let mut url = Url::parse(base).map_err(|e| Error::BadResponse {
        url: base.to_owned(),
        reason: format!("bad node URL: {e}"),
    })?;
    url.path_segments_mut()
        .map_err(|()| Error::BadResponse {
            url: base.to_owned(),
            reason: "node URL cannot have a path".to_owned(),
        })?
        .pop_if_empty()
        .extend(["chunks", chunk_id]);
    Ok(url)
}

/// `PUT {base}/chunks/{chunk_id}` with the chunk's CRC32C header. With
/// `replicate_to`, the node passes the chunk down that chain and answers
/// once every node holds it; a failure below it is [`Error::ChainFailed`].
pub async fn put_chunk(
    http: &reqwest::Client,
    base: &str,
    chunk_id: &str,
    data: Bytes,
    crc32c: u32,
    replicate_to: &[NodeTarget],
) -> Result<(), Error> {
    let url = chunk_url(base, chunk_id)?;
    let shown = url.to_string();
    let mut request = http
        .put(url)
        .header(CRC32C_HEADER, crc32c.to_string())
        .body(data);
    if !replicate_to.is_empty() {
        let chain: Vec<DownstreamNode> = replicate_to
            .iter()
            .map(|t| DownstreamNode {
                node_id: t.node_id.clone(),
                url: t.url.clone(),
            })
            .collect();
        request = request.header(REPLICATE_TO_HEADER, format_replicate_to(&chain));
    }
    let response = request
        .send()
        .await
        .map_err(|e| Error::from_reqwest(&shown, &e))?;
    let failed_node = response
        .headers()
        .get(FAILED_NODE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if response.status() == reqwest::StatusCode::BAD_GATEWAY
        && let Some(failed_node) = failed_node
    {
        let body = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<ChainErrorBody>(&body)
            .map(|b| b.error)
            .unwrap_or_else(|_| format!("{shown} answered 502"));
        return Err(Error::ChainFailed {
            failed_node,
            message,
        });
    }
    check_status(response, &shown).await.map(drop)
}

/// `GET {base}/chunks/{chunk_id}`, refusing a body longer than `max_len`.
/// The caller verifies size and CRC32C.
pub async fn get_chunk(
    http: &reqwest::Client,
    base: &str,
    chunk_id: &str,
    max_len: u64,
) -> Result<Bytes, Error> {
    let url = chunk_url(base, chunk_id)?;
    let shown = url.to_string();
    let response = http
        .get(url)
        .send()
        .await
        .map_err(|e| Error::from_reqwest(&shown, &e))?;
    let mut response = check_status(response, &shown).await?;
    let too_long = || Error::BadResponse {
        url: shown.clone(),
        reason: format!("body longer than the chunk's {max_len} bytes"),
    };
    if response.content_length().is_some_and(|len| len > max_len) {
        return Err(too_long());
    }
    let capacity = usize::try_from(max_len).map_err(|_| too_long())?;
    let mut data = BytesMut::with_capacity(capacity);
    while let Some(piece) = response
        .chunk()
        .await
        .map_err(|e| Error::from_reqwest(&shown, &e))?
    {
        if (data.len() + piece.len()) as u64 > max_len {
            return Err(too_long());
        }
        data.extend_from_slice(&piece);
    }
    Ok(data.freeze())
}
