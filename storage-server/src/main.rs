//! `storage-server` binary: parse settings, bind, run until SIGTERM/Ctrl-C.

use std::net::SocketAddr;

use anyhow::Context;
use storage_server::{Config, Listeners};
use tokio_util::sync::CancellationToken;

/// mimalloc, as the naming server: glibc's arena locks cost every request.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::from_args_and_env();
    config.logs.init();
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
