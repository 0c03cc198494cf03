//! `PUT/GET/HEAD/DELETE /chunks/{chunk_id}`: chunk bytes, addressed by id.

use std::convert::Infallible;
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dfs_common::MAX_CHUNK_SIZE;
use dfs_common::api::patterns::{ChunkId, Crc32cHeader, ReplicateToHeader};
use dfs_common::api::{CRC32C_HEADER, ErrorBody, StoredChunk, chunk_etag, parse_crc32c};
use dfs_common::auth::CHUNK_SIGNATURE_HEADER;
use dfs_common::chain::ChainErrorBody;
use dfs_common::http::AppPath;
use futures::{StreamExt, TryStreamExt};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::io::{ReaderStream, StreamReader};
use utoipa::ToSchema;

use super::error::ApiError;
use super::range::{Requested, requested};
use super::state::AppState;
use crate::metrics::{Metrics, Path};
use crate::store::{ChunkMeta, StoreError, WriteOutcome};

/// Size of the reads that feed a GET response body.
const READ_BUF: usize = 256 * 1024;
/// A GET of at most this many bytes is read in the call that opens the
/// chunk; a larger one is streamed.
const SMALL_READ: u64 = 256 * 1024;
/// A chunk of at most this many bytes is passed down its replication chain
/// in a PUT, while it commits here ([`crate::replication::Replicator::push`]);
/// a larger one is pulled by the next node over the peer protocol once it is
/// stored here.
const PUSH_MAX: u64 = 1024 * 1024;
/// How long a refused upload's remaining body is read (and dropped) at most.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The reply to a write of chunk `chunk_id`, stored here as `meta`.
pub(super) fn stored_chunk(chunk_id: String, meta: ChunkMeta) -> StoredChunk {
    StoredChunk {
        chunk_id,
        size: meta.size,
        crc32c: meta.crc32c,
    }
}

/// The body of `PUT /chunks/{chunk_id}`: the chunk's raw bytes.
// Streamed as it comes, never buffered; the spec shows a binary string.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct ChunkBody(Body);

impl<S: Send + Sync> FromRequest<S> for ChunkBody {
    type Rejection = Infallible;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Infallible> {
        Ok(Self(request.into_body()))
    }
}

/// The body as a reader, or a 400 when it holds no byte: a chunk of a file
/// always has 1 to 64 MiB.
async fn not_empty(body: Body) -> Result<impl AsyncRead + Unpin, ApiError> {
    let mut data = body.into_data_stream().map_err(std::io::Error::other);
    let first = loop {
        match data.try_next().await {
            Ok(Some(bytes)) if bytes.is_empty() => {}
            Ok(Some(bytes)) => break bytes,
            Ok(None) => {
                return Err(ApiError::BadRequest(format!(
                    "empty body: a chunk has 1 to {MAX_CHUNK_SIZE} bytes"
                )));
            }
            Err(e) => return Err(StoreError::Upload(e).into()),
        }
    };
    let first = futures::stream::once(std::future::ready(Ok(first)));
    Ok(StreamReader::new(first.chain(data)))
}

/// Headers every chunk response carries.
fn chunk_headers(meta: ChunkMeta, content_length: u64) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(content_length));
    if let Ok(etag) = HeaderValue::from_str(&chunk_etag(meta.crc32c)) {
        headers.insert(header::ETAG, etag);
    }
    headers
}

