//! [`Error`]: how a call to a dfs server failed, each value one line for a
//! user or a log; and [`error_chain`], the one way dfs prints an error with
//! its causes.

use reqwest::StatusCode;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    /// The server answered with an error status; `message` is its
    /// `{"error": …}` text (or the status itself when the body was not the
    /// usual JSON); `retry_after` its `Retry-After` in seconds, when it
    /// said how soon to ask again.
    #[error("{message}")]
    Api {
        status: StatusCode,
        message: String,
        retry_after: Option<u64>,
    },
    /// A chained chunk write failed (a 502 naming a node in
    /// `x-dfs-failed-node`): `failed_node` is the node the storage servers
    /// blame; the nodes above it in the chain hold the chunk.
    #[error("{message}")]
    ChainFailed {
        failed_node: String,
        message: String,
    },
    /// No connection could be made (refused, no route, connect timeout):
    /// the request was never sent, so it may go to another replica.
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// The call got no answer (reset, timed out…) after it was sent.
    #[error("cannot reach {url}: {reason}")]
    Transport { url: String, reason: String },
    /// The server answered 2xx with something the client cannot use.
    #[error("unexpected response from {url}: {reason}")]
    BadResponse { url: String, reason: String },
    /// A base URL the client was given cannot be used.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// The client could not be set up (an unusable `DFS_CA_CERT`, no TLS).
    #[error("{0}")]
    Setup(String),
}

impl Error {
    /// The HTTP status of an [`Error::Api`].
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Worth trying again: no answer, an unreadable answer, or a status
    /// that says "not now" (408, 429, 5xx). A chain failure is not: the
    /// caller picks other nodes instead.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable { .. } | Self::Transport { .. } | Self::BadResponse { .. } => true,
            Self::Api { status, .. } => {
                status.is_server_error()
                    || *status == StatusCode::REQUEST_TIMEOUT
                    || *status == StatusCode::TOO_MANY_REQUESTS
            }
            Self::ChainFailed { .. } | Self::InvalidUrl { .. } | Self::Setup(_) => false,
        }
    }

    /// The server is down, restarting or briefly unable to answer, and
    /// waiting is the cure: no answer (or an unreadable one), a proxy's
    /// 502 or 504 in front of it, a 408, or a 429 or 503 carrying
    /// `Retry-After`. A 503 without it (too few storage nodes, say) is an
    /// answer to act on, not an outage to wait out.
    pub fn is_outage(&self) -> bool {
        match self {
            Self::Unreachable { .. } | Self::Transport { .. } | Self::BadResponse { .. } => true,
            Self::Api {
                status,
                retry_after,
                ..
            } => match *status {
                StatusCode::BAD_GATEWAY
                | StatusCode::GATEWAY_TIMEOUT
                | StatusCode::REQUEST_TIMEOUT => true,
                StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS => {
                    retry_after.is_some()
                }
                _ => false,
            },
            Self::ChainFailed { .. } | Self::InvalidUrl { .. } | Self::Setup(_) => false,
        }
    }

    /// A reqwest failure of a call to `url`: no answer, or an unusable one.
    pub(crate) fn from_reqwest(url: &str, err: reqwest::Error) -> Self {
        let (decode, connect) = (err.is_decode(), err.is_connect());
        let reason = error_chain(&err.without_url());
        if decode {
            Self::BadResponse {
                url: url.to_owned(),
                reason,
            }
        } else if connect {
            Self::Unreachable {
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

/// `err` and its sources on one line, `: `-separated, leaving out a cause
/// the text already says (reqwest's own message hides the interesting
/// part, such as "Connection refused", in its sources).
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_name_every_cause_once() {
        let inner = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let outer = std::io::Error::other(inner);
        assert_eq!(error_chain(&outer), "refused");
        #[derive(Debug, Error)]
        #[error("sending the request")]
        struct Outer(#[source] std::io::Error);
        let err = Outer(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "timed out",
        ));
        assert_eq!(error_chain(&err), "sending the request: timed out");
    }

    #[test]
    fn transient_errors_are_the_retryable_ones() {
        let api = |status| Error::Api {
            status,
            message: String::new(),
            retry_after: None,
        };
        assert!(api(StatusCode::SERVICE_UNAVAILABLE).is_transient());
        assert!(api(StatusCode::TOO_MANY_REQUESTS).is_transient());
        assert!(!api(StatusCode::NOT_FOUND).is_transient());
        assert!(!api(StatusCode::CONFLICT).is_transient());
        let chain = Error::ChainFailed {
            failed_node: "n".into(),
            message: String::new(),
        };
        assert!(!chain.is_transient());
        let transport = Error::Transport {
            url: "u".into(),
            reason: "reset".into(),
        };
        assert!(transport.is_transient());
        let unreachable = Error::Unreachable {
            url: "u".into(),
            reason: "refused".into(),
        };
        assert!(unreachable.is_transient() && unreachable.is_outage());
    }

    #[test]
    fn outages_are_what_waiting_cures() {
        let api = |status, retry_after| Error::Api {
            status,
            message: String::new(),
            retry_after,
        };
        let transport = Error::Transport {
            url: "u".into(),
            reason: "refused".into(),
        };
        assert!(transport.is_outage());
        assert!(api(StatusCode::SERVICE_UNAVAILABLE, Some(1)).is_outage());
        assert!(api(StatusCode::BAD_GATEWAY, None).is_outage());
        assert!(api(StatusCode::GATEWAY_TIMEOUT, None).is_outage());
        // Too few storage nodes: transient for a job poll, not worth a wait.
        assert!(!api(StatusCode::SERVICE_UNAVAILABLE, None).is_outage());
        assert!(!api(StatusCode::INTERNAL_SERVER_ERROR, None).is_outage());
        assert!(!api(StatusCode::CONFLICT, Some(1)).is_outage());
        let chain = Error::ChainFailed {
            failed_node: "n".into(),
            message: String::new(),
        };
        assert!(!chain.is_outage());
    }
}
