//! Pulling one job's chunks: in index order, each from the nearest live
//! source that has it.
//!
//! Sources, in order: the chain nodes above this one (nearest first; the
//! nearest is asked to wait for a chunk it is still receiving, which is
//! what pipelines the chain), then the chunk's holders outside the chain,
//! then GCS. A source that cannot be reached is dropped for the rest of the
//! job, so a node whose upstream died carries on from the next one up,
//! starting at its first missing chunk; so does a node told to pull around
//! an upstream that fell behind. A copy whose CRC32C does not match is never
//! stored: the chunk is asked of the next source.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use dfs_common::api::{ChainAssignment, ChainChunk, NodeReport, NodeState, PeerRef};
use dfs_common::auth::Token;
use dfs_common::gcs::GcsUrl;
use thiserror::Error;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::report::{Progress, Reporter};
use crate::gcs::{
    ChunkDone, ChunkSpec, DownloadOptions, GcsClient, GcsError, ObjectInfo, combine_crcs,
};
use crate::metrics::Outcome;
use crate::peer::{Expected, PeerError, Session};
use crate::store::{ChunkMeta, ChunkStore, Received, StoreError};

/// How long the nearest upstream may wait for a chunk it has not received yet.
const UPSTREAM_WAIT: Duration = Duration::from_secs(30);
/// A chunk that no source could provide for this long fails the node.
const STALL_LIMIT: Duration = Duration::from_secs(300);
/// Received chunks whose commit (fsync, rename) may run while the next
/// chunk is received.
const COMMITS_IN_FLIGHT: usize = 4;
/// Pause between two rounds over the sources when none had the chunk.
const ROUND_PAUSE: Duration = Duration::from_millis(200);

/// What every job of this node works with.
pub(super) struct Resources {
    pub(super) store: Arc<ChunkStore>,
    /// Why GCS is unusable, when it is; seeding then fails with that reason.
    pub(super) gcs: Result<Arc<GcsClient>, String>,
    pub(super) gcs_options: DownloadOptions,
    pub(super) reporter: Reporter,
    /// Answers the sources' peer challenge.
    pub(super) token: Option<Token>,
    /// Cancelled when the node shuts down; every job stops then.
    pub(super) shutdown: CancellationToken,
}

impl Resources {
    /// The GCS client, or why there is none.
    pub(super) fn gcs(&self) -> Result<&GcsClient, String> {
        self.gcs.as_deref().map_err(Clone::clone)
    }
}

