//! [`DomainError`]: why a rule refused or could not do its work. The HTTP
//! layer maps it to statuses in one place (`http/error.rs`).

use thiserror::Error;

use crate::store::StoreError;

#[derive(Debug, Error)]
pub enum DomainError {
    /// The request breaks a rule (a bad name, size, index, chunk list…).
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// The request contradicts the current state (a name taken, a file
    /// already committed, a node still alive).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooLarge(String),
    /// Too few live storage nodes (or with room), or a storage node that
    /// could not do its part: the cluster cannot do it now.
    #[error("{0}")]
    Unavailable(String),
    /// Briefly unable to answer: the metadata store does not answer, or
    /// this server started too recently to have heard from every live
    /// node. Clients should wait a moment and ask again.
    #[error("{0}")]
    TryLater(String),
    /// A bug or corrupt metadata.
    #[error("{0}")]
    Internal(String),
}

pub type DomainResult<T> = Result<T, DomainError>;

impl From<StoreError> for DomainError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => Self::NotFound(m),
            StoreError::Conflict(m) => Self::Conflict(m),
            StoreError::Unavailable(_) => Self::TryLater(e.to_string()),
            StoreError::BadUrl(_) => Self::Unavailable(e.to_string()),
            StoreError::Internal(_) => Self::Internal(e.to_string()),
        }
    }
}
