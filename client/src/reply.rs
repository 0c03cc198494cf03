//! Sending a request and reading the reply, the same way for both servers:
//! the one parser of error replies (`{"error": …}`, and a chained write's
//! 502 with `x-dfs-failed-node`) and of JSON bodies.

use dfs_common::api::ErrorBody;
use dfs_common::chain::{ChainErrorBody, FAILED_NODE_HEADER};
use reqwest::{RequestBuilder, Response, Url};
use serde::de::DeserializeOwned;

use crate::error::{Error, error_chain};

/// Longest piece of a non-JSON error body quoted in a message.
const SNIPPET: usize = 200;

/// `base` with `segments` appended, each percent-encoded as one segment.
pub(crate) fn endpoint(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}

/// Parses a server's base URL (`http://host:port`, maybe with a path).
pub(crate) fn base_url(text: &str) -> Result<Url, Error> {
    let invalid = |reason: String| Error::InvalidUrl {
        url: text.to_owned(),
        reason,
    };
    let url = Url::parse(text).map_err(|e| invalid(e.to_string()))?;
    if url.cannot_be_a_base() || !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("expected http://HOST:PORT".to_owned()));
    }
    Ok(url)
}

/// Sends `request`; a 2xx response is passed on, anything else becomes
/// the matching [`Error`].
pub(crate) async fn send(request: RequestBuilder) -> Result<Response, Error> {
    let (client, request) = request.build_split();
    let request = request.map_err(|e| Error::InvalidUrl {
        url: e.url().map(Url::to_string).unwrap_or_default(),
        reason: error_chain(&e),
    })?;
    let url = shown(request.url());
    let response = client
        .execute(request)
        .await
        .map_err(|e| Error::from_reqwest(&url, e))?;
    check(response, &url).await
}

/// Sends `request` and decodes its JSON reply.
pub(crate) async fn send_json<T: DeserializeOwned>(request: RequestBuilder) -> Result<T, Error> {
    decode_json(send(request).await?).await
}

/// Decodes the JSON body of a 2xx `response`.
pub(crate) async fn decode_json<T: DeserializeOwned>(response: Response) -> Result<T, Error> {
    let url = shown(response.url());
    response
        .json()
        .await
        .map_err(|e| Error::from_reqwest(&url, e))
}

/// A URL as messages show it: without its query, which can be long.
pub(crate) fn shown(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.to_string()
}

/// Passes a 2xx response through; reads any other into an [`Error`].
async fn check(response: Response, url: &str) -> Result<Response, Error> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let failed_node = response
        .headers()
        .get(FAILED_NODE_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|id| dfs_common::validate::chunk_id(id).is_ok())
        .map(str::to_owned);
    let body = response.text().await.unwrap_or_default();
    if let Some(failed_node) = failed_node {
        let message = serde_json::from_str::<ChainErrorBody>(&body)
            .map(|b| b.error)
            .unwrap_or_else(|_| format!("{url} answered {status}"));
        return Err(Error::ChainFailed {
            failed_node,
            message,
        });
    }
    let message = match serde_json::from_str::<ErrorBody>(&body) {
        Ok(body) if !body.error.trim().is_empty() => body.error,
        _ => {
            let snippet: String = body.trim().chars().take(SNIPPET).collect();
            if snippet.is_empty() {
                format!("{url} answered {status}")
            } else {
                format!("{url} answered {status}: {snippet}")
            }
        }
    };
    Err(Error::Api {
        status,
        message,
        retry_after,
    })
}
