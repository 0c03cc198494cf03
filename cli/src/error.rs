//! The CLI's error type. Every variant displays as a single line meant for
//! the user; `main` prints it as `error: <line>`.

use thiserror::Error;

/// How a `dfs` command failed.
#[derive(Debug, Error)]
pub enum Error {
    /// A call to the naming server or a storage server failed.
    #[error(transparent)]
    Client(#[from] dfs_client::Error),
    /// The naming server stayed unreachable (or unavailable) through every
    /// retry of a call.
    #[error("{error} (the naming server stayed unavailable; gave up {what} after {} s)", waited.as_secs())]
    GaveUp {
        what: String,
        waited: std::time::Duration,
        #[source]
        error: dfs_client::Error,
    },
    /// Local filesystem trouble, with what was being done.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The user asked for something that cannot work (checked before any upload).
    #[error("{0}")]
    Invalid(String),
    /// One chunk could not be written or read, after trying every option.
    #[error("chunk {index}: {reason}")]
    Chunk { index: u64, reason: String },
    /// A distribution job the CLI followed ended in failure.
    #[error("distribution {job_id} failed: {reason}")]
    JobFailed { job_id: String, reason: String },
}

impl Error {
    /// Local I/O trouble while doing `context` ("cannot open …").
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    /// The server at `url` answered 2xx with something the CLI cannot use.
    pub(crate) fn bad_response(url: &str, reason: String) -> Self {
        Self::Client(dfs_client::Error::BadResponse {
            url: url.to_owned(),
            reason,
        })
    }
}
