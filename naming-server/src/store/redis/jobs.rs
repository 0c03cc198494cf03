//! Distribution jobs in Redis: one hash per job holding its plan, its
//! fatal error if any, and every chain node's last report; a sorted set
//! of recent job ids. All job keys share the hash tag `{jobs}`.
//!
//! | key | type | content |
//! |-----|------|---------|
//! | `dfs:{jobs}:job:<job_id>` | hash | `plan` (JSON), `error`, `node:<node_id>` → report JSON |
//! | `dfs:{jobs}:job:<job_id>:bypassed` | hash | bypassed node id → the node that fell behind it |
//! | `dfs:{jobs}:recent` | zset | job id → creation time, ms (newest 1000 kept) |
//!
//! Job hashes expire [`JOB_TTL_SECS`] after their last update. Taking a
//! report reads only the plan, the error, the node's own last report and
//! the bypasses, whatever the number of nodes.

use std::collections::HashMap;

use redis::AsyncCommands;

use super::RedisStore;
use crate::store::{
    JobPlan, JobRecord, JobStore, ReportContext, StoreError, StoreFuture, StoreResult, StoredReport,
};

const RECENT: &str = "dfs:{jobs}:recent";
/// Jobs listed by `GET /distributions` are among this many newest.
const RECENT_KEPT: isize = 1000;
/// A week.
const JOB_TTL_SECS: i64 = 7 * 24 * 3600;

fn job_key(job_id: &str) -> String {
    format!("dfs:{{jobs}}:job:{job_id}")
}

/// A job's `plan`, `error` and one node's report, as `HMGET` gives them.
type ReportFields = (Option<String>, Option<String>, Option<String>);

fn bypassed_key(job_id: &str) -> String {
    format!("dfs:{{jobs}}:job:{job_id}:bypassed")
}

fn parse_plan(job_id: &str, plan: Option<&String>) -> StoreResult<JobPlan> {
    let plan =
        plan.ok_or_else(|| StoreError::NotFound(format!("distribution {job_id} not found")))?;
    Ok(serde_json::from_str(plan)?)
}

fn job_record(
    job_id: &str,
    fields: HashMap<String, String>,
    bypassed: HashMap<String, String>,
) -> StoreResult<JobRecord> {
    let plan = parse_plan(job_id, fields.get("plan"))?;
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
        bypassed,
    })
}

impl JobStore for RedisStore {
    fn create_job<'a>(&'a self, plan: &'a JobPlan) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let key = job_key(&plan.job_id);
            let mut conn = self.conn();
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
            let mut conn = self.conn();
            let (fields, bypassed) = redis::pipe()
                .hgetall(job_key(job_id))
                .hgetall(bypassed_key(job_id))
                .query_async(&mut conn)
                .await?;
            job_record(job_id, fields, bypassed)
        })
    }

    fn report_context<'a>(
        &'a self,
        job_id: &'a str,
        node_id: &'a str,
    ) -> StoreFuture<'a, ReportContext> {
        Box::pin(async move {
            let mut conn = self.conn();
            let (fields, bypassed): (ReportFields, HashMap<String, String>) = redis::pipe()
                .cmd("HMGET")
                .arg(job_key(job_id))
                .arg("plan")
                .arg("error")
                .arg(format!("node:{node_id}"))
                .hgetall(bypassed_key(job_id))
                .query_async(&mut conn)
                .await?;
            let (plan, error, previous) = fields;
            Ok(ReportContext {
                plan: parse_plan(job_id, plan.as_ref())?,
                error,
                previous: previous
                    .map(|json| serde_json::from_str(&json))
                    .transpose()?,
                bypassed,
            })
        })
    }

    fn recent_jobs(&self, limit: usize) -> StoreFuture<'_, Vec<JobRecord>> {
        Box::pin(async move {
            let mut conn = self.conn();
            let stop = isize::try_from(limit).unwrap_or(isize::MAX) - 1;
            let ids: Vec<String> = conn.zrevrange(RECENT, 0, stop).await?;
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let mut pipe = redis::pipe();
            for id in &ids {
                pipe.hgetall(job_key(id)).hgetall(bypassed_key(id));
            }
            let rows: Vec<(HashMap<String, String>, HashMap<String, String>)> =
                pipe.query_async(&mut conn).await?;
            let mut jobs = Vec::with_capacity(ids.len());
            for (id, (fields, bypassed)) in ids.iter().zip(rows) {
                match job_record(id, fields, bypassed) {
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
            let mut conn = self.conn();
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

    fn bypass<'a>(
        &'a self,
        job_id: &'a str,
        marks: &'a [(String, String)],
    ) -> StoreFuture<'a, Vec<bool>> {
        Box::pin(async move {
            let key = bypassed_key(job_id);
            let mut conn = self.conn();
            let mut pipe = redis::pipe();
            pipe.atomic();
            for (node_id, behind) in marks {
                pipe.hset_nx(&key, node_id, behind);
            }
            pipe.expire(&key, JOB_TTL_SECS).ignore();
            Ok(pipe.query_async(&mut conn).await?)
        })
    }
}
