//! The peer transfer protocol: storage nodes move chunks between themselves
//! over raw TCP (the listener on `TCP_PORT`), the sender writing with
//! `sendfile()` straight from the chunk file. `PROTOCOL.md` beside this file
//! is the wire reference.
//!
//! - [`wire`]: request and response framing; [`handshake`]: the hello and
//!   the challenge–response that open every connection (HMAC-SHA256 keyed
//!   by the cluster token, when it has one).
//! - [`serve`]: the listener (one task per connection, requests in turn).
//! - [`Session`]: one authenticated connection to a peer that receives
//!   chunk after chunk into the local
//!   [`ChunkStore`](crate::store::ChunkStore)'s temp space, verified
//!   against the sender's CRC32C and the caller's expectations, for the
//!   caller to commit; [`fetch`]: one chunk, stored, over a connection of
//!   its own; [`PeerError`] says why either failed.
//!
//! A request may ask the server to wait for a chunk it does not hold yet
//! (up to [`wire::MAX_WAIT`]), so a node can ask for chunk i+1 while its
//! upstream is still receiving it: chunks pipeline down a chain.

mod client;
pub mod handshake;
mod server;
pub mod wire;

pub use client::{Expected, PeerError, Session, fetch};
pub use server::serve;