#[derive(Debug, Error)]
pub enum JobError {
    /// The source itself failed: the whole job fails.
    #[error(transparent)]
    Gcs(#[from] GcsError),
    #[error("GCS is not usable on this node: {0}")]
    GcsUnavailable(String),
    #[error("object CRC32C mismatch: GCS says {expected:08x}, the chunks combine to {actual:08x}")]
    ObjectCrc { expected: u32, actual: u32 },
    #[error("chunk {index}: every source is gone (last error: {last})")]
    NoSource { index: u64, last: String },
    #[error("chunk {index}: no source provided it for {} s (last error: {last})", STALL_LIMIT.as_secs())]
    Stalled { index: u64, last: String },
    #[error("local chunk store: {0}")]
    Store(#[from] StoreError),
    #[error("the job was cancelled")]
    Cancelled,
}

impl JobError {
    /// Errors of the source itself doom every node of the job.
    pub fn is_fatal(&self) -> bool {
        matches!(self, Self::Gcs(_) | Self::ObjectCrc { .. })
    }
}

/// Works on `assignment` until done, failed or cancelled, reporting all along.
pub async fn run(resources: &Resources, assignment: ChainAssignment) {
    let job_id = assignment.job_id.clone();
    let progress = Progress::new();
    let cancel = resources.shutdown.child_token();
    let reports = tokio::spawn(resources.reporter.clone().run(
        job_id.clone(),
        assignment.node_id.clone(),
        progress.clone(),
        cancel.clone(),
    ));
    let outcome = tokio::select! {
        outcome = work(resources, &assignment, &progress) => outcome,
        () = cancel.cancelled() => Err(JobError::Cancelled),
    };
    cancel.cancel();
    if let Err(e) = reports.await {
        tracing::warn!(%job_id, error = %e, "progress reporter ended abnormally");
    }
    let metrics = resources.store.metrics();
    match &outcome {
        Ok(_) => {
            metrics.job_finished(Outcome::Done);
            tracing::info!(%job_id, chunks = progress.chunks(), "distribution done on this node")
        }
        Err(e) => {
            metrics.job_finished(Outcome::Failed);
            tracing::warn!(%job_id, error = %e, "distribution failed on this node")
        }
    }
    let report = match outcome {
        Ok(crc32c) => NodeReport {
            crc32c,
            ..progress.report(&assignment.node_id, NodeState::Done)
        },
        Err(e) => NodeReport {
            error: Some(e.to_string()),
            fatal: e.is_fatal(),
            ..progress.report(&assignment.node_id, NodeState::Failed)
        },
    };
    resources.reporter.finish(&job_id, &report).await;
}

/// Gets every chunk; returns their CRC32Cs by index for a seed (which the
/// naming server commits), nothing for an existing file.
async fn work(
    resources: &Resources,
    assignment: &ChainAssignment,
    progress: &Progress,
) -> Result<Vec<u32>, JobError> {
    let store = &resources.store;
    let seed = match &assignment.gcs {
        Some(source) => {
            let url = source
                .url
                .parse::<GcsUrl>()
                .map_err(|e| JobError::GcsUnavailable(e.to_string()))?;
            let info = ObjectInfo {
                size: source.size,
                crc32c: source.crc32c,
                generation: source.generation,
            };
            Some((url, info))
        }
        None => None,
    };
    // A seed's head reads GCS; so does a node whose whole chain above died.
    let mut from_gcs = seed.is_some() && assignment.upstream.is_empty();
    if !from_gcs {
        let mut puller = Puller {
            resources,
            assignment,
            progress,
            dead: HashSet::new(),
            sessions: HashMap::new(),
        };
        // Chunks commit (fsync, rename) while the next ones are received.
        let mut committing = VecDeque::new();
        for chunk in &assignment.chunks {
            let pulled = puller.pull(chunk).await;
            if committing.len() >= COMMITS_IN_FLIGHT
                && let Some(commit) = committing.pop_front()
            {
                progress.add(settle(commit).await?.size);
            }
            match pulled {
                Ok(Pulled::Stored(meta)) => progress.add(meta.size),
                Ok(Pulled::Received(received)) => {
                    let store = Arc::clone(store);
                    committing.push_back(tokio::spawn(async move {
                        Ok(store.commit(received).await?.1)
                    }));
                }
                Err(JobError::NoSource { .. }) if seed.is_some() => {
                    tracing::warn!(job_id = %assignment.job_id, "every node above is gone; reading the rest from GCS");
                    from_gcs = true;
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        for commit in committing {
            progress.add(settle(commit).await?.size);
        }
    }
    if let (Some((url, info)), true) = (&seed, from_gcs) {
        progress.set_source(None);
        let gcs = resources.gcs().map_err(JobError::GcsUnavailable)?;
        let specs = specs(&assignment.chunks);
        // The head counts chunks it had before; a fallback counted them already.
        let count_resumed = assignment.upstream.is_empty();
        let on_chunk = |done: ChunkDone| {
            if count_resumed || !done.resumed {
                progress.add(done.meta.size);
            }
        };
        gcs.download(url, info, &specs, store, resources.gcs_options, &on_chunk)
            .await?;
    }
    let mut metas = Vec::with_capacity(assignment.chunks.len());
    for chunk in &assignment.chunks {
        metas.push(store.meta(&chunk.chunk_id).await?);
    }
    let Some((_, info)) = seed else {
        return Ok(Vec::new());
    };
    if let Some(expected) = info.crc32c {
        let actual = combine_crcs(metas.iter().copied());
        if actual != expected {
            return Err(JobError::ObjectCrc { expected, actual });
        }
    }
    Ok(metas.iter().map(|m| m.crc32c).collect())
}

/// The GCS byte ranges of a file's chunks (all but the last are full size).
fn specs(chunks: &[ChainChunk]) -> Vec<ChunkSpec> {
    let chunk_size = chunks.first().map_or(0, |c| c.size);
    chunks
        .iter()
        .map(|c| ChunkSpec {
            chunk_id: c.chunk_id.clone(),
            index: c.index,
            offset: c.index * chunk_size,
            size: c.size,
        })
        .collect()
}

/// The meta of a committed chunk, once its commit finished.
async fn settle(commit: JoinHandle<Result<ChunkMeta, StoreError>>) -> Result<ChunkMeta, JobError> {
    match commit.await {
        Ok(committed) => Ok(committed?),
        Err(e) => Err(JobError::Store(StoreError::Io {
            context: "committing a received chunk".into(),
            source: std::io::Error::other(e),
        })),
    }
}

/// What [`Puller::pull`] got.
enum Pulled {
    /// The chunk was stored here already.
    Stored(ChunkMeta),
    /// Received and checked; to be committed.
    Received(Received),
}

struct Puller<'a> {
    resources: &'a Resources,
    assignment: &'a ChainAssignment,
    /// Where each chunk came from is told here; so are the nodes the
    /// naming server says to pull around.
    progress: &'a Progress,
    /// Sources that could not be reached: skipped for the rest of the job.
    dead: HashSet<String>,
    /// Open connections, by node id, kept for the next chunks.
    sessions: HashMap<String, Session>,
}

impl Puller<'_> {
    /// Gets one chunk: stored already, or received and checked.
    async fn pull(&mut self, chunk: &ChainChunk) -> Result<Pulled, JobError> {
        let store = &self.resources.store;
        let expected = Expected {
            size: Some(chunk.size),
            crc32c: chunk.crc32c,
        };
        match store.meta(&chunk.chunk_id).await {
            Ok(meta) if expected.accepts(meta) => return Ok(Pulled::Stored(meta)),
            Ok(_) | Err(StoreError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
        let started = Instant::now();
        let mut last = String::from("no source tried yet");
        loop {
            let upstream: Vec<&PeerRef> = self
                .assignment
                .upstream
                .iter()
                .filter(|p| !self.dead.contains(&p.node_id) && !self.progress.bypassed(&p.node_id))
                .collect();
            // The nearest live upstream may wait for the chunk; the others
            // are asked only if they hold it already. Holders and GCS serve
            // only once the whole chain above is gone.
            let mut sources: Vec<(&PeerRef, Duration)> = upstream
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    (
                        *p,
                        if i == 0 {
                            UPSTREAM_WAIT
                        } else {
                            Duration::ZERO
                        },
                    )
                })
                .collect();
            if upstream.is_empty() {
                sources.extend(
                    chunk
                        .holders
                        .iter()
                        .filter(|p| !self.dead.contains(&p.node_id))
                        .map(|p| (p, Duration::ZERO)),
                );
            }
            for (source, wait) in sources {
                match self.receive(source, chunk, expected, wait).await {
                    Ok(received) => {
                        self.progress.set_source(Some(&source.node_id));
                        return Ok(Pulled::Received(received));
                    }
                    Err(e @ (PeerError::Connect { .. } | PeerError::ConnectionLost { .. })) => {
                        tracing::warn!(node = %source.node_id, error = %e, "source unreachable; moving up the chain");
                        self.dead.insert(source.node_id.clone());
                        last = e.to_string();
                    }
                    Err(PeerError::Store(e)) => return Err(e.into()),
                    Err(e) => {
                        tracing::info!(node = %source.node_id, chunk = chunk.index, error = %e, "source could not provide the chunk");
                        last = e.to_string();
                    }
                }
            }
            if upstream.is_empty() {
                let holders_left = chunk
                    .holders
                    .iter()
                    .any(|p| !self.dead.contains(&p.node_id));
                if !holders_left {
                    return Err(JobError::NoSource {
                        index: chunk.index,
                        last,
                    });
                }
            }
            if started.elapsed() > STALL_LIMIT {
                return Err(JobError::Stalled {
                    index: chunk.index,
                    last,
                });
            }
            tokio::time::sleep(ROUND_PAUSE).await;
        }
    }

    /// Receives `chunk` from `source` over the connection kept for it, or
    /// a new one. A kept connection the source closed while idle is
    /// replaced once before the source counts as gone.
    async fn receive(
        &mut self,
        source: &PeerRef,
        chunk: &ChainChunk,
        expected: Expected,
        wait: Duration,
    ) -> Result<Received, PeerError> {
        let store = &self.resources.store;
        loop {
            let mut session = match self.sessions.remove(&source.node_id) {
                Some(session) => session,
                None => Session::open(&source.tcp_addr, self.resources.token.as_ref()).await?,
            };
            let reused = session.is_used();
            match session
                .receive(&chunk.chunk_id, expected, wait, store)
                .await
            {
                Ok(received) => {
                    self.sessions.insert(source.node_id.clone(), session);
                    return Ok(received);
                }
                Err(e @ PeerError::NotFound { .. }) => {
                    self.sessions.insert(source.node_id.clone(), session);
                    return Err(e);
                }
                Err(PeerError::ConnectionLost { .. }) if reused => {}
                Err(e) => return Err(e),
            }
        }
    }
}
