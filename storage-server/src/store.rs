//! The chunk store: chunks as plain files under `DATA_DIR`.
//!
//! Layout (all under `DATA_DIR`):
//!
//! ```text
//! node_id                      this node's id (32 hex digits), written once
//! cluster_id                   id of the metadata store this node first joined
//! tmp/                         uploads in progress; emptied on start
//! chunks/AB/CD/ID              the chunk's bytes
//! chunks/AB/CD/ID.meta         {"size":N,"crc32c":C}
//! quarantine/ID, ID.meta       chunks found corrupt or missing, never served
//! ```
//!
//! where `ABCD…` is `format!("{:08x}", crc32c(ID))` ([`dfs_common::layout`],
//! which `dfs` reads too). Ids are checked with
//! [`dfs_common::validate::chunk_id`] before any path is built from them, so
//! nothing outside `DATA_DIR` is ever touched.
//!
//! Invariants:
//! - A chunk exists when its data file exists and its `.meta` parses and
//!   agrees with the file's length. Anything else is treated as absent.
//! - Only verified bytes reach `chunks/`: a write streams into `tmp/`, checks
//!   size and CRC32C, fsyncs, then renames the meta and the data into place
//!   (meta first) and fsyncs the directory.
//! - Writes and deletes of one id are serialized by a striped lock, so
//!   concurrent uploads of one id never mix one's meta with another's data.
//! - Every commit bumps a watch channel, so [`ChunkStore::wait_for`] can wait
//!   for a chunk that is still on its way (pipelined peer transfers).

mod cached;
mod check;
mod dirs;
mod error;
mod quarantine;
mod read;
mod space;
mod temp;
mod write;

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use dfs_common::layout;
use serde::{Deserialize, Serialize};
use tokio::fs::{self, File};
use tokio::sync::{Mutex, watch};

pub use cached::CACHED_READ_MAX;
use cached::CachedReads;
pub use check::Verdict;
use dirs::{chunk_ids_modified_before, clean_dir, count_chunks, ids_in, sync_dir};
use error::IoContext;
pub use error::StoreError;
use read::MetaCache;
use space::Space;
pub use space::{DiskStats, ROOM_AGAIN};
pub use write::Received;

use crate::metrics::Metrics;
use crate::throttle::Throttle;

/// Number of stripes in the per-id lock.
const LOCK_STRIPES: usize = 64;

/// What the store knows about a stored chunk (the `.meta` sidecar).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkMeta {
    /// Length in bytes.
    pub size: u64,
    /// CRC32C (Castagnoli) of the bytes, checked when they were written.
    pub crc32c: u32,
}

/// Result of a successful [`ChunkStore::write`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The chunk was new and is now stored.
    Created,
    /// The same chunk (same id, same CRC32C) was already stored.
    AlreadyPresent,
}

/// Chunks on local disk. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct ChunkStore {
    root: PathBuf,
    chunks: PathBuf,
    tmp: PathBuf,
    quarantine: PathBuf,
    count: AtomicU64,
    /// Bytes of the chunks stored.
    bytes: AtomicU64,
    locks: Vec<Mutex<()>>,
    /// Bumped after every commit; [`ChunkStore::wait_for`] re-checks on change.
    commits: watch::Sender<u64>,
    /// Room on the disk; full after a write ran out of it.
    space: Space,
    /// Metas of chunks read lately, so reads parse no `.meta` file.
    metas: Arc<MetaCache>,
    /// Whether small reads may be tried without blocking (`cached.rs`).
    cached_reads: CachedReads,
    /// The node's metrics, which every part of it reaches through its store.
    metrics: Arc<Metrics>,
}

