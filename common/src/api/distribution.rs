//! Distribution jobs: the naming server plans a chain over storage nodes and
//! every node of the chain pulls the file's chunks from the node above it.
//!
//! - `POST /distributions` ([`StartDistribution`]) on the naming server starts
//!   a job and answers with its [`Distribution`].
//! - The naming server hands each chain node its [`ChainAssignment`] with
//!   `POST /distributions` on the storage server.
//! - Each node reports [`NodeReport`]s to the naming server
//!   (`POST /distributions/{job_id}/progress`); `GET /distributions/{job_id}`
//!   shows them merged with node liveness.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::patterns::{
    ChunkId, Crc32c, FileId, FileName, GcsObjectUrl, JobId, NodeId, PeerAddr, Uint64,
};

/// `POST /distributions` on the naming server.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StartDistribution {
    /// The dfs file: with `source` absent, an existing file to copy to every
    /// live node; with `source`, the name the seeded file gets.
    #[schema(value_type = FileName)]
    pub name: String,
    /// `gs://bucket/object` to seed from Google Cloud Storage.
    #[serde(default)]
    #[schema(value_type = Option<GcsObjectUrl>)]
    pub source: Option<String>,
    /// Chunk size of a seeded file, 64 KiB to 64 MiB; the server default
    /// when absent.
    #[serde(default)]
    #[schema(minimum = 65536, maximum = 67108864)]
    pub chunk_size: Option<u64>,
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Chunks are moving.
    Running,
    /// Every node still alive holds every chunk (dead nodes show as failed).
    Done,
    /// The job cannot finish (its source failed); `error` says why.
    Failed,
}

/// Where one node of the chain stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    /// Assigned, nothing received yet.
    Waiting,
    Running,
    /// Holds every chunk, verified.
    Done,
    /// Gave up, or stopped heartbeating; `error` says which.
    Failed,
}

impl NodeState {
    pub fn is_final(self) -> bool {
        matches!(self, Self::Done | Self::Failed)
    }
}

/// `GET /distributions/{job_id}`: a job and every node's progress.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Distribution {
    #[schema(value_type = JobId)]
    pub job_id: String,
    /// The dfs file being distributed.
    #[schema(value_type = FileName)]
    pub name: String,
    #[schema(value_type = FileId)]
    pub file_id: String,
    /// `gs://bucket/object`, or `dfs` for an existing file.
    pub source: String,
    pub size: u64,
    pub chunk_size: u64,
    pub chunk_count: u64,
    pub state: JobState,
    /// Why the job failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Unix time the job started, in milliseconds.
    pub created_at_ms: u64,
    /// Unix time the last node finished, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at_ms: Option<u64>,
    /// Bytes verified on disk, summed over the nodes.
    pub bytes_done: u64,
    /// `bytes_done` over the job's running time, in bytes per second.
    pub throughput_bytes_per_sec: u64,
    /// The chain, head first.
    pub nodes: Vec<NodeProgress>,
}

/// One chain node's progress. A job lists its nodes in chain order: the
/// first pulls from the source, each next one from the one before it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NodeProgress {
    #[schema(value_type = NodeId)]
    pub node_id: String,
    /// The node's HTTP base URL.
    pub url: String,
    pub state: NodeState,
    pub chunks_done: u64,
    pub bytes_done: u64,
    /// Bytes per second since the node started on the job.
    pub throughput_bytes_per_sec: u64,
    /// Milliseconds the node had worked on the job at its last report (for
    /// a node that is done: how long it took).
    #[serde(default)]
    #[schema(value_type = Uint64)]
    pub elapsed_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The node fell behind during the job, or a node pulling from it did:
    /// the nodes below it now pull from the nearest node above it.
    #[serde(default)]
    pub bypassed: bool,
}

/// `GET /distributions`: the most recent jobs, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DistributionList {
    pub jobs: Vec<Distribution>,
}

/// `POST /distributions/{job_id}/progress`: a chain node reports.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NodeReport {
    #[schema(value_type = NodeId)]
    pub node_id: String,
    pub state: NodeState,
    #[schema(value_type = Uint64)]
    pub chunks_done: u64,
    #[schema(value_type = Uint64)]
    pub bytes_done: u64,
    /// Milliseconds since the node started on the job.
    #[schema(value_type = Uint64)]
    pub elapsed_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The error dooms the whole job (the source failed), not just this node.
    #[serde(default)]
    pub fatal: bool,
    /// On `done` from a seeding head: every chunk's CRC32C, by index.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Crc32c>)]
    pub crc32c: Vec<u32>,
    /// The node it received its last chunk from; absent while it reads
    /// GCS or has received nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<NodeId>)]
    pub source: Option<String>,
}

/// Reply to a [`NodeReport`].
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReportAck {
    /// The job's state: a node stops working on a `failed` job.
    pub state: JobState,
    /// Chain nodes to pull from no more: they fell behind. The node pulls
    /// from the next one above them instead, from its next missing chunk.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<NodeId>)]
    pub bypass: Vec<String>,
}

// ------------------------------------------------ naming → storage server

/// `POST /distributions` on a storage server: its part of a chain.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChainAssignment {
    #[schema(value_type = JobId)]
    pub job_id: String,
    #[schema(value_type = FileId)]
    pub file_id: String,
    /// This node's id, as the naming server knows it.
    #[schema(value_type = NodeId)]
    pub node_id: String,
    /// Chain nodes above this one, nearest first: where to pull from.
    pub upstream: Vec<PeerRef>,
    /// Every chunk of the file, in order.
    pub chunks: Vec<ChainChunk>,
    /// Set when seeding: the object, for the head's download and as the
    /// last resort of every node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcs: Option<GcsSource>,
}

/// A storage node's peer-transfer endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PeerRef {
    #[schema(value_type = NodeId)]
    pub node_id: String,
    /// `host:port` of its TCP listener.
    #[schema(value_type = PeerAddr)]
    pub tcp_addr: String,
}

/// One chunk to fetch.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChainChunk {
    #[schema(value_type = ChunkId)]
    pub chunk_id: String,
    /// Its position in `chunks`.
    #[schema(value_type = Uint64)]
    pub index: u64,
    #[schema(minimum = 1, maximum = 67108864)]
    pub size: u64,
    /// Known for an existing file; for a seed, the head computes it and the
    /// chain checks each copy against the CRC its upstream sends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Crc32c>)]
    pub crc32c: Option<u32>,
    /// Live nodes that hold the chunk (existing files only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holders: Vec<PeerRef>,
}

/// A GCS object pinned to one generation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GcsSource {
    /// `gs://bucket/object`.
    #[schema(value_type = GcsObjectUrl)]
    pub url: String,
    #[schema(value_type = Uint64)]
    pub generation: u64,
    #[schema(value_type = Uint64)]
    pub size: u64,
    /// The object's CRC32C, which the chunks' combined CRC must equal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Crc32c>)]
    pub crc32c: Option<u32>,
}

/// `GET /gcs/object?url=gs://…` on a storage server: what GCS says of an object.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GcsObjectInfo {
    pub size: u64,
    pub generation: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Crc32c>)]
    pub crc32c: Option<u32>,
}

/// Reply of a storage server to a [`ChainAssignment`].
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AssignmentAck {
    #[schema(value_type = JobId)]
    pub job_id: String,
    /// `false` when the job was already running on the node.
    pub started: bool,
}
