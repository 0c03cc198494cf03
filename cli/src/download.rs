//! `dfs read`: fetch every chunk with bounded concurrency (from this host's
//! node's files when it holds the chunk, else from the live replicas, each
//! reader starting at its own place among them), verify size and CRC32C,
//! and write the file so that a partial result is never visible (temp file
//! beside the destination, fsync, rename).

use std::fs::File;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use dfs_client::{NamingClient, StorageClient};
use dfs_common::api::{ChunkLocation, FileRecord, SuspectReplica};
use futures::{StreamExt, TryStreamExt, future, stream};
use indicatif::ProgressBar;
use tokio::io::AsyncWriteExt;

use crate::CONCURRENCY;
use crate::error::Error;
use crate::local::LocalNode;
use crate::patience::naming_call;

/// Where `read` puts the bytes.
#[derive(Debug, Clone, Copy)]
pub enum Destination<'a> {
    /// Standard output, strictly in order.
    Stdout,
    /// A local file, replaced atomically.
    File(&'a Path),
}

/// Downloads `name` to `destination`; returns the file's record.
pub async fn read(
    naming: &NamingClient,
    storage: &StorageClient,
    local: Option<&LocalNode>,
    name: &str,
    destination: Destination<'_>,
    progress: &ProgressBar,
) -> Result<FileRecord, Error> {
    let what = format!("looking up {name:?}");
    let record = naming_call(&what, || naming.file_by_name(name)).await?;
    check_layout(&record).map_err(|reason| {
        Error::bad_response(
            naming.base_url(),
            format!("file record of {name:?}: {reason}"),
        )
    })?;
    progress.set_length(record.info.size);
    let source = Replicas {
        storage,
        naming,
        file_id: &record.info.file_id,
        local,
        spread: rand::random::<u32>() as usize,
    };
    match destination {
        Destination::Stdout => to_stdout(&source, &record, progress).await?,
        Destination::File(path) => to_file(&source, &record, path, progress).await?,
    }
    Ok(record)
}

/// Checks that the chunks are exactly `0..chunk_count` in order, each of
/// the size the file's size and chunk size imply.
pub fn check_layout(record: &FileRecord) -> Result<(), String> {
    let info = &record.info;
    if info.chunk_size == 0 && info.size > 0 {
        return Err("chunk size is 0".to_owned());
    }
    let expected = if info.size == 0 {
        0
    } else {
        dfs_common::chunk_count(info.size, info.chunk_size)
    };
    if record.chunks.len() as u64 != expected {
        return Err(format!(
            "{} chunks listed, {expected} expected",
            record.chunks.len()
        ));
    }
    for (i, chunk) in record.chunks.iter().enumerate() {
        let i = i as u64;
        if chunk.index != i {
            return Err(format!("chunk at position {i} has index {}", chunk.index));
        }
        let len = dfs_common::chunk_len(info.size, info.chunk_size, i);
        if len != Some(chunk.size) {
            return Err(format!(
                "chunk {i} has size {}, expected {}",
                chunk.size,
                len.unwrap_or(0)
            ));
        }
    }
    Ok(())
}

async fn to_stdout(
    source: &Replicas<'_>,
    record: &FileRecord,
    progress: &ProgressBar,
) -> Result<(), Error> {
    let mut out = tokio::io::stdout();
    // `buffered` keeps order while up to CONCURRENCY chunks are fetched ahead.
    let mut chunks = stream::iter(&record.chunks)
        .map(|chunk| source.fetch(chunk))
        .buffered(CONCURRENCY);
    while let Some(data) = chunks.try_next().await? {
        match out.write_all(&data).await {
            Ok(()) => progress.inc(data.len() as u64),
            // The reader went away (`dfs read x - | head`): not our failure.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => return Err(Error::io("cannot write to stdout", e)),
        }
    }
    match out.flush().await {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Error::io("cannot write to stdout", e))
        }
        _ => Ok(()),
    }
}

