//! A job as clients see it, derived on every read from what is stored: its
//! plan, each chain node's last report, and the nodes' heartbeats. Numbers
//! come from the nodes' reports, so every sum and rate saturates instead of
//! trusting them not to overflow.

use dfs_common::api::{Distribution, JobState, NodeProgress, NodeState};
use dfs_common::chunk_count;

use super::STALE_REPORT_MS;
use crate::domain::nodes::NodeDirectory;
use crate::store::{JobRecord, StoredReport};

/// Bytes per second for `bytes` moved in `elapsed_ms`.
fn rate(bytes: u64, elapsed_ms: u64) -> u64 {
    let per_sec = u128::from(bytes) * 1000 / u128::from(elapsed_ms.max(1));
    u64::try_from(per_sec).unwrap_or(u64::MAX)
}

/// A node's progress from its last report; a node not done or failed that
/// stopped heartbeating, or stopped reporting, counts as failed.
fn node_progress(
    node_id: &str,
    url: &str,
    report: Option<&StoredReport>,
    received_ms: u64,
    alive: bool,
    now_ms: u64,
) -> NodeProgress {
    let mut progress = NodeProgress {
        node_id: node_id.to_owned(),
        url: url.to_owned(),
        state: NodeState::Waiting,
        chunks_done: 0,
        bytes_done: 0,
        throughput_bytes_per_sec: 0,
        elapsed_ms: 0,
        error: None,
        bypassed: false,
    };
    if let Some(StoredReport { report, .. }) = report {
        progress.state = report.state;
        progress.chunks_done = report.chunks_done;
        progress.bytes_done = report.bytes_done;
        progress.throughput_bytes_per_sec = rate(report.bytes_done, report.elapsed_ms);
        progress.elapsed_ms = report.elapsed_ms;
        progress.error.clone_from(&report.error);
    }
    if !progress.state.is_final() {
        let silence = now_ms.saturating_sub(received_ms);
        let failure = if !alive {
            Some("node stopped heartbeating".to_owned())
        } else if silence > STALE_REPORT_MS {
            Some(format!("no progress report for {} s", silence / 1000))
        } else {
            None
        };
        if let Some(failure) = failure {
            progress.state = NodeState::Failed;
            progress.error = Some(failure);
        }
    }
    progress
}

/// The job `record` at `now_ms`, with every chain node's progress.
pub fn view(record: JobRecord, nodes: &NodeDirectory, now_ms: u64) -> Distribution {
    let plan = record.plan;
    let mut last_report_ms = plan.created_at_ms;
    let progress: Vec<NodeProgress> = plan
        .chain
        .iter()
        .map(|node| {
            let report = record.reports.get(&node.node_id);
            let received = report.map_or(plan.created_at_ms, |r| r.received_at_ms);
            last_report_ms = last_report_ms.max(received);
            let alive = nodes.alive(&node.node_id);
            NodeProgress {
                bypassed: record.bypassed.contains_key(&node.node_id),
                ..node_progress(&node.node_id, &node.url, report, received, alive, now_ms)
            }
        })
        .collect();
    let finished = progress.iter().all(|n| n.state.is_final());
    let any_done = progress.iter().any(|n| n.state == NodeState::Done);
    let (state, error) = match record.error {
        Some(error) => (JobState::Failed, Some(error)),
        None if finished && !any_done && !progress.is_empty() => (
            JobState::Failed,
            Some("no node completed the distribution".to_owned()),
        ),
        None if finished => (JobState::Done, None),
        None => (JobState::Running, None),
    };
    let finished_at_ms = (state != JobState::Running).then_some(last_report_ms);
    let bytes_done = progress
        .iter()
        .fold(0u64, |sum, n| sum.saturating_add(n.bytes_done));
    let elapsed_ms = finished_at_ms
        .unwrap_or(now_ms)
        .saturating_sub(plan.created_at_ms);
    Distribution {
        job_id: plan.job_id,
        name: plan.name,
        file_id: plan.file_id,
        source: plan.source,
        size: plan.size,
        chunk_size: plan.chunk_size,
        chunk_count: chunk_count(plan.size, plan.chunk_size),
        state,
        error,
        created_at_ms: plan.created_at_ms,
        finished_at_ms,
        bytes_done,
        throughput_bytes_per_sec: rate(bytes_done, elapsed_ms),
        nodes: progress,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use dfs_common::api::NodeReport;

    use super::*;
    use crate::store::{ChainNode, JobPlan};

    fn report(node_id: &str, state: NodeState, bytes: u64, elapsed_ms: u64) -> StoredReport {
        StoredReport {
            report: NodeReport {
                node_id: node_id.to_owned(),
                state,
                chunks_done: 1,
                bytes_done: bytes,
                elapsed_ms,
                error: None,
                fatal: false,
                crc32c: Vec::new(),
                source: None,
            },
            received_at_ms: 2_000,
            source_start: None,
        }
    }

    fn record(reports: Vec<StoredReport>) -> JobRecord {
        let chain = reports
            .iter()
            .map(|r| ChainNode {
                node_id: r.report.node_id.clone(),
                url: format!("http://{}", r.report.node_id),
            })
            .collect();
        JobRecord {
            plan: JobPlan {
                job_id: "j".into(),
                name: "f".into(),
                file_id: "id".into(),
                source: "dfs".into(),
                size: 1 << 20,
                chunk_size: 1 << 16,
                created_at_ms: 1_000,
                chain,
                chunk_ids: Vec::new(),
            },
            error: None,
            reports: reports
                .into_iter()
                .map(|r| (r.report.node_id.clone(), r))
                .collect::<HashMap<_, _>>(),
            bypassed: HashMap::new(),
        }
    }

    #[test]
    fn hostile_numbers_saturate_instead_of_overflowing() {
        let record = record(vec![
            report("a", NodeState::Done, u64::MAX, 0),
            report("b", NodeState::Done, u64::MAX, 1),
        ]);
        // Neither node is registered: only final states keep them from failing.
        let nodes = NodeDirectory::from_records(Vec::new(), 0);
        let job = view(record, &nodes, 3_000);
        assert_eq!(job.state, JobState::Done);
        assert_eq!(job.bytes_done, u64::MAX);
        assert_eq!(job.throughput_bytes_per_sec, u64::MAX);
        assert!(
            job.nodes
                .iter()
                .all(|n| n.throughput_bytes_per_sec == u64::MAX)
        );
    }

    #[test]
    fn a_silent_or_dead_node_fails_and_the_rates_are_per_second() {
        let record = record(vec![
            report("a", NodeState::Done, 4_000, 2_000),
            report("b", NodeState::Running, 1_000, 1_000),
        ]);
        let nodes = NodeDirectory::from_records(Vec::new(), 0);
        let job = view(record.clone(), &nodes, 3_000);
        assert_eq!(job.nodes[0].throughput_bytes_per_sec, 2_000);
        assert_eq!(job.nodes[1].state, NodeState::Failed);
        assert_eq!(
            job.nodes[1].error.as_deref(),
            Some("node stopped heartbeating")
        );
        assert_eq!(job.state, JobState::Done);
        assert_eq!(job.finished_at_ms, Some(2_000));
        assert_eq!(job.throughput_bytes_per_sec, 5_000);
    }
}
