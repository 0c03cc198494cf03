//! `storage-server` binary: parse settings, bind, run until SIGTERM/Ctrl-C.

use std::net::SocketAddr;

use anyhow::Context;
use storage_server::{Config, Listeners};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let config = Config::from_args_and_env();
    let http = tokio::net::TcpListener::bind(config.listen_addr)
        .await
        .with_context(|| format!("binding {}", config.listen_addr))?;
    // The peer listener shares the HTTP listener's IP.
    let peer_addr = SocketAddr::new(config.listen_addr.ip(), config.tcp_port);
    let peer = tokio::net::TcpListener::bind(peer_addr)
        .await
        .with_context(|| format!("binding {peer_addr} (TCP_PORT)"))?;
    let shutdown = CancellationToken::new();
    tokio::spawn(dfs_common::shutdown::cancel_on_signal(shutdown.clone()));
    storage_server::run(Listeners { http, peer }, config, shutdown).await?;
    Ok(())
}
