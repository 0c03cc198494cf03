//! [`NamingClient`]: the naming server's HTTP API, one method per route
//! that a dfs program calls (the CLI's, and the storage nodes' membership,
//! orphan reports and distribution progress).

use std::time::Duration;

use dfs_common::api::{
    AllocateChunkRequest, ChunkAllocation, ChunkReport, ChunkReportReply, Distribution,
    DistributionList, FileInfo, FileList, FileRecord, FinalizeRequest, HeartbeatRequest,
    HeartbeatResponse, InitFileRequest, NodeList, NodeReport, RegisterRequest, RegisterResponse,
    RepairReport, ReportAck, StartDistribution, SuspectReplica,
};
use reqwest::{Method, RequestBuilder, Url};
use serde::de::DeserializeOwned;

use crate::access::ClusterAccess;
use crate::error::Error;

use crate::reply::{base_url, endpoint, send, send_json};

/// How long a naming-server call may take unless the client says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a repair may take: it copies every under-replicated chunk.
const REPAIR_TIMEOUT: Duration = Duration::from_secs(3600);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A client of one naming server. Cheap to clone; clones share connections.
#[derive(Debug, Clone)]
pub struct NamingClient {
    http: reqwest::Client,
    base: Url,
    access: ClusterAccess,
    timeout: Duration,
}

