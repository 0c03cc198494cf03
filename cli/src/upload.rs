//! `dfs create`: init, write chunks to their targets with bounded
//! concurrency, finalize.
//!
//! Each chunk is read with a positional read (the file is never loaded
//! whole), checksummed, and sent once: PUT to the first target the naming
//! server allocated, with the others in `x-dfs-replicate-to` and the
//! allocation's signature of the chunk id (when the cluster has a token)
//! in `x-dfs-chunk-signature`, and the
//! storage servers copy it down that chain over their TCP protocol. The PUT
//! is acknowledged once every replica is durable. When the chain fails, the
//! node to blame (the first target if it cannot be reached, else the one the
//! 502 names) is excluded and the chunk gets a fresh allocation, up to
//! [`MAX_ATTEMPTS`] times. Copies left by a failed attempt belong to an
//! unused allocation, which the naming server collects at finalize.
//!
//! Every naming-server call rides out a restart of it
//! ([`crate::patience`]); an upload cut short for good is collected by the
//! naming server when its pending-upload TTL runs out.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use dfs_client::{ChunkPut, NamingClient, StorageClient};
use dfs_common::api::{
    AllocateChunkRequest, FileRecord, FinalizeRequest, FinalizedChunk, InitFileRequest,
};
use dfs_common::chain::DownstreamNode;
use futures::{StreamExt, TryStreamExt, stream};
use indicatif::ProgressBar;

use crate::CONCURRENCY;
use crate::error::Error;
use crate::patience::naming_call;

/// Allocations tried per chunk before the upload fails.
pub const MAX_ATTEMPTS: usize = 3;

/// What `create` asks of the naming server beyond the name.
#[derive(Debug, Clone, Copy, Default)]
pub struct CreateOptions {
    /// Chunk size; the server's default when `None`.
    pub chunk_size: Option<u64>,
    /// Replicas per chunk; the server's default when `None`.
    pub replication: Option<u32>,
}

/// Files uploaded at once by [`create_many`]: small files are bound by
/// round trips and fsyncs, which overlap across files.
pub const FILES_IN_FLIGHT: usize = 8;

/// Uploads each `(local, name)`, [`FILES_IN_FLIGHT`] at a time; yields each
/// file's name and outcome in the order given, as they are known. A file
/// that fails does not stop the others.
pub fn create_many<'a>(
    naming: &'a NamingClient,
    storage: &'a StorageClient,
    files: Vec<(std::path::PathBuf, String)>,
    options: CreateOptions,
    progress: &'a ProgressBar,
) -> impl futures::Stream<Item = (String, Result<FileRecord, Error>)> + 'a {
    stream::iter(files)
        .map(move |(local, name)| async move {
            let result = create(naming, storage, &local, &name, options, progress).await;
            (name, result)
        })
        .buffered(FILES_IN_FLIGHT)
}

/// Uploads `local` as `name` and returns the committed record.
pub async fn create(
    naming: &NamingClient,
    storage: &StorageClient,
    local: &Path,
    name: &str,
    options: CreateOptions,
    progress: &ProgressBar,
) -> Result<FileRecord, Error> {
    dfs_common::validate::file_name(name).map_err(|e| Error::Invalid(format!("{name:?}: {e}")))?;
    let shown = local.display().to_string();
    let file = File::open(local).map_err(|e| Error::io(format!("cannot open {shown}"), e))?;
    let metadata = file
        .metadata()
        .map_err(|e| Error::io(format!("cannot stat {shown}"), e))?;
    if !metadata.is_file() {
        return Err(Error::Invalid(format!("{shown} is not a regular file")));
    }
    let size = metadata.len();
    let request = InitFileRequest {
        name: name.to_owned(),
        size,
        chunk_size: options.chunk_size,
        replication: options.replication,
    };
    let info = naming_call("starting the upload", || naming.init_file(&request)).await?;
    if info.size != size || info.chunk_size == 0 {
        return Err(Error::bad_response(
            naming.base_url(),
            format!(
                "init returned size {} / chunk size {}",
                info.size, info.chunk_size
            ),
        ));
    }
    // Added, not set: several files may share one bar (create_many).
    progress.inc_length(size);
    let upload = Upload {
        naming,
        storage,
        file: Arc::new(file),
        path: shown,
        file_id: &info.file_id,
        progress,
    };
    let mut chunks: Vec<FinalizedChunk> = stream::iter(chunk_spans(size, info.chunk_size))
        .map(|span| upload.chunk(span))
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    chunks.sort_by_key(|c| c.index);
    let request = FinalizeRequest { size, chunks };
    naming_call("finalizing the upload", || {
        naming.finalize(&info.file_id, &request)
    })
    .await
}

/// One chunk's place in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkSpan {
    pub index: u64,
    pub offset: u64,
    pub len: u64,
}

/// The chunks of a file of `size` bytes, in order.
pub fn chunk_spans(size: u64, chunk_size: u64) -> impl Iterator<Item = ChunkSpan> {
    (0..dfs_common::chunk_count(size, chunk_size)).filter_map(move |index| {
        let len = dfs_common::chunk_len(size, chunk_size, index)?;
        Some(ChunkSpan {
            index,
            offset: index * chunk_size,
            len,
        })
    })
}

