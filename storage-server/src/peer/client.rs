//! [`Session`]: one authenticated connection to a peer, over which whole
//! chunks are received into the local store, one request after another;
//! [`fetch`]: one chunk over a connection of its own; [`PeerError`]: why
//! either failed.

use std::io::{self, ErrorKind};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use dfs_common::MAX_CHUNK_SIZE;
use dfs_common::auth::Token;
use prometheus_client::metrics::counter::Counter;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use super::handshake;
use super::wire::{self, IO_TIMEOUT, MAX_WAIT, Request, Status};
use crate::metrics::Path;
use crate::store::{ChunkMeta, ChunkStore, Received, StoreError};

/// How long [`fetch`] waits for a TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why [`fetch`] failed. Each variant says what the caller should do next.
#[derive(Debug, Error)]
pub enum PeerError {
    /// No connection could be made (refused, unreachable, timed out): the
    /// source is down; try another one.
    #[error("cannot connect to peer {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// The connection broke or went silent mid-transfer: the source (or the
    /// network to it) is failing; try another one or retry.
    #[error("connection to peer {addr} lost: {source}")]
    ConnectionLost {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// The source does not have the chunk (after waiting as long as asked).
    #[error("peer {addr} does not have chunk {chunk_id}")]
    NotFound { addr: String, chunk_id: String },
    /// The bytes, or the CRC32C the source announced, do not match. Nothing
    /// was stored; fetch again, preferably from another source.
    #[error(
        "CRC32C mismatch for chunk {chunk_id} from peer {addr}: expected {expected:08x}, got {actual:08x}"
    )]
    CrcMismatch {
        addr: String,
        chunk_id: String,
        expected: u32,
        actual: u32,
    },
    /// The source's copy has another size than expected. Nothing was stored.
    #[error(
        "size mismatch for chunk {chunk_id} from peer {addr}: expected {expected} bytes, it has {actual}"
    )]
    SizeMismatch {
        addr: String,
        chunk_id: String,
        expected: u64,
        actual: u64,
    },
    /// The source refused this node: it requires the cluster token and
    /// this node has none, or another one.
    #[error("peer {addr} refused the connection: {message}")]
    Unauthorized { addr: String, message: String },
    /// The source refused the request or failed on its side (bad request,
    /// unsupported version, disk error), with its message.
    #[error("peer {addr} refused chunk {chunk_id}: {message}")]
    Remote {
        addr: String,
        chunk_id: String,
        message: String,
    },
    /// The source answered something that is not this protocol.
    #[error("peer {addr} broke the protocol: {source}")]
    Protocol {
        addr: String,
        #[source]
        source: wire::WireError,
    },
    /// The local store failed (invalid id, disk error, or the chunk is
    /// already stored with another CRC32C).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the caller knows about the chunk; a transfer that disagrees stores
/// nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expected {
    pub size: Option<u64>,
    pub crc32c: Option<u32>,
}

impl Expected {
    /// Whether a stored chunk with `meta` is the one expected.
    pub fn accepts(&self, meta: ChunkMeta) -> bool {
        self.size.is_none_or(|size| size == meta.size)
            && self.crc32c.is_none_or(|crc| crc == meta.crc32c)
    }
}

/// Fetches chunk `chunk_id` from the peer at `addr` (`host:port`) into
/// `store`, over a connection of its own, and returns its meta. The peer
/// may wait up to `wait` (capped at [`MAX_WAIT`]) for the chunk to arrive
/// on its side. `token` answers the peer's challenge when it asks for one.
///
/// The bytes go through the store's write path (temp file, CRC32C check,
/// fsync, rename), checked against the CRC32C the peer announces and against
/// `expected`; on any mismatch nothing is stored. A chunk already stored
/// here that matches `expected` is returned without contacting the peer.
pub async fn fetch(
    addr: &str,
    chunk_id: &str,
    expected: Expected,
    wait: Duration,
    store: &ChunkStore,
    token: Option<&Token>,
) -> Result<ChunkMeta, PeerError> {
    match store.meta(chunk_id).await {
        Ok(meta) if expected.accepts(meta) => return Ok(meta),
        Ok(_) | Err(StoreError::NotFound) => {}
        Err(err) => return Err(err.into()),
    }
    let mut session = Session::open(addr, token).await?;
    let received = session.receive(chunk_id, expected, wait, store).await?;
    Ok(store.commit(received).await?.1)
}

