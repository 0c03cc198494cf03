//! [`StoreError`]: every way a store operation can fail, and
//! [`IoContext`], which says what the store was doing when I/O failed.

use std::io::ErrorKind;

use dfs_common::validate::InvalidChunkId;
use thiserror::Error;

/// Why a store operation failed.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error(transparent)]
    InvalidId(#[from] InvalidChunkId),
    #[error("chunk not found")]
    NotFound,
    #[error("chunk is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("CRC32C mismatch: header says {expected:08x}, body has {actual:08x}")]
    CrcMismatch { expected: u32, actual: u32 },
    #[error("chunk already stored with CRC32C {existing:08x}, not {new:08x}")]
    Conflict { existing: u32, new: u32 },
    #[error("reading the upload failed: {0}")]
    Upload(#[source] std::io::Error),
    /// The disk of `DATA_DIR` has no space left (or the quota is used up).
    #[error("disk full ({context}: {source})")]
    Full {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// Attaches a description of what was being done to an I/O error.
pub(super) trait IoContext<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, StoreError>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, StoreError> {
        self.map_err(|source| {
            let context = what();
            match source.kind() {
                ErrorKind::StorageFull | ErrorKind::QuotaExceeded => {
                    StoreError::Full { context, source }
                }
                _ => StoreError::Io { context, source },
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_space_and_quota_errors_mean_the_disk_is_full() {
        for errno in [nix::libc::ENOSPC, nix::libc::EDQUOT] {
            let failed: std::io::Result<()> = Err(std::io::Error::from_raw_os_error(errno));
            let err = failed.context(|| "writing x".into()).expect_err("failed");
            assert!(matches!(err, StoreError::Full { .. }), "{err:?}");
            assert!(
                err.to_string().starts_with("disk full (writing x: "),
                "{err}"
            );
        }
        let failed: std::io::Result<()> = Err(std::io::Error::from_raw_os_error(nix::libc::EIO));
        let err = failed.context(|| "writing x".into()).expect_err("failed");
        assert!(matches!(err, StoreError::Io { .. }), "{err:?}");
    }
}
