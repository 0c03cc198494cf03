//! A throwaway `redis-server` for one test.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use reqwest::Url;
use tokio::process::{Child, Command};

use crate::wait_until;

/// Longest Unix socket path the kernel takes (`sun_path` holds 108 bytes).
const MAX_SOCKET_PATH: usize = 107;

/// A real `redis-server` listening only on a Unix socket in its own temp
/// dir (no TCP port, so no test can reach another test's server), without
/// persistence.
pub struct Redis {
    child: Child,
    socket: PathBuf,
    url: String,
    _dir: tempfile::TempDir,
}

impl Redis {
    /// Starts the server and waits until its socket accepts a connection.
    pub async fn start() -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let socket = dir.path().join("redis.sock");
        let url = socket_url(&socket)?;
        let child = spawn(&socket, dir.path()).await?;
        Ok(Self {
            child,
            socket,
            url,
            _dir: dir,
        })
    }

    /// Starts a new, empty server on the same socket after [`Redis::stop`].
    pub async fn start_again(&mut self) -> Result<()> {
        let dir = self
            .socket
            .parent()
            .context("the socket is in a directory")?
            .to_owned();
        // The killed server leaves its socket file behind.
        let _ = std::fs::remove_file(&self.socket);
        self.child = spawn(&self.socket, &dir).await?;
        Ok(())
    }

    /// The server's URL for the `redis` crate (`REDIS_URL`):
    /// `redis+unix:///…/redis.sock?db=0`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server's Unix socket, for `redis-cli -s`.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Kills the server; its data is gone.
    pub async fn stop(&mut self) -> Result<()> {
        self.child.kill().await?;
        Ok(())
    }
}

/// `redis-server FIRST… --save '' --appendonly no --dir DIR`, quiet, killed
/// with its handle: the base of every Redis the tests start (a config file,
/// if any, must come first).
pub(crate) fn redis_server(first: &[String], dir: &Path) -> Command {
    let mut command = Command::new("redis-server");
    command
        .args(first)
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    command
}

/// Runs `redis-server` on `socket` with its files in `dir`, and waits until
/// the socket accepts a connection.
async fn spawn(socket: &Path, dir: &Path) -> Result<Child> {
    let mut child = redis_server(&[], dir)
        .args(["--port", "0", "--unixsocket"])
        .arg(socket)
        .args(["--unixsocketperm", "700"])
        .spawn()
        .context("cannot run redis-server (install it: apt-get install redis-server)")?;
    let up = wait_until(Duration::from_secs(10), || async {
        tokio::net::UnixStream::connect(socket).await.is_ok()
    })
    .await;
    if let Some(status) = child.try_wait()? {
        bail!("redis-server exited at start: {status}");
    }
    if up.is_err() {
        let _ = child.kill().await;
        bail!(
            "redis-server did not accept connections on {}",
            socket.display()
        );
    }
    Ok(child)
}

/// `redis+unix://SOCKET?db=0`, the form the `redis` crate reads a Unix
/// socket and a database number from.
fn socket_url(socket: &Path) -> Result<String> {
    if socket.as_os_str().len() > MAX_SOCKET_PATH {
        bail!(
            "{} is too long for a Unix socket: set TMPDIR to a shorter directory",
            socket.display()
        );
    }
    let path = socket
        .to_str()
        .with_context(|| format!("{} is not UTF-8", socket.display()))?;
    let mut url = Url::parse("redis+unix:///")?;
    url.set_path(path);
    url.query_pairs_mut().append_pair("db", "0");
    Ok(url.into())
}
