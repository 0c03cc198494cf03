//! `dfs read`: fetch every chunk from its replicas with bounded concurrency,
//! verify size and CRC32C, and write the file so that a partial result is
//! never visible (temp file beside the destination, fsync, rename).

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
}

impl Replicas<'_> {
    /// One chunk from the first replica (live ones first) that serves the
    /// right bytes; fails only when every replica failed, naming each
    /// reason. A replica that answers with wrong bytes, or without the
    /// chunk, is reported to the naming server, which has its node check.
    async fn fetch(&self, chunk: &ChunkLocation) -> Result<Bytes, Error> {
        let mut replicas: Vec<_> = chunk.replicas.iter().collect();
        replicas.sort_by_key(|r| !r.alive);
        let mut reasons = Vec::new();
        for replica in replicas {
            let fetched = self
                .storage
                .get_chunk(&replica.url, &chunk.chunk_id, chunk.size)
                .await;
            let (reason, bad) = match fetched {
                Err(e) => {
                    let gone = e.status().is_some_and(|status| status.as_u16() == 404);
                    (e.to_string(), gone)
                }
                Ok(data) if data.len() as u64 != chunk.size => (
                    format!("got {} bytes, expected {}", data.len(), chunk.size),
                    true,
                ),
                Ok(data) => {
                    let (data, crc) = tokio::task::spawn_blocking(move || {
                        let crc = dfs_common::crc32c(&data);
                        (data, crc)
                    })
                    .await
                    .map_err(|e| Error::io("checksumming a chunk", std::io::Error::other(e)))?;
                    if crc == chunk.crc32c {
                        return Ok(data);
                    }
                    let reason = format!(
                        "CRC32C mismatch: got {crc:08x}, expected {:08x}",
                        chunk.crc32c
                    );
                    (reason, true)
                }
            };
            tracing::info!(chunk = chunk.index, node = %replica.node_id, "replica failed: {reason}");
            if bad {
                self.report(chunk, &replica.node_id, &reason).await;
            }
            let state = if replica.alive { "alive" } else { "dead" };
            reasons.push(format!(
                "node {} ({state}, {}): {reason}",
                replica.node_id, replica.url
            ));
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
