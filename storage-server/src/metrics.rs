//! The node's counters, rendered as Prometheus text on `GET /metrics`.
//!
//! Plain atomics in one [`Metrics`] value: the peer server, the peer client,
//! the orphan sweeps and the HTTP handlers bump the process-wide [`METRICS`]
//! without sharing any other state. They count since the process started.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// A monotonically increasing counter.
#[derive(Debug)]
pub struct Counter(AtomicU64);

impl Counter {
    const fn new() -> Self {
        Self(AtomicU64::new(0))
    }

    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }

    /// The count so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Every counter of the node.
#[derive(Debug)]
pub struct Metrics {
    /// Bytes this node sent with `sendfile()` on the peer protocol.
    pub peer_sendfile_bytes: Counter,
    /// `sendfile()` calls that moved bytes.
    pub peer_sendfile_calls: Counter,
    /// Chunk bytes this node received from peers.
    pub peer_received_bytes: Counter,
    /// Peer transfers refused because the bytes did not match their CRC32C.
    pub peer_crc_mismatches: Counter,
    /// Requests the peer server answered (any status).
    pub peer_requests: Counter,
    /// Peer connections accepted.
    pub peer_connections: Counter,
    /// Peer connections refused for a wrong or missing handshake answer.
    pub peer_auth_failures: Counter,
    /// Chunk bytes stored from `PUT /chunks/{chunk_id}` bodies.
    pub http_put_bytes: Counter,
    /// `GET /chunks/{chunk_id}` requests received (any outcome).
    pub http_chunk_gets: Counter,
    /// Chunk writes begun on this node's disk, from any source (PUT, chain
    /// replication, distribution, repair).
    pub chunk_writes: Counter,
    /// Chunk writes that failed because the disk was full.
    pub chunk_writes_full: Counter,
    /// Orphan sweeps that went through every chunk.
    pub orphan_sweeps: Counter,
    /// Orphan sweeps given up on (naming server unreachable or refusing).
    pub orphan_sweeps_failed: Counter,
    /// Chunks deleted because no file refers to them.
    pub orphan_chunks_deleted: Counter,
    /// Scrub passes that went through every chunk.
    pub scrub_passes: Counter,
    /// Chunks re-read against their CRC32C (by scrubs and requested checks).
    pub chunks_verified: Counter,
    /// Chunks found corrupt and quarantined.
    pub chunks_corrupt: Counter,
    /// Chunks found missing (a meta without its data, or asked about and
    /// not here).
    pub chunks_missing: Counter,
}

/// The counters the whole process bumps and `GET /metrics` shows.
pub static METRICS: Metrics = Metrics::new();

impl Metrics {
    /// Every counter at zero.
    pub const fn new() -> Self {
        Self {
            peer_sendfile_bytes: Counter::new(),
            peer_sendfile_calls: Counter::new(),
            peer_received_bytes: Counter::new(),
            peer_crc_mismatches: Counter::new(),
            peer_requests: Counter::new(),
            peer_connections: Counter::new(),
            peer_auth_failures: Counter::new(),
            http_put_bytes: Counter::new(),
            http_chunk_gets: Counter::new(),
            chunk_writes: Counter::new(),
            chunk_writes_full: Counter::new(),
            orphan_sweeps: Counter::new(),
            orphan_sweeps_failed: Counter::new(),
            orphan_chunks_deleted: Counter::new(),
            scrub_passes: Counter::new(),
            chunks_verified: Counter::new(),
            chunks_corrupt: Counter::new(),
            chunks_missing: Counter::new(),
        }
    }

