//! [`NamingClient`]: the naming server's HTTP API, one method per route
//! that a dfs program calls (the CLI's, and the storage nodes' membership,
//! orphan reports and distribution progress).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dfs_common::api::{
    AllocateChunkRequest, ChunkAllocation, ChunkReport, ChunkReportReply, Distribution,
    DistributionList, FileInfo, FileList, FileRecord, FinalizeRequest, HeartbeatRequest,
    HeartbeatResponse, InitFileRequest, NodeList, NodeReport, RegisterRequest, RegisterResponse,
    RepairReport, ReportAck, StartDistribution, SuspectReplica,
};
use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, Response, Url};
use serde::de::DeserializeOwned;

use crate::access::ClusterAccess;
use crate::error::Error;

use crate::reply::{base_url, decode_json, endpoint, send};

/// How long a naming-server call may take unless the client says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a repair may take: it copies every under-replicated chunk.
const REPAIR_TIMEOUT: Duration = Duration::from_secs(3600);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A client of the naming server, or of several replicas of it. Cheap to
/// clone; clones share connections and the replica in use.
#[derive(Debug, Clone)]
pub struct NamingClient {
    http: reqwest::Client,
    /// The replicas' base URLs, in the order given.
    bases: Arc<[Url]>,
    /// Index in `bases` of the replica calls go to first: the last one
    /// that could be reached.
    current: Arc<AtomicUsize>,
    access: ClusterAccess,
    timeout: Duration,
}

/// One call, built again for whichever replica it goes to.
struct Call<'a> {
    method: Method,
    segments: &'a [&'a str],
    query: &'a [(&'a str, String)],
    /// A JSON body, encoded once.
    body: Option<Vec<u8>>,
    timeout: Option<Duration>,
}

impl<'a> Call<'a> {
    fn new(method: Method, segments: &'a [&'a str]) -> Self {
        Self {
            method,
            segments,
            query: &[],
            body: None,
            timeout: None,
        }
    }

    fn json<B: serde::Serialize>(mut self, body: &B) -> Result<Self, Error> {
        let encoded = serde_json::to_vec(body)
            .map_err(|e| Error::Setup(format!("encoding a request body: {e}")))?;
        self.body = Some(encoded);
        Ok(self)
    }
}

