//! Membership with the naming server: register (retrying with backoff until
//! it answers), then heartbeat at the interval it asks for, carrying disk
//! stats and the chunks deleted since the last beat. A 404 on heartbeat means
//! the naming server forgot this node: register again. Stops when the
//! shutdown token is cancelled.

use std::sync::Arc;
use std::time::Duration;

use dfs_common::api::{
    HeartbeatRequest, HeartbeatResponse, NodeStats, RegisterRequest, RegisterResponse,
};
use reqwest::StatusCode;
use tokio_util::sync::CancellationToken;

use crate::store::{ChunkStore, StoreError};

/// First wait after a failed registration; doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Heartbeat interval floor, whatever the naming server says.
const MIN_INTERVAL: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
enum CallError {
    #[error("naming server unreachable: {}", error_chain(.0))]
    Http(#[from] reqwest::Error),
    #[error("naming server answered {status}: {body}")]
    Status { status: StatusCode, body: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An error and its sources, `: `-separated (reqwest hides the cause).
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// How this node presents itself to the naming server.
#[derive(Debug, Clone)]
pub struct Membership {
    pub naming_url: String,
    pub token: Option<String>,
    pub node_id: String,
    pub url: String,
    pub tcp_addr: String,
}

impl Membership {
    /// Registers and heartbeats until `shutdown` is cancelled.
    pub async fn run(self, store: Arc<ChunkStore>, shutdown: CancellationToken) {
        let client = match reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(10))
            .build()
        {
            Ok(client) => client,
            Err(err) => {
                tracing::error!(error = %err, "cannot build HTTP client; not registering");
                return;
            }
        };
        let node = Node {
            membership: self,
            client,
            store,
        };
        // Deleted chunk ids not yet acknowledged to the naming server.
        let mut deleted: Vec<String> = Vec::new();
        while let Some(interval) = node.register_until_done(&shutdown).await {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(interval) => {}
                }
                match node.heartbeat(&deleted).await {
                    Ok(reply) => {
                        deleted = node.delete_chunks(reply.delete).await;
                    }
                    Err(CallError::Status {
                        status: StatusCode::NOT_FOUND,
                        ..
                    }) => {
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
    client: reqwest::Client,
    store: Arc<ChunkStore>,
}

impl Node {
    /// Registers, retrying with backoff; the heartbeat interval to use, or
    /// `None` once shutdown was requested.
    async fn register_until_done(&self, shutdown: &CancellationToken) -> Option<Duration> {
        let mut backoff = MIN_BACKOFF;
        let mut attempt: u64 = 0;
        loop {
            attempt += 1;
            match self.register().await {
                Ok(reply) => {
                    let interval =
                        Duration::from_millis(reply.heartbeat_interval_ms).max(MIN_INTERVAL);
                    tracing::info!(
                        node_id = %self.membership.node_id,
                        naming_url = %self.membership.naming_url,
                        interval_ms = interval.as_millis() as u64,
                        "registered with the naming server"
                    );
                    return Some(interval);
                }
                Err(err) => {
                    tracing::warn!(attempt, retry_in_ms = backoff.as_millis() as u64, error = %err,
                        "registration failed");
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return None,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    fn stats(&self) -> Result<NodeStats, StoreError> {
        let (capacity_bytes, free_bytes) = self.store.disk_stats()?;
        Ok(NodeStats {
            capacity_bytes,
            free_bytes,
            chunk_count: self.store.chunk_count(),
        })
    }

    async fn register(&self) -> Result<RegisterResponse, CallError> {
        let m = &self.membership;
        let body = RegisterRequest {
            node_id: m.node_id.clone(),
            url: m.url.clone(),
            tcp_addr: m.tcp_addr.clone(),
            stats: self.stats()?,
        };
        self.post(&format!("{}/register_storage", m.naming_url), &body)
            .await
    }

    async fn heartbeat(&self, deleted: &[String]) -> Result<HeartbeatResponse, CallError> {
        let m = &self.membership;
        let body = HeartbeatRequest {
            stats: self.stats()?,
            deleted: deleted.to_vec(),
        };
        let url = format!("{}/nodes/{}/heartbeat", m.naming_url, m.node_id);
        self.post(&url, &body).await
    }

    async fn post<B, R>(&self, url: &str, body: &B) -> Result<R, CallError>
    where
        B: serde::Serialize,
        R: serde::de::DeserializeOwned,
    {
        let mut request = self.client.post(url).json(body);
        if let Some(token) = &self.membership.token {
            request = request.header(reqwest::header::AUTHORIZATION, dfs_common::bearer(token));
        }
        let response = request.send().await?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(CallError::Status { status, body });
        }
        Ok(response.json().await?)
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
