//! Process-wide counters, rendered as Prometheus text on `GET /metrics`.
//!
//! Plain atomics: the peer server, the peer client and the HTTP handlers bump
//! them without sharing any state. They count since the process started.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// A monotonically increasing counter.
#[derive(Debug)]
pub struct Counter(AtomicU64);

impl Counter {
    const fn new() -> Self {
        Self(AtomicU64::new(0))
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn inc(&self) {
        self.add(1);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Bytes this node sent with `sendfile()` on the peer protocol.
pub static PEER_SENDFILE_BYTES: Counter = Counter::new();
/// `sendfile()` calls that moved bytes.
pub static PEER_SENDFILE_CALLS: Counter = Counter::new();
/// Chunk bytes this node received from peers.
pub static PEER_RECEIVED_BYTES: Counter = Counter::new();
/// Peer transfers refused because the bytes did not match their CRC32C.
pub static PEER_CRC_MISMATCHES: Counter = Counter::new();
/// Requests the peer server answered (any status).
pub static PEER_REQUESTS: Counter = Counter::new();
/// Chunk bytes stored from `PUT /chunks/{chunk_id}` bodies.
pub static HTTP_PUT_BYTES: Counter = Counter::new();
/// Orphan sweeps that went through every chunk.
pub static ORPHAN_SWEEPS: Counter = Counter::new();
/// Orphan sweeps given up on (naming server unreachable or refusing).
pub static ORPHAN_SWEEPS_FAILED: Counter = Counter::new();
/// Chunks deleted because no file refers to them.
pub static ORPHAN_CHUNKS_DELETED: Counter = Counter::new();

/// The text exposition format of every counter, plus `chunks` as a gauge.
pub fn render(chunks: u64) -> String {
    let counters: [(&str, &str, &Counter); 9] = [
        (
            "dfs_peer_sendfile_bytes_total",
            "Bytes sent to peers with sendfile().",
            &PEER_SENDFILE_BYTES,
        ),
        (
            "dfs_peer_sendfile_calls_total",
            "sendfile() calls that sent bytes to peers.",
            &PEER_SENDFILE_CALLS,
        ),
        (
            "dfs_peer_received_bytes_total",
            "Chunk bytes received from peers.",
            &PEER_RECEIVED_BYTES,
        ),
        (
            "dfs_peer_crc_mismatches_total",
            "Peer transfers refused for a CRC32C mismatch.",
            &PEER_CRC_MISMATCHES,
        ),
        (
            "dfs_peer_requests_total",
            "Requests answered by the peer server.",
            &PEER_REQUESTS,
        ),
        (
            "dfs_http_put_bytes_total",
            "Chunk bytes stored from HTTP PUT bodies.",
            &HTTP_PUT_BYTES,
        ),
        (
            "dfs_orphan_sweeps_total",
            "Orphan sweeps that went through every chunk.",
            &ORPHAN_SWEEPS,
        ),
        (
            "dfs_orphan_sweeps_failed_total",
            "Orphan sweeps given up on (naming server unreachable or refusing).",
            &ORPHAN_SWEEPS_FAILED,
        ),
        (
            "dfs_orphan_chunks_deleted_total",
            "Chunks deleted because no file refers to them.",
            &ORPHAN_CHUNKS_DELETED,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_counter() {
        PEER_CRC_MISMATCHES.inc();
        let text = render(7);
        for name in [
            "dfs_peer_sendfile_bytes_total",
            "dfs_peer_sendfile_calls_total",
            "dfs_peer_received_bytes_total",
            "dfs_peer_requests_total",
            "dfs_http_put_bytes_total",
            "dfs_orphan_sweeps_total",
            "dfs_orphan_sweeps_failed_total",
            "dfs_orphan_chunks_deleted_total",
        ] {
            assert!(
                text.contains(&format!("\n{name} ")),
                "{name} missing:\n{text}"
            );
        }
        assert!(text.contains("dfs_peer_crc_mismatches_total "));
        assert!(text.contains("\ndfs_chunks 7\n"), "{text}");
        assert!(PEER_CRC_MISMATCHES.get() >= 1);
    }
}
