//! The node's metrics, rendered on `GET /metrics` in the OpenMetrics text
//! format: request latencies by route and status, bytes in and out by path
//! (HTTP, peer, GCS) with a transfer-rate histogram per received chunk,
//! peer, integrity and orphan counters, distribution jobs, and gauges of
//! the chunks and bytes stored and the disk's room.
//!
//! One [`Metrics`] value a store ([`ChunkStore::metrics`]), built with it:
//! every part of the node that bumps a counter holds the store already.
//! They count since the process started.
//!
//! [`ChunkStore::metrics`]: crate::store::ChunkStore::metrics

use std::time::Duration;

use dfs_common::metrics::{HistogramFamily, HttpMetrics, counter, gauge, rate_histogram};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// How chunk bytes came or went (label `path`: `http`, `peer`, `gcs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Path {
    /// `PUT` / `GET /chunks/{chunk_id}`.
    Http,
    /// The peer protocol (chain replication, distribution, repair).
    Peer,
    /// A seed read from Google Cloud Storage.
    Gcs,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PathLabels {
    path: &'static str,
}

impl From<Path> for PathLabels {
    fn from(path: Path) -> Self {
        let path = match path {
            Path::Http => "http",
            Path::Peer => "peer",
            Path::Gcs => "gcs",
        };
        Self { path }
    }
}

/// How a node's part in a distribution job ended (label `outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Done,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

impl From<Outcome> for OutcomeLabels {
    fn from(outcome: Outcome) -> Self {
        let outcome = match outcome {
            Outcome::Done => "done",
            Outcome::Failed => "failed",
        };
        Self { outcome }
    }
}

/// The smallest chunk send timed for the send-rate average.
const RATE_SAMPLE_MIN: u64 = 256 * 1024;
/// Weight of the newest send in the send-rate average.
const RATE_WEIGHT: f64 = 0.3;

