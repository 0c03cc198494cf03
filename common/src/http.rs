//! What the HTTP handlers of both servers share: the `{"error": …}`
//! response every failure gets, extractors that reject bad input in
//! that same shape (a 400, or a 413 for a body over the limit) instead of
//! axum's plain-text rejections, and the bearer-token check. Bodies and
//! queries are also held to their [`Check`] rules, the ones the OpenAPI
//! specs declare.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::api::ErrorBody;
use crate::auth::Token;
use crate::check::{Check, Invalid};

/// `status` with the JSON body `{"error": message}`.
pub fn error_response(status: StatusCode, message: String) -> Response {
    (status, axum::Json(ErrorBody { error: message })).into_response()
}

/// Lets a request through when it carries `Authorization: Bearer <token>`
/// (the scheme in any case, the token compared in constant time; see
/// [`Token::admits`]); otherwise a 401 with `WWW-Authenticate: Bearer` and
/// the usual error body, which never repeats what was sent. Both servers
/// put it on every route but health, metrics and the docs, with
/// `route_layer(from_fn_with_state(token, require_token))`.
pub async fn require_token(State(token): State<Token>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    if token.admits(given) {
        return next.run(request).await;
    }
    let mut response = error_response(
        StatusCode::UNAUTHORIZED,
        "missing or wrong bearer token".to_owned(),
    );
    response
        .headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// Input an extractor refused: a 400 (or 413) with the usual error body.
#[derive(Debug)]
pub struct Rejected {
    pub status: StatusCode,
    pub message: String,
}

impl Rejected {
    fn bad_request(message: String) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message,
        }
    }
}

impl From<Invalid> for Rejected {
    fn from(invalid: Invalid) -> Self {
        let status = match invalid {
            Invalid::BadRequest(_) => StatusCode::BAD_REQUEST,
            Invalid::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        };
        Self {
            status,
            message: invalid.to_string(),
        }
    }
}

impl IntoResponse for Rejected {
    fn into_response(self) -> Response {
        error_response(self.status, self.message)
    }
}

/// A JSON body that keeps its [`Check`] rules; malformed JSON, a missing
/// field, a wrong content type or a broken rule is a 400, a body over the
/// size limit (or a size or count over its limit) a 413.
pub struct AppJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Check> FromRequest<S> for AppJson<T> {
    type Rejection = Rejected;

    async fn from_request(req: Request, state: &S) -> Result<Self, Rejected> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => {
                value.check()?;
                Ok(Self(value))
            }
            Err(e @ JsonRejection::BytesRejection(_))
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE =>
            {
                Err(Rejected {
                    status: StatusCode::PAYLOAD_TOO_LARGE,
                    message: e.body_text(),
                })
            }
            Err(e) => Err(Rejected::bad_request(e.body_text())),
        }
    }
}

/// Query parameters that keep their [`Check`] rules; unparsable ones or a
/// broken rule are a 400.
pub struct AppQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Check> FromRequestParts<S> for AppQuery<T> {
    type Rejection = Rejected;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Rejected> {
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state)
                .await
                .map_err(|e: QueryRejection| Rejected::bad_request(e.body_text()))?;
        value.check()?;
        Ok(Self(value))
    }
}

/// Path parameters; unparsable ones (a bad percent-encoding, a
/// non-numeric index) are a 400.
pub struct AppPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for AppPath<T> {
    type Rejection = Rejected;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Rejected> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Self(value))
            .map_err(|e: PathRejection| Rejected::bad_request(e.body_text()))
    }
}
