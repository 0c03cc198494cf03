//! Progress reports to the naming server (`POST
//! /distributions/{job_id}/progress`): one as soon as work starts, then one
//! a second while it goes on, then the final one, retried until it lands.
//! The naming server's reply says whether the job still runs (a failed job
//! stops the worker) and which chain nodes fell behind: the worker pulls
//! around them.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use dfs_client::{NamingClient, RetryPolicy};
use dfs_common::api::{JobState, NodeReport, NodeState};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Interval between reports while working.
const REPORT_EVERY: Duration = Duration::from_secs(1);
/// How the final report is retried: it is the one the job's outcome hangs on.
const FINAL_REPORT_RETRY: RetryPolicy =
    RetryPolicy::new(10, Duration::from_millis(250), Duration::from_secs(5));

/// Chunks and bytes this node holds of the job's file and where they come
/// from, shared with the reporter; and the nodes the naming server says
/// to pull around.
#[derive(Debug, Clone)]
pub struct Progress(Arc<Counters>);

#[derive(Debug)]
struct Counters {
    chunks: AtomicU64,
    bytes: AtomicU64,
    started: Instant,
    /// The node the last chunk came from.
    source: Mutex<Option<String>>,
    /// Chain nodes not to pull from, as the naming server last said.
    bypass: Mutex<HashSet<String>>,
}

impl Progress {
    pub fn new() -> Self {
        Self(Arc::new(Counters {
            chunks: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            started: Instant::now(),
            source: Mutex::new(None),
            bypass: Mutex::new(HashSet::new()),
        }))
    }

    /// The next chunks come from `node_id` (`None`: not from a node).
    pub fn set_source(&self, node_id: Option<&str>) {
        let mut source = self.0.source.lock().unwrap_or_else(PoisonError::into_inner);
        if source.as_deref() != node_id {
            *source = node_id.map(str::to_owned);
        }
    }

    /// Whether the naming server said to pull around `node_id`.
    pub fn bypassed(&self, node_id: &str) -> bool {
        self.0
            .bypass
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(node_id)
    }

    fn set_bypass(&self, nodes: Vec<String>) {
        let mut bypass = self.0.bypass.lock().unwrap_or_else(PoisonError::into_inner);
        for node_id in nodes {
            if bypass.insert(node_id.clone()) {
                tracing::warn!(node = %node_id, "the naming server says this node fell behind; pulling around it");
            }
        }
    }

    /// One more chunk of `size` bytes is on disk, verified.
    pub fn add(&self, size: u64) {
        self.0.chunks.fetch_add(1, Ordering::Relaxed);
        self.0.bytes.fetch_add(size, Ordering::Relaxed);
    }

    pub fn chunks(&self) -> u64 {
        self.0.chunks.load(Ordering::Relaxed)
    }

    /// A report of where this node stands.
    pub fn report(&self, node_id: &str, state: NodeState) -> NodeReport {
        NodeReport {
            node_id: node_id.to_owned(),
            state,
            chunks_done: self.chunks(),
            bytes_done: self.0.bytes.load(Ordering::Relaxed),
            elapsed_ms: u64::try_from(self.0.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            error: None,
            fatal: false,
            crc32c: Vec::new(),
            source: self
                .0
                .source
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        }
    }
}

/// Sends reports to the naming server.
#[derive(Debug, Clone)]
pub struct Reporter {
    naming: NamingClient,
}

impl Reporter {
    /// Reports through `naming`.
    pub fn new(naming: NamingClient) -> Self {
        Self { naming }
    }

    /// Reports `running` now and every [`REPORT_EVERY`] until `cancel`;
    /// cancels it when the naming server says the job failed.
    pub async fn run(
        self,
        job_id: String,
        node_id: String,
        progress: Progress,
        cancel: CancellationToken,
    ) {
        loop {
            let report = progress.report(&node_id, NodeState::Running);
            match self.naming.report_progress(&job_id, &report).await {
                Ok(ack) if ack.state == JobState::Failed => {
                    tracing::warn!(%job_id, "the job failed elsewhere; stopping");
                    cancel.cancel();
                    return;
                }
                Ok(ack) => progress.set_bypass(ack.bypass),
                Err(error) => {
                    tracing::warn!(%job_id, %error, "progress report not delivered");
                }
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(REPORT_EVERY) => {}
            }
        }
    }

    /// Delivers the final report, retrying transient failures (a refusal
    /// by the naming server would only be repeated).
    pub async fn finish(&self, job_id: &str, report: &NodeReport) {
        let delivered = FINAL_REPORT_RETRY
            .retry(
                "final progress report",
                dfs_client::Error::is_transient,
                || self.naming.report_progress(job_id, report),
            )
            .await;
        if let Err(error) = delivered {
            tracing::warn!(%job_id, %error, "final progress report not delivered");
        }
    }
}
