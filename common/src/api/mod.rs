//! JSON bodies of the naming-server API and the headers of the
//! storage-server API. Field names are part of the contract in SPEC.md:
//! scripts rely on them, so rename nothing without a version bump.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

mod distribution;
pub mod patterns;
pub use distribution::*;
use patterns::{ChunkId, ClusterId, Crc32c, FileId, FileName, NodeId, NodeUrl, PeerAddr, Uint64};

/// Header carrying a chunk's CRC32C (decimal or `0x`-prefixed hex) on
/// `PUT /chunks/{chunk_id}`; the storage server refuses a body that does not
/// match it.
pub const CRC32C_HEADER: &str = "x-dfs-crc32c";

/// The `ETag` a storage server gives a chunk: its CRC32C as 8 hex digits, quoted.
pub fn chunk_etag(crc32c: u32) -> String {
    format!("\"{crc32c:08x}\"")
}

/// Parses the value of [`CRC32C_HEADER`]: decimal digits, or `0x` and 1-8
/// hex digits (no sign, no spaces), as [`patterns::Crc32cHeader`] declares.
pub fn parse_crc32c(value: &str) -> Option<u32> {
    let (digits, radix, max_len) = match value
        .strip_prefix("0x")
        .or_else(|| value.strip_prefix("0X"))
    {
        Some(hex) => (hex, 16, 8),
        None => (value, 10, 10),
    };
    let digits_ok = (1..=max_len).contains(&digits.len())
        && digits.bytes().all(|b| char::from(b).is_digit(radix));
    digits_ok
        .then(|| u32::from_str_radix(digits, radix).ok())
        .flatten()
}

/// Reply to `PUT /chunks/{chunk_id}` and `POST /chunks/{chunk_id}/replicate`
/// on a storage server.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StoredChunk {
    #[schema(value_type = ChunkId)]
    pub chunk_id: String,
    /// Length in bytes.
    pub size: u64,
    /// CRC32C (Castagnoli) of the stored bytes.
    #[schema(value_type = Crc32c)]
    pub crc32c: u32,
}

/// Every error response of both servers.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// One line saying what went wrong.
    pub error: String,
}

/// `GET /health` on either server.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok` when the server can do its work. A storage node whose disk ran
    /// out of space says `full`: it still serves the chunks it holds, but
    /// takes no new ones until space is freed.
    pub status: String,
}

// ---------------------------------------------------------------- nodes

/// `POST /register_storage`: a storage node announces itself (again).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RegisterRequest {
    /// Stable id kept in the node's data directory.
    #[schema(value_type = NodeId)]
    pub node_id: String,
    /// HTTP base URL clients and peers use, e.g. `http://10.0.0.5:5001`.
    #[schema(value_type = NodeUrl)]
    pub url: String,
    /// `host:port` of the node's peer-transfer TCP listener.
    #[schema(value_type = PeerAddr)]
    pub tcp_addr: String,
    #[serde(flatten)]
    pub stats: NodeStats,
}

/// What a node reports about its disk on registration and every heartbeat.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, ToSchema)]
pub struct NodeStats {
    /// Size of the filesystem holding the data directory.
    #[schema(value_type = Uint64)]
    pub capacity_bytes: u64,
    /// Bytes still free there.
    #[schema(value_type = Uint64)]
    pub free_bytes: u64,
    /// Chunks stored on the node.
    #[schema(value_type = Uint64)]
    pub chunk_count: u64,
    /// Chunks the node found corrupt or missing and set aside; they are
    /// deleted once their file has good replicas again.
    #[serde(default)]
    #[schema(value_type = Uint64)]
    pub quarantined_chunks: u64,
    /// The node is out of room: a write failed there for lack of space, and
    /// not enough has been freed since. No new chunks are placed on a full
    /// node. In `GET /nodes` also set when the node's free space beyond the
    /// naming server's `FREE_SPACE_RESERVE` is less than the smallest chunk.
    #[serde(default)]
    pub full: bool,
    /// Bytes per second the node sent to peers since its last report.
    #[serde(default)]
    #[schema(value_type = Uint64)]
    pub peer_send_bytes_per_sec: u64,
    /// Bytes per second the node received from peers since its last report.
    #[serde(default)]
    #[schema(value_type = Uint64)]
    pub peer_receive_bytes_per_sec: u64,
    /// How fast the node sends a chunk to a peer: a moving average over its
    /// recent sends of 256 KiB or more (0 until it made one). Distribution
    /// plans put nodes much slower than the others at the chain's tail.
    #[serde(default)]
    #[schema(value_type = Uint64)]
    pub peer_send_rate_bytes_per_sec: u64,
}

