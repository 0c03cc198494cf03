//! Adapting a running job: a node that falls behind its place in the chain
//! is pulled around.
//!
//! In a healthy chain every node stays a few chunks behind the node it
//! pulls from. When node `p`, pulling from the node planned above it, `u`,
//! is [`LAG_CHUNKS`] chunks behind it and receiving [`SLOW_FACTOR`] times
//! slower than its share of what `u` receives, `u` sends slowly (or `p`
//! receives slowly, which the reports cannot tell apart). `u` is bypassed:
//! every node below it pulls from the nearest node above it instead, `p`
//! from its next missing chunk (so no chunk is fetched twice), the way a
//! dead node is pulled around. A node that moved (its upstream was
//! bypassed or died) is not judged against its new upstream: that one
//! sends to several nodes now, and measured right after a move the rates
//! mislead; blaming them bypassed one healthy node after another. So a
//! node whose own downlink is slow costs its upstream a bypass and keeps
//! the nodes below it at its pace. A bypass lasts for the rest of the job,
//! so no node flaps between sources.
//!
//! [`laggards`] is a pure function of where each chain node stands and
//! which chain node it is pulling from, as its last reports say;
//! [`bypasses`] reads that from a job's record, at most once a second per
//! job ([`Schedule`]).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use dfs_common::api::NodeState;

use crate::store::{JobRecord, StoredReport};

/// How far behind its upstream (in chunks) a node may fall before one of
/// them is bypassed: well past what a healthy pipeline shows (a chunk in
/// transit, a few being committed, a second of report skew).
pub const LAG_CHUNKS: u64 = 8;
/// How many times slower than its share of its upstream's rate a node
/// must be receiving: well past the noise of rates measured on chunks
/// committed a few at a time, on machines that are busy.
pub const SLOW_FACTOR: u64 = 4;

/// Where a chain node stands, as its reports show it: `None` when it is
/// not judged (waiting, failed, silent, or it has just changed source).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// Bytes held (estimated for now).
    pub bytes: u64,
    /// Bytes/s received since it started on its current source.
    pub rate: u64,
    /// The position of that source in the chain; `None` when it is not a
    /// chain node.
    pub from: Option<usize>,
}

/// New bypasses for a chain of `chain.len()` nodes, head first, in
/// `chunk_size` chunks: `(bypassed, behind)` pairs of chain positions,
/// `behind` being the node that fell behind. `bypassed[i]`: whether
/// position `i` was bypassed before.
pub fn laggards(
    chain: &[Option<Standing>],
    bypassed: &[bool],
    chunk_size: u64,
) -> Vec<(usize, usize)> {
    let mut by = bypassed.to_vec();
    let mut new = Vec::new();
    for (p, standing) in chain.iter().enumerate() {
        let Some(Standing {
            bytes,
            rate,
            from: Some(u),
        }) = *standing
        else {
            continue;
        };
        // A node pulling from a bypassed node is about to move.
        let Some(Some(above)) = chain.get(u) else {
            continue;
        };
        if by[u] || above.bytes.saturating_sub(bytes) < LAG_CHUNKS.saturating_mul(chunk_size) {
            continue;
        }
        // `u` may be sending to several nodes, since a bypass.
        let share = above.rate / pullers(chain, u);
        if u + 1 == p && rate.saturating_mul(SLOW_FACTOR) < share {
            by[u] = true;
            new.push((u, p));
        }
    }
    new
}

/// How many chain nodes pull from position `u` (at least one).
fn pullers(chain: &[Option<Standing>], u: usize) -> u64 {
    let count = chain
        .iter()
        .filter(|standing| standing.is_some_and(|s| s.from == Some(u)))
        .count();
    u64::try_from(count).unwrap_or(u64::MAX).max(1)
}

/// A report older than this is not used to judge anyone.
const FRESH_MS: u64 = 3_000;
/// How often this process judges one job: reading every node's report is
/// O(nodes), so it is done once a second, not on every report.
const JUDGE_EVERY: Duration = Duration::from_secs(1);
/// Jobs [`Schedule`] remembers before it forgets the ones judged longest ago.
const SCHEDULED_JOBS: usize = 1024;

/// When this process last judged each job.
#[derive(Debug, Default)]
pub struct Schedule(Mutex<HashMap<String, Instant>>);

impl Schedule {
    /// Whether job `job_id` is due for judging; if so, it counts as judged now.
    pub fn due(&self, job_id: &str) -> bool {
        let mut last = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if last
            .get(job_id)
            .is_some_and(|at| now.duration_since(*at) < JUDGE_EVERY)
        {
            return false;
        }
        if last.len() >= SCHEDULED_JOBS {
            last.retain(|_, at| now.duration_since(*at) < JUDGE_EVERY);
        }
        last.insert(job_id.to_owned(), now);
        true
    }
}

