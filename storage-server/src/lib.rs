//! dfs storage server: chunks on local disk, served over HTTP.
//!
//! Layout, from the top down (a module only uses the ones below it):
//! - [`http`]: the HTTP API, one module per resource (chunks, replicate,
//!   distributions, health and metrics), their shared state and `ApiError`
//!   (every failure mapped once to a status and a JSON body), the router and
//!   the OpenAPI spec generated from the handlers.
//! - [`replication`]: chain replication on write (`x-dfs-replicate-to`,
//!   `POST /chunks/{id}/replicate`): forward a stored chunk to the next node,
//!   pull one from the upstream node with [`peer::fetch`], after checking
//!   the chain against the naming server's node list ([`registry`]).
//! - [`admission`]: which chunk ids a write may store (the naming server's
//!   form; its signature when the cluster has a token).
//! - [`distribution`]: this node's part of distribution jobs (pull each
//!   chunk from the nearest live node above it in the chain, or GCS; report
//!   progress to the naming server).
//! - [`membership`]: registration and heartbeats with the naming server,
//!   including deletions the naming server asks for and bad chunks found;
//!   [`orphans`]: sweeps of chunks no file refers to.
//! - [`integrity`]: the scrubber, and checks of chunks readers found bad;
//!   bad chunks are quarantined and reported with the next heartbeat. They and the distribution reports share one
//!   [`NamingClient`](dfs_client::NamingClient), built in [`run`].
//! - [`gcs`]: reading Cloud Storage objects into the store chunk by chunk
//!   (the head of a `dfs seed` chain).
//! - [`peer`]: the peer transfer protocol on `TCP_PORT` (a challenge–response
//!   handshake keyed by the cluster token, sendfile on the sending side,
//!   [`peer::fetch`] on the receiving side).
//! - [`store`]: the chunk store on disk (layout, atomic durable writes,
//!   CRC32C checks, the node id, waiting for a chunk to arrive). The only
//!   module that touches `DATA_DIR`; peer transfers go through it too.
//! - [`config`]: flags and environment variables ([`Config`]);
//!   [`metrics`]: the node's counters behind `GET /metrics`; [`throttle`]:
//!   the token bucket behind the test-only bandwidth caps.
//!
//! [`run`] ties them together; `main.rs` only parses the config, binds and
//! wires signals to a [`CancellationToken`].

pub mod admission;
pub mod config;
pub mod distribution;
pub mod gcs;
pub mod http;
pub mod integrity;
pub mod membership;
pub mod metrics;
pub mod orphans;
pub mod peer;
pub mod registry;
pub mod replication;
pub mod store;
pub mod throttle;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use dfs_client::{ClusterAccess, NamingClient, StorageClient};
use dfs_common::auth::Token;
use dfs_common::serve::TlsError;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use admission::Admission;
pub use config::Config;
use distribution::Distributor;
use http::AppState;
use integrity::Integrity;
use registry::Registry;
use replication::Replicator;
use store::{ChunkStore, StoreError};
use throttle::Throttle;

/// How long one call to the naming server may take.
const NAMING_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The two sockets a storage server listens on.
#[derive(Debug)]
pub struct Listeners {
    /// The HTTP API (`LISTEN_ADDR`).
    pub http: TcpListener,
    /// The peer transfer protocol (`TCP_PORT`).
    pub peer: TcpListener,
}

