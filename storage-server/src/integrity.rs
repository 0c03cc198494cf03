//! Finding the chunks this node can no longer serve. Every stored chunk
//! was checked against its CRC32C when it was written, but disks rot and
//! files get deleted by hand; nothing else would notice.
//!
//! - The scrubber ([`Integrity::run`]) re-reads every chunk against its
//!   meta, one full pass every `SCRUB_INTERVAL` (start to start, the last
//!   start kept in `DATA_DIR/scrub_started` so restarts keep the pace), at
//!   most `SCRUB_BANDWIDTH` so it never starves client traffic.
//! - The naming server may ask, with a heartbeat reply, for particular
//!   chunks a reader found bad ([`Integrity::request`]); they are checked
//!   at once, at the same rate cap.
//!
//! A chunk that fails is moved to quarantine (never served again) and kept
//! in [`Integrity::take_found`] for the next heartbeat, which tells the
//! naming server; it has the chunk re-replicated from a good copy and
//! then asks for the quarantined one to be deleted.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use dfs_common::api::{BadChunk, ChunkProblem};
use dfs_common::now_ms;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::store::{ChunkStore, StoreError, Verdict};
use crate::throttle::Throttle;

/// The note in `DATA_DIR` holding when the last scrub pass started (Unix ms).
const SCRUB_STARTED: &str = "scrub_started";

/// This node's integrity checks.
#[derive(Debug)]
pub struct Integrity {
    store: Arc<ChunkStore>,
    /// `SCRUB_BANDWIDTH`: every byte re-read passes it.
    throttle: Throttle,
    /// Bad chunks not yet told to the naming server.
    found: Mutex<Vec<BadChunk>>,
    requests: mpsc::UnboundedSender<String>,
    requested: Mutex<Option<mpsc::UnboundedReceiver<String>>>,
}

impl Integrity {
    /// Checks of `store` at most `bytes_per_sec` fast (unlimited: `None`).
    pub fn new(store: Arc<ChunkStore>, bytes_per_sec: Option<u64>) -> Self {
        let (requests, requested) = mpsc::unbounded_channel();
        Self {
            store,
            throttle: Throttle::new(bytes_per_sec),
            found: Mutex::new(Vec::new()),
            requests,
            requested: Mutex::new(Some(requested)),
        }
    }

    /// Asks for `chunk_ids` to be checked soon (the naming server suspects
    /// them). A chunk this node does not hold at all counts as missing.
    pub fn request(&self, chunk_ids: Vec<String>) {
        for id in chunk_ids {
            // The receiver lives as long as `run`; after shutdown there is
            // nobody left to check anyway.
            let _ = self.requests.send(id);
        }
    }

    /// The bad chunks found since the last call, to report.
    pub fn take_found(&self) -> Vec<BadChunk> {
        std::mem::take(&mut *self.found.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Puts back bad chunks whose report did not reach the naming server.
    pub fn put_back(&self, bad: Vec<BadChunk>) {
        self.found
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(bad);
    }

    /// Re-reads chunk `id`; quarantines and records it when it is bad. When
    /// `held` (the naming server says this node holds it), a chunk that is
    /// not here at all is missing too.
    async fn check(&self, id: &str, held: bool) -> Result<Option<ChunkProblem>, StoreError> {
        self.store.metrics().chunks_verified.inc();
        let problem = match self.store.verify(id, &self.throttle).await? {
            Verdict::Sound => return Ok(None),
            Verdict::Absent if !held => return Ok(None),
            Verdict::Corrupt => ChunkProblem::Corrupt,
            Verdict::Missing | Verdict::Absent => ChunkProblem::Missing,
        };
        self.store.quarantine(id).await?;
        let metrics = self.store.metrics();
        match problem {
            ChunkProblem::Corrupt => metrics.chunks_corrupt.inc(),
            ChunkProblem::Missing => metrics.chunks_missing.inc(),
        };
        tracing::warn!(chunk_id = id, %problem, "bad chunk quarantined");
        self.put_back(vec![BadChunk {
            chunk_id: id.to_owned(),
            problem,
        }]);
        Ok(Some(problem))
    }

    /// Scrubs every `interval` (start to start) and checks requested chunks
    /// as they come, until `shutdown`.
    pub async fn run(self: Arc<Self>, interval: Duration, shutdown: CancellationToken) {
        let requested = self
            .requested
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let checks = requested.map(|requested| {
            let this = self.clone();
            tokio::spawn(this.serve_requests(requested, shutdown.clone()))
        });
        self.scrub_forever(interval, &shutdown).await;
        if let Some(checks) = checks
            && let Err(error) = checks.await
        {
            tracing::warn!(%error, "requested checks ended abnormally");
        }
    }

    async fn serve_requests(
        self: Arc<Self>,
        mut requested: mpsc::UnboundedReceiver<String>,
        shutdown: CancellationToken,
    ) {
        loop {
            let id = tokio::select! {
                () = shutdown.cancelled() => return,
                id = requested.recv() => match id {
                    Some(id) => id,
                    None => return,
                },
            };
            match self.check(&id, true).await {
                Ok(None) => tracing::info!(chunk_id = %id, "suspect chunk checked: sound"),
                Ok(Some(_)) => {}
                Err(error) => tracing::warn!(chunk_id = %id, %error, "could not check a chunk"),
            }
        }
    }

    async fn scrub_forever(&self, interval: Duration, shutdown: &CancellationToken) {
        loop {
            let wait = match self.next_pass(interval).await {
                Ok(wait) => wait,
                Err(error) => {
                    tracing::warn!(%error, "cannot read when the last scrub started");
                    interval
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            let started = now_ms();
            if let Err(error) = self
                .store
                .set_note(SCRUB_STARTED, &started.to_string())
                .await
            {
                tracing::warn!(%error, "cannot record the scrub's start");
            }
            match self.pass(shutdown).await {
                Ok(Some(checked)) => {
                    self.store.metrics().scrub_passes.inc();
                    tracing::info!(
                        checked,
                        seconds = now_ms().saturating_sub(started) / 1000,
                        "scrub pass done"
                    );
                }
                Ok(None) => return,
                Err(error) => tracing::warn!(%error, "scrub pass failed; next one on schedule"),
            }
        }
    }

    /// How long until the next pass is due.
    async fn next_pass(&self, interval: Duration) -> Result<Duration, StoreError> {
        let last = self.store.note(SCRUB_STARTED).await?;
        let Some(last) = last.and_then(|text| text.parse::<u64>().ok()) else {
            return Ok(Duration::ZERO);
        };
        let due = last.saturating_add(u64::try_from(interval.as_millis()).unwrap_or(u64::MAX));
        Ok(Duration::from_millis(due.saturating_sub(now_ms())))
    }

    /// One pass over every chunk, then the quarantine's old entries go;
    /// how many chunks it checked, or `None` when cut short by shutdown.
    async fn pass(&self, shutdown: &CancellationToken) -> Result<Option<u64>, StoreError> {
        let mut checked = 0;
        for shard in 0..=u8::MAX {
            for id in self.store.ids_in_shard(shard).await? {
                if shutdown.is_cancelled() {
                    return Ok(None);
                }
                self.check(&id, false).await?;
                checked += 1;
            }
        }
        let purged = self.store.purge_quarantine().await?;
        if purged > 0 {
            tracing::info!(purged, "old quarantined chunks deleted");
        }
        Ok(Some(checked))
    }
}