/// Reply to registration.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RegisterResponse {
    #[schema(value_type = NodeId)]
    pub node_id: String,
    /// How often the node should heartbeat, in milliseconds.
    pub heartbeat_interval_ms: u64,
    /// Id of this metadata store, made once when it is first used. A node
    /// keeps the first one it sees and sends it with its chunk reports, so
    /// a wiped or different store can never make it delete its chunks.
    #[schema(value_type = ClusterId)]
    pub cluster_id: String,
}

/// Reply to `POST /files/{file_id}/repair`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RepairReport {
    #[schema(value_type = FileId)]
    pub file_id: String,
    #[schema(value_type = FileName)]
    pub name: String,
    /// Live replicas each chunk should have.
    pub replication: u32,
    /// Chunks that had fewer live replicas than that.
    pub under_replicated: u64,
    /// Of those, the ones back at full strength.
    pub repaired: u64,
    /// New copies made.
    pub copies: u64,
    /// Copies dropped from chunks with more live replicas than that (a lost
    /// node came back after its chunks were copied elsewhere).
    #[serde(default)]
    pub trimmed: u64,
    /// Chunks still short of live replicas, and why.
    pub problems: Vec<RepairProblem>,
}

/// A chunk a repair could not bring back to full strength.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RepairProblem {
    pub index: u64,
    pub error: String,
}

/// Most chunk ids one `POST /nodes/{node_id}/chunk_report` may carry.
pub const MAX_CHUNK_REPORT: usize = 1000;

/// `POST /nodes/{node_id}/chunk_report`: some chunk ids the node holds.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChunkReport {
    /// The cluster id the node registered with first.
    #[schema(value_type = ClusterId)]
    pub cluster_id: String,
    /// At most [`MAX_CHUNK_REPORT`] ids; more is a 413.
    #[schema(value_type = Vec<ChunkId>, max_items = 1000)]
    pub chunk_ids: Vec<String>,
}

/// Reply to a chunk report.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ChunkReportReply {
    /// The reported chunks no file refers to: their file was deleted or
    /// expired, or the chunk was replaced by a retry. The node may delete
    /// them. Ids the naming server cannot place are never listed.
    #[schema(value_type = Vec<ChunkId>)]
    pub orphans: Vec<String>,
}

/// `POST /nodes/{node_id}/heartbeat`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HeartbeatRequest {
    #[serde(flatten)]
    pub stats: NodeStats,
    /// Chunk ids from earlier `delete` lists that the node has now removed.
    #[serde(default)]
    #[schema(value_type = Vec<ChunkId>)]
    pub deleted: Vec<String>,
    /// Chunks the node found corrupt or missing (by its scrubber, or when
    /// asked to `verify` them) and quarantined since its last heartbeat.
    #[serde(default)]
    pub bad: Vec<BadChunk>,
}

/// A chunk a node found it cannot serve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BadChunk {
    #[schema(value_type = ChunkId)]
    pub chunk_id: String,
    pub problem: ChunkProblem,
}

/// What is wrong with a replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChunkProblem {
    /// Its bytes no longer match its CRC32C (or its size).
    Corrupt,
    /// Its file is gone from the node's disk.
    Missing,
}

impl std::fmt::Display for ChunkProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Corrupt => "corrupt",
            Self::Missing => "missing",
        })
    }
}