/// Store a chunk. Only ids in the form the naming server makes are taken,
/// and, when the cluster has a token, only with the naming server's
/// signature of the id in `x-dfs-chunk-signature`. The body is streamed to
/// disk and only kept when its CRC32C equals the `x-dfs-crc32c` header.
/// With `x-dfs-replicate-to` (registered nodes only, at their registered
/// URLs), the chunk is passed down that chain of nodes, and the answer
/// comes once every one of them holds it: a chunk of up to 1 MiB in a PUT
/// to the next node while it commits here, a larger one pulled by the next
/// node over the peer protocol once it is stored here.
#[utoipa::path(
    put,
    path = "/chunks/{chunk_id}",
    tag = "chunks",
    params(
        ("chunk_id" = ChunkId, Path),
        ("x-dfs-crc32c" = Crc32cHeader, Header, description = "CRC32C of the body, decimal or 0x-prefixed hex"),
        ("x-dfs-replicate-to" = Option<ReplicateToHeader>, Header, nullable = false,
            description = "Nodes to replicate to after this one, in order: node_id=http_url pairs joined by commas"),
        ("x-dfs-chunk-signature" = Option<String>, Header,
            description = "The naming server's signature of the chunk id, from its allocation; required when the cluster has a token"),
    ),
    request_body(content = ChunkBody, content_type = "application/octet-stream",
        description = "The chunk's bytes: 1 byte to 64 MiB"),
    responses(
        (status = 201, description = "Stored", body = StoredChunk),
        (status = 200, description = "Already stored with the same CRC32C", body = StoredChunk),
        (status = 400, description = "Invalid id (or not one the naming server makes), missing/invalid CRC header, \
            invalid chain or one naming an unregistered node, empty body, or CRC mismatch", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 403, description = "Missing or wrong chunk-id signature", body = ErrorBody),
        (status = 409, description = "Already stored with another CRC32C", body = ErrorBody),
        (status = 413, description = "Body larger than 64 MiB", body = ErrorBody),
        (status = 507, description = "This node's disk is full: nothing was stored, and the node \
            reports itself full until space is freed", body = ErrorBody),
        (status = 502, description = "Stored here, but a node of the chain failed; `x-dfs-failed-node` names it",
            body = ChainErrorBody),
        (status = 503, description = "The naming server's node list, needed to check the chain, is unreachable",
            body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn put_chunk(
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
    headers: HeaderMap,
    ChunkBody(body): ChunkBody,
) -> Result<Response, ApiError> {
    dfs_common::validate::chunk_id(&id).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let signature = headers
        .get(CHUNK_SIGNATURE_HEADER)
        .map(|value| value.to_str().unwrap_or_default());
    state.admission.check(&id, signature)?;
    let crc = headers
        .get(CRC32C_HEADER)
        .ok_or_else(|| ApiError::BadRequest(format!("missing {CRC32C_HEADER} header")))?;
    let crc = crc
        .to_str()
        .ok()
        .and_then(parse_crc32c)
        .ok_or_else(|| ApiError::BadRequest(format!("invalid {CRC32C_HEADER} header")))?;
    let downstream = state.replicator.downstream(&headers).await?;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_CHUNK_SIZE) {
        return Err(ApiError::TooLarge(format!(
            "chunk is larger than the limit of {MAX_CHUNK_SIZE} bytes"
        )));
    }
    let mut reader = not_empty(body).await?;
    let started = Instant::now();
    let received = state
        .store
        .receive(&id, Some(crc), MAX_CHUNK_SIZE, &mut reader)
        .await;
    let received = match received {
        Err(full @ StoreError::Full { .. }) => {
            // Take the rest of the body, so that the client reads the 507
            // instead of a connection reset while it is still sending.
            let (mut rest, mut sink) = (reader.take(MAX_CHUNK_SIZE), tokio::io::sink());
            let _ =
                tokio::time::timeout(DRAIN_TIMEOUT, tokio::io::copy(&mut rest, &mut sink)).await;
            return Err(full.into());
        }
        received => received?,
    };
    let (meta, took) = (received.meta(), started.elapsed());
    let metrics = state.store.metrics();
    let (outcome, _) = if downstream.is_empty() || meta.size > PUSH_MAX {
        let committed = state.store.commit(received).await?;
        metrics.http_put_bytes.inc_by(meta.size);
        metrics.received(Path::Http, meta.size, took);
        state
            .replicator
            .forward(&id, meta, &downstream, signature)
            .await?;
        committed
    } else {
        // A small chunk goes down the chain while it commits here: the
        // nodes' syncs overlap instead of adding up.
        let data = received.bytes().await?;
        let pushed = state
            .replicator
            .push(&id, meta, data, &downstream, signature);
        let (committed, pushed) = tokio::join!(state.store.commit(received), pushed);
        let committed = committed?;
        metrics.http_put_bytes.inc_by(meta.size);
        metrics.received(Path::Http, meta.size, took);
        pushed?;
        metrics.sent(Path::Http, meta.size);
        committed
    };
    let status = match outcome {
        WriteOutcome::Created => {
            tracing::info!(chunk_id = %id, size = meta.size, "chunk stored");
            StatusCode::CREATED
        }
        WriteOutcome::AlreadyPresent => StatusCode::OK,
    };
    let mut response = (status, Json(stored_chunk(id, meta))).into_response();
    if let Ok(etag) = HeaderValue::from_str(&chunk_etag(meta.crc32c)) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    Ok(response)
}

/// Read a chunk, or one byte range of it.
///
/// Per RFC 9110, a `Range` of another unit, of several ranges or of invalid
/// syntax is ignored, as is one whose `If-Range` is not the chunk's ETag.
#[utoipa::path(
    get,
    path = "/chunks/{chunk_id}",
    tag = "chunks",
    params(
        ("chunk_id" = ChunkId, Path),
        ("Range" = Option<String>, Header, nullable = false, description = "One byte range, e.g. bytes=0-99, bytes=-100, bytes=100-; \
            another unit, several ranges or invalid syntax get the whole chunk"),
        ("If-Range" = Option<String>, Header, nullable = false, description = "Apply Range only if this is the chunk's ETag"),
    ),
    responses(
        (status = 200, description = "The whole chunk", content(("application/octet-stream"))),
        (status = 206, description = "The requested range, with Content-Range", content(("application/octet-stream"))),
        (status = 400, description = "Invalid chunk id", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 404, description = "No such chunk", body = ErrorBody),
        (status = 416, description = "Range not satisfiable; Content-Range: bytes */LEN", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_chunk(
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let metrics = state.store.metrics();
    metrics.http_chunk_gets.inc();
    // A small read whose bytes are all in memory is served right here;
    // anything else takes one blocking call, which opens the chunk, reads
    // what the request asks of it when that is small, or else positions the
    // file to stream from.
    let mut asked_cached = None;
    let cached = state.store.read_cached(&id, |meta| {
        let asked = requested(&headers, meta.size, &chunk_etag(meta.crc32c));
        let range = match &asked {
            Requested::Whole => Some((0, meta.size)),
            Requested::Part(range) => Some((*range.start(), range.end() - range.start() + 1)),
            Requested::Unsatisfiable => None,
        };
        asked_cached = Some(asked);
        range
    });
    if let (Some((meta, buf)), Some(asked)) = (cached, asked_cached) {
        return respond(meta, asked, Body::from(buf), metrics);
    }
    let (meta, asked, bytes) = state
        .store
        .read_with(&id, move |mut file, meta| {
            let asked = requested(&headers, meta.size, &chunk_etag(meta.crc32c));
            let (start, len) = match &asked {
                Requested::Whole => (0, meta.size),
                Requested::Part(range) => (*range.start(), range.end() - range.start() + 1),
                Requested::Unsatisfiable => return Ok((meta, asked, Bytes::Small(Vec::new()))),
            };
            let bytes = if len <= SMALL_READ {
                let mut buf = vec![0; usize::try_from(len).map_err(std::io::Error::other)?];
                file.read_exact_at(&mut buf, start)?;
                Bytes::Small(buf)
            } else {
                file.seek(SeekFrom::Start(start))?;
                Bytes::Stream(file, len)
            };
            Ok((meta, asked, bytes))
        })
        .await?;
    let body = match bytes {
        Bytes::Small(buf) => Body::from(buf),
        Bytes::Stream(file, len) => Body::from_stream(ReaderStream::with_capacity(
            tokio::fs::File::from_std(file).take(len),
            READ_BUF,
        )),
    };
    respond(meta, asked, body, metrics)
}

/// The reply to a GET of a chunk with `meta`: `body` holds what `asked`
/// asked for (counted as sent).
fn respond(
    meta: ChunkMeta,
    asked: Requested,
    body: Body,
    metrics: &Metrics,
) -> Result<Response, ApiError> {
    match asked {
        Requested::Whole => {
            metrics.sent(Path::Http, meta.size);
            Ok((chunk_headers(meta, meta.size), body).into_response())
        }
        Requested::Unsatisfiable => Err(ApiError::RangeNotSatisfiable { len: meta.size }),
        Requested::Part(range) => {
            let (start, end) = (*range.start(), *range.end());
            metrics.sent(Path::Http, end - start + 1);
            let mut response_headers = chunk_headers(meta, end - start + 1);
            if let Ok(value) = HeaderValue::from_str(&format!("bytes {start}-{end}/{}", meta.size))
            {
                response_headers.insert(header::CONTENT_RANGE, value);
            }
            Ok((StatusCode::PARTIAL_CONTENT, response_headers, body).into_response())
        }
    }
}

/// What a GET sends of a chunk: bytes already read, or the open file
/// positioned at the first byte, with the number of bytes to send.
enum Bytes {
    Small(Vec<u8>),
    Stream(std::fs::File, u64),
}

/// Size (Content-Length) and ETag of a chunk.
#[utoipa::path(
    head,
    path = "/chunks/{chunk_id}",
    tag = "chunks",
    params(("chunk_id" = ChunkId, Path)),
    responses(
        (status = 200, description = "The chunk exists; Content-Length and ETag describe it"),
        (status = 400, description = "Invalid chunk id"),
        (status = 401, description = "Missing or wrong bearer token"),
        (status = 404, description = "No such chunk"),
    ),
    security(("bearer" = []))
)]
pub async fn head_chunk(
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
) -> Result<Response, ApiError> {
    let meta = state.store.meta(&id).await?;
    Ok((chunk_headers(meta, meta.size), Body::empty()).into_response())
}

/// Delete a chunk.
#[utoipa::path(
    delete,
    path = "/chunks/{chunk_id}",
    tag = "chunks",
    params(("chunk_id" = ChunkId, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Invalid chunk id", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 404, description = "No such chunk", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn delete_chunk(
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
) -> Result<StatusCode, ApiError> {
    state.store.delete(&id).await?;
    tracing::info!(chunk_id = %id, "chunk deleted");
    Ok(StatusCode::NO_CONTENT)
}
