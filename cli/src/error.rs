//! The one error type of the client library. Every variant displays as a
//! single line meant for the user; `main` prints it as `error: <line>`.

use reqwest::StatusCode;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    /// A server answered with an error status; `message` is its `error` text
    /// (or the status itself when the body was not the usual JSON).
    #[error("{message}")]
    Api { status: StatusCode, message: String },
    /// A chained chunk write failed below the first node; `failed_node` is
    /// the node the storage servers blame.
    #[error("{message}")]
    ChainFailed {
        failed_node: String,
        message: String,
    },
    /// A request never got an answer (refused, timed out, reset…).
    #[error("cannot reach {url}: {reason}")]
    Transport { url: String, reason: String },
    /// A server answered 2xx with something the client cannot use.
    #[error("unexpected response from {url}: {reason}")]
    BadResponse { url: String, reason: String },
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
}

impl Error {
    /// HTTP status of an [`Error::Api`], if that is what this is.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    /// Classifies a reqwest failure for `url`: no answer vs. an unusable one.
    pub(crate) fn from_reqwest(url: &str, err: &reqwest::Error) -> Self {
        let reason = reqwest_reason(err);
        if err.is_decode() {
            Self::BadResponse {
                url: url.to_owned(),
                reason,
            }
        } else {
            Self::Transport {
                url: url.to_owned(),
                reason,
            }
        }
    }
}

/// The most specific line of a reqwest error: its innermost cause
/// ("Connection refused (os error 111)") rather than "error sending request".
pub(crate) fn reqwest_reason(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        return "timed out".to_owned();
    }
    let mut innermost: &dyn std::error::Error = err;
    let mut depth = 0;
    while let Some(next) = innermost.source() {
        innermost = next;
        depth += 1;
        if depth > 16 {
            break;
        }
    }
    if depth == 0 {
        err.to_string()
    } else {
        innermost.to_string()
    }
}