struct Upload<'a> {
    naming: &'a NamingClient,
    storage: &'a StorageClient,
    file: Arc<File>,
    path: String,
    file_id: &'a str,
    progress: &'a ProgressBar,
}

impl Upload<'_> {
    async fn chunk(&self, span: ChunkSpan) -> Result<FinalizedChunk, Error> {
        let (data, crc32c) = self.read(span).await?;
        let mut exclude: Vec<String> = Vec::new();
        let mut failures: Vec<String> = Vec::new();
        for _ in 0..MAX_ATTEMPTS {
            let request = AllocateChunkRequest {
                index: span.index,
                exclude: exclude.clone(),
            };
            let allocate = || self.naming.allocate_chunk(self.file_id, &request);
            let what = format!("allocating chunk {}", span.index);
            let allocation = match naming_call(&what, allocate).await {
                Ok(allocation) => allocation,
                Err(e) if failures.is_empty() => return Err(e),
                Err(e) => {
                    failures.push(format!("no other targets: {e}"));
                    break;
                }
            };
            let Some((first, rest)) = allocation
                .targets
                .split_first()
                .filter(|_| allocation.size == span.len)
            else {
                return Err(Error::Chunk {
                    index: span.index,
                    reason: format!(
                        "allocation has size {} and {} targets; expected size {}",
                        allocation.size,
                        allocation.targets.len(),
                        span.len
                    ),
                });
            };
            let chain: Vec<DownstreamNode> = rest
                .iter()
                .map(|t| DownstreamNode {
                    node_id: t.node_id.clone(),
                    url: t.url.clone(),
                })
                .collect();
            let put = ChunkPut {
                chunk_id: &allocation.chunk_id,
                data: data.clone(),
                crc32c,
                signature: allocation.signature.as_deref(),
                replicate_to: &chain,
            };
            let written = self.storage.put_chunk(&first.url, put).await;
            match written {
                Ok(_) => {
                    self.progress.inc(span.len);
                    return Ok(FinalizedChunk {
                        index: span.index,
                        chunk_id: allocation.chunk_id,
                        size: span.len,
                        crc32c,
                        replicas: allocation.targets.into_iter().map(|t| t.node_id).collect(),
                    });
                }
                Err(dfs_client::Error::ChainFailed {
                    failed_node,
                    message,
                }) => {
                    tracing::info!(chunk = span.index, node = %failed_node, "chain write failed: {message}");
                    failures.push(if message.contains(&failed_node) {
                        message
                    } else {
                        format!("node {failed_node}: {message}")
                    });
                    exclude.push(failed_node);
                }
                Err(e) => {
                    tracing::info!(chunk = span.index, node = %first.node_id, "write failed: {e}");
                    failures.push(format!("node {} ({}): {e}", first.node_id, first.url));
                    exclude.push(first.node_id.clone());
                }
            }
        }
        Err(Error::Chunk {
            index: span.index,
            reason: format!("upload failed: {}", failures.join("; ")),
        })
    }

    /// Reads one chunk from disk off the async threads and checksums it.
    async fn read(&self, span: ChunkSpan) -> Result<(Bytes, u32), Error> {
        let file = Arc::clone(&self.file);
        let len = usize::try_from(span.len).map_err(|_| {
            Error::Invalid(format!(
                "chunk of {} bytes does not fit in memory",
                span.len
            ))
        })?;
        let read = tokio::task::spawn_blocking(move || -> std::io::Result<(Bytes, u32)> {
            let mut buf = vec![0u8; len];
            file.read_exact_at(&mut buf, span.offset)?;
            let crc = dfs_common::crc32c(&buf);
            Ok((Bytes::from(buf), crc))
        })
        .await
        .map_err(|e| Error::io(format!("reading {}", self.path), std::io::Error::other(e)))?;
        read.map_err(|e| {
            let context = format!(
                "cannot read {} at offset {} (did it change during the upload?)",
                self.path, span.offset
            );
            Error::io(context, e)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_cover_the_file_exactly() {
        assert_eq!(chunk_spans(0, 64).count(), 0);
        let spans: Vec<_> = chunk_spans(130, 64).collect();
        assert_eq!(
            spans,
            vec![
                ChunkSpan {
                    index: 0,
                    offset: 0,
                    len: 64
                },
                ChunkSpan {
                    index: 1,
                    offset: 64,
                    len: 64
                },
                ChunkSpan {
                    index: 2,
                    offset: 128,
                    len: 2
                },
            ]
        );
        let one: Vec<_> = chunk_spans(64, 64).collect();
        assert_eq!(
            one,
            vec![ChunkSpan {
                index: 0,
                offset: 0,
                len: 64
            }]
        );
        let big = 1u64 << 30;
        let spans: Vec<_> = chunk_spans(big + 1, 8 << 20).collect();
        assert_eq!(spans.len(), 129);
        assert_eq!(spans.iter().map(|s| s.len).sum::<u64>(), big + 1);
        assert_eq!(
            spans[128],
            ChunkSpan {
                index: 128,
                offset: big,
                len: 1
            }
        );
    }
}