/// A connection to one peer, authenticated once, that carries one request
/// after another. After an error other than [`PeerError::NotFound`] the
/// stream may be out of step: drop the session.
#[derive(Debug)]
pub struct Session {
    addr: String,
    stream: TcpStream,
    /// The answer to the peer's challenge, sent with the first request.
    preamble: Vec<u8>,
    /// Requests answered so far.
    answered: u64,
}

impl Session {
    /// Connects to the peer at `addr` (`host:port`) and reads its hello;
    /// `token` answers its challenge when it asks for one.
    pub async fn open(addr: &str, token: Option<&Token>) -> Result<Self, PeerError> {
        let mut stream = connect(addr).await?;
        let preamble = authenticate(addr, &mut stream, token).await?;
        Ok(Self {
            addr: addr.to_owned(),
            stream,
            preamble,
            answered: 0,
        })
    }

    /// Whether this connection has carried a request already (and so may
    /// have been closed by the peer while idle).
    pub fn is_used(&self) -> bool {
        self.answered > 0
    }

    /// Asks for chunk `chunk_id` (the peer may wait up to `wait`, capped at
    /// [`MAX_WAIT`], for it to arrive on its side) and receives it into
    /// `store`'s temp space, checked against the CRC32C the peer announces
    /// and against `expected`. The caller commits it
    /// ([`ChunkStore::commit`]); on any mismatch nothing is kept.
    pub async fn receive(
        &mut self,
        chunk_id: &str,
        expected: Expected,
        wait: Duration,
        store: &ChunkStore,
    ) -> Result<Received, PeerError> {
        let addr = self.addr.as_str();
        let wait = wait.min(MAX_WAIT);
        let lost = |source: io::Error| PeerError::ConnectionLost {
            addr: addr.to_owned(),
            source,
        };
        let wait_ms = u32::try_from(wait.as_millis()).unwrap_or(u32::MAX);
        let mut frames = std::mem::take(&mut self.preamble);
        frames.extend(Request::whole(chunk_id, wait_ms).encode());
        with_timeout(IO_TIMEOUT, self.stream.write_all(&frames))
            .await
            .map_err(lost)?;
        let response = wire::read_response(&mut self.stream);
        let header = receive(addr, wait + IO_TIMEOUT, "response", response).await?;
        self.answered += 1;
        match header.status {
            Status::Ok => {}
            Status::NotFound => {
                return Err(PeerError::NotFound {
                    addr: addr.to_owned(),
                    chunk_id: chunk_id.to_owned(),
                });
            }
            Status::Unauthorized => {
                return Err(PeerError::Unauthorized {
                    addr: addr.to_owned(),
                    message: header.message,
                });
            }
            _ => {
                return Err(PeerError::Remote {
                    addr: addr.to_owned(),
                    chunk_id: chunk_id.to_owned(),
                    message: header.message,
                });
            }
        }
        let mismatch_size = |expected: u64, actual: u64| PeerError::SizeMismatch {
            addr: addr.to_owned(),
            chunk_id: chunk_id.to_owned(),
            expected,
            actual,
        };
        if header.length != header.chunk_size {
            return Err(mismatch_size(header.chunk_size, header.length));
        }
        if let Some(size) = expected.size.filter(|&size| size != header.length) {
            return Err(mismatch_size(size, header.length));
        }
        if header.length > MAX_CHUNK_SIZE {
            return Err(mismatch_size(MAX_CHUNK_SIZE, header.length));
        }
        let crc_mismatch = |expected: u32, actual: u32| {
            store.metrics().peer_crc_mismatches.inc();
            PeerError::CrcMismatch {
                addr: addr.to_owned(),
                chunk_id: chunk_id.to_owned(),
                expected,
                actual,
            }
        };
        if let Some(crc) = expected.crc32c.filter(|&crc| crc != header.crc32c) {
            return Err(crc_mismatch(crc, header.crc32c));
        }
        let metrics = store.metrics();
        let started = Instant::now();
        let payload = Payload::new(
            &mut self.stream,
            header.length,
            metrics.peer_received_bytes.clone(),
        );
        match store
            .receive(chunk_id, Some(header.crc32c), header.length, payload)
            .await
        {
            Ok(received) => {
                metrics.received(Path::Peer, header.length, started.elapsed());
                Ok(received)
            }
            Err(StoreError::CrcMismatch { expected, actual }) => {
                Err(crc_mismatch(expected, actual))
            }
            Err(StoreError::Upload(source)) => Err(lost(source)),
            Err(err) => Err(err.into()),
        }
    }
}