async fn to_file(
    source: &Replicas<'_>,
    record: &FileRecord,
    path: &Path,
    progress: &ProgressBar,
) -> Result<(), Error> {
    let shown = path.display().to_string();
    if path.is_dir() {
        return Err(Error::Invalid(format!("{shown} is a directory")));
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let prefix = match path.file_name() {
        Some(name) => format!(".{}.", name.to_string_lossy()),
        None => return Err(Error::Invalid(format!("{shown} does not name a file"))),
    };
    let temp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".dfs-partial")
        // Masked by the umask, like any newly created file.
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
        .map_err(|e| Error::io(format!("cannot create a file in {}", dir.display()), e))?;
    let file = temp
        .as_file()
        .try_clone()
        .map_err(|e| Error::io("cannot reopen the temp file", e))?;
    file.set_len(record.info.size)
        .map_err(|e| Error::io(format!("cannot size a file in {}", dir.display()), e))?;
    let file = Arc::new(file);
    stream::iter(&record.chunks)
        .map(|chunk| {
            let file = Arc::clone(&file);
            async move {
                let data = source.fetch(chunk).await?;
                let offset = chunk.index * record.info.chunk_size;
                let len = data.len() as u64;
                tokio::task::spawn_blocking(move || file.write_all_at(&data, offset))
                    .await
                    .map_err(std::io::Error::other)
                    .and_then(|written| written)
                    .map_err(|e| Error::io(format!("cannot write to {}", dir.display()), e))?;
                progress.inc(len);
                Ok::<(), Error>(())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_for_each(|()| future::ready(Ok(())))
        .await?;
    let sync = |file: &File| {
        file.sync_all()
            .map_err(|e| Error::io(format!("cannot flush {shown}"), e))
    };
    sync(&file)?;
    temp.persist(path)
        .map_err(|e| Error::io(format!("cannot replace {shown}"), e.error))?;
    // Make the rename itself durable.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(format!("cannot flush {}", dir.display()), e))
}

/// Where a file's chunks are read from, and whom to tell about a bad one.
struct Replicas<'a> {
    storage: &'a StorageClient,
    naming: &'a NamingClient,
    file_id: &'a str,
    /// This host's storage node, whose copies are read from its files first.
    local: Option<&'a LocalNode>,
    /// Where this reader starts in each chunk's list of live replicas, so
    /// that readers (and one reader's chunks) spread over the replicas.
    spread: usize,
}

/// A chunk that could not be had from one replica: why, and whether the
/// replica holds it badly (missing or wrong bytes: worth reporting).
struct Miss {
    reason: String,
    bad: bool,
}

impl Replicas<'_> {
    /// One chunk from the first replica that serves the right bytes: this
    /// host's node first (from its files), then the live replicas starting
    /// at this reader's place in the list, then the dead ones. Fails only
    /// when every replica failed, naming each reason. A replica with wrong
    /// bytes, or without the chunk, is reported to the naming server, which
    /// has its node check.
    async fn fetch(&self, chunk: &ChunkLocation) -> Result<Bytes, Error> {
        let mut reasons = Vec::new();
        let local = self
            .local
            .filter(|local| chunk.replicas.iter().any(|r| r.node_id == local.node_id()));
        if let Some(local) = local {
            let node = local.clone();
            let (id, size) = (chunk.chunk_id.clone(), chunk.size);
            let read = tokio::task::spawn_blocking(move || {
                node.read_chunk(&id, size).map_err(|miss| Miss {
                    reason: miss.reason,
                    bad: miss.bad,
                })
            })
            .await
            .map_err(|e| Error::io("reading a local chunk", std::io::Error::other(e)))?;
            match verified(chunk, read).await? {
                Ok(data) => return Ok(data),
                Err(miss) => {
                    self.missed(chunk, local.node_id(), &miss).await;
                    reasons.push(format!(
                        "this host's node {}: {}",
                        local.node_id(),
                        miss.reason
                    ));
                }
            }
        }
        let remote = chunk
            .replicas
            .iter()
            .filter(|r| local.is_none_or(|local| r.node_id != local.node_id()));
        let (mut live, dead): (Vec<_>, Vec<_>) = remote.partition(|r| r.alive);
        // One order for every chunk, so that moving one place on per chunk
        // spreads a reader's chunks evenly.
        live.sort_by(|a, b| a.node_id.cmp(&b.node_id));
        let start = match live.len() {
            0 => 0,
            n => (self.spread.wrapping_add(chunk.index as usize)) % n,
        };
        let order = live[start..].iter().chain(&live[..start]).chain(&dead);
        for replica in order {
            let fetched = self
                .storage
                .get_chunk(&replica.url, &chunk.chunk_id, chunk.size)
                .await
                .map_err(|e| Miss {
                    bad: e.status().is_some_and(|status| status.as_u16() == 404),
                    reason: e.to_string(),
                });
            match verified(chunk, fetched).await? {
                Ok(data) => return Ok(data),
                Err(miss) => {
                    self.missed(chunk, &replica.node_id, &miss).await;
                    let state = if replica.alive { "alive" } else { "dead" };
                    reasons.push(format!(
                        "node {} ({state}, {}): {}",
                        replica.node_id, replica.url, miss.reason
                    ));
                }
            }
        }
        let reason = if reasons.is_empty() {
            format!("{} has no replicas", chunk.chunk_id)
        } else {
            format!(
                "no replica of {} could be read: {}",
                chunk.chunk_id,
                reasons.join("; ")
            )
        };
        Err(Error::Chunk {
            index: chunk.index,
            reason,
        })
    }

    /// Logs a replica that failed, and reports it when it holds the chunk badly.
    async fn missed(&self, chunk: &ChunkLocation, node_id: &str, miss: &Miss) {
        tracing::info!(chunk = chunk.index, node = %node_id, "replica failed: {}", miss.reason);
        if miss.bad {
            self.report(chunk, node_id, &miss.reason).await;
        }
    }

    /// Tells the naming server that `node_id` served `chunk` badly. Best
    /// effort: the read goes on either way.
    async fn report(&self, chunk: &ChunkLocation, node_id: &str, reason: &str) {
        let report = SuspectReplica {
            chunk_id: chunk.chunk_id.clone(),
            node_id: node_id.to_owned(),
            reason: reason.to_owned(),
        };
        if let Err(error) = self
            .naming
            .report_suspect(self.file_id, chunk.index, &report)
            .await
        {
            tracing::info!(chunk = chunk.index, node = node_id, %error, "could not report a bad replica");
        }
    }
}

/// `fetched` when it has the chunk's size and CRC32C; otherwise a miss
/// that counts against the replica.
async fn verified(
    chunk: &ChunkLocation,
    fetched: Result<Bytes, Miss>,
) -> Result<Result<Bytes, Miss>, Error> {
    let data = match fetched {
        Ok(data) => data,
        Err(miss) => return Ok(Err(miss)),
    };
    if data.len() as u64 != chunk.size {
        return Ok(Err(Miss {
            reason: format!("got {} bytes, expected {}", data.len(), chunk.size),
            bad: true,
        }));
    }
    let (data, crc) = tokio::task::spawn_blocking(move || {
        let crc = dfs_common::crc32c(&data);
        (data, crc)
    })
    .await
    .map_err(|e| Error::io("checksumming a chunk", std::io::Error::other(e)))?;
    if crc != chunk.crc32c {
        return Ok(Err(Miss {
            reason: format!(
                "CRC32C mismatch: got {crc:08x}, expected {:08x}",
                chunk.crc32c
            ),
            bad: true,
        }));
    }
    Ok(Ok(data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dfs_common::api::{FileInfo, FileState};

    fn record(size: u64, chunk_size: u64, sizes: &[u64]) -> FileRecord {
        FileRecord {
            info: FileInfo {
                file_id: "f".into(),
                name: "n".into(),
                size,
                chunk_size,
                chunk_count: sizes.len() as u64,
                replication: 1,
                state: FileState::Committed,
                created_at_ms: 0,
            },
            chunks: sizes
                .iter()
                .enumerate()
                .map(|(i, &size)| ChunkLocation {
                    chunk_id: format!("c{i}"),
                    index: i as u64,
                    size,
                    crc32c: 0,
                    replicas: vec![],
                    bad_replicas: vec![],
                })
                .collect(),
        }
    }

    #[test]
    fn layout_checks() {
        assert_eq!(check_layout(&record(0, 64, &[])), Ok(()));
        assert_eq!(check_layout(&record(130, 64, &[64, 64, 2])), Ok(()));
        assert!(check_layout(&record(130, 64, &[64, 64])).is_err());
        assert!(check_layout(&record(130, 64, &[64, 64, 3])).is_err());
        assert!(check_layout(&record(130, 64, &[64, 64, 2, 1])).is_err());
        let mut swapped = record(128, 64, &[64, 64]);
        swapped.chunks.swap(0, 1);
        assert!(check_layout(&swapped).is_err());
    }
}
