//! `dfs seed`, `dfs distribute` and `dfs jobs`: start a distribution job on
//! the naming server and follow it until every node is done.

use std::time::Duration;

use dfs_client::{NamingClient, RetryPolicy};
use dfs_common::api::{Distribution, JobState, NodeState};
use indicatif::ProgressBar;

use crate::error::Error;
use crate::format::escape;

/// How often a waiting command asks for progress.
const POLL_EVERY: Duration = Duration::from_millis(250);
/// How one progress poll is retried when the naming server is briefly
/// unreachable or busy; when it stays so, the command gives up (the job
/// goes on without it).
const POLL_RETRY: RetryPolicy =
    RetryPolicy::new(10, Duration::from_millis(250), Duration::from_secs(2));

/// Polls the job until it is no longer running, moving `progress` along
/// the bytes verified on every node. Returns the final state; a failed job
/// is an error naming its reason.
pub async fn wait(
    naming: &NamingClient,
    mut job: Distribution,
    progress: &ProgressBar,
) -> Result<Distribution, Error> {
    let job_id = job.job_id.clone();
    loop {
        progress.set_length(job.size * job.nodes.len() as u64);
        progress.set_position(job.bytes_done);
        if job.state != JobState::Running {
            break;
        }
        tokio::time::sleep(POLL_EVERY).await;
        job = POLL_RETRY
            .retry(
                "polling the distribution",
                dfs_client::Error::is_transient,
                || naming.distribution(&job_id),
            )
            .await?;
    }
    match job.state {
        JobState::Failed => Err(Error::JobFailed {
            reason: job.error.unwrap_or_else(|| "unknown reason".to_owned()),
            job_id,
        }),
        _ => Ok(job),
    }
}

/// The closing line of a finished job, and a warning per failed node.
pub fn summary(job: &Distribution) -> (String, Vec<String>) {
    let done = job
        .nodes
        .iter()
        .filter(|n| n.state == NodeState::Done)
        .count();
    let secs = job
        .finished_at_ms
        .unwrap_or(job.created_at_ms)
        .saturating_sub(job.created_at_ms) as f64
        / 1000.0;
    let line = format!(
        "{} ({} bytes) is on {done} more node(s) in {secs:.1} s (job {})\n",
        escape(&job.name),
        job.size,
        escape(&job.job_id)
    );
    let warnings = job
        .nodes
        .iter()
        .filter(|n| n.state == NodeState::Failed)
        .map(|n| {
            format!(
                "warning: node {} failed: {}",
                escape(&n.node_id),
                escape(n.error.as_deref().unwrap_or("unknown reason"))
            )
        })
        .collect();
    (line, warnings)
}
