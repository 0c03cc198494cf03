//! [`StorageClient`]: the storage servers' HTTP API, as the CLI (chunk
//! reads and writes), the naming server (assignments, GCS lookups, repair
//! copies) and other storage nodes (chain replication) call it.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use dfs_common::api::{AssignmentAck, CRC32C_HEADER, ChainAssignment, GcsObjectInfo, StoredChunk};
use dfs_common::auth::CHUNK_SIGNATURE_HEADER;
use dfs_common::chain::{
    DownstreamNode, REPLICATE_TO_HEADER, ReplicateRequest, format_replicate_to,
};
use reqwest::Url;

use crate::access::ClusterAccess;
use crate::error::Error;
use crate::reply::{base_url, endpoint, send, send_json, shown};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest silence while a body is on the wire.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest a chained write may take, the chain below it included.
const CHAIN_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a node may take to accept an assignment or to ask GCS about an
/// object.
const NODE_CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// A client of any number of storage nodes, each named by its HTTP base
/// URL at the call; every call carries the cluster's token, when it has
/// one. Cheap to clone; clones share connections.
#[derive(Debug, Clone)]
pub struct StorageClient {
    access: ClusterAccess,
    http: reqwest::Client,
    /// For chained writes (a PUT with a chain below, a replicate call),
    /// without [`READ_TIMEOUT`]: reqwest counts it from the request to the
    /// reply's headers too, and a chained write only answers once the
    /// chain below holds the chunk. [`CHAIN_TIMEOUT`] bounds them instead.
    chain_http: reqwest::Client,
}

impl StorageClient {
    /// A client calling storage nodes with `access` (its token on every
    /// call, its extra CA trusted).
    pub fn new(access: &ClusterAccess) -> Result<Self, Error> {
        Ok(Self {
            access: access.clone(),
            http: access.http(CONNECT_TIMEOUT, Some(READ_TIMEOUT))?,
            chain_http: access.http(CONNECT_TIMEOUT, None)?,
        })
    }

    /// `PUT {node}/chunks/{chunk_id}` with the chunk's CRC32C and, when the
    /// allocation carried one, the chunk id's `signature`. With
    /// `replicate_to`, the node passes the chunk down that chain and
    /// answers once every node holds it; a failure below it is
    /// [`Error::ChainFailed`].
    pub async fn put_chunk(
        &self,
        node_url: &str,
        chunk: ChunkPut<'_>,
    ) -> Result<StoredChunk, Error> {
        let mut request = self
            .chain_http
            .put(chunk_url(node_url, &[chunk.chunk_id])?)
            .timeout(CHAIN_TIMEOUT)
            .header(CRC32C_HEADER, chunk.crc32c.to_string())
            .body(chunk.data);
        if !chunk.replicate_to.is_empty() {
            request = request.header(REPLICATE_TO_HEADER, format_replicate_to(chunk.replicate_to));
        }
        if let Some(signature) = chunk.signature {
            request = request.header(CHUNK_SIGNATURE_HEADER, signature);
        }
        send_json(self.access.authorize(request)).await
    }

    /// `GET {node}/chunks/{chunk_id}`, refusing a body longer than
    /// `max_len`. The caller verifies size and CRC32C.
    pub async fn get_chunk(
        &self,
        node_url: &str,
        chunk_id: &str,
        max_len: u64,
    ) -> Result<Bytes, Error> {
        let request = self.http.get(chunk_url(node_url, &[chunk_id])?);
        let mut response = send(self.access.authorize(request)).await?;
        let url = shown(response.url());
        let too_long = || Error::BadResponse {
            url: url.clone(),
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
            .map_err(|e| Error::from_reqwest(&url, e))?
        {
            if (data.len() + piece.len()) as u64 > max_len {
                return Err(too_long());
            }
            data.extend_from_slice(&piece);
        }
        Ok(data.freeze())
    }

    /// `POST {node}/chunks/{chunk_id}/replicate`: the node pulls the chunk
    /// from `request.source` over the peer protocol and passes it down
    /// `request.downstream`. A failure at or below it is
    /// [`Error::ChainFailed`] naming the node to blame.
    pub async fn replicate(
        &self,
        node_url: &str,
        chunk_id: &str,
        request: &ReplicateRequest,
    ) -> Result<StoredChunk, Error> {
        let url = chunk_url(node_url, &[chunk_id, "replicate"])?;
        let request = self.chain_http.post(url).json(request);
        send_json(self.access.authorize(request.timeout(CHAIN_TIMEOUT))).await
    }

    /// `POST {node}/distributions`: the node's part of a distribution job.
    pub async fn assign(
        &self,
        node_url: &str,
        assignment: &ChainAssignment,
    ) -> Result<AssignmentAck, Error> {
        let url = endpoint(&base_url(node_url)?, &["distributions"]);
        let request = self.http.post(url).json(assignment);
        send_json(self.access.authorize(request.timeout(NODE_CALL_TIMEOUT))).await
    }

    /// `GET {node}/gcs/object?url=`: what GCS says of an object, asked with
    /// the node's GCS settings.
    pub async fn gcs_object(&self, node_url: &str, gcs_url: &str) -> Result<GcsObjectInfo, Error> {
        let mut url = endpoint(&base_url(node_url)?, &["gcs", "object"]);
        url.query_pairs_mut().append_pair("url", gcs_url);
        let request = self.http.get(url).timeout(NODE_CALL_TIMEOUT);
        send_json(self.access.authorize(request)).await
    }
}

/// One chunk write: what `PUT /chunks/{chunk_id}` sends.
#[derive(Debug, Clone)]
pub struct ChunkPut<'a> {
    /// The id from the chunk's allocation.
    pub chunk_id: &'a str,
    /// The chunk's bytes.
    pub data: Bytes,
    /// Their CRC32C, checked by the node before it keeps them.
    pub crc32c: u32,
    /// The naming server's signature of `chunk_id`, from its allocation.
    pub signature: Option<&'a str>,
    /// The nodes the chunk goes to after this one, in chain order.
    pub replicate_to: &'a [DownstreamNode],
}

/// `{node}/chunks/{segments…}`.
fn chunk_url(node_url: &str, segments: &[&str]) -> Result<Url, Error> {
    let base = base_url(node_url)?;
    let mut all = vec!["chunks"];
    all.extend_from_slice(segments);
    Ok(endpoint(&base, &all))
}
