//! For tests of outages: a naming server started again on the address of
//! the one stopped, more naming servers beside it, and a `dfs` run watched line by line while it works
//! ([`RunningDfs`]), so a test can act when it reaches a point.

use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use crate::{TestCluster, spawn_naming, wait_until};

impl TestCluster {
    /// Starts the naming server again, on the address of the one
    /// [`TestCluster::stop_naming`] stopped, so storage nodes and `dfs`
    /// find it where they left it.
    pub async fn start_naming(&mut self) -> Result<()> {
        let addr = self
            .naming_url
            .strip_prefix("http://")
            .context("naming URL is not http://")?
            .to_owned();
        let mut env = self.naming_env.clone();
        env.push(("LISTEN_ADDR".to_owned(), addr));
        let log = self.logs.as_ref().map(|dir| dir.join("naming-server.log"));
        let (child, url) = spawn_naming(&self.redis.url(), &env, log.as_deref()).await?;
        if url != self.naming_url {
            bail!("naming server came back on {url}, not {}", self.naming_url);
        }
        self.naming = child;
        Ok(())
    }

    /// Starts one more naming server on the cluster's Redis (a replica:
    /// any of them serves any call); returns its base URL.
    pub async fn add_naming(&mut self) -> Result<String> {
        let log = self.logs.as_ref().map(|dir| {
            dir.join(format!(
                "naming-server-{}.log",
                self.naming_replicas.len() + 2
            ))
        });
        let (child, url) =
            spawn_naming(&self.redis.url(), &self.naming_env, log.as_deref()).await?;
        self.naming_replicas.push(child);
        Ok(url)
    }

    /// Starts `dfs` with `args` and extra `env` (e.g. `DFS_LOG`) against
    /// this cluster, without waiting for it.
    pub fn spawn_dfs(&self, args: &[&str], env: &[(&str, &str)]) -> Result<RunningDfs> {
        let mut command = self.dfs_command(args, env);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        RunningDfs::start(command)
    }
}

/// A `dfs` process whose stderr is collected line by line as it runs (its
/// stdout is read when it ends, so keep that small).
pub struct RunningDfs {
    child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
    reader: JoinHandle<()>,
}

/// How a [`RunningDfs`] ended.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: Vec<String>,
}

impl RunningDfs {
    fn start(mut command: Command) -> Result<Self> {
        let mut child = command.spawn().context("run dfs")?;
        let pipe = child.stderr.take().context("dfs stderr not captured")?;
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::clone(&stderr);
        let reader = tokio::spawn(async move {
            let mut pipe = BufReader::new(pipe).lines();
            while let Ok(Some(line)) = pipe.next_line().await {
                if let Ok(mut lines) = lines.lock() {
                    lines.push(line);
                }
            }
        });
        Ok(Self {
            child,
            stderr,
            reader,
        })
    }

    /// The process id, while it runs.
    pub fn id(&self) -> Option<u32> {
        self.child.id()
    }

    /// The stderr lines so far.
    pub fn stderr(&self) -> Vec<String> {
        self.stderr.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Waits until a stderr line contains `needle`.
    pub async fn wait_for_stderr(&self, needle: &str, timeout: Duration) -> Result<()> {
        wait_until(timeout, || async {
            self.stderr().iter().any(|line| line.contains(needle))
        })
        .await
        .with_context(|| format!("dfs never said {needle:?}; stderr: {:?}", self.stderr()))
    }

    /// Waits (at most `timeout`) for `dfs` to exit.
    pub async fn finish(mut self, timeout: Duration) -> Result<Finished> {
        let status = match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(status) => status?,
            Err(_) => bail!(
                "dfs still running after {timeout:?}; stderr: {:?}",
                self.stderr()
            ),
        };
        let mut stdout = String::new();
        if let Some(mut pipe) = self.child.stdout.take() {
            pipe.read_to_string(&mut stdout).await?;
        }
        // Its stderr is closed now: the reader ends with the last line.
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.reader).await;
        Ok(Finished {
            status,
            stdout,
            stderr: self.stderr(),
        })
    }
}
