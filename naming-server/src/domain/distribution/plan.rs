//! Planning a distribution: which nodes form the chain and what each one
//! must fetch, and from where.
//!
//! The chain is every live node that lacks part of the file, in
//! [`chain_order`] (slow senders last). Node `p` pulls
//! from the nodes above it (the nearest [`UPSTREAM_LIST`]), nearest first,
//! then from the chunk's live holders (an existing file) or from GCS (a
//! seed), so a dead node is skipped by asking the next one up.

use dfs_client::Error as ClientError;
use dfs_common::api::{
    ChainAssignment, ChainChunk, FileInfo, FileState, GcsObjectInfo, GcsSource, PeerRef,
    StartDistribution,
};
use dfs_common::{chunk_count, chunk_len, now_ms};

use super::{DFS_SOURCE, seed_lease_expiry};
use crate::domain::files::{self, check_name_free, check_size};
use crate::domain::nodes;
use crate::domain::{DomainError, DomainResult, Naming};
use crate::store::ids::{new_chunk_id, new_file_id};
use crate::store::{ChainNode, JobPlan, NodeRecord, StoredChunk};

/// A planned job: what is stored, and what each chain node is told.
pub struct Plan {
    pub job: JobPlan,
    pub assignments: Vec<(NodeRecord, ChainAssignment)>,
}

fn new_job_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

fn peer(node: &NodeRecord) -> PeerRef {
    PeerRef {
        node_id: node.node_id.clone(),
        tcp_addr: node.tcp_addr.clone(),
    }
}

/// How many of the nodes above it a chain node is told of. Past them, it
/// pulls from the source as the head does; each assignment stays small
/// whatever the chain's length (a full list would make a job's hand-out
/// grow with k²).
pub const UPSTREAM_LIST: usize = 8;

/// Where each node of a chain of `len` nodes pulls from: the (at most
/// [`UPSTREAM_LIST`]) positions above it, nearest first (it moves up the
/// list past dead nodes); after the list, the job's source. A pure
/// function of the chain, run by the simulator (`sim/`) as it is here.
pub fn chain_upstreams(len: usize) -> Vec<Vec<usize>> {
    (0..len)
        .map(|position| {
            (position.saturating_sub(UPSTREAM_LIST)..position)
                .rev()
                .collect()
        })
        .collect()
}

/// A node sending this many times slower than the median of the measured
/// send rates goes to the chain's tail.
pub const SLOW_FACTOR: u64 = 2;

/// The order of a chain over nodes whose measured chunk send rates are
/// `send_rates` (bytes/s; 0: not measured yet, counted as fast): the nodes
/// sending [`SLOW_FACTOR`] times slower than the median of the measured
/// rates go last, the fastest of them first; the others keep their order.
/// A slow node early in a chain holds back every node below it; at the
/// tail, no one. A pure function, run by the simulator as it is here.
pub fn chain_order(send_rates: &[u64]) -> Vec<usize> {
    let mut known: Vec<u64> = send_rates.iter().copied().filter(|&r| r > 0).collect();
    known.sort_unstable();
    let median = known.get(known.len() / 2).copied().unwrap_or(0);
    let slow = |i: &usize| {
        let rate = send_rates[*i];
        rate > 0 && rate.saturating_mul(SLOW_FACTOR) < median
    };
    let (mut order, mut tail): (Vec<usize>, Vec<usize>) =
        (0..send_rates.len()).partition(|i| !slow(i));
    tail.sort_by_key(|&i| std::cmp::Reverse(send_rates[i]));
    order.append(&mut tail);
    order
}

/// `nodes` in [`chain_order`].
fn ordered(nodes: Vec<NodeRecord>) -> Vec<NodeRecord> {
    let rates: Vec<u64> = nodes
        .iter()
        .map(|n| n.stats.peer_send_rate_bytes_per_sec)
        .collect();
    let mut slots: Vec<Option<NodeRecord>> = nodes.into_iter().map(Some).collect();
    chain_order(&rates)
        .into_iter()
        .filter_map(|i| slots[i].take())
        .collect()
}

/// One assignment per chain node: the nodes above it, nearest first.
fn assign(
    job: &JobPlan,
    chain: Vec<NodeRecord>,
    chunks: &[ChainChunk],
    gcs: Option<&GcsSource>,
) -> Vec<(NodeRecord, ChainAssignment)> {
    let peers: Vec<PeerRef> = chain.iter().map(peer).collect();
    chain
        .into_iter()
        .zip(chain_upstreams(peers.len()))
        .map(|(node, upstream)| {
            let assignment = ChainAssignment {
                job_id: job.job_id.clone(),
                file_id: job.file_id.clone(),
                node_id: node.node_id.clone(),
                upstream: upstream.into_iter().map(|p| peers[p].clone()).collect(),
                chunks: chunks.to_vec(),
                gcs: gcs.cloned(),
            };
            (node, assignment)
        })
        .collect()
}

