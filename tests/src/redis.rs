//! A throwaway `redis-server` for one test.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::process::{Child, Command};

use crate::{free_port, wait_until};

/// A real `redis-server` on a free loopback port, without persistence.
pub struct Redis {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Redis {
    pub async fn start() -> Result<Self> {
        let dir = tempfile::tempdir()?;
        // A port picked free can be taken before redis binds it: retry.
        for _ in 0..5 {
            let port = free_port()?;
            let mut child = Command::new("redis-server")
                .args([
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                ])
                .args(["--appendonly", "no", "--dir"])
                .arg(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .context("cannot run redis-server (install it: apt-get install redis-server)")?;
            let up = wait_until(Duration::from_secs(10), || async {
                tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_ok()
            })
            .await;
            if up.is_ok() && child.try_wait()?.is_none() {
                return Ok(Self {
                    child,
                    port,
                    _dir: dir,
                });
            }
            let _ = child.kill().await;
        }
        bail!("redis-server did not start")
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server; its data is gone.
    pub async fn stop(&mut self) -> Result<()> {
        self.child.kill().await?;
        Ok(())
    }
}
