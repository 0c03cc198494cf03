//! How both servers serve their router: plain HTTP, or HTTPS only (rustls)
//! when the operator gave them a certificate and key (`TLS_CERT`,
//! `TLS_KEY`). Either way requests in flight are drained on shutdown.

use std::io;
use std::path::PathBuf;

use axum::Router;
use axum_server::tls_rustls::RustlsConfig;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A server's certificate chain and private key, loaded and checked.
#[derive(Clone)]
pub struct Tls(RustlsConfig);

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls")
    }
}

/// Why the TLS settings are unusable.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS_CERT and TLS_KEY go together: set both or neither")]
    OnlyOne,
    #[error("cannot use TLS_CERT {cert} with TLS_KEY {key}: {source}")]
    Load {
        cert: String,
        key: String,
        #[source]
        source: io::Error,
    },
}

/// What makes a server a member of a guarded cluster: the token, the TLS
/// flags and the private CA, the same on both servers.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClusterSettings {
    /// Cluster token: required by this server's routes (except health,
    /// metrics and the docs) and, on a storage node, by its peer
    /// connections; sent on every call to the other dfs servers; keys the
    /// chunk-id signatures.
    #[arg(long, env = "DFS_TOKEN", hide_env_values = true)]
    pub dfs_token: Option<String>,

    /// HTTPS for the HTTP API (a storage node then advertises `https://`).
    #[command(flatten)]
    pub tls: TlsSettings,

    /// PEM file of a certificate authority to trust, besides the system's,
    /// when calling the other dfs servers over HTTPS (a cluster's private
    /// CA). GCS calls are unaffected.
    #[arg(long, env = "DFS_CA_CERT")]
    pub dfs_ca_cert: Option<PathBuf>,
}

/// The TLS flags of both servers, each with its environment variable.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsSettings {
    /// PEM certificate chain (leaf first) to serve HTTPS with; needs
    /// `--tls-key`. When set, the server speaks HTTPS only.
    #[arg(long, env = "TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of `--tls-cert`.
    #[arg(long, env = "TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl TlsSettings {
    /// The certificate and key, loaded and checked: `None` when neither is
    /// set, an error when only one is or the files are unusable.
    pub async fn load(&self) -> Result<Option<Tls>, TlsError> {
        let (cert, key) = match (&self.tls_cert, &self.tls_key) {
            (None, None) => return Ok(None),
            (Some(cert), Some(key)) => (cert, key),
            _ => return Err(TlsError::OnlyOne),
        };
        RustlsConfig::from_pem_file(cert, key)
            .await
            .map(|config| Some(Tls(config)))
            .map_err(|source| TlsError::Load {
                cert: cert.display().to_string(),
                key: key.display().to_string(),
                source,
            })
    }

    /// The URL scheme the server answers on: `https` with a certificate.
    pub fn scheme(&self) -> &'static str {
        if self.tls_cert.is_some() {
            "https"
        } else {
            "http"
        }
    }
}

/// Serves `app` on `listener` until `shutdown` is cancelled, then waits for
/// the requests in flight: HTTPS only with `tls`, plain HTTP without.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<Tls>,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let Some(Tls(config)) = tls else {
        return axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
    };
    let handle = axum_server::Handle::new();
    let server = axum_server::from_tcp_rustls(listener.into_std()?, config)?
        .handle(handle.clone())
        .serve(app.into_make_service());
    tokio::pin!(server);
    tokio::select! {
        served = &mut server => return served,
        () = shutdown.cancelled() => handle.graceful_shutdown(None),
    }
    server.await
}
