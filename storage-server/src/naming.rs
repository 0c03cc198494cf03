//! JSON calls from this node to the naming server (membership and orphan
//! sweeps), with the bearer token when one is set.

use std::time::Duration;

use reqwest::StatusCode;

use crate::store::StoreError;

/// Why a call to the naming server failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("naming server unreachable: {}", error_chain(.0))]
    Http(#[from] reqwest::Error),
    #[error("naming server answered {status}: {body}")]
    Status { status: StatusCode, body: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An error and its sources, `: `-separated (reqwest hides the cause).
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The naming server at `base_url`.
#[derive(Debug, Clone)]
pub struct NamingClient {
    http: reqwest::Client,
    base_url: String,
    token: Option<String>,
}

impl NamingClient {
    pub fn new(base_url: String, token: Option<String>) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Self {
            http,
            base_url,
            token,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// POSTs `body` as JSON to `path` (starting with `/`) and decodes the
    /// JSON reply; a non-2xx status is [`CallError::Status`].
    pub async fn post<B, R>(&self, path: &str, body: &B) -> Result<R, CallError>
    where
        B: serde::Serialize,
        R: serde::de::DeserializeOwned,
    {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base_url))
            .json(body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(CallError::Status { status, body });
        }
        Ok(response.json().await?)
    }
}