/// Reads the peer's hello; the frames to send before the first request:
/// the answer to its challenge when it asks for one.
async fn authenticate(
    addr: &str,
    stream: &mut TcpStream,
    token: Option<&Token>,
) -> Result<Vec<u8>, PeerError> {
    let hello = receive(addr, IO_TIMEOUT, "hello", handshake::read_hello(stream)).await?;
    if !hello.auth_required {
        return Ok(Vec::new());
    }
    let token = token.ok_or_else(|| PeerError::Unauthorized {
        addr: addr.to_owned(),
        message: "it requires authentication, and this node has no DFS_TOKEN".to_owned(),
    })?;
    Ok(handshake::encode_auth(&handshake::answer(token, &hello.nonce)).to_vec())
}

/// A frame from the peer at `addr` within `limit`: silence, a broken
/// link or a close before the `what` is `ConnectionLost`; anything that is
/// not this protocol is `Protocol`.
async fn receive<T>(
    addr: &str,
    limit: Duration,
    what: &str,
    frame: impl Future<Output = Result<T, wire::WireError>>,
) -> Result<T, PeerError> {
    let lost = |source: io::Error| PeerError::ConnectionLost {
        addr: addr.to_owned(),
        source,
    };
    match tokio::time::timeout(limit, frame).await {
        Err(_) => Err(lost(timed_out())),
        Ok(Err(wire::WireError::Io(err))) => Err(lost(err)),
        Ok(Err(wire::WireError::Truncated)) => Err(lost(io::Error::new(
            ErrorKind::UnexpectedEof,
            format!("connection closed before the {what}"),
        ))),
        Ok(Err(source)) => Err(PeerError::Protocol {
            addr: addr.to_owned(),
            source,
        }),
        Ok(Ok(frame)) => Ok(frame),
    }
}

async fn connect(addr: &str) -> Result<TcpStream, PeerError> {
    let failed = |source: io::Error| PeerError::Connect {
        addr: addr.to_owned(),
        source,
    };
    let stream = with_timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(failed)?;
    stream.set_nodelay(true).map_err(failed)?;
    Ok(stream)
}

async fn with_timeout<T>(
    limit: Duration,
    work: impl Future<Output = io::Result<T>>,
) -> io::Result<T> {
    tokio::time::timeout(limit, work)
        .await
        .unwrap_or_else(|_| Err(timed_out()))
}

fn timed_out() -> io::Error {
    io::Error::new(ErrorKind::TimedOut, "peer went silent")
}

/// The payload of a response: exactly `remaining` bytes of the stream.
/// Ending early is an [`ErrorKind::UnexpectedEof`] error, and
/// [`IO_TIMEOUT`] without a byte is an [`ErrorKind::TimedOut`] one, so a
/// dead sender is never mistaken for a complete (and then corrupt) chunk.
struct Payload<'a> {
    stream: &'a mut TcpStream,
    remaining: u64,
    idle: Pin<Box<Sleep>>,
    /// `dfs_peer_received_bytes_total`, counted as bytes arrive.
    arrived: Counter,
}

impl<'a> Payload<'a> {
    fn new(stream: &'a mut TcpStream, length: u64, arrived: Counter) -> Self {
        Self {
            stream,
            remaining: length,
            idle: Box::pin(tokio::time::sleep(IO_TIMEOUT)),
            arrived,
        }
    }
}

impl AsyncRead for Payload<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.remaining == 0 || buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let want = usize::try_from(this.remaining)
            .unwrap_or(usize::MAX)
            .min(buf.remaining());
        let mut limited = ReadBuf::new(buf.initialize_unfilled_to(want));
        match Pin::new(&mut *this.stream).poll_read(cx, &mut limited) {
            Poll::Ready(Ok(())) => {
                let n = limited.filled().len();
                if n == 0 {
                    return Poll::Ready(Err(io::Error::new(
                        ErrorKind::UnexpectedEof,
                        format!("connection closed {} bytes short", this.remaining),
                    )));
                }
                buf.advance(n);
                this.remaining -= n as u64;
                this.arrived.inc_by(n as u64);
                this.idle.as_mut().reset(Instant::now() + IO_TIMEOUT);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => match this.idle.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(timed_out())),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}
