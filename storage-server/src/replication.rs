//! Chain replication on write. The client PUTs a chunk to the first target
//! only, naming the others in `x-dfs-replicate-to`. Once the chunk is stored
//! here, [`Replicator::forward`] asks the next node to pull it from this one
//! over the peer protocol (`POST /chunks/{chunk_id}/replicate`); that node
//! ([`Replicator::replicate`]) pulls it with [`peer::fetch`] and does the
//! same for the rest of the chain. Every call returns only when the chunk is
//! durable on all the nodes below it, so the client's PUT is acknowledged
//! only when all replicas are. A failure anywhere below is
//! [`ReplicationError::ChainFailed`] naming the node that failed: the one
//! that could not be reached, or the one whose pull or store failed.
//!
//! Before it connects anywhere, a node checks the chain against the naming
//! server's node list ([`Registry`]): it pulls only from a registered
//! node's peer address and calls only registered nodes at their registered
//! URL. The chunk id's signature (see [`crate::admission`]) goes down the
//! chain with the chunk, and the peer pull answers the source's challenge
//! with the cluster token.

use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use dfs_client::{ChunkPut, StorageClient};
use dfs_common::auth::Token;
use dfs_common::chain::{
    DownstreamNode, REPLICATE_TO_HEADER, ReplicateRequest, parse_replicate_to,
};
use thiserror::Error;

use crate::peer::{self, Expected, PeerError};
use crate::registry::{Registry, RegistryError};
use crate::store::{ChunkMeta, ChunkStore, StoreError};

/// Why a chained write failed.
#[derive(Debug, Error)]
pub enum ReplicationError {
    /// The chain or the replicate request is unusable (malformed, or names
    /// a node that is not registered); nothing was done.
    #[error("{0}")]
    Invalid(String),
    /// The naming server's node list, needed to check the chain, could not
    /// be had; nothing was done.
    #[error("{0}")]
    Unavailable(String),
    /// This node already holds the chunk with another CRC32C.
    #[error("{0}")]
    Conflict(String),
    /// This node or one below it failed; `failed_node` names it.
    #[error("{message}")]
    ChainFailed {
        failed_node: String,
        message: String,
    },
}

/// Chain replication as this node takes part in it.
#[derive(Debug)]
pub struct Replicator {
    node_id: String,
    /// The advertised peer-transfer `host:port` (`WORKER_ADDR`) the next
    /// node pulls from.
    peer_addr: String,
    store: Arc<ChunkStore>,
    /// Client of the other storage nodes' replicate calls.
    storage: StorageClient,
    /// The registered nodes a chain may name.
    registry: Arc<Registry>,
    /// Answers the sources' peer challenge.
    token: Option<Token>,
}

impl From<RegistryError> for ReplicationError {
    fn from(err: RegistryError) -> Self {
        match err {
            RegistryError::Unregistered(message) => Self::Invalid(message),
            e @ RegistryError::Unavailable(_) => Self::Unavailable(e.to_string()),
        }
    }
}

impl Replicator {
    /// Node `node_id`, whose peers pull from `peer_addr`, holding its
    /// chunks in `store`, calling the next node with `storage`, checking
    /// chains against `registry` and answering peer challenges with `token`.
    pub fn new(
        node_id: String,
        peer_addr: String,
        store: Arc<ChunkStore>,
        storage: StorageClient,
        registry: Arc<Registry>,
        token: Option<Token>,
    ) -> Self {
        Self {
            node_id,
            peer_addr,
            store,
            storage,
            registry,
            token,
        }
    }

    /// The nodes a PUT's `x-dfs-replicate-to` header asks this node to pass
    /// the chunk on to (none without the header); invalid when the header is
    /// malformed, names this node, or names a node that is not registered
    /// at that URL.
    pub async fn downstream(
        &self,
        headers: &HeaderMap,
    ) -> Result<Vec<DownstreamNode>, ReplicationError> {
        let Some(value) = headers.get(REPLICATE_TO_HEADER) else {
            return Ok(Vec::new());
        };
        let invalid = |detail: String| {
            ReplicationError::Invalid(format!("invalid {REPLICATE_TO_HEADER} header{detail}"))
        };
        let value = value.to_str().map_err(|_| invalid(String::new()))?;
        let nodes = parse_replicate_to(value).map_err(|e| invalid(format!(": {e}")))?;
        self.check_chain(&nodes).await?;
        Ok(nodes)
    }

    /// A chain (already valid, see `dfs_common::chain::validate_chain`)
    /// does not loop back here, and every node of it is registered at its
    /// URL.
    async fn check_chain(&self, nodes: &[DownstreamNode]) -> Result<(), ReplicationError> {
        if let Some(node) = nodes.iter().find(|node| node.node_id == self.node_id) {
            return Err(ReplicationError::Invalid(format!(
                "the replication chain names this node ({}) again",
                node.node_id
            )));
        }
        for node in nodes {
            self.registry.check_node(&node.node_id, &node.url).await?;
        }
        Ok(())
    }

