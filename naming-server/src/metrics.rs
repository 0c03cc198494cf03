//! This process's metrics (each replica has its own), in one registry
//! built at start-up and rendered on `GET /metrics`: request latencies by
//! route and status, Redis round trips and errors, file, chunk, repair and
//! distribution activity, live nodes and jobs by state.

use dfs_common::api::JobState;
use dfs_common::metrics::{HistogramFamily, HttpMetrics, counter, gauge, latency_histogram};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The Redis command (`EVALSHA`, `HGETALL`, …) or `pipeline` of a round trip.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct CommandLabels {
    pub command: String,
}

/// A job state.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct StateLabels {
    pub state: &'static str,
}

/// Round trips to Redis: how long each took, and how many failed (cheap to
/// clone; the store times every command through it).
#[derive(Debug, Clone)]
pub struct RedisMetrics {
    pub commands: HistogramFamily<CommandLabels>,
    pub errors: Counter,
    /// Writes answered before any replica acknowledged them.
    pub unreplicated_writes: Counter,
}

/// Every metric of the process, and the registry that renders them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub http: HttpMetrics,
    pub redis: RedisMetrics,
    pub files_committed: Counter,
    pub files_deleted: Counter,
    pub chunks_allocated: Counter,
    pub uploads_expired: Counter,
    pub repair_scans: Counter,
    pub repair_copies: Counter,
    pub repair_trims: Counter,
    pub bad_replicas: Counter,
    pub suspect_reports: Counter,
    pub jobs_started: Counter,
    live_nodes: Gauge,
    jobs: Family<StateLabels, Gauge>,
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
        let redis = RedisMetrics {
            commands: HistogramFamily::new_with_constructor(latency_histogram),
            errors: Counter::default(),
            unreplicated_writes: Counter::default(),
        };
        registry.register(
            "dfs_redis_command_duration_seconds",
            "Round trips to Redis by command (pipeline for several at once)",
            redis.commands.clone(),
        );
        registry.register(
            "dfs_redis_errors",
            "Redis round trips that failed (unreachable, timed out or refused)",
            redis.errors.clone(),
        );
        registry.register(
            "dfs_redis_unreplicated_writes",
            "Writes answered before a Redis replica held them (Cluster or Sentinel: \
             no replica acknowledged within REDIS_WAIT_TIMEOUT)",
            redis.unreplicated_writes.clone(),
        );
        let r = &mut registry;
        let files_committed = counter(r, "dfs_files_committed", "Files finalized");
        let files_deleted = counter(r, "dfs_files_deleted", "Files deleted");
        let chunks_allocated = counter(r, "dfs_chunks_allocated", "Chunk ids handed out");
        let uploads_expired = counter(
            r,
            "dfs_uploads_expired",
            "Pending uploads expired by this process's reaper",
        );
        let repair_scans = counter(
            r,
            "dfs_repair_scans",
            "Background scans for under-replicated chunks after a node was lost",
        );
        let repair_copies = counter(
            r,
            "dfs_repair_copies",
            "Chunk copies made to restore replication (dfs repair and background)",
        );
        let repair_trims = counter(
            r,
            "dfs_repair_trims",
            "Replicas dropped from chunks that had more than their replication factor",
        );
        let bad_replicas = counter(
            r,
            "dfs_bad_replicas",
            "Replicas their node found corrupt or missing and quarantined",
        );
        let suspect_reports = counter(
            r,
            "dfs_suspect_reports",
            "Reads that found a bad replica and asked its node to verify it",
        );
        let jobs_started = counter(
            r,
            "dfs_distribution_jobs_started",
            "Distribution and seed jobs started",
        );
        let live_nodes = gauge(
            r,
            "dfs_live_storage_nodes",
            "Storage nodes heard from within the heartbeat timeout",
        );
        let jobs = Family::<StateLabels, Gauge>::default();
        registry.register(
            "dfs_distribution_jobs",
            "The 20 most recent distribution jobs by state",
            jobs.clone(),
        );
        Self {
            registry,
            http,
            redis,
            files_committed,
            files_deleted,
            chunks_allocated,
            uploads_expired,
            repair_scans,
            repair_copies,
            repair_trims,
            bad_replicas,
            suspect_reports,
            jobs_started,
            live_nodes,
            jobs,
        }
    }

    /// Sets the gauges read from Redis at scrape time: live nodes, and the
    /// states of the recent jobs (each left as it was when unknown).
    pub fn set_cluster(&self, live_nodes: Option<usize>, jobs: Option<&[JobState]>) {
        if let Some(live) = live_nodes {
            self.live_nodes.set(i64::try_from(live).unwrap_or(i64::MAX));
        }
        if let Some(jobs) = jobs {
            for (state, name) in [
                (JobState::Running, "running"),
                (JobState::Done, "done"),
                (JobState::Failed, "failed"),
            ] {
                let count = jobs.iter().filter(|&&s| s == state).count();
                self.jobs
                    .get_or_create(&StateLabels { state: name })
                    .set(i64::try_from(count).unwrap_or(i64::MAX));
            }
        }
    }

    /// The registry, for the exposition.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}