    /// The text exposition format of every counter, plus `chunks` as a gauge.
    pub fn render(&self, chunks: u64) -> String {
        let counters: [(&str, &str, &Counter); 18] = [
            (
                "dfs_peer_sendfile_bytes_total",
                "Bytes sent to peers with sendfile().",
                &self.peer_sendfile_bytes,
            ),
            (
                "dfs_peer_sendfile_calls_total",
                "sendfile() calls that sent bytes to peers.",
                &self.peer_sendfile_calls,
            ),
            (
                "dfs_peer_received_bytes_total",
                "Chunk bytes received from peers.",
                &self.peer_received_bytes,
            ),
            (
                "dfs_peer_crc_mismatches_total",
                "Peer transfers refused for a CRC32C mismatch.",
                &self.peer_crc_mismatches,
            ),
            (
                "dfs_peer_requests_total",
                "Requests answered by the peer server.",
                &self.peer_requests,
            ),
            (
                "dfs_peer_connections_total",
                "Connections accepted by the peer server.",
                &self.peer_connections,
            ),
            (
                "dfs_peer_auth_failures_total",
                "Peer connections refused for a wrong or missing handshake answer.",
                &self.peer_auth_failures,
            ),
            (
                "dfs_http_put_bytes_total",
                "Chunk bytes stored from HTTP PUT bodies.",
                &self.http_put_bytes,
            ),
            (
                "dfs_http_chunk_gets_total",
                "GET /chunks/{chunk_id} requests received.",
                &self.http_chunk_gets,
            ),
            (
                "dfs_chunk_writes_total",
                "Chunk writes begun on this node's disk (PUT, replication, distribution, repair).",
                &self.chunk_writes,
            ),
            (
                "dfs_chunk_writes_full_total",
                "Chunk writes that failed because the disk was full.",
                &self.chunk_writes_full,
            ),
            (
                "dfs_orphan_sweeps_total",
                "Orphan sweeps that went through every chunk.",
                &self.orphan_sweeps,
            ),
            (
                "dfs_orphan_sweeps_failed_total",
                "Orphan sweeps given up on (naming server unreachable or refusing).",
                &self.orphan_sweeps_failed,
            ),
            (
                "dfs_orphan_chunks_deleted_total",
                "Chunks deleted because no file refers to them.",
                &self.orphan_chunks_deleted,
            ),
            (
                "dfs_scrub_passes_total",
                "Scrub passes that re-read every chunk.",
                &self.scrub_passes,
            ),
            (
                "dfs_chunks_verified_total",
                "Chunks re-read against their CRC32C (scrubs and requested checks).",
                &self.chunks_verified,
            ),
            (
                "dfs_chunks_corrupt_total",
                "Chunks found corrupt and quarantined.",
                &self.chunks_corrupt,
            ),
            (
                "dfs_chunks_missing_total",
                "Chunks found missing (a meta without its data, or asked about and not here).",
                &self.chunks_missing,
            ),
        ];
        let mut out = String::new();
        for (name, help, counter) in counters {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", counter.get());
        }
        out.push_str("# HELP dfs_chunks Chunks stored on this node.\n");
        out.push_str("# TYPE dfs_chunks gauge\n");
        let _ = writeln!(out, "dfs_chunks {chunks}");
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_each_counter_with_its_own_value() {
        let metrics = Metrics::new();
        let counters = [
            (
                &metrics.peer_sendfile_bytes,
                "dfs_peer_sendfile_bytes_total",
            ),
            (
                &metrics.peer_sendfile_calls,
                "dfs_peer_sendfile_calls_total",
            ),
            (
                &metrics.peer_received_bytes,
                "dfs_peer_received_bytes_total",
            ),
            (
                &metrics.peer_crc_mismatches,
                "dfs_peer_crc_mismatches_total",
            ),
            (&metrics.peer_requests, "dfs_peer_requests_total"),
            (&metrics.peer_connections, "dfs_peer_connections_total"),
            (&metrics.peer_auth_failures, "dfs_peer_auth_failures_total"),
            (&metrics.http_put_bytes, "dfs_http_put_bytes_total"),
            (&metrics.http_chunk_gets, "dfs_http_chunk_gets_total"),
            (&metrics.chunk_writes, "dfs_chunk_writes_total"),
            (&metrics.chunk_writes_full, "dfs_chunk_writes_full_total"),
            (&metrics.orphan_sweeps, "dfs_orphan_sweeps_total"),
            (
                &metrics.orphan_sweeps_failed,
                "dfs_orphan_sweeps_failed_total",
            ),
            (
                &metrics.orphan_chunks_deleted,
                "dfs_orphan_chunks_deleted_total",
            ),
            (&metrics.scrub_passes, "dfs_scrub_passes_total"),
            (&metrics.chunks_verified, "dfs_chunks_verified_total"),
            (&metrics.chunks_corrupt, "dfs_chunks_corrupt_total"),
            (&metrics.chunks_missing, "dfs_chunks_missing_total"),
        ];
        // Counter i gets 100 + i, through both `add` and `inc`.
        for (i, (counter, _)) in counters.iter().enumerate() {
            counter.add(99 + i as u64);
            counter.inc();
        }
        let text = metrics.render(7);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3 * (counters.len() + 1), "{text}");
        for (i, (_, name)) in counters.iter().enumerate() {
            assert_eq!(lines[3 * i + 1], format!("# TYPE {name} counter"), "{text}");
            assert_eq!(lines[3 * i + 2], format!("{name} {}", 100 + i), "{text}");
            assert!(
                lines[3 * i].starts_with(&format!("# HELP {name} ")),
                "{text}"
            );
        }
        assert_eq!(
            lines[3 * counters.len()..],
            [
                "# HELP dfs_chunks Chunks stored on this node.",
                "# TYPE dfs_chunks gauge",
                "dfs_chunks 7",
            ],
            "{text}"
        );
    }
}
