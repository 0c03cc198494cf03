//! [`GcsClient`]: the JSON API of Cloud Storage (or of an emulator), reduced
//! to what seeding needs: object metadata and ranged media reads.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use dfs_client::{RetryPolicy, error_chain};
use dfs_common::gcs::GcsUrl;
use reqwest::{RequestBuilder, Url, header};
use serde::Deserialize;
use tokio::sync::OnceCell;

use super::error::{Failure, GcsError, check_status};
use crate::config::Config;
use crate::throttle::Throttle;

/// Cloud Storage's endpoint when no emulator is configured.
pub const GOOGLE_STORAGE_URL: &str = "https://storage.googleapis.com";
/// OAuth scope of the access token: reading objects is all seeding does.
const READ_SCOPE: &str = "https://www.googleapis.com/auth/devstorage.read_only";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest silence on a connection before the attempt counts as failed.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How a client retries transient failures (408, 429, 5xx, connection
/// errors, bodies cut short) unless told otherwise: 6 attempts, waiting
/// about 0.5 s, 1 s, 2 s, 4 s, 8 s in between, each stretched by jitter.
const DEFAULT_RETRY: RetryPolicy =
    RetryPolicy::new(6, Duration::from_millis(500), Duration::from_secs(8));

/// What [`GcsClient::stat`] learns about an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Length in bytes.
    pub size: u64,
    /// CRC32C (Castagnoli) of the whole object, when GCS reports one (it
    /// does for every object, composite ones included; emulators may not).
    pub crc32c: Option<u32>,
    /// The object's generation; downloads read exactly this one.
    pub generation: u64,
}

/// Talks to Cloud Storage or an emulator. Cheap to clone; clones share the
/// connection pool, the credentials and the bandwidth throttle.
#[derive(Clone)]
pub struct GcsClient {
    http: reqwest::Client,
    base: Url,
    auth: Auth,
    throttle: Arc<Throttle>,
    retry: RetryPolicy,
}

#[derive(Clone)]
enum Auth {
    /// The emulator takes no credentials.
    None,
    /// Application Default Credentials, looked up on the first request so
    /// that building a client never probes the metadata server.
    Adc(Arc<OnceCell<Arc<dyn gcp_auth::TokenProvider>>>),
}

impl std::fmt::Debug for GcsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcsClient")
            .field("base", &self.base.as_str())
            .field("adc", &matches!(self.auth, Auth::Adc(_)))
            .field("rate", &self.throttle.rate())
            .field("retry", &self.retry)
            .finish()
    }
}

impl GcsClient {
    /// A client for the emulator at `emulator_host` (`http://host:port`, or
    /// `host:port` as the official SDKs accept), or for Cloud Storage with
    /// Application Default Credentials when `None`. Every body byte read
    /// passes `throttle`.
    pub fn new(emulator_host: Option<&str>, throttle: Arc<Throttle>) -> Result<Self, GcsError> {
        let (base, auth) = match emulator_host {
            Some(host) => (emulator_base(host)?, Auth::None),
            None => {
                let base = Url::parse(GOOGLE_STORAGE_URL)
                    .map_err(|err| GcsError::HttpClient(err.to_string()))?;
                (base, Auth::Adc(Arc::new(OnceCell::new())))
            }
        };
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .build()
            .map_err(|err| GcsError::HttpClient(error_chain(&err)))?;
        Ok(Self {
            http,
            base,
            auth,
            throttle,
            retry: DEFAULT_RETRY,
        })
    }

    /// The client the config asks for: `STORAGE_EMULATOR_HOST` and the
    /// `TEST_ONLY_LIMIT_GCS_BANDWIDTH` cap.
    pub fn from_config(config: &Config) -> Result<Self, GcsError> {
        let throttle = Arc::new(Throttle::new(config.test_only_limit_gcs_bandwidth));
        Self::new(config.storage_emulator_host.as_deref(), throttle)
    }

    /// The same client with another retry policy. A download counts the
    /// policy's attempts per batch, afresh after each stored chunk.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The endpoint requests go to, e.g. `http://127.0.0.1:4443/`.
    pub fn base_url(&self) -> &str {
        self.base.as_str()
    }

    pub(crate) fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    pub(crate) fn throttle(&self) -> &Throttle {
        &self.throttle
    }

