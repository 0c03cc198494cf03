//! [`StoreError`], and the future every store method returns.

use std::future::Future;
use std::pin::Pin;

use thiserror::Error;

/// What a store operation can fail with.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("metadata store unavailable: {0}")]
    Unavailable(String),
    #[error("invalid metadata store URL: {0}")]
    BadUrl(String),
    /// Unexpected data or a failing script: a bug, not the caller's fault.
    #[error("metadata store error: {0}")]
    Internal(String),
}

pub type StoreResult<T> = Result<T, StoreError>;
/// The future every store method returns (boxed so the traits are `dyn`-safe).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = StoreResult<T>> + Send + 'a>>;
