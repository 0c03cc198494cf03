//! [`ApiError`]: every way a request can fail, mapped once to a status and a
//! JSON `{"error": "..."}` body.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dfs_common::api::ErrorBody;
use dfs_common::chain::{ChainErrorBody, FAILED_NODE_HEADER};

use crate::admission::AdmissionError;
use crate::gcs::GcsError;
use crate::replication::ReplicationError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    /// Refused whoever asks: a chunk id the naming server did not sign.
    #[error("{0}")]
    Forbidden(String),
    #[error("chunk not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("range not satisfiable for a chunk of {len} bytes")]
    RangeNotSatisfiable { len: u64 },
    #[error("{0}")]
    Unavailable(String),
    /// This node's disk is full: 507, and the node reports itself full.
    #[error(
        "this node's disk is full (no space left on device); it takes no new chunks until space is freed"
    )]
    Full(#[source] StoreError),
    /// Reading from Google Cloud Storage failed.
    #[error(transparent)]
    Gcs(#[from] GcsError),
    /// A chained write failed at or below this node: 502 naming the node.
    #[error("{message}")]
    ChainFailed {
        failed_node: String,
        message: String,
    },
    #[error("internal error")]
    Internal(#[source] StoreError),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Full(_) => StatusCode::INSUFFICIENT_STORAGE,
            Self::ChainFailed { .. } => StatusCode::BAD_GATEWAY,
            Self::Gcs(e) => match e {
                GcsError::NotFound { .. } | GcsError::GenerationGone { .. } => {
                    StatusCode::NOT_FOUND
                }
                GcsError::PermissionDenied { .. } => StatusCode::FORBIDDEN,
                GcsError::Rejected { .. } | GcsError::Layout { .. } => StatusCode::BAD_REQUEST,
                // This node cannot talk to GCS at all.
                GcsError::Credentials(_)
                | GcsError::EmulatorHost { .. }
                | GcsError::HttpClient(_) => StatusCode::SERVICE_UNAVAILABLE,
                // GCS failed, or served what it should not have.
                GcsError::BadResponse { .. }
                | GcsError::RetriesExhausted { .. }
                | GcsError::CrcMismatch { .. } => StatusCode::BAD_GATEWAY,
                // This node's own disk is full, or failed.
                GcsError::Store {
                    source: StoreError::Full { .. },
                    ..
                } => StatusCode::INSUFFICIENT_STORAGE,
                GcsError::Store { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            },
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::InvalidId(e) => Self::BadRequest(e.to_string()),
            StoreError::NotFound => Self::NotFound,
            e @ StoreError::TooLarge { .. } => Self::TooLarge(e.to_string()),
            e @ StoreError::CrcMismatch { .. } => Self::BadRequest(e.to_string()),
            e @ StoreError::Conflict { .. } => Self::Conflict(e.to_string()),
            e @ StoreError::Upload(_) => Self::BadRequest(e.to_string()),
            e @ StoreError::Full { .. } => Self::Full(e),
            e @ StoreError::Io { .. } => Self::Internal(e),
        }
    }
}

impl From<ReplicationError> for ApiError {
    fn from(err: ReplicationError) -> Self {
        match err {
            ReplicationError::Invalid(message) => Self::BadRequest(message),
            ReplicationError::Unavailable(message) => Self::Unavailable(message),
            ReplicationError::Conflict(message) => Self::Conflict(message),
            ReplicationError::ChainFailed {
                failed_node,
                message,
            } => Self::ChainFailed {
                failed_node,
                message,
            },
        }
    }
}

impl From<AdmissionError> for ApiError {
    fn from(err: AdmissionError) -> Self {
        match err {
            e @ AdmissionError::Malformed(_) => Self::BadRequest(e.to_string()),
            e @ (AdmissionError::Unsigned(_) | AdmissionError::BadSignature(_)) => {
                Self::Forbidden(e.to_string())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            Self::Internal(source) => tracing::error!(error = %source, "request failed"),
            Self::Full(source) => tracing::warn!(error = %source, "chunk refused: disk full"),
            _ => {}
        }
        if let Self::ChainFailed {
            failed_node,
            message,
        } = self
        {
            tracing::warn!(%failed_node, "chained write failed: {message}");
            let mut response = (
                status,
                axum::Json(ChainErrorBody {
                    error: message,
                    failed_node: failed_node.clone(),
                }),
            )
                .into_response();
            if let Ok(value) = HeaderValue::from_str(&failed_node) {
                response.headers_mut().insert(FAILED_NODE_HEADER, value);
            }
            return response;
        }
        let body = axum::Json(ErrorBody {
            error: self.to_string(),
        });
        let mut response = (status, body).into_response();
        if let Self::RangeNotSatisfiable { len } = self
            && let Ok(value) = HeaderValue::from_str(&format!("bytes */{len}"))
        {
            response.headers_mut().insert(header::CONTENT_RANGE, value);
        }
        response
    }
}
