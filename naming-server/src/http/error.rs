//! [`ApiError`]: everything a handler can fail with, mapped once to a
//! status and the `{"error": "..."}` body. Bad input that never reaches a
//! handler (malformed JSON, paths, queries) is rejected in the same shape
//! by the `dfs_common::http` extractors.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use dfs_common::http::error_response;
use thiserror::Error;

use crate::domain::DomainError;

#[derive(Debug, Error)]
pub enum ApiError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("no such route")]
    NoRoute,
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Domain(e) => match e {
                DomainError::Invalid(_) => StatusCode::BAD_REQUEST,
                DomainError::NotFound(_) => StatusCode::NOT_FOUND,
                DomainError::Conflict(_) => StatusCode::CONFLICT,
                DomainError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
                DomainError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                DomainError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
            Self::NoRoute => StatusCode::NOT_FOUND,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            Self::Domain(DomainError::Internal(detail)) => {
                tracing::error!(%detail, "internal error");
                "internal error (see the naming-server log)".to_owned()
            }
            Self::Domain(DomainError::Unavailable(detail)) => {
                tracing::warn!(%detail, "service unavailable");
                detail.clone()
            }
            _ => self.to_string(),
        };
        error_response(status, message)
    }
}
