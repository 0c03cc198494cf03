//! Orphan sweeps. Chunks can outlive every reference to them: an upload or
//! seed cut short after its pending file expired, a delete whose trash
//! never reached this node, a retry that replaced a chunk. Every
//! `ORPHAN_SWEEP_INTERVAL` the node lists its chunks, shard by shard and at
//! most [`MAX_CHUNK_REPORT`] ids per call, to the naming server, which names
//! the ones no file refers to; the node deletes those.
//!
//! Two guards keep a sweep from deleting live data: only chunks written
//! more than `ORPHAN_GRACE` ago are listed, and every report carries the
//! cluster id this node first registered with, which the naming server
//! checks against its store's own, so a wiped or different metadata store
//! never empties a node.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use dfs_client::NamingClient;
use dfs_common::api::{ChunkReport, MAX_CHUNK_REPORT};
use tokio_util::sync::CancellationToken;

use crate::store::{ChunkStore, StoreError};

#[derive(Debug, thiserror::Error)]
enum SweepError {
    #[error("not registered with the naming server yet")]
    NoClusterId,
    #[error("naming server: {0}")]
    Naming(#[from] dfs_client::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// This node's orphan sweeps.
#[derive(Debug)]
pub struct Sweeper {
    pub naming: NamingClient,
    pub node_id: String,
    pub store: Arc<ChunkStore>,
    pub interval: Duration,
    pub grace: Duration,
}

impl Sweeper {
    /// Sweeps every `interval` (the first one an interval after start)
    /// until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(self.interval) => {}
            }
            let swept = tokio::select! {
                () = shutdown.cancelled() => return,
                swept = self.sweep() => swept,
            };
            match swept {
                Ok(deleted) => {
                    self.store.metrics().orphan_sweeps.inc();
                    if deleted > 0 {
                        tracing::info!(deleted, "orphan sweep deleted chunks no file refers to");
                    }
                }
                Err(err) => {
                    self.store.metrics().orphan_sweeps_failed.inc();
                    tracing::warn!(error = %err, "orphan sweep given up; trying again later");
                }
            }
        }
    }

    /// One pass over every shard; how many chunks it deleted.
    async fn sweep(&self) -> Result<u64, SweepError> {
        let cluster_id = self
            .store
            .cluster_id()
            .await?
            .ok_or(SweepError::NoClusterId)?;
        let before = SystemTime::now()
            .checked_sub(self.grace)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let mut deleted = 0;
        for shard in 0..=u8::MAX {
            let ids = self.store.chunk_ids_in_shard(shard, before).await?;
            for batch in ids.chunks(MAX_CHUNK_REPORT) {
                let report = ChunkReport {
                    cluster_id: cluster_id.clone(),
                    chunk_ids: batch.to_vec(),
                };
                let reply = self.naming.chunk_report(&self.node_id, &report).await?;
                for id in reply.orphans {
                    // Never delete what this sweep did not list.
                    if !batch.contains(&id) {
                        continue;
                    }
                    match self.store.delete(&id).await {
                        Ok(()) => {
                            tracing::info!(chunk_id = %id, "orphan chunk deleted");
                            self.store.metrics().orphan_chunks_deleted.inc();
                            deleted += 1;
                        }
                        Err(StoreError::NotFound) => {}
                        Err(err) => return Err(err.into()),
                    }
                }
            }
        }
        Ok(deleted)
    }
}
