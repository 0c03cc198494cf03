//! This node's part of a distribution job (see
//! [`dfs_common::api::ChainAssignment`]): pull every chunk of a file, in
//! order, from the nearest live node above it in the chain (or from GCS when
//! this node heads a seed), and report progress to the naming server.
//!
//! - [`Distributor`]: accepts assignments and runs one worker per job.
//! - `worker`: the pulling itself, with fallback to further sources.
//! - `report`: the progress reports and the naming server's replies.
//!
//! Invariants: a chunk is only stored after its CRC32C checked out (the
//! peer protocol and the GCS download both write through
//! [`ChunkStore::write`]), so a chunk this node forwards is always verified;
//! a chunk already stored is never fetched again, so a restarted or
//! reconnected transfer resumes where it stopped.

mod report;
mod worker;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use dfs_common::api::ChainAssignment;
use dfs_common::auth::Token;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::gcs::{DownloadOptions, GcsClient};
use crate::store::ChunkStore;
pub use report::Reporter;
use worker::Resources;

/// Runs the jobs handed to this node.
pub struct Distributor {
    resources: Resources,
    /// Ids of the jobs running here.
    running: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for Distributor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Distributor")
            .field("running", &self.running)
            .finish_non_exhaustive()
    }
}

impl Distributor {
    /// Runs jobs into `store`, from peers (answering their challenge with
    /// `token`) or GCS, reporting with `reporter`, until `shutdown`.
    pub fn new(
        store: Arc<ChunkStore>,
        gcs: Result<Arc<GcsClient>, String>,
        gcs_options: DownloadOptions,
        reporter: Reporter,
        token: Option<Token>,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            resources: Resources {
                store,
                gcs,
                gcs_options,
                reporter,
                token,
                shutdown,
            },
            running: Mutex::new(HashSet::new()),
        }
    }

    /// The GCS client, or why there is none.
    pub fn gcs(&self) -> Result<&GcsClient, String> {
        self.resources.gcs()
    }

    /// Starts working on `assignment` in the background; `false` when this
    /// job already runs here (the naming server may hand it out twice).
    pub fn start(self: &Arc<Self>, assignment: ChainAssignment) -> bool {
        let fresh = self
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(assignment.job_id.clone());
        if fresh {
            let this = self.clone();
            let span = tracing::info_span!(
                "distribution",
                job_id = %assignment.job_id,
                file_id = %assignment.file_id,
                node_id = %assignment.node_id,
            );
            tokio::spawn(
                async move {
                    let job_id = assignment.job_id.clone();
                    let running = this.resources.store.metrics().jobs_running.clone();
                    running.inc();
                    worker::run(&this.resources, assignment).await;
                    running.dec();
                    this.running
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(&job_id);
                }
                .instrument(span),
            );
        }
        fresh
    }
}
