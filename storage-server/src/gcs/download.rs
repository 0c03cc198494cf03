//! [`GcsClient::download`]: one GCS object into the chunk store, chunk by
//! chunk, with parallel ranged reads, resume and an end-to-end CRC32C check.

use std::ops::Range;

use bytes::Bytes;
use dfs_client::error_chain;
use dfs_common::gcs::GcsUrl;
use futures::channel::mpsc;
use futures::{SinkExt, Stream, StreamExt, TryStreamExt};
use tokio_util::io::StreamReader;

use super::client::{GcsClient, ObjectInfo};
use super::error::{Failure, GcsError};
use crate::config::Config;
use crate::metrics::Path;
use crate::store::{ChunkMeta, ChunkStore, StoreError};

/// One chunk of the object: bytes `offset..offset + size`, stored as `chunk_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkSpec {
    pub chunk_id: String,
    pub index: u64,
    pub offset: u64,
    pub size: u64,
}

/// Chunks of `chunk_size` bytes (the last one shorter) covering an object of
/// `object_size` bytes, named by `chunk_id(index)`.
pub fn chunk_layout(
    object_size: u64,
    chunk_size: u64,
    mut chunk_id: impl FnMut(u64) -> String,
) -> Vec<ChunkSpec> {
    let count = dfs_common::chunk_count(object_size, chunk_size.max(1));
    (0..count)
        .filter_map(|index| {
            let size = dfs_common::chunk_len(object_size, chunk_size, index)?;
            Some(ChunkSpec {
                chunk_id: chunk_id(index),
                index,
                offset: index * chunk_size,
                size,
            })
        })
        .collect()
}

/// How a download spreads over requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownloadOptions {
    /// Ranged requests in flight at once (at least 1).
    pub parallel: usize,
    /// Consecutive chunks per ranged request (at least 1).
    pub batch: usize,
}

impl DownloadOptions {
    /// `GCS_PARALLEL_DOWNLOADS` and `GCS_BATCH_CHUNKS`.
    pub fn from_config(config: &Config) -> Self {
        Self {
            parallel: config.gcs_parallel_downloads.into(),
            batch: config.gcs_batch_chunks.into(),
        }
    }
}

/// A chunk that is now in the store, reported as soon as it lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkDone {
    pub index: u64,
    /// Size and CRC32C computed from the bytes stored.
    pub meta: ChunkMeta,
    /// The chunk was already stored before this download started.
    pub resumed: bool,
}

/// The result of a finished download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Downloaded {
    /// CRC32C of the whole object, combined from its chunks.
    pub crc32c: u32,
    /// Whether GCS gave a CRC32C to compare with (it matched, or the
    /// download would have failed). `false` only for emulators without one.
    pub verified: bool,
    /// Chunks fetched from GCS by this download.
    pub fetched_chunks: u64,
    /// Chunks found already stored and skipped.
    pub resumed_chunks: u64,
}

/// CRC32C of the concatenation of chunks, from their own CRCs and sizes.
pub fn combine_crcs(chunks: impl IntoIterator<Item = ChunkMeta>) -> u32 {
    chunks.into_iter().fold(0, |crc, chunk| {
        crc32c::crc32c_combine(crc, chunk.crc32c, chunk.size as usize)
    })
}

/// What one download shares among its batches.
struct Job<'a> {
    client: &'a GcsClient,
    url: &'a GcsUrl,
    generation: u64,
    chunks: &'a [ChunkSpec],
    store: &'a ChunkStore,
    on_chunk: &'a (dyn Fn(ChunkDone) + Send + Sync),
}