impl NamingClient {
    /// `base_url` is the naming server's root, e.g. `http://127.0.0.1:8000`
    /// (or `https://…`); the token of `access`, when there is one, goes
    /// with every call as `Authorization: Bearer …`.
    pub fn new(base_url_text: &str, access: &ClusterAccess) -> Result<Self, Error> {
        let base = base_url(base_url_text)?;
        Ok(Self {
            http: access.http(CONNECT_TIMEOUT, None)?,
            base,
            access: access.clone(),
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// The same client with another per-call time limit.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The naming server's base URL.
    pub fn base_url(&self) -> &str {
        self.base.as_str()
    }

    fn request(&self, method: Method, segments: &[&str]) -> RequestBuilder {
        self.request_url(method, endpoint(&self.base, segments))
    }

    fn request_url(&self, method: Method, url: Url) -> RequestBuilder {
        self.access
            .authorize(self.http.request(method, url).timeout(self.timeout))
    }

    async fn get<T: DeserializeOwned>(&self, segments: &[&str]) -> Result<T, Error> {
        send_json(self.request(Method::GET, segments)).await
    }

    async fn post<B: serde::Serialize, T: DeserializeOwned>(
        &self,
        segments: &[&str],
        body: &B,
    ) -> Result<T, Error> {
        send_json(self.request(Method::POST, segments).json(body)).await
    }

    async fn delete(&self, segments: &[&str]) -> Result<(), Error> {
        send(self.request(Method::DELETE, segments)).await.map(drop)
    }

    // ------------------------------------------------------------ files

    /// `POST /files/init`: a pending file (409 when the name is committed).
    pub async fn init_file(&self, body: &InitFileRequest) -> Result<FileInfo, Error> {
        self.post(&["files", "init"], body).await
    }

    /// `POST /files/{file_id}/chunks`: targets and a fresh id for one chunk.
    pub async fn allocate_chunk(
        &self,
        file_id: &str,
        body: &AllocateChunkRequest,
    ) -> Result<ChunkAllocation, Error> {
        self.post(&["files", file_id, "chunks"], body).await
    }

    /// `POST /files/{file_id}/finalize`: commits the file under its name.
    pub async fn finalize(
        &self,
        file_id: &str,
        body: &FinalizeRequest,
    ) -> Result<FileRecord, Error> {
        self.post(&["files", file_id, "finalize"], body).await
    }

    /// `GET /files?name=`: a committed file with all its chunks.
    pub async fn file_by_name(&self, name: &str) -> Result<FileRecord, Error> {
        let mut url = endpoint(&self.base, &["files"]);
        url.query_pairs_mut().append_pair("name", name);
        send_json(self.request_url(Method::GET, url)).await
    }

    /// `GET /files/{file_id}`: a committed file with all its chunks.
    pub async fn file(&self, file_id: &str) -> Result<FileRecord, Error> {
        self.get(&["files", file_id]).await
    }

    /// `GET /files?prefix=&limit=&after=`: one page of the listing.
    pub async fn list_files(
        &self,
        prefix: &str,
        limit: Option<u32>,
        after: Option<&str>,
    ) -> Result<FileList, Error> {
        let mut url = endpoint(&self.base, &["files"]);
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
        send_json(self.request_url(Method::GET, url)).await
    }

    /// `POST /files/{file_id}/chunks/{index}/suspect`: a replica served bad
    /// bytes (or none); its node will verify its copy.
    pub async fn report_suspect(
        &self,
        file_id: &str,
        index: u64,
        report: &SuspectReplica,
    ) -> Result<(), Error> {
        let index = index.to_string();
        let segments = ["files", file_id, "chunks", &index, "suspect"];
        send(self.request(Method::POST, &segments).json(report))
            .await
            .map(drop)
    }

    /// `DELETE /files/{file_id}`.
    pub async fn delete_file(&self, file_id: &str) -> Result<(), Error> {
        self.delete(&["files", file_id]).await
    }

    /// `POST /files/{file_id}/repair`: re-replicates under-replicated chunks.
    pub async fn repair_file(&self, file_id: &str) -> Result<RepairReport, Error> {
        let request = self
            .request(Method::POST, &["files", file_id, "repair"])
            .timeout(REPAIR_TIMEOUT);
        send_json(request).await
    }

    // ------------------------------------------------------------ nodes

    /// `GET /nodes`.
    pub async fn nodes(&self) -> Result<NodeList, Error> {
        self.get(&["nodes"]).await
    }

    /// `DELETE /nodes/{node_id}`: forgets a dead node.
    pub async fn forget_node(&self, node_id: &str) -> Result<(), Error> {
        self.delete(&["nodes", node_id]).await
    }

    /// `POST /register_storage`: a storage node announces itself.
    pub async fn register(&self, body: &RegisterRequest) -> Result<RegisterResponse, Error> {
        self.post(&["register_storage"], body).await
    }

    /// `POST /nodes/{node_id}/heartbeat`; a 404 means "register again".
    pub async fn heartbeat(
        &self,
        node_id: &str,
        body: &HeartbeatRequest,
    ) -> Result<HeartbeatResponse, Error> {
        self.post(&["nodes", node_id, "heartbeat"], body).await
    }

    /// `POST /nodes/{node_id}/chunk_report`: which of these chunks are orphans.
    pub async fn chunk_report(
        &self,
        node_id: &str,
        body: &ChunkReport,
    ) -> Result<ChunkReportReply, Error> {
        self.post(&["nodes", node_id, "chunk_report"], body).await
    }

    // ---------------------------------------------------- distributions

    /// `POST /distributions`: starts copying a file to every live node.
    pub async fn start_distribution(
        &self,
        body: &StartDistribution,
    ) -> Result<Distribution, Error> {
        self.post(&["distributions"], body).await
    }

    /// `GET /distributions/{job_id}`.
    pub async fn distribution(&self, job_id: &str) -> Result<Distribution, Error> {
        self.get(&["distributions", job_id]).await
    }

    /// `GET /distributions`: the most recent jobs.
    pub async fn distributions(&self) -> Result<DistributionList, Error> {
        self.get(&["distributions"]).await
    }

    /// `POST /distributions/{job_id}/progress`: a chain node's report.
    pub async fn report_progress(
        &self,
        job_id: &str,
        report: &NodeReport,
    ) -> Result<ReportAck, Error> {
        self.post(&["distributions", job_id, "progress"], report)
            .await
    }
}
