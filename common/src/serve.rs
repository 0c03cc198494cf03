//! How both servers serve their router: plain HTTP, or HTTPS only (rustls)
//! when the operator gave them a certificate and key (`TLS_CERT`,
//! `TLS_KEY`). Either way requests in flight are drained on shutdown.

use std::io;
use std::path::Path;

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

impl Tls {
    /// The TLS settings `TLS_CERT` and `TLS_KEY` (PEM files: the
    /// certificate chain, leaf first, and its private key): `None` when
    /// neither is set, an error when only one is or the files are unusable.
    pub async fn from_settings(
        cert: Option<&Path>,
        key: Option<&Path>,
    ) -> Result<Option<Self>, TlsError> {
        let (cert, key) = match (cert, key) {
            (None, None) => return Ok(None),
            (Some(cert), Some(key)) => (cert, key),
            _ => return Err(TlsError::OnlyOne),
        };
        RustlsConfig::from_pem_file(cert, key)
            .await
            .map(|config| Some(Self(config)))
            .map_err(|source| TlsError::Load {
                cert: cert.display().to_string(),
                key: key.display().to_string(),
                source,
            })
    }
}

/// The URL scheme a server with these TLS settings answers on.
pub fn scheme(tls: Option<&Tls>) -> &'static str {
    if tls.is_some() { "https" } else { "http" }
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
