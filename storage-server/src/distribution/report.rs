//! Progress reports to the naming server (`POST
//! /distributions/{job_id}/progress`): one as soon as work starts, then one
//! a second while it goes on, then the final one, retried until it lands.
//! The naming server's reply says whether the job still runs; a failed job
//! stops the worker.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dfs_common::api::{JobState, NodeReport, NodeState, ReportAck};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Interval between reports while working.
const REPORT_EVERY: Duration = Duration::from_secs(1);
/// Attempts at delivering the final report.
const FINAL_ATTEMPTS: u32 = 10;
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Chunks and bytes this node holds of the job's file, shared with the reporter.
#[derive(Debug, Clone)]
pub struct Progress(Arc<Counters>);

#[derive(Debug)]
struct Counters {
    chunks: AtomicU64,
    bytes: AtomicU64,
    started: Instant,
}

impl Progress {
    pub fn new() -> Self {
        Self(Arc::new(Counters {
            chunks: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            started: Instant::now(),
        }))
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
        }
    }
}

/// Why a report did not reach the naming server.
#[derive(Debug)]
struct Undelivered {
    reason: String,
    /// Worth sending again (a transport error or a 5xx, not a refusal).
    retry: bool,
}

/// Sends reports to the naming server.
#[derive(Debug, Clone)]
pub struct Reporter {
    http: reqwest::Client,
    naming_url: String,
    token: Option<String>,
}

impl Reporter {
    pub fn new(http: reqwest::Client, naming_url: String, token: Option<String>) -> Self {
        Self {
            http,
            naming_url,
            token,
        }
    }

    async fn send(&self, job_id: &str, report: &NodeReport) -> Result<ReportAck, Undelivered> {
        let mut request = self
            .http
            .post(format!(
                "{}/distributions/{job_id}/progress",
                self.naming_url
            ))
            .timeout(CALL_TIMEOUT)
            .json(report);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let transient = |e: reqwest::Error| Undelivered {
            reason: e.to_string(),
            retry: true,
        };
        let response = request.send().await.map_err(transient)?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(Undelivered {
                reason: format!("naming server answered {status}: {body}"),
                // The naming server refused the report itself: sending it
                // again changes nothing.
                retry: !status.is_client_error(),
            });
        }
        response.json().await.map_err(transient)
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
            match self
                .send(&job_id, &progress.report(&node_id, NodeState::Running))
                .await
            {
                Ok(ack) if ack.state == JobState::Failed => {
                    tracing::warn!(%job_id, "the job failed elsewhere; stopping");
                    cancel.cancel();
                    return;
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%job_id, error = %error.reason, "progress report not delivered");
                }
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(REPORT_EVERY) => {}
            }
        }
    }

    /// Delivers the final report, retrying transient failures with backoff.
    pub async fn finish(&self, job_id: &str, report: &NodeReport) {
        let mut backoff = Duration::from_millis(250);
        for attempt in 1..=FINAL_ATTEMPTS {
            match self.send(job_id, report).await {
                Ok(_) => return,
                Err(error) => {
                    tracing::warn!(%job_id, attempt, error = %error.reason, "final report not delivered");
                    if !error.retry {
                        return;
                    }
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
}