/// Every metric of the node, and the registry that renders them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub http: HttpMetrics,
    /// Bytes this node sent with `sendfile()` on the peer protocol.
    pub peer_sendfile_bytes: Counter,
    /// `sendfile()` calls that moved bytes.
    pub peer_sendfile_calls: Counter,
    /// Chunk bytes this node read from peers (counted as they arrive).
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
    /// Chunk writes begun on this node's disk, from any source.
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
    /// Chunks found missing.
    pub chunks_missing: Counter,
    /// Distribution jobs running on this node.
    pub jobs_running: Gauge,
    jobs_finished: Family<OutcomeLabels, Counter>,
    bytes_received: Family<PathLabels, Counter>,
    bytes_sent: Family<PathLabels, Counter>,
    receive_rate: HistogramFamily<PathLabels>,
    chunks: Gauge,
    stored_bytes: Gauge,
    disk_free_bytes: Gauge,
    disk_capacity_bytes: Gauge,
    peer_send_rate: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric at zero, registered.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let http = HttpMetrics::register(&mut registry);
        let r = &mut registry;
        let peer_sendfile_bytes = counter(
            r,
            "dfs_peer_sendfile_bytes",
            "Bytes sent to peers with sendfile()",
        );
        let peer_sendfile_calls = counter(
            r,
            "dfs_peer_sendfile_calls",
            "sendfile() calls that sent bytes to peers",
        );
        let peer_received_bytes = counter(
            r,
            "dfs_peer_received_bytes",
            "Chunk bytes read from peers, as they arrive",
        );
        let peer_crc_mismatches = counter(
            r,
            "dfs_peer_crc_mismatches",
            "Peer transfers refused for a CRC32C mismatch",
        );
        let peer_requests = counter(
            r,
            "dfs_peer_requests",
            "Requests answered by the peer server",
        );
        let peer_connections = counter(
            r,
            "dfs_peer_connections",
            "Connections accepted by the peer server",
        );
        let peer_auth_failures = counter(
            r,
            "dfs_peer_auth_failures",
            "Peer connections refused for a wrong or missing handshake answer",
        );
        let http_put_bytes = counter(
            r,
            "dfs_http_put_bytes",
            "Chunk bytes stored from HTTP PUT bodies",
        );
        let http_chunk_gets = counter(
            r,
            "dfs_http_chunk_gets",
            "GET /chunks/{chunk_id} requests received",
        );
        let chunk_writes = counter(
            r,
            "dfs_chunk_writes",
            "Chunk writes begun on this node's disk (PUT, replication, distribution, repair)",
        );
        let chunk_writes_full = counter(
            r,
            "dfs_chunk_writes_full",
            "Chunk writes that failed because the disk was full",
        );
        let orphan_sweeps = counter(
            r,
            "dfs_orphan_sweeps",
            "Orphan sweeps that went through every chunk",
        );
        let orphan_sweeps_failed = counter(
            r,
            "dfs_orphan_sweeps_failed",
            "Orphan sweeps given up on (naming server unreachable or refusing)",
        );
        let orphan_chunks_deleted = counter(
            r,
            "dfs_orphan_chunks_deleted",
            "Chunks deleted because no file refers to them",
        );
        let scrub_passes = counter(
            r,
            "dfs_scrub_passes",
            "Scrub passes that re-read every chunk",
        );
        let chunks_verified = counter(
            r,
            "dfs_chunks_verified",
            "Chunks re-read against their CRC32C (scrubs and requested checks)",
        );
        let chunks_corrupt = counter(
            r,
            "dfs_chunks_corrupt",
            "Chunks found corrupt and quarantined",
        );
        let chunks_missing = counter(
            r,
            "dfs_chunks_missing",
            "Chunks found missing (a meta without its data, or asked about and not here)",
        );
        let jobs_running = gauge(
            r,
            "dfs_distribution_jobs_running",
            "Distribution jobs this node is working on",
        );
        let chunks = gauge(r, "dfs_chunks", "Chunks stored on this node");
        let stored_bytes = gauge(
            r,
            "dfs_stored_bytes",
            "Bytes of the chunks stored on this node",
        );
        let disk_free_bytes = gauge(
            r,
            "dfs_disk_free_bytes",
            "Room left on the disk of DATA_DIR",
        );
        let disk_capacity_bytes =
            gauge(r, "dfs_disk_capacity_bytes", "Size of the disk of DATA_DIR");
        let peer_send_rate = gauge(
            r,
            "dfs_peer_send_rate_bytes_per_second",
            "Moving average of the rate of this node's chunk sends to peers (0 until one)",
        );
        let jobs_finished = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "dfs_distribution_jobs_finished",
            "This node's parts in distribution jobs, by how they ended",
            jobs_finished.clone(),
        );
        let bytes_received = Family::<PathLabels, Counter>::default();
        registry.register(
            "dfs_bytes_received",
            "Chunk bytes received and stored, by path (http, peer, gcs)",
            bytes_received.clone(),
        );
        let bytes_sent = Family::<PathLabels, Counter>::default();
        registry.register(
            "dfs_bytes_sent",
            "Chunk bytes served, by path (http, peer)",
            bytes_sent.clone(),
        );
        let receive_rate = HistogramFamily::<PathLabels>::new_with_constructor(rate_histogram);
        registry.register(
            "dfs_chunk_receive_rate_bytes_per_second",
            "Rate of each chunk received, by path (peer: over the wire; http, gcs: until stored)",
            receive_rate.clone(),
        );
        // Every series exists from the start, at zero.
        for path in [Path::Http, Path::Peer, Path::Gcs] {
            let labels = PathLabels::from(path);
            drop(bytes_received.get_or_create(&labels));
            drop(receive_rate.get_or_create(&labels));
            if path != Path::Gcs {
                drop(bytes_sent.get_or_create(&labels));
            }
        }
        for outcome in [Outcome::Done, Outcome::Failed] {
            drop(jobs_finished.get_or_create(&OutcomeLabels::from(outcome)));
        }
        Self {
            registry,
            http,
            peer_sendfile_bytes,
            peer_sendfile_calls,
            peer_received_bytes,
            peer_crc_mismatches,
            peer_requests,
            peer_connections,
            peer_auth_failures,
            http_put_bytes,
            http_chunk_gets,
            chunk_writes,
            chunk_writes_full,
            orphan_sweeps,
            orphan_sweeps_failed,
            orphan_chunks_deleted,
            scrub_passes,
            chunks_verified,
            chunks_corrupt,
            chunks_missing,
            jobs_running,
            jobs_finished,
            bytes_received,
            bytes_sent,
            receive_rate,
            chunks,
            stored_bytes,
            disk_free_bytes,
            disk_capacity_bytes,
            peer_send_rate,
        }
    }

    /// A chunk of `bytes` received over `path` in `took`.
    pub fn received(&self, path: Path, bytes: u64, took: Duration) {
        let labels = PathLabels::from(path);
        self.bytes_received.get_or_create(&labels).inc_by(bytes);
        let seconds = took.as_secs_f64();
        if bytes > 0 && seconds > 0.0 {
            self.receive_rate
                .get_or_create(&labels)
                .observe(bytes as f64 / seconds);
        }
    }

    /// A chunk send of `bytes` to a peer took `took`: the moving average of
    /// send rates takes it in (sends of less than [`RATE_SAMPLE_MIN`] are
    /// too short to time).
    pub fn peer_send_took(&self, bytes: u64, took: Duration) {
        let seconds = took.as_secs_f64();
        if bytes < RATE_SAMPLE_MIN || seconds <= 0.0 {
            return;
        }
        let sample = bytes as f64 / seconds;
        let old = self.peer_send_rate.get() as f64;
        let new = if old <= 0.0 {
            sample
        } else {
            old + RATE_WEIGHT * (sample - old)
        };
        self.peer_send_rate.set(new as i64);
    }

    /// The moving average of this node's chunk send rate to peers, bytes
    /// per second; 0 until it sent one.
    pub fn peer_send_rate(&self) -> u64 {
        u64::try_from(self.peer_send_rate.get()).unwrap_or(0)
    }

    /// `bytes` of chunk data served over `path`.
    pub fn sent(&self, path: Path, bytes: u64) {
        self.bytes_sent
            .get_or_create(&PathLabels::from(path))
            .inc_by(bytes);
    }

    /// This node's part in a distribution job ended.
    pub fn job_finished(&self, outcome: Outcome) {
        self.jobs_finished
            .get_or_create(&OutcomeLabels::from(outcome))
            .inc();
    }

    /// Sets the gauges read at scrape time: chunks and bytes stored and,
    /// when it could be measured, the disk's free space and capacity (else
    /// they keep their last values).
    pub fn set_store(&self, chunks: u64, bytes: u64, disk: Option<(u64, u64)>) {
        let set = |gauge: &Gauge, value: u64| {
            gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
        };
        set(&self.chunks, chunks);
        set(&self.stored_bytes, bytes);
        if let Some((free, capacity)) = disk {
            set(&self.disk_free_bytes, free);
            set(&self.disk_capacity_bytes, capacity);
        }
    }

    /// The registry, for the exposition.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}