impl GcsClient {
    /// Downloads generation `info.generation` of `url` into `store` as
    /// `chunks` (which must cover the object in order: chunk `i` has index
    /// `i` and starts where chunk `i - 1` ends).
    ///
    /// Chunks already stored are reported first (`resumed`) and skipped; the
    /// others are fetched by up to `options.parallel` ranged requests of up
    /// to `options.batch` consecutive missing chunks, lowest first, each body
    /// streamed into [`ChunkStore::write`] and each chunk passed to
    /// `on_chunk` the moment it is stored. A transient failure retries the
    /// request from the first chunk of its batch not yet stored, per the
    /// client's [`RetryPolicy`](dfs_client::RetryPolicy), whose attempts
    /// count afresh once the batch stored a chunk since its last failure
    /// (so the total stays bounded by chunks × attempts).
    ///
    /// At the end the chunks' CRC32Cs are combined and compared with
    /// `info.crc32c`; a mismatch is [`GcsError::CrcMismatch`] and leaves the
    /// chunks in the store for the caller to drop. When GCS reported no
    /// CRC32C (real GCS always does; some emulators do not) the download
    /// succeeds unverified ([`Downloaded::verified`] is `false`), with a
    /// warning: refusing would make such a source unusable, and every chunk
    /// still carries its own CRC32C down the chain.
    pub async fn download(
        &self,
        url: &GcsUrl,
        info: &ObjectInfo,
        chunks: &[ChunkSpec],
        store: &ChunkStore,
        options: DownloadOptions,
        on_chunk: &(dyn Fn(ChunkDone) + Send + Sync),
    ) -> Result<Downloaded, GcsError> {
        check_layout(chunks, info.size).map_err(|reason| GcsError::Layout {
            url: url.clone(),
            reason,
        })?;
        let mut metas: Vec<Option<ChunkMeta>> = vec![None; chunks.len()];
        let mut missing = Vec::new();
        for (pos, chunk) in chunks.iter().enumerate() {
            match store.meta(&chunk.chunk_id).await {
                Ok(meta) if meta.size == chunk.size => {
                    metas[pos] = Some(meta);
                    on_chunk(ChunkDone {
                        index: chunk.index,
                        meta,
                        resumed: true,
                    });
                }
                Ok(meta) => {
                    return Err(GcsError::Layout {
                        url: url.clone(),
                        reason: format!(
                            "chunk {} is already stored with {} bytes, not {}",
                            chunk.chunk_id, meta.size, chunk.size
                        ),
                    });
                }
                Err(StoreError::NotFound) => missing.push(pos),
                Err(source) => {
                    return Err(GcsError::Store {
                        chunk_id: chunk.chunk_id.clone(),
                        source,
                    });
                }
            }
        }
        let resumed_chunks = (chunks.len() - missing.len()) as u64;
        let fetched_chunks = missing.len() as u64;
        tracing::info!(
            %url,
            generation = info.generation,
            size = info.size,
            chunks = chunks.len(),
            resumed = resumed_chunks,
            parallel = options.parallel,
            batch = options.batch,
            "downloading from GCS"
        );

        let job = Job {
            client: self,
            url,
            generation: info.generation,
            chunks,
            store,
            on_chunk,
        };
        let batches = batches(&missing, options.batch.max(1));
        let fetched: Vec<Vec<(usize, ChunkMeta)>> = futures::stream::iter(batches)
            .map(|batch| job.fetch_batch(batch))
            .buffer_unordered(options.parallel.max(1))
            .try_collect()
            .await?;
        for (pos, meta) in fetched.into_iter().flatten() {
            metas[pos] = Some(meta);
        }

        // Every position is either resumed or fetched by now.
        let crc = combine_crcs(metas.into_iter().flatten());
        let verified = match info.crc32c {
            Some(expected) if expected != crc => {
                return Err(GcsError::CrcMismatch {
                    url: url.clone(),
                    expected,
                    actual: crc,
                });
            }
            Some(_) => true,
            None => {
                tracing::warn!(%url, "GCS gave no CRC32C for the object; it is not verified end to end");
                false
            }
        };
        tracing::info!(%url, crc32c = format_args!("{crc:08x}"), verified, "GCS download complete");
        Ok(Downloaded {
            crc32c: crc,
            verified,
            fetched_chunks,
            resumed_chunks,
        })
    }
}

/// Checks that `chunks` cover `object_size` bytes in order without gaps.
fn check_layout(chunks: &[ChunkSpec], object_size: u64) -> Result<(), String> {
    let mut offset = 0u64;
    for (pos, chunk) in chunks.iter().enumerate() {
        if chunk.index != pos as u64 {
            return Err(format!("chunk at position {pos} has index {}", chunk.index));
        }
        if chunk.size == 0 || chunk.offset != offset {
            return Err(format!(
                "chunk {} covers {}+{} bytes; expected a non-empty chunk at offset {offset}",
                chunk.index, chunk.offset, chunk.size
            ));
        }
        offset = offset.saturating_add(chunk.size);
    }
    if offset != object_size {
        return Err(format!(
            "chunks cover {offset} bytes; the object has {object_size}"
        ));
    }
    Ok(())
}

/// Groups the positions of missing chunks into runs of consecutive
/// positions, at most `batch` long.
fn batches(missing: &[usize], batch: usize) -> Vec<Range<usize>> {
    let mut runs: Vec<Range<usize>> = Vec::new();
    for &pos in missing {
        match runs.last_mut() {
            Some(run) if run.end == pos && run.len() < batch => run.end += 1,
            _ => runs.push(pos..pos + 1),
        }
    }
    runs
}

