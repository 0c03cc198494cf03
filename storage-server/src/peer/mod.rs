//! The peer transfer protocol: storage nodes move chunks between themselves
//! over raw TCP (the listener on `TCP_PORT`), the sender writing with
//! `sendfile()` straight from the chunk file. `PROTOCOL.md` beside this file
//! is the wire reference.
//!
//! - [`wire`]: request and response framing.
//! - [`serve`]: the listener (one task per connection, requests in turn).
//! - [`fetch`]: pull one chunk from a peer into the local [`ChunkStore`],
//!   verified against the sender's CRC32C and the caller's expectations.
//!
//! A request may ask the server to wait for a chunk it does not hold yet
//! (up to [`MAX_WAIT`]), so a node can ask for chunk i+1 while its upstream
//! is still receiving it: chunks pipeline down a chain.

mod client;
mod server;
pub mod wire;

use std::time::Duration;

use thiserror::Error;

use crate::store::StoreError;
pub use client::{Expected, fetch};
pub use server::serve;

/// How long [`fetch`] waits for a TCP connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest silence tolerated while a frame or payload is on the wire, on
/// either side.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest a server waits for a chunk that has not arrived; longer waits
/// asked for are cut to this.
pub const MAX_WAIT: Duration = Duration::from_secs(60);
/// Largest piece handed to one `sendfile()` loop between throttle checks.
pub const MAX_PIECE: u64 = 1024 * 1024;

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
