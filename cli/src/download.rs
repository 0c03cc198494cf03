//! `dfs read`: fetch every chunk with bounded concurrency (from this host's
//! node's files when it holds the chunk, else from the live replicas, each
//! reader starting at its own place among them), verify size and CRC32C,
//! and write the file so that a partial result is never visible (temp file
//! beside the destination, fsync, rename).

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use dfs_client::NamingClient;
use dfs_common::api::FileRecord;
use futures::{StreamExt, TryStreamExt, future, stream};
use indicatif::ProgressBar;

use crate::CONCURRENCY;
use crate::error::Error;
use crate::patience::naming_call;
use crate::replicas::ChunkSource;

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
    source: &ChunkSource,
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
    match destination {
        Destination::Stdout => to_stdout(source, &record, progress).await?,
        Destination::File(path) => to_file(source, &record, path, progress).await?,
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
    source: &ChunkSource,
    record: &FileRecord,
    progress: &ProgressBar,
) -> Result<(), Error> {
    // `buffered` keeps order while up to CONCURRENCY chunks are fetched ahead.
    let mut chunks = stream::iter(&record.chunks)
        .map(|chunk| source.fetch(&record.info.file_id, chunk))
        .buffered(CONCURRENCY);
    while let Some(data) = chunks.try_next().await? {
        let len = data.len() as u64;
        // Written from the chunk's own buffer (a blocking write: no copy
        // into an async stdout's buffer first).
        let written = tokio::task::spawn_blocking(move || {
            let mut out = std::io::stdout().lock();
            out.write_all(&data).and_then(|()| out.flush())
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|written| written);
        match written {
            Ok(()) => progress.inc(len),
            // The reader went away (`dfs read x - | head`): not our failure.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => return Err(Error::io("cannot write to stdout", e)),
        }
    }
    Ok(())
}

async fn to_file(
    source: &ChunkSource,
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
                let data = source.fetch(&record.info.file_id, chunk).await?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use dfs_common::api::{ChunkLocation, FileInfo, FileState};

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
