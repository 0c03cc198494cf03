//! Types and rules shared by every dfs crate.
//!
//! - [`api`]: the JSON bodies exchanged with the naming server and the
//!   headers used with storage servers. Both servers generate their OpenAPI
//!   specs from these types.
//! - [`auth`]: the cluster token (`DFS_TOKEN`): the bearer check, signed
//!   chunk ids, the keyed MAC of the peer handshake.
//! - [`check`]: the rules of every request body ([`check::Check`]), the
//!   ones the OpenAPI specs declare; the extractors of [`http`] apply them.
//! - [`chain`]: chain replication on write: the `x-dfs-replicate-to` header
//!   and the body of `POST /chunks/{chunk_id}/replicate`.
//! - [`ids`]: the shape of the file and chunk ids the naming server makes.
//! - [`layout`]: where a storage node keeps its chunks under `DATA_DIR`,
//!   for the storage server and for a `dfs` reading its own node's chunks.
//! - [`validate`]: the rules for file names and chunk ids, applied on every
//!   side of the wire.
//! - [`gcs`]: `gs://bucket/object` URLs, the source of `dfs seed`.
//! - [`shutdown`]: Ctrl-C / SIGTERM → a `CancellationToken`, for both servers.
//! - [`http`] (feature `axum`): what both servers' handlers share: the
//!   extractors that reject bad input as a JSON 400/413, the
//!   `{"error": …}` response and the bearer-token check; [`serve`]: their
//!   HTTP or HTTPS (`TLS_CERT`, `TLS_KEY`) serve loop; [`logging`]: their
//!   logs, text or JSON (`LOG_FORMAT`); [`metrics`]: their request-latency
//!   histograms and `GET /metrics` in the OpenMetrics text format.
//! - [`units`]: human-readable sizes (`8MiB`), durations (`15s`) and
//!   bandwidths (`10m` = 10 Mbit/s) for flags and environment variables.

pub mod api;
pub mod auth;
pub mod chain;
pub mod check;
pub mod gcs;
#[cfg(feature = "axum")]
pub mod http;
pub mod ids;
pub mod layout;
#[cfg(feature = "axum")]
pub mod logging;
#[cfg(feature = "axum")]
pub mod metrics;
#[cfg(feature = "axum")]
pub mod serve;
pub mod shutdown;
pub mod units;
pub mod validate;

/// Smallest chunk size a file may use.
pub const MIN_CHUNK_SIZE: u64 = 64 * 1024;
/// Largest chunk size a file may use; also the largest body a storage server accepts.
pub const MAX_CHUNK_SIZE: u64 = 64 * 1024 * 1024;
/// Largest file the naming server accepts (1 PiB); beyond it, 413.
pub const MAX_FILE_SIZE: u64 = 1 << 50;
/// Largest replication factor a file may ask for.
pub const MAX_REPLICATION: u32 = 16;

/// Number of chunks a file of `size` bytes has with chunks of `chunk_size`
/// bytes. An empty file has none.
pub fn chunk_count(size: u64, chunk_size: u64) -> u64 {
    size.div_ceil(chunk_size)
}

/// Size of chunk `index` of a file, or `None` when the index is out of range.
pub fn chunk_len(size: u64, chunk_size: u64, index: u64) -> Option<u64> {
    let start = index.checked_mul(chunk_size)?;
    (start < size).then(|| (size - start).min(chunk_size))
}

/// The CRC32C (Castagnoli) of `data`.
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

/// Unix time in milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_math_covers_edges() {
        assert_eq!(chunk_count(0, 64), 0);
        assert_eq!(chunk_count(1, 64), 1);
        assert_eq!(chunk_count(64, 64), 1);
        assert_eq!(chunk_count(65, 64), 2);
        assert_eq!(chunk_len(65, 64, 0), Some(64));
        assert_eq!(chunk_len(65, 64, 1), Some(1));
        assert_eq!(chunk_len(65, 64, 2), None);
        assert_eq!(chunk_len(0, 64, 0), None);
        assert_eq!(chunk_len(10, 64, u64::MAX), None);
    }
}