    /// Size, CRC32C and generation of `url`'s object. Transient failures
    /// are retried per the client's [`RetryPolicy`].
    pub async fn stat(&self, url: &GcsUrl) -> Result<ObjectInfo, GcsError> {
        let what = format!("GCS stat of {url}");
        let stat = self
            .retry
            .retry(&what, Failure::is_transient, || self.try_stat(url));
        stat.await.map_err(|failure| match failure {
            Failure::Permanent(err) => err,
            Failure::Transient(last) => GcsError::RetriesExhausted {
                url: url.clone(),
                attempts: self.retry.attempts,
                last,
            },
        })
    }

    async fn try_stat(&self, url: &GcsUrl) -> Result<ObjectInfo, Failure> {
        let request = self.http.get(self.object_url(url));
        let response = self.send(request, url, None).await?;
        let body = response.bytes().await.map_err(transport)?;
        parse_object_resource(&body).map_err(|reason| {
            Failure::Permanent(GcsError::BadResponse {
                url: url.clone(),
                reason,
            })
        })
    }

    /// Starts a media read of bytes `start..=end` of generation `generation`
    /// of `url`. `Accept-Encoding: gzip` asks for the stored bytes as they
    /// are, so objects stored gzip-encoded are not transcoded and keep the
    /// size and CRC32C their metadata gives.
    pub(crate) async fn get_range(
        &self,
        url: &GcsUrl,
        generation: u64,
        start: u64,
        end: u64,
    ) -> Result<reqwest::Response, Failure> {
        let mut target = self.object_url(url);
        target
            .query_pairs_mut()
            .append_pair("alt", "media")
            .append_pair("generation", &generation.to_string());
        let request = self
            .http
            .get(target)
            .header(header::RANGE, format!("bytes={start}-{end}"))
            .header(header::ACCEPT_ENCODING, "gzip");
        self.send(request, url, Some(generation)).await
    }

    /// Sends `request` about `url` with credentials; a failure says
    /// whether it is worth retrying (see [`check_status`] for
    /// `generation`).
    async fn send(
        &self,
        request: RequestBuilder,
        url: &GcsUrl,
        generation: Option<u64>,
    ) -> Result<reqwest::Response, Failure> {
        let response = self
            .authorize(request)
            .await?
            .send()
            .await
            .map_err(transport)?;
        check_status(response, url, generation).await
    }

    /// `{base}/storage/v1/b/{bucket}/o/{object}`, the object name encoded
    /// as one path segment (its `/` become `%2F`).
    fn object_url(&self, url: &GcsUrl) -> Url {
        let mut target = self.base.clone();
        if let Ok(mut segments) = target.path_segments_mut() {
            segments
                .pop_if_empty()
                .extend(["storage", "v1", "b", &url.bucket, "o", &url.object]);
        }
        target
    }

    /// Adds the bearer token when talking to real GCS.
    async fn authorize(&self, request: RequestBuilder) -> Result<RequestBuilder, Failure> {
        let Auth::Adc(provider) = &self.auth else {
            return Ok(request);
        };
        let provider = provider
            .get_or_try_init(gcp_auth::provider)
            .await
            .map_err(|err| Failure::Permanent(GcsError::Credentials(error_chain(&err))))?;
        let token = provider.token(&[READ_SCOPE]).await.map_err(|err| {
            Failure::Transient(format!("getting an access token: {}", error_chain(&err)))
        })?;
        Ok(request.bearer_auth(token.as_str()))
    }
}

/// A failed send or body read: worth retrying. The URL is left out of the
/// message; the caller names the object.
fn transport(err: reqwest::Error) -> Failure {
    Failure::Transient(error_chain(&err.without_url()))
}

