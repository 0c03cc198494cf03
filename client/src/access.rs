//! [`ClusterAccess`]: what every dfs client needs to reach the servers of
//! one cluster: the bearer token (`DFS_TOKEN`) and the extra certificate
//! authority its HTTPS servers use (`DFS_CA_CERT`).

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use dfs_common::auth::Token;
use reqwest::RequestBuilder;
use rustls::ClientConfig;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::error::{Error, error_chain};
use crate::tls;

/// The token sent with every call (when the cluster has one) and the root
/// certificates trusted beyond the system's. Cheap to clone; built once
/// from a program's settings and given to its [`NamingClient`] and
/// [`StorageClient`], whose HTTP clients then share one TLS setup (see
/// `tls.rs`: the system's roots are read once, at the first HTTPS
/// handshake).
///
/// [`NamingClient`]: crate::NamingClient
/// [`StorageClient`]: crate::StorageClient
#[derive(Debug, Clone, Default)]
pub struct ClusterAccess {
    token: Option<Token>,
    /// Trusted beyond the system's roots.
    roots: Vec<CertificateDer<'static>>,
    /// Made at the first [`ClusterAccess::http`], shared by clones.
    tls: Arc<OnceLock<Result<ClientConfig, String>>>,
}

impl ClusterAccess {
    /// Access with `token` (`None` or empty: a cluster without a token)
    /// and the system's root certificates.
    pub fn new(token: Option<&str>) -> Self {
        Self {
            token: Token::from_setting(token),
            roots: Vec::new(),
            tls: Arc::default(),
        }
    }

    /// The same access also trusting the certificates in the PEM file at
    /// `ca_cert` (a `DFS_CA_CERT` setting: a private CA); unchanged when
    /// `None`.
    pub fn with_ca_cert(mut self, ca_cert: Option<&Path>) -> Result<Self, Error> {
        let Some(path) = ca_cert else {
            return Ok(self);
        };
        let unusable =
            |reason: String| Error::Setup(format!("DFS_CA_CERT {}: {reason}", path.display()));
        let pem = std::fs::read(path).map_err(|e| unusable(e.to_string()))?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| unusable(e.to_string()))?;
        if certs.is_empty() {
            return Err(unusable("no PEM certificate in the file".to_owned()));
        }
        self.roots.extend(certs);
        self.tls = Arc::default();
        Ok(self)
    }

    /// The cluster's token, if it has one.
    pub fn token(&self) -> Option<&Token> {
        self.token.as_ref()
    }

    /// `request` with `Authorization: Bearer …` when there is a token.
    pub(crate) fn authorize(&self, request: RequestBuilder) -> RequestBuilder {
        match &self.token {
            Some(token) => request.bearer_auth(token.secret()),
            None => request,
        }
    }

    /// An HTTP client trusting these roots, connecting within
    /// `connect_timeout`, reads bounded by `read_timeout` when given.
    pub(crate) fn http(
        &self,
        connect_timeout: Duration,
        read_timeout: Option<Duration>,
    ) -> Result<reqwest::Client, Error> {
        let tls = self
            .tls
            .get_or_init(|| tls::client_config(self.roots.clone()))
            .as_ref()
            .map_err(|e| Error::Setup(format!("cannot set up TLS: {e}")))?;
        let mut builder = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .tls_backend_preconfigured(tls.clone());
        if let Some(timeout) = read_timeout {
            builder = builder.read_timeout(timeout);
        }
        builder
            .build()
            .map_err(|e| Error::Setup(format!("cannot set up HTTP: {}", error_chain(&e))))
    }
}
