//! The peer listener. One task per connection sends the hello, checks the
//! answer to its challenge when the node has a token (refusing, counting
//! and closing on a wrong or missing one), then answers its requests in
//! turn: a response header, then the bytes straight from the chunk file
//! with `sendfile()` (never copied through user space), in pieces paced by
//! the node's send [`Throttle`].

use std::io::{self, ErrorKind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dfs_common::auth::Token;
use nix::sys::sendfile::sendfile64;
use tokio::fs::File;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt, Interest};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::handshake::{self, Hello};
use super::wire::{self, IO_TIMEOUT, MAX_WAIT, Request, ResponseHeader, Status, TO_END, WireError};
use crate::metrics::{Metrics, Path};
use crate::store::{ChunkMeta, ChunkStore, StoreError};
use crate::throttle::Throttle;

/// Largest piece handed to one `sendfile()` loop between throttle checks.
const MAX_PIECE: u64 = 1024 * 1024;
/// Smallest piece between throttle checks when a rate is set.
const MIN_PIECE: u64 = 16 * 1024;
/// Most bytes read and dropped from a refused connection before it closes.
const LINGER_BYTES: usize = 64 * 1024;
/// Longest a refused connection is kept for that.
const LINGER_TIME: Duration = Duration::from_secs(2);
/// Pause after a failed `accept` (e.g. out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Why a connection is refused, as the client reads it (never the token).
const REFUSED: &str = "peer authentication failed: wrong or missing answer to the challenge \
                       (do both nodes run with the same DFS_TOKEN?)";

/// Serves peer requests on `listener` from `store` until `shutdown` is
/// cancelled; open connections are dropped then. `throttle` paces every
/// byte this node sends. With a `token`, only connections that answer the
/// challenge with it are served.
pub async fn serve(
    listener: TcpListener,
    store: Arc<ChunkStore>,
    throttle: Arc<Throttle>,
    token: Option<Token>,
    shutdown: CancellationToken,
) {
    let tracker = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                store.metrics().peer_connections.inc();
                let connection = Connection {
                    store: store.clone(),
                    throttle: throttle.clone(),
                    token: token.clone(),
                };
                let shutdown = shutdown.clone();
                tracker.spawn(async move {
                    tokio::select! {
                        () = shutdown.cancelled() => {}
                        result = connection.run(stream) => if let Err(err) = result {
                            tracing::debug!(%peer, error = %err, "peer connection ended");
                        },
                    }
                });
            }
            Err(err) => {
                tracing::warn!(error = %err, "accepting a peer connection failed");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                }
            }
        }
    }
    tracker.close();
    tracker.wait().await;
}

struct Connection {
    store: Arc<ChunkStore>,
    throttle: Arc<Throttle>,
    token: Option<Token>,
}