impl NamingClient {
    /// `base_urls` is the naming server's root, e.g. `http://127.0.0.1:8000`
    /// (or `https://…`), or several replicas' roots separated by commas:
    /// a call that cannot connect to one goes to the next (a request that
    /// could not connect was never sent, so this is safe for every call).
    /// The token of `access`, when there is one, goes with every call as
    /// `Authorization: Bearer …`.
    pub fn new(base_urls: &str, access: &ClusterAccess) -> Result<Self, Error> {
        let bases = base_urls
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .map(base_url)
            .collect::<Result<Vec<_>, _>>()?;
        if bases.is_empty() {
            return Err(Error::InvalidUrl {
                url: base_urls.to_owned(),
                reason: "no naming server URL given".to_owned(),
            });
        }
        Ok(Self {
            http: access.http(CONNECT_TIMEOUT, None)?,
            bases: bases.into(),
            current: Arc::new(AtomicUsize::new(0)),
            access: access.clone(),
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// The same client with another per-call time limit.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The base URL of the replica calls go to now.
    pub fn base_url(&self) -> &str {
        self.bases[self.current.load(Ordering::Relaxed) % self.bases.len()].as_str()
    }

    /// Sends `call` to the replica in use; when it cannot connect, to the
    /// next ones in turn, and the first that answers is used from then on.
    async fn send(&self, call: &Call<'_>) -> Result<Response, Error> {
        let first = self.current.load(Ordering::Relaxed);
        let count = self.bases.len();
        let mut last = None;
        for index in (first..first + count).map(|i| i % count) {
            let base = &self.bases[index];
            let mut url = endpoint(base, call.segments);
            if !call.query.is_empty() {
                let mut pairs = url.query_pairs_mut();
                for (key, value) in call.query {
                    pairs.append_pair(key, value);
                }
            }
            let mut request = self
                .http
                .request(call.method.clone(), url)
                .timeout(call.timeout.unwrap_or(self.timeout));
            if let Some(body) = &call.body {
                request = request
                    .header(CONTENT_TYPE, "application/json")
                    .body(body.clone());
            }
            match send(self.access.authorize(request)).await {
                Err(e @ Error::Unreachable { .. }) if count > 1 => {
                    tracing::warn!(naming_url = %base, error = %e, "naming server unreachable; trying the next one");
                    last = Some(e);
                }
                answered => {
                    if index != first {
                        self.current.store(index, Ordering::Relaxed);
                    }
                    return answered;
                }
            }
        }
        Err(last.unwrap_or_else(|| Error::Setup("no naming server URL".to_owned())))
    }

    async fn send_json<T: DeserializeOwned>(&self, call: &Call<'_>) -> Result<T, Error> {
        decode_json(self.send(call).await?).await
    }

    async fn get<T: DeserializeOwned>(&self, segments: &[&str]) -> Result<T, Error> {
        self.send_json(&Call::new(Method::GET, segments)).await
    }

    async fn post<B: serde::Serialize, T: DeserializeOwned>(
        &self,
        segments: &[&str],
        body: &B,
    ) -> Result<T, Error> {
        self.send_json(&Call::new(Method::POST, segments).json(body)?)
            .await
    }

    async fn delete(&self, segments: &[&str]) -> Result<(), Error> {
        self.send(&Call::new(Method::DELETE, segments))
            .await
            .map(drop)
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
        let query = [("name", name.to_owned())];
        let call = Call {
            query: &query,
            ..Call::new(Method::GET, &["files"])
        };
        self.send_json(&call).await
    }

    /// `GET /files/{file_id}`: a committed file with all its chunks.
    pub async fn file(&self, file_id: &str) -> Result<FileRecord, Error> {
        self.get(&["files", file_id]).await
    }

    /// The committed files whose names start with `prefix`, a page at a
    /// time ([`Listing`]).
    pub fn listing<'a>(&'a self, prefix: &'a str) -> Listing<'a> {
        Listing {
            naming: self,
            prefix,
            after: Some(None),
        }
    }

    /// `GET /files?prefix=&limit=&after=`: one page of the listing.
    pub async fn list_files(
        &self,
        prefix: &str,
        limit: Option<u32>,
        after: Option<&str>,
    ) -> Result<FileList, Error> {
        let mut query = vec![("prefix", prefix.to_owned())];
        if let Some(limit) = limit {
            query.push(("limit", limit.to_string()));
        }
        if let Some(after) = after {
            query.push(("after", after.to_owned()));
        }
        let call = Call {
            query: &query,
            ..Call::new(Method::GET, &["files"])
        };
        self.send_json(&call).await
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
        self.send(&Call::new(Method::POST, &segments).json(report)?)
            .await
            .map(drop)
    }

    /// `DELETE /files/{file_id}`.
    pub async fn delete_file(&self, file_id: &str) -> Result<(), Error> {
        self.delete(&["files", file_id]).await
    }

    /// `POST /files/{file_id}/repair`: re-replicates under-replicated chunks.
    pub async fn repair_file(&self, file_id: &str) -> Result<RepairReport, Error> {
        let segments = ["files", file_id, "repair"];
        let call = Call {
            timeout: Some(REPAIR_TIMEOUT),
            ..Call::new(Method::POST, &segments)
        };
        self.send_json(&call).await
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

/// The committed files whose names start with a prefix, a page at a time
/// (in name order, as `GET /files` gives them), so a listing of any length
/// can be used as it arrives and is never held whole
/// ([`NamingClient::listing`]).
pub struct Listing<'a> {
    naming: &'a NamingClient,
    prefix: &'a str,
    /// The cursor of the next page; `None` once the last page came.
    after: Option<Option<String>>,
}

impl Listing<'_> {
    /// Files per page asked for.
    pub const PAGE: u32 = 1000;

    /// The next page; `None` after the last.
    pub async fn next_page(&mut self) -> Result<Option<Vec<FileInfo>>, Error> {
        let Some(after) = self.after.take() else {
            return Ok(None);
        };
        let page = self
            .naming
            .list_files(self.prefix, Some(Self::PAGE), after.as_deref())
            .await?;
        self.after = match page.next {
            None => None,
            Some(next) if after.as_deref() == Some(next.as_str()) => {
                return Err(Error::BadResponse {
                    url: self.naming.base_url().to_owned(),
                    reason: format!("the naming server repeated listing cursor {next:?}"),
                });
            }
            Some(next) => Some(Some(next)),
        };
        Ok(Some(page.files))
    }
}