impl ChunkStore {
    /// Opens (creating when needed) the store in `root`, deletes leftovers
    /// of interrupted uploads from `tmp/` and counts the stored chunks.
    pub async fn open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        let chunks = root.join(layout::CHUNKS_DIR);
        let tmp = root.join("tmp");
        let quarantine = root.join("quarantine");
        for dir in [&chunks, &tmp, &quarantine] {
            fs::create_dir_all(dir)
                .await
                .context(|| format!("creating {}", dir.display()))?;
        }
        let removed = clean_dir(&tmp).await?;
        if removed > 0 {
            tracing::info!(removed, "removed leftovers of interrupted uploads");
        }
        let (count, bytes) = count_chunks(&chunks).await?;
        Ok(Self {
            space: Space::new(&root),
            root,
            chunks,
            tmp,
            quarantine,
            count: AtomicU64::new(count),
            bytes: AtomicU64::new(bytes),
            locks: (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
            commits: watch::Sender::new(0),
            metas: Arc::new(MetaCache::new()),
            cached_reads: CachedReads::new(),
            metrics: Arc::default(),
        })
    }

    /// The data directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// This node's id, read from `DATA_DIR/node_id`, generated (uuid v4,
    /// 32 hex digits) and saved on first start.
    pub async fn node_id(&self) -> Result<String, StoreError> {
        let path = self.root.join(layout::NODE_ID_FILE);
        match fs::read_to_string(&path).await {
            Ok(text) => {
                return match layout::parse_node_id(&text) {
                    Some(id) => Ok(id.to_owned()),
                    None => Err(StoreError::Io {
                        context: format!("reading {}", path.display()),
                        source: std::io::Error::new(ErrorKind::InvalidData, "not a node id"),
                    }),
                };
            }
            Err(err) if err.kind() == ErrorKind::NotFound => {}
            Err(err) => return Err(err).context(|| format!("reading {}", path.display())),
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        self.write_small_file(&path, format!("{id}\n").as_bytes())
            .await?;
        sync_dir(&self.root).await?;
        Ok(id)
    }

    /// The cluster id kept by [`ChunkStore::adopt_cluster_id`], if any.
    pub async fn cluster_id(&self) -> Result<Option<String>, StoreError> {
        self.note("cluster_id").await
    }

    /// Keeps `cluster_id` in `DATA_DIR/cluster_id` unless one is kept
    /// already; returns the kept one.
    pub async fn adopt_cluster_id(&self, cluster_id: &str) -> Result<String, StoreError> {
        if let Some(known) = self.cluster_id().await? {
            return Ok(known);
        }
        self.set_note("cluster_id", cluster_id).await?;
        Ok(cluster_id.to_owned())
    }

    /// The one-line note `DATA_DIR/<name>` the node keeps for itself, if
    /// any (`name` is one of the store's own file names).
    pub async fn note(&self, name: &str) -> Result<Option<String>, StoreError> {
        let path = self.root.join(name);
        match fs::read_to_string(&path).await {
            Ok(text) => Ok(Some(text.trim().to_owned())),
            Err(err) if err.kind() == ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err).context(|| format!("reading {}", path.display())),
        }
    }

    /// Keeps `value` as the note `DATA_DIR/<name>`, durably.
    pub async fn set_note(&self, name: &str, value: &str) -> Result<(), StoreError> {
        let path = self.root.join(name);
        self.write_small_file(&path, format!("{value}\n").as_bytes())
            .await?;
        sync_dir(&self.root).await
    }

    /// Ids of the chunks in shard `shard` (the first byte of the hash that
    /// places them, so 256 shards cover the store) last written before
    /// `before`.
    pub async fn chunk_ids_in_shard(
        &self,
        shard: u8,
        before: SystemTime,
    ) -> Result<Vec<String>, StoreError> {
        chunk_ids_modified_before(&self.chunks.join(format!("{shard:02x}")), before).await
    }

    /// Every chunk id in shard `shard` with a data or a meta file: what a
    /// scrub looks at.
    pub async fn ids_in_shard(&self, shard: u8) -> Result<BTreeSet<String>, StoreError> {
        ids_in(&self.chunks.join(format!("{shard:02x}"))).await
    }

    /// Re-reads chunk `id` against its meta, at most as fast as `throttle`
    /// allows. Writes and deletes of `id` wait meanwhile, so a chunk being
    /// deleted is never taken for a missing one.
    pub async fn verify(&self, id: &str, throttle: &Throttle) -> Result<Verdict, StoreError> {
        let (_, data_path, meta_path) = self.paths(id)?;
        let _guard = self.lock(id).await;
        check::verify(&data_path, &meta_path, throttle).await
    }

