//! [`JobStore`]: distribution jobs, each with its plan, its fatal error if
//! any, and every chain node's last report.

use std::collections::HashMap;

use dfs_common::api::NodeReport;
use serde::{Deserialize, Serialize};

use super::error::StoreFuture;

/// What the naming server decided when the job started.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobPlan {
    pub job_id: String,
    pub name: String,
    pub file_id: String,
    /// `gs://…` or `dfs`.
    pub source: String,
    pub size: u64,
    pub chunk_size: u64,
    pub created_at_ms: u64,
    /// Head first.
    pub chain: Vec<ChainNode>,
    /// A seed's chunk ids, by index (an existing file has its own).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chunk_ids: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChainNode {
    pub node_id: String,
    pub url: String,
}

/// A node's last report and when it arrived.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredReport {
    #[serde(flatten)]
    pub report: NodeReport,
    pub received_at_ms: u64,
    /// Where the node stood at its first report naming its current source
    /// (see `distribution::adapt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_start: Option<SourceStart>,
}

/// A node's bytes and working time at some report.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct SourceStart {
    pub bytes_done: u64,
    pub elapsed_ms: u64,
}

/// Rates are judged over at least this long.
const RATE_WINDOW_MS: u64 = 1_000;

impl StoredReport {
    /// Bytes per second received from the current source since the node
    /// started on it; `None` before a second of it.
    pub fn source_rate(&self) -> Option<u64> {
        let start = self.source_start?;
        let span_ms = self.report.elapsed_ms.checked_sub(start.elapsed_ms)?;
        if span_ms < RATE_WINDOW_MS {
            return None;
        }
        let bytes = self.report.bytes_done.saturating_sub(start.bytes_done);
        u64::try_from(u128::from(bytes) * 1000 / u128::from(span_ms)).ok()
    }
}

/// A job as stored.
#[derive(Debug, Clone)]
pub struct JobRecord {
    pub plan: JobPlan,
    pub error: Option<String>,
    /// By node id.
    pub reports: HashMap<String, StoredReport>,
    /// Nodes no one pulls from any more, by node id, each with the node
    /// that fell behind it (see `distribution::adapt`).
    pub bypassed: HashMap<String, String>,
}

/// What taking one node's report needs of its job, without the other
/// nodes' reports.
#[derive(Debug, Clone)]
pub struct ReportContext {
    pub plan: JobPlan,
    pub error: Option<String>,
    /// The node's last report.
    pub previous: Option<StoredReport>,
    /// As in [`JobRecord::bypassed`].
    pub bypassed: HashMap<String, String>,
}

/// Job storage. Every method is safe to call from many naming servers.
pub trait JobStore: Send + Sync {
    fn create_job<'a>(&'a self, plan: &'a JobPlan) -> StoreFuture<'a, ()>;

    /// `NotFound` when unknown or expired.
    fn job<'a>(&'a self, job_id: &'a str) -> StoreFuture<'a, JobRecord>;

    /// What taking a report of `node_id` needs; `NotFound` when the job
    /// is unknown or expired.
    fn report_context<'a>(
        &'a self,
        job_id: &'a str,
        node_id: &'a str,
    ) -> StoreFuture<'a, ReportContext>;

    /// Up to `limit` jobs, newest first.
    fn recent_jobs(&self, limit: usize) -> StoreFuture<'_, Vec<JobRecord>>;

    /// Keeps `report` as the node's latest; a fatal one also fails the job
    /// (the first fatal error is kept).
    fn record_report<'a>(
        &'a self,
        job_id: &'a str,
        report: &'a StoredReport,
    ) -> StoreFuture<'a, ()>;

    /// Records that every node pulls around each `(bypassed, behind)`
    /// pair's first node; a node bypassed already keeps its first entry.
    /// Says, for each pair, whether it was new.
    fn bypass<'a>(
        &'a self,
        job_id: &'a str,
        marks: &'a [(String, String)],
    ) -> StoreFuture<'a, Vec<bool>>;
}
