//! Membership with the naming server: register (retrying with backoff until
//! it answers or shutdown), then heartbeat at the interval it asks for,
//! carrying disk stats, the chunks deleted since the last beat and the bad
//! chunks found since (see `integrity`), and at once when the disk fills
//! up, so no more chunks are placed here; the reply lists chunks to delete
//! and chunks to verify. A 404 on heartbeat means the naming server forgot
//! this node: register again. Stops when the shutdown token is cancelled.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use dfs_client::{NamingClient, RetryPolicy};
use dfs_common::api::{
    HeartbeatRequest, HeartbeatResponse, NodeStats, RegisterRequest, RegisterResponse,
};
use reqwest::StatusCode;
use tokio_util::sync::CancellationToken;

use crate::integrity::Integrity;
use crate::store::{ChunkStore, StoreError};

/// Registration is retried until it succeeds or the node shuts down.
const REGISTER_RETRY: RetryPolicy =
    RetryPolicy::forever(Duration::from_millis(100), Duration::from_secs(5));
/// Heartbeat interval floor, whatever the naming server says.
const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// Why a registration or a heartbeat failed.
#[derive(Debug, thiserror::Error)]
enum CallError {
    #[error("naming server: {0}")]
    Naming(#[from] dfs_client::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How this node presents itself to the naming server.
#[derive(Debug, Clone)]
pub struct Membership {
    pub naming: NamingClient,
    pub node_id: String,
    pub url: String,
    pub tcp_addr: String,
}

impl Membership {
    /// Registers and heartbeats until `shutdown` is cancelled.
    pub async fn run(
        self,
        store: Arc<ChunkStore>,
        integrity: Arc<Integrity>,
        shutdown: CancellationToken,
    ) {
        let node = Node {
            membership: self,
            store,
            integrity,
            last_totals: Mutex::default(),
        };
        // Deleted chunk ids not yet acknowledged to the naming server.
        let mut deleted: Vec<String> = Vec::new();
        let mut full = node.store.watch_full();
        while let Some(interval) = node.register_until_done(&shutdown).await {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(interval) => {}
                    // The disk just filled up: say so now, before more
                    // chunks are placed here.
                    Ok(()) = full.changed() => {
                        tracing::info!("the disk is full; telling the naming server at once");
                    }
                }
                match node.heartbeat(&deleted).await {
                    Ok(reply) => {
                        deleted = node.delete_chunks(reply.delete).await;
                        node.integrity.request(reply.verify);
                    }
                    Err(CallError::Naming(err)) if err.status() == Some(StatusCode::NOT_FOUND) => {
                        tracing::warn!("naming server does not know this node; registering again");
                        break;
                    }
                    Err(err) => tracing::warn!(error = %err, "heartbeat failed"),
                }
            }
        }
    }
}

struct Node {
    membership: Membership,
    store: Arc<ChunkStore>,
    integrity: Arc<Integrity>,
    /// The peer byte counters at the last report, for the rates.
    last_totals: Mutex<Option<PeerTotals>>,
}

#[derive(Debug, Clone, Copy)]
struct PeerTotals {
    at: Instant,
    sent: u64,
    received: u64,
}

impl Node {
    /// Registers, retrying with backoff; the heartbeat interval to use, or
    /// `None` once shutdown was requested.
    async fn register_until_done(&self, shutdown: &CancellationToken) -> Option<Duration> {
        let registered = tokio::select! {
            () = shutdown.cancelled() => return None,
            registered = REGISTER_RETRY.retry("registration", |_| true, || self.register()) => registered,
        };
        let reply = match registered {
            Ok(reply) => reply,
            Err(err) => {
                // Only after `u32::MAX` attempts: years of an absent naming server.
                tracing::error!(error = %err, "registration given up; this node stays unregistered");
                return None;
            }
        };
        let interval = Duration::from_millis(reply.heartbeat_interval_ms).max(MIN_INTERVAL);
        tracing::info!(
            node_id = %self.membership.node_id,
            naming_url = %self.membership.naming.base_url(),
            interval_ms = interval.as_millis() as u64,
            "registered with the naming server"
        );
        self.remember_cluster(&reply.cluster_id).await;
        Some(interval)
    }

