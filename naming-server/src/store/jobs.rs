//! Distribution jobs in Redis: one hash per job holding its plan, its
//! fatal error if any, and every chain node's last report; a sorted set
//! of recent job ids. All job keys share the hash tag `{jobs}`.
//!
//! | key | type | content |
//! |-----|------|---------|
//! | `dfs:{jobs}:job:<job_id>` | hash | `plan` (JSON), `error`, `node:<node_id>` → report JSON |
//! | `dfs:{jobs}:recent` | zset | job id → creation time, ms (newest 1000 kept) |
//!
//! Job hashes expire [`JOB_TTL_SECS`] after their last update.

use std::collections::HashMap;

use dfs_common::api::NodeReport;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use super::keys::EXPIRY;
use super::parse::file_keys;
use super::redis::{RedisStore, trash};
use super::{StoreError, StoreFuture, StoreResult};

const RECENT: &str = "dfs:{jobs}:recent";
/// Jobs listed by `GET /distributions` are among this many newest.
const RECENT_KEPT: isize = 1000;
/// A week.
const JOB_TTL_SECS: i64 = 7 * 24 * 3600;

fn job_key(job_id: &str) -> String {
    format!("dfs:{{jobs}}:job:{job_id}")
}

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
pub trait JobStore: Send + Sync + 'static {
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

    /// Adds the nodes to every chunk's replicas of a committed file, at once
    /// (no-op for other files).
    fn add_replicas<'a>(&'a self, file_id: &'a str, node_ids: &'a [String]) -> StoreFuture<'a, ()>;

    /// Sends each (node id, chunk id) to the node's trash.
    fn trash_chunks(&self, items: Vec<(String, String)>) -> StoreFuture<'_, ()>;

    /// Pushes a pending file's expiry out to `expires_at_ms` (never earlier),
    /// so a seed that takes longer than the pending TTL is not reaped while
    /// its chain still works on it.
    fn keep_pending<'a>(&'a self, file_id: &'a str, expires_at_ms: u64) -> StoreFuture<'a, ()>;
}

fn job_record(job_id: &str, fields: HashMap<String, String>) -> StoreResult<JobRecord> {
    let plan = fields
        .get("plan")
        .ok_or_else(|| StoreError::NotFound(format!("distribution {job_id} not found")))?;
    let plan: JobPlan = serde_json::from_str(plan)?;
    let mut reports = HashMap::new();
    for (field, value) in &fields {
        if let Some(node_id) = field.strip_prefix("node:") {
            reports.insert(node_id.to_owned(), serde_json::from_str(value)?);
        }
    }
    Ok(JobRecord {
        plan,
        error: fields.get("error").cloned(),
        reports,
    })
}

impl JobStore for RedisStore {
    fn create_job<'a>(&'a self, plan: &'a JobPlan) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let key = job_key(&plan.job_id);
            let mut conn = self.conn().await?;
            redis::pipe()
                .atomic()
                .hset(&key, "plan", serde_json::to_string(plan)?)
                .ignore()
                .expire(&key, JOB_TTL_SECS)
                .ignore()
                .zadd(RECENT, &plan.job_id, plan.created_at_ms)
                .ignore()
                .zremrangebyrank(RECENT, 0, -RECENT_KEPT - 1)
                .ignore()
                .query_async::<()>(&mut conn)
                .await?;
            Ok(())
        })
    }

    fn job<'a>(&'a self, job_id: &'a str) -> StoreFuture<'a, JobRecord> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            let fields: HashMap<String, String> = conn.hgetall(job_key(job_id)).await?;
            job_record(job_id, fields)
        })
    }

    fn recent_jobs(&self, limit: usize) -> StoreFuture<'_, Vec<JobRecord>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            let stop = isize::try_from(limit).unwrap_or(isize::MAX) - 1;
            let ids: Vec<String> = conn.zrevrange(RECENT, 0, stop).await?;
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let mut pipe = redis::pipe();
            for id in &ids {
                pipe.hgetall(job_key(id));
            }
            let rows: Vec<HashMap<String, String>> = pipe.query_async(&mut conn).await?;
            let mut jobs = Vec::with_capacity(ids.len());
            for (id, fields) in ids.iter().zip(rows) {
                match job_record(id, fields) {
                    Ok(job) => jobs.push(job),
                    // Expired since listed.
                    Err(StoreError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(jobs)
        })
    }

    fn record_report<'a>(
        &'a self,
        job_id: &'a str,
        report: &'a StoredReport,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let key = job_key(job_id);
            let mut conn = self.conn().await?;
            let mut pipe = redis::pipe();
            pipe.atomic()
                .hset(
                    &key,
                    format!("node:{}", report.report.node_id),
                    serde_json::to_string(report)?,
                )
                .ignore()
                .expire(&key, JOB_TTL_SECS)
                .ignore();
            if report.report.fatal {
                let error = report.report.error.as_deref().unwrap_or("unknown error");
                pipe.hset_nx(
                    &key,
                    "error",
                    format!("node {}: {error}", report.report.node_id),
                )
                .ignore();
            }
            pipe.query_async::<()>(&mut conn).await?;
            Ok(())
        })
    }

    fn add_replicas<'a>(&'a self, file_id: &'a str, node_ids: &'a [String]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            if node_ids.is_empty() {
                return Ok(());
            }
            let keys = file_keys(file_id)?;
            let mut conn = self.conn().await?;
            let mut call = self.scripts.add_replicas.key(&keys.file);
            call.key(&keys.chunks).arg(node_ids);
            call.invoke_async::<()>(&mut conn).await?;
            Ok(())
        })
    }

    fn trash_chunks(&self, items: Vec<(String, String)>) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            trash(&mut conn, items).await
        })
    }

    fn keep_pending<'a>(&'a self, file_id: &'a str, expires_at_ms: u64) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            // XX: only while still pending; GT: never shorten it.
            redis::cmd("ZADD")
                .arg(EXPIRY)
                .arg("XX")
                .arg("GT")
                .arg(expires_at_ms)
                .arg(file_id)
                .query_async::<()>(&mut conn)
                .await?;
            Ok(())
        })
    }
}
