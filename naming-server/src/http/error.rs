//! [`ApiError`]: everything a handler can fail with, mapped once to a
//! status and the `{"error": "..."}` body. Bad input that never reaches a
//! handler (malformed JSON, paths, queries) is rejected in the same shape
//! by the `dfs_common::http` extractors.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use dfs_common::http::error_response;
use thiserror::Error;

use crate::domain::DomainError;

/// `Retry-After` (seconds) of a 503 that a moment's wait may cure.
const RETRY_AFTER_SECS: u32 = 1;

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
                DomainError::Unavailable(_) | DomainError::TryLater(_) => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
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
            Self::Domain(DomainError::Unavailable(detail) | DomainError::TryLater(detail)) => {
                tracing::warn!(%detail, "service unavailable");
                detail.clone()
            }
            _ => self.to_string(),
        };
        let mut response = error_response(status, message);
        // Clients that ride out outages wait and ask again.
        if let Self::Domain(DomainError::TryLater(_)) = self {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(RETRY_AFTER_SECS),
            );
        }
        response
    }
}