    /// Passes chunk `chunk_id` (stored here as `meta`, its id signed with
    /// `signature`) down `downstream`: the next node pulls it from this one
    /// over the peer protocol. Returns once every node of it holds the
    /// chunk durably.
    pub async fn forward(
        &self,
        chunk_id: &str,
        meta: ChunkMeta,
        downstream: &[DownstreamNode],
        signature: Option<&str>,
    ) -> Result<(), ReplicationError> {
        let Some((next, rest)) = downstream.split_first() else {
            return Ok(());
        };
        let request = ReplicateRequest {
            source: self.peer_addr.clone(),
            size: meta.size,
            crc32c: meta.crc32c,
            downstream: rest.to_vec(),
            signature: signature.map(str::to_owned),
        };
        let replicated = self.storage.replicate(&next.url, chunk_id, &request).await;
        chain_verdict(next, "replicate call", replicated)
    }

    /// Passes a small chunk (`data`, whose CRC32C is `meta.crc32c`) down
    /// `downstream` in the request itself: a PUT to the next node, naming
    /// the rest of the chain. A pull over the peer protocol would cost a
    /// connection and its challenge for a few bytes, and `sendfile()` gains
    /// nothing on them; a push needs nothing stored here, so it runs while
    /// this node commits its own copy. Returns once every node of
    /// `downstream` holds the chunk durably.
    pub async fn push(
        &self,
        chunk_id: &str,
        meta: ChunkMeta,
        data: bytes::Bytes,
        downstream: &[DownstreamNode],
        signature: Option<&str>,
    ) -> Result<(), ReplicationError> {
        let Some((next, rest)) = downstream.split_first() else {
            return Ok(());
        };
        let put = ChunkPut {
            chunk_id,
            data,
            crc32c: meta.crc32c,
            signature,
            replicate_to: rest,
        };
        let stored = self.storage.put_chunk(&next.url, put).await;
        chain_verdict(next, "chunk PUT", stored)
    }

    /// Serves a replicate call: pulls chunk `chunk_id` from the upstream
    /// node `request.source` over the peer protocol, stores it, then passes
    /// it on down `request.downstream`. The request has kept its `Check`
    /// rules (source address, size, chain) and the caller has checked the
    /// chunk id; the source and every downstream node must be registered. A
    /// request that is wrong here (a chain through this node, a chunk held
    /// here with another CRC32C) fails without naming this node as failed.
    pub async fn replicate(
        &self,
        chunk_id: &str,
        request: &ReplicateRequest,
    ) -> Result<ChunkMeta, ReplicationError> {
        dfs_common::validate::chunk_id(chunk_id)
            .map_err(|e| ReplicationError::Invalid(e.to_string()))?;
        self.check_chain(&request.downstream).await?;
        match self.store.meta(chunk_id).await {
            Ok(held) if held.crc32c != request.crc32c => {
                return Err(ReplicationError::Conflict(format!(
                    "chunk {chunk_id} is stored here with CRC32C {:08x}, not {:08x}",
                    held.crc32c, request.crc32c
                )));
            }
            _ => {}
        }
        let source = request.source.as_str();
        self.registry.check_source(source).await?;
        let expected = Expected {
            size: Some(request.size),
            crc32c: Some(request.crc32c),
        };
        // The upstream stored the chunk before calling: no need to wait for it.
        let token = self.token.as_ref();
        let meta = peer::fetch(
            source,
            chunk_id,
            expected,
            Duration::ZERO,
            &self.store,
            token,
        )
        .await
        .map_err(|err| match err {
            PeerError::Store(e @ StoreError::Conflict { .. }) => {
                ReplicationError::Conflict(e.to_string())
            }
            err => ReplicationError::ChainFailed {
                failed_node: self.node_id.clone(),
                message: format!("node {}: {err}", self.node_id),
            },
        })?;
        tracing::info!(%chunk_id, %source, size = meta.size, "chunk replicated from a peer");
        let signature = request.signature.as_deref();
        self.forward(chunk_id, meta, &request.downstream, signature)
            .await?;
        Ok(meta)
    }
}

/// What a call to the `next` node of a chain (`call` names it) tells about
/// the chain below: a failure there is passed up unchanged, one of the call
/// itself blames `next`.
fn chain_verdict<T>(
    next: &DownstreamNode,
    call: &str,
    result: Result<T, dfs_client::Error>,
) -> Result<(), ReplicationError> {
    let message = match result {
        Ok(_) => return Ok(()),
        Err(dfs_client::Error::ChainFailed {
            failed_node,
            message,
        }) => {
            return Err(ReplicationError::ChainFailed {
                failed_node,
                message,
            });
        }
        Err(dfs_client::Error::Api {
            status, message, ..
        }) => format!(
            "node {} answered {status} to the {call}: {message}",
            next.node_id
        ),
        Err(err) => format!("node {} failed the {call}: {err}", next.node_id),
    };
    Err(ReplicationError::ChainFailed {
        failed_node: next.node_id.clone(),
        message,
    })
}