/// Why [`run`] failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("opening the data directory: {0}")]
    Store(#[from] StoreError),
    #[error("serving HTTP: {0}")]
    Io(#[from] std::io::Error),
    #[error("setting up an HTTP client: {0}")]
    Client(#[from] dfs_client::Error),
    /// `TLS_CERT`/`TLS_KEY` are unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// Runs a storage server on `listeners` until `shutdown` is cancelled:
/// opens the store, prints the `storage-server listening on http://ADDR
/// peer=ADDR node_id=ID` line on stdout (`https://` with TLS), registers
/// with the naming server in the background, serves the peer protocol and
/// HTTP (or HTTPS), draining HTTP requests on shutdown.
pub async fn run(
    listeners: Listeners,
    config: Config,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    let tls = config.cluster.tls.load().await?;
    let token = Token::from_setting(config.cluster.dfs_token.as_deref());
    let access = ClusterAccess::new(config.cluster.dfs_token.as_deref())
        .with_ca_cert(config.cluster.dfs_ca_cert.as_deref())?;
    let store = Arc::new(ChunkStore::open(&config.data_dir).await?);
    let node_id = store.node_id().await?;
    let http_bound = listeners.http.local_addr()?;
    let peer_bound = listeners.peer.local_addr()?;
    let peer_addr = config.worker_addr(peer_bound);
    let naming =
        NamingClient::new(&config.naming_url(), &access)?.with_timeout(NAMING_CALL_TIMEOUT);
    let membership = membership::Membership {
        naming: naming.clone(),
        node_id: node_id.clone(),
        url: config.advertise_url(http_bound),
        tcp_addr: peer_addr.clone(),
    };
    let replicator = Arc::new(Replicator::new(
        node_id.clone(),
        peer_addr,
        store.clone(),
        StorageClient::new(&access)?,
        Arc::new(Registry::new(naming.clone())),
        token.clone(),
    ));
    {
        let mut stdout = std::io::stdout().lock();
        let scheme = config.cluster.tls.scheme();
        writeln!(
            stdout,
            "storage-server listening on {scheme}://{http_bound} peer={peer_bound} node_id={node_id}"
        )?;
        stdout.flush()?;
    }
    tracing::info!(
        %node_id,
        data_dir = %store.root().display(),
        chunks = store.chunk_count(),
        advertise_url = %membership.url,
        worker_addr = %membership.tcp_addr,
        p2p_limit_bytes_per_sec = config.test_only_limit_p2p_bandwidth,
        token = token.is_some(),
        tls = tls.is_some(),
        "storage server started"
    );
    let integrity = Arc::new(Integrity::new(store.clone(), Some(config.scrub_bandwidth)));
    let scrubs = tokio::spawn(
        integrity
            .clone()
            .run(config.scrub_interval, shutdown.clone()),
    );
    let heartbeats = tokio::spawn(membership.run(store.clone(), integrity, shutdown.clone()));
    let sweeper = orphans::Sweeper {
        naming: naming.clone(),
        node_id: node_id.clone(),
        store: store.clone(),
        interval: config.orphan_sweep_interval,
        grace: config.orphan_grace,
    };
    let sweeps = tokio::spawn(sweeper.run(shutdown.clone()));
    let throttle = Arc::new(Throttle::new(config.test_only_limit_p2p_bandwidth));
    let test_only_p2p_throttle = config
        .test_only_limit_p2p_bandwidth
        .is_some()
        .then(|| throttle.clone());
    let peer = tokio::spawn(peer::serve(
        listeners.peer,
        store.clone(),
        throttle,
        token.clone(),
        shutdown.clone(),
    ));
    let gcs = gcs::GcsClient::from_config(&config)
        .map(Arc::new)
        .map_err(|e| e.to_string());
    if let Err(error) = &gcs {
        tracing::warn!(%error, "GCS is not usable; seeding from it will fail");
    }
    let distributor = Arc::new(Distributor::new(
        store.clone(),
        gcs,
        gcs::DownloadOptions::from_config(&config),
        distribution::Reporter::new(naming),
        token.clone(),
        shutdown.clone(),
    ));
    let app = http::app(AppState {
        node_id: node_id.into(),
        store,
        replicator,
        distributor,
        admission: Admission::new(token.clone()),
        token,
        test_only_p2p_throttle,
    });
    let served = dfs_common::serve::serve(listeners.http, app, tls, shutdown.clone()).await;
    shutdown.cancel();
    for (name, task) in [
        ("membership", heartbeats),
        ("scrubs", scrubs),
        ("orphan sweeps", sweeps),
        ("peer server", peer),
    ] {
        if let Err(err) = task.await {
            tracing::warn!(error = %err, "{name} task ended abnormally");
        }
    }
    served?;
    Ok(())
}