impl Connection {
    /// Sends the hello; when the node has a token, checks the answer (a
    /// wrong or missing one is refused, counted, and the connection
    /// closed); then answers requests until the peer hangs up, goes idle
    /// for [`IO_TIMEOUT`], or sends something that is not a request.
    async fn run(self, mut stream: TcpStream) -> io::Result<()> {
        stream.set_nodelay(true)?;
        let hello = Hello::new(self.token.is_some());
        write_all(&mut stream, &hello.encode()).await?;
        if let Some(token) = &self.token {
            let read = tokio::time::timeout(IO_TIMEOUT, handshake::read_auth(&mut stream)).await;
            let refused = match read {
                Ok(Ok(answer)) => !handshake::verify(token, &hello.nonce, &answer),
                // Gone before answering: nothing to refuse.
                Ok(Err(WireError::Truncated)) => return Ok(()),
                Ok(Err(WireError::Io(err))) => return Err(err),
                Ok(Err(WireError::UnsupportedVersion(version))) => {
                    let message = format!("unsupported protocol version {version}");
                    let header = ResponseHeader::error(Status::UnsupportedVersion, &message);
                    return write_header(&mut stream, &header).await;
                }
                // Silent, or a request where the answer was due.
                Err(_) | Ok(Err(_)) => true,
            };
            if refused {
                self.store.metrics().peer_auth_failures.inc();
                let peer = stream
                    .peer_addr()
                    .map(|a| a.to_string())
                    .unwrap_or_default();
                tracing::warn!(%peer, "peer connection refused: wrong or missing answer to the challenge");
                let header = ResponseHeader::error(Status::Unauthorized, REFUSED);
                write_header(&mut stream, &header).await?;
                return linger(stream).await;
            }
        }
        loop {
            let read = tokio::time::timeout(IO_TIMEOUT, wire::read_request(&mut stream)).await;
            let request = match read {
                Err(_) | Ok(Ok(None)) => return Ok(()),
                Ok(Ok(Some(request))) => request,
                Ok(Err(WireError::Io(err))) => return Err(err),
                Ok(Err(WireError::Truncated)) => return Ok(()),
                Ok(Err(err)) => {
                    // The stream is out of step: say why, then hang up.
                    let status = match err {
                        WireError::UnsupportedVersion(_) => Status::UnsupportedVersion,
                        _ => Status::BadRequest,
                    };
                    self.store.metrics().peer_requests.inc();
                    let header = ResponseHeader::error(status, &err.to_string());
                    return write_header(&mut stream, &header).await;
                }
            };
            self.store.metrics().peer_requests.inc();
            self.answer(&mut stream, &request).await?;
        }
    }

    async fn answer(&self, stream: &mut TcpStream, request: &Request) -> io::Result<()> {
        let (mut file, meta) = match self.open(request).await {
            Ok(found) => found,
            Err(header) => return write_header(stream, &header).await,
        };
        let Some((offset, length)) = byte_range(meta.size, request.offset, request.length) else {
            let message = format!(
                "range at {} of {} bytes is outside chunk {} of {} bytes",
                request.offset, request.length, request.chunk_id, meta.size
            );
            let header = ResponseHeader::error(Status::RangeNotSatisfiable, &message);
            return write_header(stream, &header).await;
        };
        let crc32c = if length == meta.size {
            meta.crc32c
        } else {
            range_crc(&mut file, offset, length).await?
        };
        let header = ResponseHeader {
            status: Status::Ok,
            chunk_size: meta.size,
            chunk_crc32c: meta.crc32c,
            length,
            crc32c,
            message: String::new(),
        };
        write_header(stream, &header).await?;
        let file = file.into_std().await;
        let metrics = self.store.metrics();
        let started = Instant::now();
        send_file(stream, &file, offset, length, &self.throttle, metrics).await?;
        metrics.peer_send_took(length, started.elapsed());
        metrics.sent(Path::Peer, length);
        Ok(())
    }

    /// Opens the chunk, waiting for it as long as the request allows (at
    /// most [`MAX_WAIT`]); an error response when that fails.
    async fn open(&self, request: &Request) -> Result<(File, ChunkMeta), ResponseHeader> {
        let id = request.chunk_id.as_str();
        let wait = Duration::from_millis(u64::from(request.wait_ms)).min(MAX_WAIT);
        let mut opened = self.store.open_chunk(id).await;
        if matches!(opened, Err(StoreError::NotFound)) && !wait.is_zero() {
            opened = match self.store.wait_for(id, wait).await {
                Ok(_) => self.store.open_chunk(id).await,
                Err(err) => Err(err),
            };
        }
        opened.map_err(|err| match err {
            StoreError::NotFound => {
                ResponseHeader::error(Status::NotFound, &format!("chunk {id} not found"))
            }
            StoreError::InvalidId(err) => {
                ResponseHeader::error(Status::BadRequest, &err.to_string())
            }
            err => {
                tracing::error!(chunk_id = id, error = %err, "cannot serve a chunk to a peer");
                ResponseHeader::error(Status::Internal, "storage error on the sending node")
            }
        })
    }
}

/// The `(offset, length)` a request asks of a chunk of `size` bytes, or
/// `None` when it reaches past the end.
fn byte_range(size: u64, offset: u64, length: u64) -> Option<(u64, u64)> {
    let available = size.checked_sub(offset)?;
    if length == TO_END {
        return Some((offset, available));
    }
    (length <= available).then_some((offset, length))
}

