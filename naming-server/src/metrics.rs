//! Prometheus counters of this process, rendered as text on `GET /metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters since this process started (each replica has its own).
#[derive(Debug, Default)]
pub struct Metrics {
    /// (method, route template, status) → requests.
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    pub files_committed: AtomicU64,
    pub files_deleted: AtomicU64,
    pub chunks_allocated: AtomicU64,
    pub uploads_expired: AtomicU64,
    pub repair_scans: AtomicU64,
    pub repair_copies: AtomicU64,
    pub repair_trims: AtomicU64,
    pub bad_replicas: AtomicU64,
    pub suspect_reports: AtomicU64,
}

impl Metrics {
    /// Counts one response to `method` `route` with `status`.
    pub fn record(&self, method: &str, route: &str, status: u16) {
        let mut requests = self
            .requests
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *requests
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default() += 1;
    }

    /// The text exposition format; `live_nodes` is left out when unknown.
    pub fn render(&self, live_nodes: Option<usize>) -> String {
        let mut out = String::new();
        out.push_str("# HELP dfs_http_requests_total HTTP requests by method, route and status.\n");
        out.push_str("# TYPE dfs_http_requests_total counter\n");
        {
            let requests = self
                .requests
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            for ((method, route, status), count) in requests.iter() {
                let _ = writeln!(
                    out,
                    "dfs_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {count}",
                    route.replace('\\', "\\\\").replace('"', "\\\"")
                );
            }
        }
        let counters = [
            (
                "dfs_files_committed_total",
                "Files finalized.",
                &self.files_committed,
            ),
            (
                "dfs_files_deleted_total",
                "Files deleted.",
                &self.files_deleted,
            ),
            (
                "dfs_chunks_allocated_total",
                "Chunk ids handed out.",
                &self.chunks_allocated,
            ),
            (
                "dfs_uploads_expired_total",
                "Pending uploads expired by this process's reaper.",
                &self.uploads_expired,
            ),
            (
                "dfs_repair_scans_total",
                "Background scans for under-replicated chunks after a node was lost.",
                &self.repair_scans,
            ),
            (
                "dfs_repair_copies_total",
                "Chunk copies made to restore replication (dfs repair and background).",
                &self.repair_copies,
            ),
            (
                "dfs_repair_trims_total",
                "Replicas dropped from chunks that had more than their replication factor.",
                &self.repair_trims,
            ),
            (
                "dfs_bad_replicas_total",
                "Replicas their node found corrupt or missing and quarantined.",
                &self.bad_replicas,
            ),
            (
                "dfs_suspect_reports_total",
                "Reads that found a bad replica and asked its node to verify it.",
                &self.suspect_reports,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
        if let Some(live) = live_nodes {
            out.push_str("# HELP dfs_live_storage_nodes Storage nodes heard from within the heartbeat timeout.\n");
            let _ = writeln!(
                out,
                "# TYPE dfs_live_storage_nodes gauge\ndfs_live_storage_nodes {live}"
            );
        }
        out
    }
}