    /// Moves chunk `id` (whatever is left of it) to `quarantine/`, where it
    /// is never served again.
    pub async fn quarantine(&self, id: &str) -> Result<(), StoreError> {
        let (dir, data_path, meta_path) = self.paths(id)?;
        let _guard = self.lock(id).await;
        let had_data = fs::metadata(&data_path).await.ok().map(|meta| meta.len());
        self.metas.forget(id);
        if quarantine::set_aside(&self.quarantine, id, &data_path, &meta_path).await? {
            sync_dir(&dir).await?;
            sync_dir(&self.quarantine).await?;
        }
        if let Some(size) = had_data {
            self.forget_chunk(size);
        }
        Ok(())
    }

    /// Number of chunks in quarantine.
    pub async fn quarantined_count(&self) -> Result<u64, StoreError> {
        let (all, _) = quarantine::list(&self.quarantine, SystemTime::UNIX_EPOCH).await?;
        Ok(all.len() as u64)
    }

    /// Deletes quarantined chunks set aside more than
    /// [`quarantine::RETENTION`] ago; how many.
    pub async fn purge_quarantine(&self) -> Result<u64, StoreError> {
        let before = SystemTime::now()
            .checked_sub(quarantine::RETENTION)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let (_, old) = quarantine::list(&self.quarantine, before).await?;
        for id in &old {
            let _guard = self.lock(id).await;
            quarantine::remove(&self.quarantine, id).await?;
        }
        Ok(old.len() as u64)
    }