impl Job<'_> {
    /// Fetches chunks `batch` (positions), retrying transient failures from
    /// the first chunk not yet stored.
    async fn fetch_batch(&self, batch: Range<usize>) -> Result<Vec<(usize, ChunkMeta)>, GcsError> {
        let retry = self.client.retry_policy();
        let mut stored = Vec::with_capacity(batch.len());
        let mut delays = retry.delays();
        let mut failures = 0u32;
        loop {
            let before = stored.len();
            let next = batch.start + stored.len();
            let reason = match self.fetch_range(next..batch.end, &mut stored).await {
                Ok(()) => return Ok(stored),
                Err(Failure::Permanent(err)) => return Err(err),
                Err(Failure::Transient(reason)) => reason,
            };
            if stored.len() > before {
                // Progress since the last failure: count afresh.
                failures = 0;
                delays = retry.delays();
            }
            failures += 1;
            let Some(wait) = delays.next() else {
                return Err(GcsError::RetriesExhausted {
                    url: self.url.clone(),
                    attempts: failures,
                    last: reason,
                });
            };
            tracing::warn!(
                url = %self.url,
                chunk = self.chunks[batch.start + stored.len()].index,
                failures,
                error = %reason,
                ?wait,
                "GCS read failed; retrying"
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// One ranged request for chunks `positions`, storing each as it
    /// completes and appending it to `stored`.
    async fn fetch_range(
        &self,
        positions: Range<usize>,
        stored: &mut Vec<(usize, ChunkMeta)>,
    ) -> Result<(), Failure> {
        let chunks = &self.chunks[positions.clone()];
        let (Some(first), Some(last)) = (chunks.first(), chunks.last()) else {
            return Ok(());
        };
        let start = first.offset;
        let end = last.offset + last.size - 1;
        let response = self
            .client
            .get_range(self.url, self.generation, start, end)
            .await?;
        self.check_response(&response, start)?;
        let mut body = response.bytes_stream().map_err(reqwest::Error::without_url);
        let mut pending = Bytes::new();
        for (pos, chunk) in positions.zip(chunks) {
            let meta = self.store_chunk(chunk, &mut body, &mut pending).await?;
            stored.push((pos, meta));
            (self.on_chunk)(ChunkDone {
                index: chunk.index,
                meta,
                resumed: false,
            });
        }
        Ok(())
    }

    /// Checks that the response carries our range of our generation.
    fn check_response(&self, response: &reqwest::Response, start: u64) -> Result<(), Failure> {
        let bad = |reason: String| {
            Failure::Permanent(GcsError::BadResponse {
                url: self.url.clone(),
                reason,
            })
        };
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
        };
        if let Some(generation) = header("x-goog-generation")
            && generation != self.generation.to_string()
        {
            return Err(bad(format!(
                "served generation {generation}, not {}",
                self.generation
            )));
        }
        let served_start = match response.status() {
            reqwest::StatusCode::PARTIAL_CONTENT => header("content-range")
                .and_then(|range| range.strip_prefix("bytes "))
                .and_then(|range| range.split_once('-'))
                .and_then(|(from, _)| from.parse::<u64>().ok()),
            // The whole object: fine when we asked from its start.
            reqwest::StatusCode::OK => Some(0),
            status => return Err(bad(format!("HTTP {status} to a ranged read"))),
        };
        match served_start {
            Some(served) if served == start => Ok(()),
            _ => Err(bad(format!(
                "asked for bytes from {start}, got {:?} ({:?})",
                response.status(),
                header("content-range")
            ))),
        }
    }

    /// Streams the next `chunk.size` body bytes (starting with `pending`,
    /// the rest of the previous frame) into the store. Each frame passes
    /// the throttle once, when it is read.
    async fn store_chunk<S, E>(
        &self,
        chunk: &ChunkSpec,
        body: &mut S,
        pending: &mut Bytes,
    ) -> Result<ChunkMeta, Failure>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::error::Error + 'static,
    {
        let (mut tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(2);
        let started = std::time::Instant::now();
        let write = self
            .store
            .write(&chunk.chunk_id, None, chunk.size, StreamReader::new(rx));
        let throttle = self.client.throttle();
        let pump = async move {
            let mut remaining = chunk.size;
            while remaining > 0 {
                if pending.is_empty() {
                    let cut = match body.next().await {
                        Some(Ok(frame)) => {
                            throttle.take(frame.len() as u64).await;
                            *pending = frame;
                            continue;
                        }
                        Some(Err(err)) => error_chain(&err),
                        None => format!(
                            "response ended {remaining} bytes before the end of chunk {}",
                            chunk.index
                        ),
                    };
                    // Make the store discard the partial chunk.
                    let _ = tx.send(Err(std::io::Error::other(cut.clone()))).await;
                    return Err(Failure::Transient(cut));
                }
                let piece = pending.split_to(pending.len().min(remaining as usize));
                remaining -= piece.len() as u64;
                if tx.send(Ok(piece)).await.is_err() {
                    // The store stopped reading; its error tells why.
                    break;
                }
            }
            Ok(())
        };
        let (written, pumped) = tokio::join!(write, pump);
        pumped?;
        if let Ok((_, meta)) = &written {
            self.store
                .metrics()
                .received(Path::Gcs, meta.size, started.elapsed());
        }
        written.map(|(_, meta)| meta).map_err(|source| {
            Failure::Permanent(GcsError::Store {
                chunk_id: chunk.chunk_id.clone(),
                source,
            })
        })
    }
}

#[cfg(test)]
mod tests;