/// The new bypasses for the job `record` at `now_ms`: `(bypassed, behind)`
/// node id pairs.
pub fn bypasses(record: &JobRecord, now_ms: u64) -> Vec<(String, String)> {
    let plan = &record.plan;
    let positions: HashMap<&str, usize> = plan
        .chain
        .iter()
        .enumerate()
        .map(|(i, node)| (node.node_id.as_str(), i))
        .collect();
    let position = |node_id: &str| positions.get(node_id).copied();
    let standing = |stored: &StoredReport| {
        let report = &stored.report;
        let rate = stored.source_rate()?;
        let bytes = match report.state {
            NodeState::Done => plan.size,
            NodeState::Running if now_ms.saturating_sub(stored.received_at_ms) <= FRESH_MS => {
                let age_ms = now_ms.saturating_sub(stored.received_at_ms);
                let since = u128::from(rate) * u128::from(age_ms) / 1000;
                let bytes = u128::from(report.bytes_done).saturating_add(since);
                u64::try_from(bytes).unwrap_or(u64::MAX).min(plan.size)
            }
            _ => return None,
        };
        Some(Standing {
            bytes,
            rate,
            from: report.source.as_deref().and_then(position),
        })
    };
    let chain: Vec<Option<Standing>> = plan
        .chain
        .iter()
        .map(|node| record.reports.get(&node.node_id).and_then(standing))
        .collect();
    let bypassed: Vec<bool> = plan
        .chain
        .iter()
        .map(|node| record.bypassed.contains_key(&node.node_id))
        .collect();
    laggards(&chain, &bypassed, plan.chunk_size)
        .into_iter()
        .map(|(slow, behind)| {
            (
                plan.chain[slow].node_id.clone(),
                plan.chain[behind].node_id.clone(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn head(mib: u64, mib_per_sec: u64) -> Option<Standing> {
        Some(Standing {
            bytes: mib * MIB,
            rate: mib_per_sec * MIB,
            from: None,
        })
    }

    fn from(u: usize, mib: u64, mib_per_sec: u64) -> Option<Standing> {
        Some(Standing {
            bytes: mib * MIB,
            rate: mib_per_sec * MIB,
            from: Some(u),
        })
    }

    #[test]
    fn a_healthy_pipeline_is_left_alone() {
        // Each node a few chunks behind the one above, all at one rate.
        let chain = [
            head(40, 12),
            from(0, 36, 12),
            from(1, 31, 11),
            from(2, 27, 12),
        ];
        assert!(laggards(&chain, &[false; 4], MIB).is_empty());
        // A node far behind but catching up fast (it started late).
        let chain = [head(40, 12), from(0, 10, 30)];
        assert!(laggards(&chain, &[false; 2], MIB).is_empty());
    }

    #[test]
    fn a_slow_sender_is_bypassed() {
        // Node 1 receives at full rate but sends at a tenth of it.
        let chain = [
            head(40, 12),
            from(0, 38, 12),
            from(1, 12, 1),
            from(2, 11, 1),
        ];
        assert_eq!(laggards(&chain, &[false; 4], MIB), vec![(1, 2)]);
        // Until node 2 has moved to node 0, nothing more happens.
        assert!(laggards(&chain, &[false, true, false, false], MIB).is_empty());
        // Done, node 1 still counts with the rate it last received at.
        let chain = [head(64, 12), from(0, 64, 12), from(1, 20, 1)];
        assert_eq!(laggards(&chain, &[false; 3], MIB), vec![(1, 2)]);
    }

    #[test]
    fn an_upstream_sending_to_two_nodes_is_not_blamed() {
        // Node 1 bypassed, node 2 pulls from node 0 too: node 1 gets half
        // of node 0's uplink, and that is not node 0's fault.
        let before = [false, true, false, false];
        let chain = [head(50, 12), from(0, 40, 5), from(0, 20, 6), from(2, 19, 6)];
        assert!(laggards(&chain, &before, MIB).is_empty());
        // Nor is a done node 0 that node 1 is still catching up on.
        let chain = [head(64, 12), from(0, 50, 5), from(0, 20, 6), from(2, 19, 6)];
        assert!(laggards(&chain, &before, MIB).is_empty());
    }

    #[test]
    fn a_node_that_moved_is_not_judged_against_its_new_upstream() {
        // Node 2 bypassed node 1 and pulls from node 0 now, still far
        // behind: node 0 is not to blame, nor is anyone else.
        let before = [false, true, false, false];
        let chain = [head(50, 12), from(0, 48, 6), from(0, 14, 1), from(2, 13, 1)];
        assert!(laggards(&chain, &before, MIB).is_empty());
    }

    #[test]
    fn nodes_without_a_chain_upstream_or_with_an_unknown_one_are_not_judged() {
        let chain = [None, from(0, 1, 1)];
        assert!(laggards(&chain, &[false; 2], MIB).is_empty());
        let chain = [head(60, 12), head(1, 1)];
        assert!(laggards(&chain, &[false; 2], MIB).is_empty());
        // A position past the chain (a bad report) is ignored.
        let chain = [head(60, 12), from(7, 1, 1)];
        assert!(laggards(&chain, &[false; 2], MIB).is_empty());
    }
}
