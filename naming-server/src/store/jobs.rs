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
}

/// A job as stored.
#[derive(Debug, Clone)]
pub struct JobRecord {
    pub plan: JobPlan,
    pub error: Option<String>,
    /// By node id.
    pub reports: HashMap<String, StoredReport>,
}

/// Job storage. Every method is safe to call from many naming servers.
pub trait JobStore: Send + Sync {
    fn create_job<'a>(&'a self, plan: &'a JobPlan) -> StoreFuture<'a, ()>;

    /// `NotFound` when unknown or expired.
    fn job<'a>(&'a self, job_id: &'a str) -> StoreFuture<'a, JobRecord>;

    /// Up to `limit` jobs, newest first.
    fn recent_jobs(&self, limit: usize) -> StoreFuture<'_, Vec<JobRecord>>;

    /// Keeps `report` as the node's latest; a fatal one also fails the job
    /// (the first fatal error is kept).
    fn record_report<'a>(
        &'a self,
        job_id: &'a str,
        report: &'a StoredReport,
    ) -> StoreFuture<'a, ()>;
}