    /// Keeps the first cluster id this node registered with; says loudly
    /// when the naming server now has another one (its store was wiped or
    /// replaced), since orphan sweeps stay off until an operator decides.
    async fn remember_cluster(&self, cluster_id: &str) {
        match self.store.adopt_cluster_id(cluster_id).await {
            Ok(known) if known == cluster_id => {}
            Ok(known) => tracing::error!(
                known_cluster_id = %known,
                naming_cluster_id = %cluster_id,
                "the naming server's metadata store is not the one this node joined; \
                 orphan sweeps are off (remove DATA_DIR/cluster_id to join the new one)"
            ),
            Err(err) => tracing::warn!(error = %err, "could not keep the cluster id"),
        }
    }

    async fn stats(&self) -> Result<NodeStats, StoreError> {
        let disk = self.store.disk_stats()?;
        let (peer_send_bytes_per_sec, peer_receive_bytes_per_sec) = self.peer_rates();
        Ok(NodeStats {
            capacity_bytes: disk.capacity_bytes,
            free_bytes: disk.free_bytes,
            chunk_count: self.store.chunk_count(),
            full: disk.full,
            quarantined_chunks: self.store.quarantined_count().await?,
            peer_send_bytes_per_sec,
            peer_receive_bytes_per_sec,
            peer_send_rate_bytes_per_sec: self.store.metrics().peer_send_rate(),
        })
    }

    /// Bytes per second sent to and received from peers since the last
    /// report (0 at the first).
    fn peer_rates(&self) -> (u64, u64) {
        let metrics = self.store.metrics();
        let now = PeerTotals {
            at: Instant::now(),
            sent: metrics.peer_sendfile_bytes.get(),
            received: metrics.peer_received_bytes.get(),
        };
        let mut last = self
            .last_totals
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let before = last.replace(now);
        let Some(before) = before else {
            return (0, 0);
        };
        let secs = now.at.duration_since(before.at).as_secs_f64();
        if secs <= 0.0 {
            return (0, 0);
        }
        let per_sec = |now: u64, before: u64| (now.saturating_sub(before) as f64 / secs) as u64;
        (
            per_sec(now.sent, before.sent),
            per_sec(now.received, before.received),
        )
    }

    async fn register(&self) -> Result<RegisterResponse, CallError> {
        let m = &self.membership;
        let body = RegisterRequest {
            node_id: m.node_id.clone(),
            url: m.url.clone(),
            tcp_addr: m.tcp_addr.clone(),
            stats: self.stats().await?,
        };
        Ok(m.naming.register(&body).await?)
    }

    async fn heartbeat(&self, deleted: &[String]) -> Result<HeartbeatResponse, CallError> {
        let m = &self.membership;
        let body = HeartbeatRequest {
            stats: self.stats().await?,
            deleted: deleted.to_vec(),
            bad: self.integrity.take_found(),
        };
        let sent = m.naming.heartbeat(&m.node_id, &body).await;
        if sent.is_err() {
            self.integrity.put_back(body.bad);
        }
        Ok(sent?)
    }

    /// Deletes the chunks the naming server listed; returns the ids to
    /// acknowledge (gone now, already gone, or never valid). Ids whose
    /// deletion failed are left out so the naming server lists them again.
    async fn delete_chunks(&self, ids: Vec<String>) -> Vec<String> {
        let mut done = Vec::with_capacity(ids.len());
        for id in ids {
            match self.store.delete(&id).await {
                Ok(()) => {
                    tracing::info!(chunk_id = %id, "chunk deleted at the naming server's request");
                    done.push(id);
                }
                Err(StoreError::NotFound | StoreError::InvalidId(_)) => done.push(id),
                Err(err) => tracing::warn!(chunk_id = %id, error = %err, "could not delete chunk"),
            }
        }
        done
    }
}