/// CRC32C of part of a chunk (whole chunks use the CRC in their meta).
async fn range_crc(file: &mut File, offset: u64, length: u64) -> io::Result<u32> {
    file.seek(io::SeekFrom::Start(offset)).await?;
    let mut part = file.take(length);
    let mut buf = vec![0u8; 256 * 1024];
    let mut crc = 0;
    loop {
        let n = part.read(&mut buf).await?;
        if n == 0 {
            return Ok(crc);
        }
        crc = crc32c::crc32c_append(crc, &buf[..n]);
    }
}

/// Closes a refused connection so that the refusal reaches the client:
/// hangs up the sending side, then reads and drops what the client had
/// already sent (its request after the answer), for at most
/// [`LINGER_BYTES`] or [`LINGER_TIME`]. Closing with unread bytes would
/// reset the connection, and a reset can destroy the refusal in flight.
async fn linger(mut stream: TcpStream) -> io::Result<()> {
    stream.shutdown().await?;
    let mut sink = [0u8; 4096];
    let mut left = LINGER_BYTES;
    let drain = async {
        while left > 0 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, drain).await;
    Ok(())
}

async fn write_header(stream: &mut TcpStream, header: &ResponseHeader) -> io::Result<()> {
    write_all(stream, &header.encode()).await
}

async fn write_all(stream: &mut TcpStream, bytes: &[u8]) -> io::Result<()> {
    tokio::time::timeout(IO_TIMEOUT, stream.write_all(bytes))
        .await
        .map_err(|_| io::Error::new(ErrorKind::TimedOut, "peer stopped reading"))?
}

/// Sends `length` bytes of `file` from `offset` with `sendfile()`, taking
/// each piece from `throttle` first.
async fn send_file(
    stream: &TcpStream,
    file: &std::fs::File,
    offset: u64,
    length: u64,
    throttle: &Throttle,
    metrics: &Metrics,
) -> io::Result<()> {
    let piece_size = throttle
        .rate()
        .map_or(MAX_PIECE, |rate| (rate / 10).clamp(MIN_PIECE, MAX_PIECE));
    let mut position = i64::try_from(offset)
        .map_err(|_| io::Error::new(ErrorKind::InvalidInput, "offset out of range"))?;
    let mut left = length;
    while left > 0 {
        let piece = left.min(piece_size);
        throttle.take(piece).await;
        let mut piece_left = piece;
        while piece_left > 0 {
            tokio::time::timeout(IO_TIMEOUT, stream.writable())
                .await
                .map_err(|_| io::Error::new(ErrorKind::TimedOut, "peer stopped reading"))??;
            let count = usize::try_from(piece_left).unwrap_or(usize::MAX);
            let sent = stream.try_io(Interest::WRITABLE, || {
                sendfile64(stream, file, Some(&mut position), count).map_err(io::Error::from)
            });
            match sent {
                Ok(0) => {
                    return Err(io::Error::new(
                        ErrorKind::UnexpectedEof,
                        "chunk file is shorter than its meta",
                    ));
                }
                Ok(n) => {
                    metrics.peer_sendfile_calls.inc();
                    metrics.peer_sendfile_bytes.inc_by(n as u64);
                    piece_left -= n as u64;
                }
                Err(err)
                    if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                Err(err) => return Err(err),
            }
        }
        left -= piece;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_ranges() {
        assert_eq!(byte_range(10, 0, TO_END), Some((0, 10)));
        assert_eq!(byte_range(10, 4, TO_END), Some((4, 6)));
        assert_eq!(byte_range(10, 10, TO_END), Some((10, 0)));
        assert_eq!(byte_range(10, 2, 8), Some((2, 8)));
        assert_eq!(byte_range(10, 2, 9), None);
        assert_eq!(byte_range(10, 11, 0), None);
        assert_eq!(byte_range(10, u64::MAX, 1), None);
        assert_eq!(byte_range(0, 0, TO_END), Some((0, 0)));
    }
}
