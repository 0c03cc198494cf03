//! Typed clients of both dfs HTTP APIs, shared by the CLI, the storage
//! servers and the naming server, so that every caller sends requests,
//! reads error replies and retries the same way.
//!
//! - [`ClusterAccess`]: the token and extra CA every client of a cluster
//!   uses (`DFS_TOKEN`, `DFS_CA_CERT`).
//! - [`NamingClient`]: the naming server's routes.
//! - [`StorageClient`]: the storage servers' routes.
//! - [`Error`]: how a call failed; a chained write's 502 with
//!   `x-dfs-failed-node` is [`Error::ChainFailed`]. One parser (`reply`)
//!   reads every error reply.
//! - [`RetryPolicy`]: exponential backoff with jitter, bounded in attempts.
//! - [`error_chain`]: an error and its causes on one line.

mod access;
mod error;
pub mod naming;
mod reply;
pub mod retry;
pub mod storage;
mod tls;

pub use access::ClusterAccess;
pub use error::{Error, error_chain};
pub use naming::NamingClient;
pub use retry::RetryPolicy;
pub use storage::{ChunkPut, StorageClient};
