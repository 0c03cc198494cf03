//! Where chunks are read from: this host's node first (its chunk files,
//! [`crate::local`]), then the live replicas starting at this reader's own
//! place among them, then the dead ones. Every chunk is checked against
//! its size and CRC32C wherever it came from; a copy that is missing or
//! wrong is reported to the naming server (which has its node check it)
//! and the next replica is tried. `dfs read` and `dfs mount` share it.

use bytes::Bytes;
use dfs_client::{NamingClient, StorageClient};
use dfs_common::api::{ChunkLocation, SuspectReplica};

use crate::error::Error;
use crate::local::LocalNode;

/// Reads chunks from their replicas, verified. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ChunkSource {
    storage: StorageClient,
    naming: NamingClient,
    /// This host's storage node, whose copies are read from its files first.
    local: Option<LocalNode>,
    /// Where this reader starts in each chunk's list of live replicas, so
    /// that readers (and one reader's chunks) spread over the replicas.
    spread: usize,
}

/// Where a chunk's bytes came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// This host's node's chunk file.
    Local,
    /// Another node, over HTTP.
    Remote,
}

/// A chunk that could not be had from one replica: why, and whether the
/// replica holds it badly (missing or wrong bytes: worth reporting).
struct Miss {
    reason: String,
    bad: bool,
}

impl ChunkSource {
    /// Reads from the nodes with `storage`, reports bad copies with
    /// `naming`, and takes what `local` holds from its files.
    pub fn new(storage: StorageClient, naming: NamingClient, local: Option<LocalNode>) -> Self {
        Self {
            storage,
            naming,
            local,
            spread: rand::random::<u32>() as usize,
        }
    }

    /// Chunk `chunk` of file `file_id` from the first replica that serves
    /// the right bytes. Fails only when every replica failed, naming each
    /// reason.
    pub async fn fetch(&self, file_id: &str, chunk: &ChunkLocation) -> Result<Bytes, Error> {
        Ok(self.fetch_from(file_id, chunk).await?.0)
    }

    /// This host's node's copy of `chunk` again, unchecked and read only
    /// where it is used: for a chunk that [`ChunkSource::fetch_from`] took
    /// from it lately, verified. `None` when there is no such copy now.
    pub async fn local_again(&self, chunk: &ChunkLocation) -> Option<Bytes> {
        let node = self.local.clone()?;
        let (id, size) = (chunk.chunk_id.clone(), chunk.size);
        tokio::task::spawn_blocking(move || node.reread_chunk(&id, size).ok())
            .await
            .ok()
            .flatten()
    }

    /// [`ChunkSource::fetch`], and whether the bytes came from this host's node.
    pub async fn fetch_from(
        &self,
        file_id: &str,
        chunk: &ChunkLocation,
    ) -> Result<(Bytes, Origin), Error> {
        let mut reasons = Vec::new();
        let local = self
            .local
            .as_ref()
            .filter(|local| chunk.replicas.iter().any(|r| r.node_id == local.node_id()));
        if let Some(local) = local {
            let node = local.clone();
            let (id, size) = (chunk.chunk_id.clone(), chunk.size);
            let read = tokio::task::spawn_blocking(move || {
                node.read_chunk(&id, size).map_err(|miss| Miss {
                    reason: miss.reason,
                    bad: miss.bad,
                })
            })
            .await
            .map_err(|e| Error::io("reading a local chunk", std::io::Error::other(e)))?;
            match verified(chunk, read).await? {
                Ok(data) => return Ok((data, Origin::Local)),
                Err(miss) => {
                    self.missed(file_id, chunk, local.node_id(), &miss).await;
                    reasons.push(format!(
                        "this host's node {}: {}",
                        local.node_id(),
                        miss.reason
                    ));
                }
            }
        }
        let remote = chunk
            .replicas
            .iter()
            .filter(|r| local.is_none_or(|local| r.node_id != local.node_id()));
        let (mut live, dead): (Vec<_>, Vec<_>) = remote.partition(|r| r.alive);
        // One order for every chunk, so that moving one place on per chunk
        // spreads a reader's chunks evenly.
        live.sort_by(|a, b| a.node_id.cmp(&b.node_id));
        let start = match live.len() {
            0 => 0,
            n => (self.spread.wrapping_add(chunk.index as usize)) % n,
        };
        let order = live[start..].iter().chain(&live[..start]).chain(&dead);
        for replica in order {
            let fetched = self
                .storage
                .get_chunk(&replica.url, &chunk.chunk_id, chunk.size)
                .await
                .map_err(|e| Miss {
                    bad: e.status().is_some_and(|status| status.as_u16() == 404),
                    reason: e.to_string(),
                });
            match verified(chunk, fetched).await? {
                Ok(data) => return Ok((data, Origin::Remote)),
                Err(miss) => {
                    self.missed(file_id, chunk, &replica.node_id, &miss).await;
                    let state = if replica.alive { "alive" } else { "dead" };
                    reasons.push(format!(
                        "node {} ({state}, {}): {}",
                        replica.node_id, replica.url, miss.reason
                    ));
                }
            }
        }
        let reason = if reasons.is_empty() {
            format!("{} has no replicas", chunk.chunk_id)
        } else {
            format!(
                "no replica of {} could be read: {}",
                chunk.chunk_id,
                reasons.join("; ")
            )
        };
        Err(Error::Chunk {
            index: chunk.index,
            reason,
        })
    }

    /// Logs a replica that failed, and reports it when it holds the chunk
    /// badly. Best effort: the read goes on either way.
    async fn missed(&self, file_id: &str, chunk: &ChunkLocation, node_id: &str, miss: &Miss) {
        tracing::info!(chunk = chunk.index, node = %node_id, "replica failed: {}", miss.reason);
        if !miss.bad {
            return;
        }
        let report = SuspectReplica {
            chunk_id: chunk.chunk_id.clone(),
            node_id: node_id.to_owned(),
            reason: miss.reason.clone(),
        };
        if let Err(error) = self
            .naming
            .report_suspect(file_id, chunk.index, &report)
            .await
        {
            tracing::info!(chunk = chunk.index, node = node_id, %error, "could not report a bad replica");
        }
    }
}

/// `fetched` when it has the chunk's size and CRC32C; otherwise a miss
/// that counts against the replica.
async fn verified(
    chunk: &ChunkLocation,
    fetched: Result<Bytes, Miss>,
) -> Result<Result<Bytes, Miss>, Error> {
    let data = match fetched {
        Ok(data) => data,
        Err(miss) => return Ok(Err(miss)),
    };
    if data.len() as u64 != chunk.size {
        return Ok(Err(Miss {
            reason: format!("got {} bytes, expected {}", data.len(), chunk.size),
            bad: true,
        }));
    }
    let (data, crc) = tokio::task::spawn_blocking(move || {
        let crc = dfs_common::crc32c(&data);
        (data, crc)
    })
    .await
    .map_err(|e| Error::io("checksumming a chunk", std::io::Error::other(e)))?;
    if crc != chunk.crc32c {
        return Ok(Err(Miss {
            reason: format!(
                "CRC32C mismatch: got {crc:08x}, expected {:08x}",
                chunk.crc32c
            ),
            bad: true,
        }));
    }
    Ok(Ok(data))
}
