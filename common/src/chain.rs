//! Chain replication on write: the client PUTs a chunk once, to the first
//! target, naming the rest in [`REPLICATE_TO_HEADER`]; each node then asks the
//! next one to pull the chunk from it over the peer TCP protocol
//! (`POST /chunks/{chunk_id}/replicate` with a [`ReplicateRequest`]).
//! A failure anywhere below answers 502 with a [`ChainErrorBody`] and the
//! failed node's id in [`FAILED_NODE_HEADER`].

use serde::{Deserialize, Serialize};
use thiserror::Error;
use utoipa::ToSchema;

use crate::MAX_REPLICATION;
use crate::api::patterns::{Crc32c, NodeId, NodeUrl, PeerAddr};
use crate::validate;

/// Header on `PUT /chunks/{chunk_id}`: the nodes the chunk goes to after this
/// one, in chain order, as `node_id=http_url` pairs joined by `,`.
pub const REPLICATE_TO_HEADER: &str = "x-dfs-replicate-to";
/// Header on a 502 from a chained write: the id of the node that failed.
pub const FAILED_NODE_HEADER: &str = "x-dfs-failed-node";

/// A node further down a replication chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DownstreamNode {
    #[schema(value_type = NodeId)]
    pub node_id: String,
    /// The node's HTTP base URL.
    #[schema(value_type = NodeUrl)]
    pub url: String,
}

/// `POST /chunks/{chunk_id}/replicate`: pull the chunk from `source`, store
/// it, then pass it on to `downstream`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReplicateRequest {
    /// Peer-transfer `host:port` of the node that holds the chunk.
    #[schema(value_type = PeerAddr)]
    pub source: String,
    /// Exact size of the chunk: 1 byte to 64 MiB (more is a 413).
    #[schema(minimum = 1, maximum = 67108864)]
    pub size: u64,
    /// CRC32C (Castagnoli) the chunk must have.
    #[schema(value_type = Crc32c)]
    pub crc32c: u32,
    /// The nodes after this one, in chain order: at most 16, none twice.
    #[serde(default)]
    #[schema(max_items = 16)]
    pub downstream: Vec<DownstreamNode>,
    /// The chunk id's signature from the naming server (see
    /// `x-dfs-chunk-signature`), passed down the chain; required when the
    /// cluster has a token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// The 502 body of a failed chained write.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChainErrorBody {
    /// One line saying what went wrong.
    pub error: String,
    /// Id of the node that could not be reached or could not store the chunk.
    #[schema(value_type = NodeId)]
    pub failed_node: String,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum InvalidChain {
    #[error("empty entry in the replication chain")]
    EmptyEntry,
    #[error("chain entry {0:?} is not node_id=http_url")]
    NotAPair(String),
    #[error("invalid node id {0:?} in the replication chain")]
    BadNodeId(String),
    #[error("invalid node URL {0:?} in the replication chain")]
    BadUrl(String),
    #[error("node {0} appears twice in the replication chain")]
    Duplicate(String),
    #[error("replication chain longer than {MAX_REPLICATION} nodes")]
    TooLong,
}

/// Checks one chain entry: a valid node id and base URL
/// ([`validate::node_url`]).
pub fn validate_node(node: &DownstreamNode) -> Result<(), InvalidChain> {
    validate::chunk_id(&node.node_id).map_err(|_| InvalidChain::BadNodeId(node.node_id.clone()))?;
    if validate::node_url(&node.url) {
        Ok(())
    } else {
        Err(InvalidChain::BadUrl(node.url.clone()))
    }
}

/// Checks a whole chain: every entry valid, no node twice, at most
/// [`MAX_REPLICATION`] nodes.
pub fn validate_chain(nodes: &[DownstreamNode]) -> Result<(), InvalidChain> {
    if nodes.len() > MAX_REPLICATION as usize {
        return Err(InvalidChain::TooLong);
    }
    for (i, node) in nodes.iter().enumerate() {
        validate_node(node)?;
        if nodes[..i].iter().any(|n| n.node_id == node.node_id) {
            return Err(InvalidChain::Duplicate(node.node_id.clone()));
        }
    }
    Ok(())
}

/// The [`REPLICATE_TO_HEADER`] value for `nodes`.
pub fn format_replicate_to(nodes: &[DownstreamNode]) -> String {
    nodes
        .iter()
        .map(|n| format!("{}={}", n.node_id, n.url))
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses a [`REPLICATE_TO_HEADER`] value strictly (see [`validate_chain`]).
/// Surrounding spaces of an entry are ignored; an empty value is an empty chain.
pub fn parse_replicate_to(value: &str) -> Result<Vec<DownstreamNode>, InvalidChain> {
    if value.trim().is_empty() {
        return Ok(Vec::new());
    }
    let nodes = value
        .split(',')
        .map(|entry| {
            let entry = entry.trim();
            if entry.is_empty() {
                return Err(InvalidChain::EmptyEntry);
            }
            let (node_id, url) = entry
                .split_once('=')
                .ok_or_else(|| InvalidChain::NotAPair(entry.to_owned()))?;
            Ok(DownstreamNode {
                node_id: node_id.to_owned(),
                url: url.to_owned(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    validate_chain(&nodes)?;
    Ok(nodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, url: &str) -> DownstreamNode {
        DownstreamNode {
            node_id: id.into(),
            url: url.into(),
        }
    }

    #[test]
    fn round_trip() {
        let nodes = vec![
            node("a1", "http://127.0.0.1:5001"),
            node("b-2", "https://node-b:443/base"),
        ];
        let header = format_replicate_to(&nodes);
        assert_eq!(
            header,
            "a1=http://127.0.0.1:5001,b-2=https://node-b:443/base"
        );
        assert_eq!(parse_replicate_to(&header), Ok(nodes));
        assert_eq!(parse_replicate_to(""), Ok(vec![]));
        assert_eq!(
            parse_replicate_to(" a=http://h:1 , b=http://h:2 "),
            Ok(vec![node("a", "http://h:1"), node("b", "http://h:2")])
        );
    }

    #[test]
    fn rejects_bad_chains() {
        use InvalidChain::*;
        let cases: &[(&str, InvalidChain)] = &[
            ("a=http://h:1,", EmptyEntry),
            (",a=http://h:1", EmptyEntry),
            ("a", NotAPair("a".into())),
            ("a/b=http://h:1", BadNodeId("a/b".into())),
            ("=http://h:1", BadNodeId(String::new())),
            ("a=ftp://h:1", BadUrl("ftp://h:1".into())),
            ("a=http://", BadUrl("http://".into())),
            ("a=http:///x", BadUrl("http:///x".into())),
            ("a=http://h 1", BadUrl("http://h 1".into())),
            ("a=http://h:1,a=http://h:2", Duplicate("a".into())),
        ];
        for (value, expected) in cases {
            assert_eq!(parse_replicate_to(value).as_ref(), Err(expected), "{value}");
        }
        let long: Vec<String> = (0..=MAX_REPLICATION)
            .map(|i| format!("n{i}=http://h:{i}"))
            .collect();
        assert_eq!(parse_replicate_to(&long.join(",")), Err(TooLong));
    }
}