    /// The node's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Number of chunks stored.
    pub fn chunk_count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Bytes of the chunks stored.
    pub fn stored_bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// One chunk of `size` bytes more.
    fn note_chunk(&self, size: u64) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(size, Ordering::Relaxed);
    }

    /// One chunk of `size` bytes fewer.
    fn forget_chunk(&self, size: u64) {
        self.count.fetch_sub(1, Ordering::Relaxed);
        self.bytes.fetch_sub(size, Ordering::Relaxed);
    }

    /// Size and free space of the filesystem holding the data directory,
    /// and whether the node is full (see `store/space.rs`).
    pub fn disk_stats(&self) -> Result<DiskStats, StoreError> {
        self.space.stats()
    }

    /// Whether a write ran out of space and not enough has been freed since.
    pub fn is_full(&self) -> bool {
        self.space.is_full()
    }

    /// Changes when the node becomes full, so it can say so at once.
    pub fn watch_full(&self) -> watch::Receiver<Option<u64>> {
        self.space.watch()
    }

    /// Checks that the data directory is still there.
    pub async fn check(&self) -> Result<(), StoreError> {
        fs::metadata(&self.chunks)
            .await
            .map(|_| ())
            .context(|| format!("checking {}", self.chunks.display()))
    }

    /// The meta of chunk `id` once it is stored, waiting up to `timeout` for
    /// it to arrive; [`StoreError::NotFound`] when it has not by then.
    pub async fn wait_for(&self, id: &str, timeout: Duration) -> Result<ChunkMeta, StoreError> {
        // Subscribe before looking, so a commit between the look and the
        // wait still wakes us.
        let mut commits = self.commits.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.meta(id).await {
                Err(StoreError::NotFound) => {}
                found => return found,
            }
            match tokio::time::timeout_at(deadline, commits.changed()).await {
                Ok(Ok(())) => {}
                // Timed out (the sender lives as long as `self`, so the
                // channel cannot close while we hold `&self`).
                Ok(Err(_)) | Err(_) => return Err(StoreError::NotFound),
            }
        }
    }

    /// The meta of chunk `id`, or [`StoreError::NotFound`].
    pub async fn meta(&self, id: &str) -> Result<ChunkMeta, StoreError> {
        self.stored_meta(id).await?.ok_or(StoreError::NotFound)
    }

    /// Opens chunk `id` for reading: a file whose length matches its meta,
    /// written only after its CRC32C was checked.
    pub async fn open_chunk(&self, id: &str) -> Result<(File, ChunkMeta), StoreError> {
        let (file, meta) = self.read_with(id, |file, meta| Ok((file, meta))).await?;
        Ok((File::from_std(file), meta))
    }

    /// Opens chunk `id` and hands its file and meta to `read`: open, fstat,
    /// the meta (from memory when it was read lately) and `read` itself all
    /// in one blocking call, so a small read costs one hand-off to the
    /// blocking pool.
    pub async fn read_with<T, F>(&self, id: &str, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(std::fs::File, ChunkMeta) -> std::io::Result<T> + Send + 'static,
    {
        let (_, data_path, meta_path) = self.paths(id)?;
        let (metas, id) = (Arc::clone(&self.metas), id.to_owned());
        blocking(move || {
            // Open first, then check the meta against the open file, so a
            // concurrent delete cannot pair this file with another meta.
            let file = match std::fs::File::open(&data_path) {
                Ok(file) => file,
                Err(err) if err.kind() == ErrorKind::NotFound => return Err(StoreError::NotFound),
                Err(err) => {
                    return Err(err).context(|| format!("opening {}", data_path.display()));
                }
            };
            let data = file
                .metadata()
                .context(|| format!("stat {}", data_path.display()))?;
            let meta = metas
                .load(&id, &meta_path, &data)?
                .ok_or(StoreError::NotFound)?;
            read(file, meta).context(|| format!("reading {}", data_path.display()))
        })
        .await
    }

    /// Deletes chunk `id`, and any quarantined copy of it;
    /// [`StoreError::NotFound`] when there is neither.
    pub async fn delete(&self, id: &str) -> Result<(), StoreError> {
        let (dir, data_path, meta_path) = self.paths(id)?;
        let _guard = self.lock(id).await;
        self.metas.forget(id);
        let quarantined = quarantine::remove(&self.quarantine, id).await?;
        let size = fs::metadata(&data_path).await.map_or(0, |meta| meta.len());
        let existed = match fs::remove_file(&data_path).await {
            Ok(()) => true,
            Err(err) if err.kind() == ErrorKind::NotFound => false,
            Err(err) => return Err(err).context(|| format!("removing {}", data_path.display())),
        };
        match fs::remove_file(&meta_path).await {
            Ok(()) => {}
            Err(err) if err.kind() == ErrorKind::NotFound => {}
            Err(err) => return Err(err).context(|| format!("removing {}", meta_path.display())),
        }
        if !existed {
            return if quarantined {
                Ok(())
            } else {
                Err(StoreError::NotFound)
            };
        }
        sync_dir(&dir).await?;
        self.forget_chunk(size);
        Ok(())
    }

    /// Directory, data path and meta path of chunk `id`, after validating it.
    fn paths(&self, id: &str) -> Result<(PathBuf, PathBuf, PathBuf), StoreError> {
        let dir = layout::chunk_dir(&self.chunks, id)?;
        let data = dir.join(id);
        let meta = dir.join(format!("{id}.meta"));
        Ok((dir, data, meta))
    }

    async fn lock(&self, id: &str) -> tokio::sync::MutexGuard<'_, ()> {
        let stripe = crc32c::crc32c(id.as_bytes()) as usize % self.locks.len();
        // `locks` has LOCK_STRIPES > 0 entries, so the index is in range.
        self.locks[stripe].lock().await
    }

    /// The meta of chunk `id` when it is complete; `None` when absent.
    async fn stored_meta(&self, id: &str) -> Result<Option<ChunkMeta>, StoreError> {
        let (_, data_path, meta_path) = self.paths(id)?;
        let (metas, id) = (Arc::clone(&self.metas), id.to_owned());
        blocking(move || match std::fs::metadata(&data_path) {
            Ok(data) => metas.load(&id, &meta_path, &data),
            Err(err) if err.kind() == ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err).context(|| format!("stat {}", data_path.display())),
        })
        .await
    }
}

/// Runs store I/O on the blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|err| {
            Err(StoreError::Io {
                context: "running store I/O".into(),
                source: std::io::Error::other(err),
            })
        })
}

#[cfg(test)]
mod tests;
