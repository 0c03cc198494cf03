//! [`GcsError`]: every way reading from GCS can fail, and the split between
//! failures worth retrying and final ones.

use dfs_common::gcs::GcsUrl;
use reqwest::StatusCode;
use thiserror::Error;

use crate::store::StoreError;

/// Largest error body read from GCS to explain a failed request.
const MAX_ERROR_BODY: usize = 4096;

#[derive(Debug, Error)]
pub enum GcsError {
    #[error("object {url} not found")]
    NotFound { url: GcsUrl },
    #[error(
        "object {url} generation {generation} is gone (overwritten or deleted while it was read)"
    )]
    GenerationGone { url: GcsUrl, generation: u64 },
    #[error(
        "permission denied reading {url} (HTTP {status}): {message}; check the credentials \
         (Application Default Credentials) and the bucket's IAM roles"
    )]
    PermissionDenied {
        url: GcsUrl,
        status: u16,
        message: String,
    },
    #[error("GCS rejected the request for {url} (HTTP {status}): {message}")]
    Rejected {
        url: GcsUrl,
        status: u16,
        message: String,
    },
    #[error("no usable Google Application Default Credentials: {0}")]
    Credentials(String),
    #[error("invalid STORAGE_EMULATOR_HOST {host:?}: {reason}")]
    EmulatorHost { host: String, reason: String },
    #[error("building the HTTP client: {0}")]
    HttpClient(String),
    #[error("unexpected answer from GCS for {url}: {reason}")]
    BadResponse { url: GcsUrl, reason: String },
    #[error("giving up on {url} after {attempts} failed attempts; last: {last}")]
    RetriesExhausted {
        url: GcsUrl,
        attempts: u32,
        last: String,
    },
    #[error("chunk layout does not fit {url}: {reason}")]
    Layout { url: GcsUrl, reason: String },
    #[error("storing chunk {chunk_id}: {source}")]
    Store {
        chunk_id: String,
        #[source]
        source: StoreError,
    },
    #[error("object CRC32C mismatch: GCS says {expected:08x}, chunks combine to {actual:08x}")]
    CrcMismatch {
        url: GcsUrl,
        expected: u32,
        actual: u32,
    },
}

/// How one attempt at a request failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Worth another try: 408, 429, 5xx, a connection or a body cut short.
    Transient(String),
    /// Final.
    Permanent(GcsError),
}

impl Failure {
    /// Worth another try.
    pub(crate) fn is_transient(&self) -> bool {
        matches!(self, Self::Transient(_))
    }
}

impl From<GcsError> for Failure {
    fn from(err: GcsError) -> Self {
        Self::Permanent(err)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Transient(reason) => f.write_str(reason),
            Self::Permanent(err) => err.fmt(f),
        }
    }
}

/// Passes a successful response through; turns any other into a [`Failure`].
/// `generation` is the pinned generation, if any: a 404 then means that
/// generation is gone rather than the object never existing.
pub(crate) async fn check_status(
    response: reqwest::Response,
    url: &GcsUrl,
    generation: Option<u64>,
) -> Result<reqwest::Response, Failure> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let message = error_message(response).await;
    let url = url.clone();
    Err(match status {
        StatusCode::NOT_FOUND => Failure::Permanent(match generation {
            Some(generation) => GcsError::GenerationGone { url, generation },
            None => GcsError::NotFound { url },
        }),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            Failure::Permanent(GcsError::PermissionDenied {
                url,
                status: status.as_u16(),
                message,
            })
        }
        StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS => {
            Failure::Transient(format!("HTTP {status}: {message}"))
        }
        s if s.is_server_error() => Failure::Transient(format!("HTTP {status}: {message}")),
        _ => Failure::Permanent(GcsError::Rejected {
            url,
            status: status.as_u16(),
            message,
        }),
    })
}

/// The `error.message` of a GCS JSON error body, else the body's first line,
/// read up to [`MAX_ERROR_BODY`] bytes.
async fn error_message(mut response: reqwest::Response) -> String {
    let mut body = Vec::new();
    while body.len() < MAX_ERROR_BODY {
        match response.chunk().await {
            Ok(Some(bytes)) => body.extend_from_slice(&bytes),
            Ok(None) | Err(_) => break,
        }
    }
    body.truncate(MAX_ERROR_BODY);
    message_from_body(&body)
}

fn message_from_body(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Envelope {
        error: Inner,
    }
    #[derive(serde::Deserialize)]
    struct Inner {
        message: String,
    }
    if let Ok(envelope) = serde_json::from_slice::<Envelope>(body) {
        return envelope.error.message;
    }
    let text = String::from_utf8_lossy(body);
    let line = text.lines().next().unwrap_or("").trim();
    if line.is_empty() {
        "(no details)".to_owned()
    } else {
        line.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_come_from_json_or_text() {
        let json = br#"{"error":{"code":403,"message":"caller lacks storage.objects.get"}}"#;
        assert_eq!(message_from_body(json), "caller lacks storage.objects.get");
        assert_eq!(message_from_body(b"Not Found\nmore"), "Not Found");
        assert_eq!(message_from_body(b""), "(no details)");
    }

    #[test]
    fn mismatch_names_both_values() {
        let err = GcsError::CrcMismatch {
            url: "gs://bkt/obj".parse().expect("url"),
            expected: 0xdead_beef,
            actual: 0x0102_0304,
        };
        assert_eq!(
            err.to_string(),
            "object CRC32C mismatch: GCS says deadbeef, chunks combine to 01020304"
        );
    }
}
