//! `dfs seed`, `dfs distribute` and `dfs jobs [--watch]`: start a
//! distribution job on the naming server and follow it until every node is
//! done.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use dfs_client::{NamingClient, RetryPolicy};
use dfs_common::api::{Distribution, JobState, NodeProgress, NodeState};
use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressStyle};

use crate::error::Error;
use crate::format::{escape, lowercase};

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
    job: Distribution,
    progress: &ProgressBar,
) -> Result<Distribution, Error> {
    let job = follow(naming, job, |job| {
        progress.set_length(job.size * job.nodes.len() as u64);
        progress.set_position(job.bytes_done);
    })
    .await?;
    outcome(job)
}

/// `dfs jobs JOB_ID --watch`: follows the job node by node until it ends.
/// On a terminal, a progress bar per node on stderr; otherwise a line on
/// stdout each time a node's state or chunk count changes (`NODE_ID
/// CHUNKS/TOTAL BYTES STATE RATE [ERROR]`). Returns the job as it ended, failed
/// or not ([`outcome`] tells).
pub async fn watch(naming: &NamingClient, job_id: &str) -> Result<Distribution, Error> {
    let job = naming.distribution(job_id).await?;
    if std::io::stderr().is_terminal() {
        let bars = NodeBars::new(&job);
        let result = follow(naming, job, |job| bars.update(job)).await;
        bars.finish();
        result
    } else {
        let mut lines = NodeLines::default();
        follow(naming, job, |job| lines.update(job)).await
    }
}

/// Calls `seen` with the job, then polls it until it is no longer running,
/// calling `seen` with every state read; returns the last.
async fn follow(
    naming: &NamingClient,
    mut job: Distribution,
    mut seen: impl FnMut(&Distribution),
) -> Result<Distribution, Error> {
    let job_id = job.job_id.clone();
    loop {
        seen(&job);
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
    Ok(job)
}

/// A finished job, or the error of a failed one (naming its reason).
pub fn outcome(job: Distribution) -> Result<Distribution, Error> {
    match job.state {
        JobState::Failed => Err(Error::JobFailed {
            reason: job.error.unwrap_or_else(|| "unknown reason".to_owned()),
            job_id: job.job_id,
        }),
        _ => Ok(job),
    }
}

/// One progress bar per chain node, in chain order.
struct NodeBars {
    _multi: MultiProgress,
    bars: Vec<ProgressBar>,
}

impl NodeBars {
    fn new(job: &Distribution) -> Self {
        let multi = MultiProgress::new();
        let template = "{prefix:12} {bar:30.cyan/blue} {bytes:>10}/{total_bytes:10} {msg}";
        let style = ProgressStyle::with_template(template)
            .map(|style| style.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        let bars = job
            .nodes
            .iter()
            .map(|node| {
                let bar = multi.add(ProgressBar::new(job.size));
                bar.set_style(style.clone());
                bar.set_prefix(escape(&short_id(&node.node_id)));
                bar
            })
            .collect();
        Self {
            _multi: multi,
            bars,
        }
    }

    fn update(&self, job: &Distribution) {
        for (bar, node) in self.bars.iter().zip(&job.nodes) {
            bar.set_length(job.size);
            bar.set_position(node.bytes_done);
            bar.set_message(node_status(node));
        }
    }

    /// Leaves every bar on screen as it last was.
    fn finish(&self) {
        for bar in &self.bars {
            bar.abandon();
        }
    }
}

/// The line output: what each node last showed, to print only changes.
#[derive(Default)]
struct NodeLines {
    shown: HashMap<String, (NodeState, u64)>,
}

impl NodeLines {
    fn update(&mut self, job: &Distribution) {
        let mut out = String::new();
        for node in &job.nodes {
            let now = (node.state, node.chunks_done);
            if self.shown.insert(node.node_id.clone(), now) != Some(now) {
                out.push_str(&format!(
                    "{} {}/{} {} {}\n",
                    escape(&node.node_id),
                    node.chunks_done,
                    job.chunk_count,
                    node.bytes_done,
                    node_status(node)
                ));
            }
        }
        // A closed stdout only loses the progress; the job's end still counts.
        let mut stdout = std::io::stdout().lock();
        let _ = stdout
            .write_all(out.as_bytes())
            .and_then(|()| stdout.flush());
    }
}

/// A node's state, rate and error, as one short text.
fn node_status(node: &NodeProgress) -> String {
    let mut status = format!(
        "{} {}/s",
        lowercase(&node.state),
        HumanBytes(node.throughput_bytes_per_sec)
    );
    if let Some(error) = &node.error {
        status.push(' ');
        status.push_str(&escape(error));
    }
    status
}

/// The first 12 characters of a node id: enough to tell nodes apart.
fn short_id(node_id: &str) -> String {
    node_id.chars().take(12).collect()
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