/// The emulator's base URL from `STORAGE_EMULATOR_HOST`, adding `http://`
/// when no scheme is given.
fn emulator_base(host: &str) -> Result<Url, GcsError> {
    let invalid = |reason: String| GcsError::EmulatorHost {
        host: host.to_owned(),
        reason,
    };
    let trimmed = host.trim();
    if trimmed.is_empty() {
        return Err(invalid("empty".to_owned()));
    }
    let with_scheme = if trimmed.contains("://") {
        trimmed.to_owned()
    } else {
        format!("http://{trimmed}")
    };
    let url = Url::parse(&with_scheme).map_err(|err| invalid(err.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid("expected http://HOST:PORT".to_owned()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("expected a base URL without query".to_owned()));
    }
    Ok(url)
}

/// The fields of a JSON API object resource seeding needs. GCS sends 64-bit
/// numbers as strings.
#[derive(Deserialize)]
struct ObjectResource {
    size: String,
    generation: String,
    crc32c: Option<String>,
}

fn parse_object_resource(body: &[u8]) -> Result<ObjectInfo, String> {
    let resource: ObjectResource =
        serde_json::from_slice(body).map_err(|err| format!("object metadata: {err}"))?;
    let size = resource
        .size
        .parse()
        .map_err(|_| format!("size {:?} is not a number", resource.size))?;
    let generation = resource
        .generation
        .parse()
        .map_err(|_| format!("generation {:?} is not a number", resource.generation))?;
    let crc32c = resource.crc32c.as_deref().map(parse_crc32c).transpose()?;
    Ok(ObjectInfo {
        size,
        crc32c,
        generation,
    })
}

/// GCS's `crc32c`: base64 of the big-endian 4-byte checksum.
fn parse_crc32c(text: &str) -> Result<u32, String> {
    let bytes = BASE64
        .decode(text)
        .map_err(|err| format!("crc32c {text:?}: {err}"))?;
    let bytes: [u8; 4] = bytes
        .try_into()
        .map_err(|_| format!("crc32c {text:?} is not 4 bytes"))?;
    Ok(u32::from_be_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(host: Option<&str>) -> Result<GcsClient, GcsError> {
        GcsClient::new(host, Arc::new(Throttle::new(None)))
    }

    #[test]
    fn emulator_host_with_or_without_scheme() {
        for (host, base) in [
            ("http://127.0.0.1:4443", "http://127.0.0.1:4443/"),
            ("127.0.0.1:4443", "http://127.0.0.1:4443/"),
            ("localhost:9023/", "http://localhost:9023/"),
            ("https://gcs.test/prefix", "https://gcs.test/prefix"),
        ] {
            assert_eq!(client(Some(host)).expect(host).base_url(), base);
        }
        for bad in ["", "ftp://x:1", "http://", "http://h:1/?q=1"] {
            assert!(
                matches!(client(Some(bad)), Err(GcsError::EmulatorHost { .. })),
                "{bad:?}"
            );
        }
        let google = client(None).expect("google");
        assert_eq!(google.base_url(), "https://storage.googleapis.com/");
    }

    #[test]
    fn built_from_config() {
        use clap::Parser;
        let config = Config::try_parse_from([
            "storage-server",
            "--storage-emulator-host",
            "127.0.0.1:4443",
            "--test-only-limit-gcs-bandwidth",
            "8m",
            "--gcs-batch-chunks",
            "2",
        ])
        .expect("config");
        let client = GcsClient::from_config(&config).expect("client");
        assert_eq!(client.base_url(), "http://127.0.0.1:4443/");
        assert_eq!(client.throttle().rate(), Some(1_000_000));
        let options = super::super::DownloadOptions::from_config(&config);
        assert_eq!((options.parallel, options.batch), (4, 2));
    }

    #[test]
    fn object_names_are_one_segment() {
        let c = client(Some("127.0.0.1:1")).expect("client");
        let url = GcsUrl::new("bkt", "dir/a b%?#.bin").expect("url");
        assert_eq!(
            c.object_url(&url).as_str(),
            "http://127.0.0.1:1/storage/v1/b/bkt/o/dir%2Fa%20b%25%3F%23.bin"
        );
        let c = client(Some("https://gcs.test/prefix/")).expect("client");
        assert_eq!(
            c.object_url(&url).path(),
            "/prefix/storage/v1/b/bkt/o/dir%2Fa%20b%25%3F%23.bin"
        );
    }

    #[test]
    fn object_resource_fields() {
        let body = br#"{"name":"x","size":"1000","generation":"1795432077187867",
                        "crc32c":"aqnMdA==","md5Hash":"s1K0Dt5mMH58tJozNADZZw=="}"#;
        let info = parse_object_resource(body).expect("parses");
        assert_eq!(
            info,
            ObjectInfo {
                size: 1000,
                crc32c: Some(0x6aa9_cc74),
                generation: 1_795_432_077_187_867,
            }
        );
        let no_crc = parse_object_resource(br#"{"size":"0","generation":"1"}"#).expect("parses");
        assert_eq!(no_crc.crc32c, None);
        assert!(parse_object_resource(br#"{"size":"x","generation":"1"}"#).is_err());
        assert!(parse_crc32c("AAA=").is_err());
        assert_eq!(parse_crc32c("AAAAAA=="), Ok(0));
    }
}