fn job_plan(
    file: &FileInfo,
    source: String,
    chain: &[NodeRecord],
    chunk_ids: Vec<String>,
) -> JobPlan {
    JobPlan {
        job_id: new_job_id(),
        name: file.name.clone(),
        file_id: file.file_id.clone(),
        source,
        size: file.size,
        chunk_size: file.chunk_size,
        created_at_ms: now_ms(),
        chain: chain
            .iter()
            .map(|node| ChainNode {
                node_id: node.node_id.clone(),
                url: node.url.clone(),
            })
            .collect(),
        chunk_ids,
    }
}

/// The chain for an existing file: every live node lacking part of it;
/// and its chunks, each with its live holders in replica order (every live
/// copy is a source, inside the chain or not: a file whose chunks are
/// spread over all nodes has no node holding all of it).
fn chain_for_existing(
    live: &[NodeRecord],
    stored: &[StoredChunk],
) -> (Vec<NodeRecord>, Vec<ChainChunk>) {
    let holds_all = |node: &NodeRecord| stored.iter().all(|c| c.nodes.contains(&node.node_id));
    let chain = live.iter().filter(|n| !holds_all(n)).cloned().collect();
    let chunks = stored
        .iter()
        .map(|chunk| ChainChunk {
            chunk_id: chunk.chunk_id.clone(),
            index: chunk.index,
            size: chunk.size,
            crc32c: Some(chunk.crc32c),
            holders: chunk
                .nodes
                .iter()
                .filter_map(|id| live.iter().find(|node| &node.node_id == id))
                .map(peer)
                .collect(),
        })
        .collect();
    (chain, chunks)
}

/// Copies the committed file `request.name` to every live node lacking it.
pub async fn existing(naming: &Naming, request: &StartDistribution) -> DomainResult<Plan> {
    if request.chunk_size.is_some() {
        return Err(DomainError::Invalid(
            "chunk_size applies only when seeding from a source".into(),
        ));
    }
    let file_id = files::id_by_name(naming, &request.name).await?;
    let file = files::committed(naming, &file_id).await?;
    let stored = naming.store.chunks(&file_id).await?;
    let live = nodes::live(naming).await?;
    let (chain, chunks) = chain_for_existing(&live, &stored);
    let chain = ordered(chain);
    let job = job_plan(&file, DFS_SOURCE.to_owned(), &chain, Vec::new());
    let assignments = assign(&job, chain, &chunks, None);
    Ok(Plan { job, assignments })
}

/// Seeds a new file `request.name` from the GCS object `url` onto every
/// live node; the pending file is created here, and committed by the
/// first node that holds it all.
pub async fn seed(naming: &Naming, request: &StartDistribution, url: &str) -> DomainResult<Plan> {
    let chunk_size = request.chunk_size.unwrap_or(naming.settings.chunk_size);
    check_name_free(naming, &request.name).await?;
    let chain = ordered(nodes::live(naming).await?);
    nodes::require(naming, 1, chain.len())?;
    let object = gcs_object(naming, &chain[0], url).await?;
    check_size(url, object.size)?;
    let file = FileInfo {
        file_id: new_file_id(&request.name),
        name: request.name.clone(),
        size: object.size,
        chunk_size,
        chunk_count: chunk_count(object.size, chunk_size),
        replication: u32::try_from(chain.len()).unwrap_or(u32::MAX),
        state: FileState::Pending,
        created_at_ms: now_ms(),
    };
    naming
        .store
        .create_file(file.clone(), seed_lease_expiry(naming))
        .await?;
    let chunks: Vec<ChainChunk> = (0..file.chunk_count)
        .map(|index| ChainChunk {
            chunk_id: new_chunk_id(&file.file_id, index),
            index,
            size: chunk_len(file.size, chunk_size, index).unwrap_or(0),
            crc32c: None,
            holders: Vec::new(),
        })
        .collect();
    let gcs = GcsSource {
        url: url.to_owned(),
        generation: object.generation,
        size: object.size,
        crc32c: object.crc32c,
    };
    let chunk_ids = chunks.iter().map(|c| c.chunk_id.clone()).collect();
    let job = job_plan(&file, url.to_owned(), &chain, chunk_ids);
    let assignments = assign(&job, chain, &chunks, Some(&gcs));
    Ok(Plan { job, assignments })
}

/// Asks `node` what GCS says of the object (the storage nodes hold the GCS
/// credentials and emulator settings, not the naming server).
async fn gcs_object(naming: &Naming, node: &NodeRecord, url: &str) -> DomainResult<GcsObjectInfo> {
    naming
        .storage
        .gcs_object(&node.url, url)
        .await
        .map_err(|e| match e {
            ClientError::Api {
                status, message, ..
            } if status.as_u16() == 404 => DomainError::NotFound(message),
            ClientError::Api {
                status, message, ..
            } if status.is_client_error() => DomainError::Invalid(message),
            e => DomainError::Unavailable(format!(
                "storage node {} could not look {url} up: {e}",
                node.node_id
            )),
        })
}