/// Reply to a heartbeat.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct HeartbeatResponse {
    /// Chunks the node should remove (their files were deleted or never
    /// finalized). The node reports them in `deleted` once gone.
    #[schema(value_type = Vec<ChunkId>)]
    pub delete: Vec<String>,
    /// Chunks a reader found bad on this node: the node re-reads each
    /// against its CRC32C and reports the bad ones in `bad`.
    #[serde(default)]
    #[schema(value_type = Vec<ChunkId>)]
    pub verify: Vec<String>,
}

/// One storage node as `GET /nodes` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NodeInfo {
    #[schema(value_type = NodeId)]
    pub node_id: String,
    #[schema(value_type = NodeUrl)]
    pub url: String,
    #[schema(value_type = PeerAddr)]
    pub tcp_addr: String,
    /// Heard from within the heartbeat timeout.
    pub alive: bool,
    /// Unix time of the last heartbeat, in milliseconds.
    pub last_heartbeat_ms: u64,
    #[serde(flatten)]
    pub stats: NodeStats,
}

/// `GET /nodes`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NodeList {
    pub nodes: Vec<NodeInfo>,
}

// ---------------------------------------------------------------- files

/// A file is `pending` from `init` until `finalize` commits it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileState {
    Pending,
    Committed,
}

/// `POST /files/init`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InitFileRequest {
    /// Remote name: UTF-8, 1–1024 bytes, no NUL, no `..` segment.
    #[schema(value_type = FileName)]
    pub name: String,
    /// Total size in bytes the file will have, at most 1 PiB (more is a 413).
    #[schema(maximum = 1_125_899_906_842_624_u64)]
    pub size: u64,
    /// Chunk size, 64 KiB to 64 MiB; the server default when absent.
    #[serde(default)]
    #[schema(minimum = 65536, maximum = 67108864)]
    pub chunk_size: Option<u64>,
    /// Replicas per chunk, 1 to 16; the server default when absent.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 16)]
    pub replication: Option<u32>,
}

/// A file's metadata without its chunks.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FileInfo {
    #[schema(value_type = FileId)]
    pub file_id: String,
    #[schema(value_type = FileName)]
    pub name: String,
    pub size: u64,
    pub chunk_size: u64,
    pub chunk_count: u64,
    pub replication: u32,
    pub state: FileState,
    /// Unix time of `init`, in milliseconds.
    pub created_at_ms: u64,
}

/// `GET /files/{file_id}` and `GET /files?name=`: a file with its chunks.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FileRecord {
    #[serde(flatten)]
    pub info: FileInfo,
    /// Ordered by index; empty while pending.
    pub chunks: Vec<ChunkLocation>,
}

/// `GET /files` listing page.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FileList {
    /// Committed files, ordered by name.
    pub files: Vec<FileInfo>,
    /// Pass as `after` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<FileName>)]
    pub next: Option<String>,
}

/// `GET /files/{file_id}/size`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FileSize {
    pub size: u64,
}

// ---------------------------------------------------------------- chunks

/// `POST /files/{file_id}/chunks`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AllocateChunkRequest {
    /// Index of the chunk, `0..chunk_count`.
    #[schema(value_type = Uint64)]
    pub index: u64,
    /// Nodes to avoid, e.g. ones that just failed a write of this chunk.
    #[serde(default)]
    #[schema(value_type = Vec<NodeId>)]
    pub exclude: Vec<String>,
}

/// Where to write one chunk.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChunkAllocation {
    /// Fresh id for this attempt; a retry gets a new one.
    #[schema(value_type = ChunkId)]
    pub chunk_id: String,
    pub index: u64,
    /// Exact size the chunk must have.
    pub size: u64,
    /// `replication` distinct live nodes, in the order the write should take.
    pub targets: Vec<NodeTarget>,
    /// When the cluster has a token: the naming server's signature of
    /// `chunk_id`, to send in `x-dfs-chunk-signature` with the chunk's PUT;
    /// storage nodes store no other chunk ids. Absent without a token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// A storage node a chunk goes to.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NodeTarget {
    #[schema(value_type = NodeId)]
    pub node_id: String,
    /// HTTP base URL.
    #[schema(value_type = NodeUrl)]
    pub url: String,
    /// Peer-transfer `host:port`.
    #[schema(value_type = PeerAddr)]
    pub tcp_addr: String,
}

