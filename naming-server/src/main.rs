//! `naming-server` binary: parses flags, binds, serves until SIGTERM/Ctrl-C.

use std::io::Write;

use anyhow::Context;
use clap::Parser;
use naming_server::config::Config;
use naming_server::{naming, run};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// mimalloc: glibc's arena locks showed up in every request's profile.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    config.logs.init();
    let naming = naming(&config).context("cannot set up the naming server")?;
    let tls = config.cluster.tls.load().await?;
    let scheme = config.cluster.tls.scheme();
    let listener = TcpListener::bind(&config.listen_addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen_addr))?;
    let addr = listener.local_addr().context("no local address")?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "naming-server listening on {scheme}://{addr}").context("write to stdout")?;
    stdout.flush().context("flush stdout")?;
    drop(stdout);
    tracing::info!(%addr, redis = %config.redis_url, "naming-server started");

    let shutdown = CancellationToken::new();
    tokio::spawn(dfs_common::shutdown::cancel_on_signal(shutdown.clone()));
    run(listener, naming, tls, shutdown)
        .await
        .context("server failed")?;
    tracing::info!("naming-server stopped");
    Ok(())
}