/// `POST /files/{file_id}/finalize`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FinalizeRequest {
    /// Must equal the size given at `init`.
    #[schema(maximum = 1_125_899_906_842_624_u64)]
    pub size: u64,
    /// Every chunk, exactly once per index.
    pub chunks: Vec<FinalizedChunk>,
}

/// One written chunk, as the client reports it at finalize.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FinalizedChunk {
    #[schema(value_type = Uint64)]
    pub index: u64,
    /// The id from the allocation that was written.
    #[schema(value_type = ChunkId)]
    pub chunk_id: String,
    #[schema(minimum = 1, maximum = 67108864)]
    pub size: u64,
    /// CRC32C (Castagnoli) of the chunk's bytes.
    #[schema(value_type = Crc32c)]
    pub crc32c: u32,
    /// Ids of the nodes that acknowledged the chunk (1 to 16); all from
    /// its allocation.
    #[schema(value_type = Vec<NodeId>, min_items = 1, max_items = 16)]
    pub replicas: Vec<String>,
}

/// `GET /files/{file_id}/chunks/{index}`: where a chunk lives.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChunkLocation {
    #[schema(value_type = ChunkId)]
    pub chunk_id: String,
    pub index: u64,
    pub size: u64,
    #[schema(value_type = Crc32c)]
    pub crc32c: u32,
    /// Live replicas first.
    pub replicas: Vec<Replica>,
    /// Copies found corrupt or missing, set aside until the chunk has good
    /// replicas again; never read from them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bad_replicas: Vec<BadReplica>,
}

/// A copy of a chunk its node found corrupt or missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BadReplica {
    #[schema(value_type = NodeId)]
    pub node_id: String,
    pub problem: ChunkProblem,
}

/// Longest `reason` a [`SuspectReplica`] may give, in bytes.
pub const MAX_REASON_LEN: usize = 1024;

/// `POST /files/{file_id}/chunks/{index}/suspect`: a reader got bad bytes
/// (or none) from a replica; its node is asked to check its copy.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SuspectReplica {
    /// The chunk id the reader read (it must still be chunk `index`'s).
    #[schema(value_type = ChunkId)]
    pub chunk_id: String,
    /// The node that served the bad bytes.
    #[schema(value_type = NodeId)]
    pub node_id: String,
    /// What the reader saw, for the logs.
    #[schema(max_length = 1024)]
    pub reason: String,
}

/// One copy of a chunk.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Replica {
    #[schema(value_type = NodeId)]
    pub node_id: String,
    /// The node's HTTP base URL; empty for a node no longer registered.
    pub url: String,
    pub alive: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_header_forms() {
        assert_eq!(parse_crc32c("3735928559"), Some(0xdead_beef));
        assert_eq!(parse_crc32c("0xdeadbeef"), Some(0xdead_beef));
        assert_eq!(parse_crc32c("0X0"), Some(0));
        assert_eq!(parse_crc32c("0004294967295"), None);
        assert_eq!(parse_crc32c("4294967295"), Some(u32::MAX));
        for bad in [
            "nope",
            "",
            "0x",
            "4294967296",
            "+5",
            "0x+5",
            "0x123456789",
            " 5",
            "5 ",
            "-1",
        ] {
            assert_eq!(parse_crc32c(bad), None, "{bad:?}");
        }
        assert_eq!(chunk_etag(0xbeef), "\"0000beef\"");
    }

    #[test]
    fn file_record_is_flat_json() {
        let record = FileRecord {
            info: FileInfo {
                file_id: "f".into(),
                name: "n".into(),
                size: 1,
                chunk_size: 64,
                chunk_count: 1,
                replication: 3,
                state: FileState::Committed,
                created_at_ms: 0,
            },
            chunks: vec![],
        };
        let json = serde_json::to_value(&record).expect("serializes");
        for key in [
            "file_id",
            "name",
            "size",
            "chunk_size",
            "chunk_count",
            "state",
            "chunks",
        ] {
            assert!(json.get(key).is_some(), "{key} missing from {json}");
        }
        assert_eq!(json["state"], "committed");
    }
}
