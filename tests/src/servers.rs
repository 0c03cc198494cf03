//! The server processes of a test cluster: how each is started (free
//! loopback port, quiet logs, stderr kept when asked) and how its listening
//! line is read; [`StorageNode`], a running storage server.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, Result};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::{START_TIMEOUT, bin_path};

/// The command for server binary `name` on a free loopback port, quiet
/// logs, stdout piped (for its listening line), stderr appended to `log`
/// when given (else the test's), killed with its handle; `env` (the test's
/// settings) overrides these defaults.
fn server_command(name: &str, env: &[(String, String)], log: Option<&Path>) -> Result<Command> {
    let mut command = Command::new(bin_path(name));
    let stderr = match log {
        Some(path) => Stdio::from(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("open {}", path.display()))?,
        ),
        None => Stdio::inherit(),
    };
    command
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true);
    command.envs(env.iter().map(|(k, v)| (k, v)));
    Ok(command)
}

/// Starts a naming server on a free loopback port against `redis_url`;
/// returns the process and its base URL.
pub(crate) async fn spawn_naming(
    redis_url: &str,
    env: &[(String, String)],
    log: Option<&Path>,
) -> Result<(Child, String)> {
    let mut naming = server_command("naming-server", env, log)?
        .env("REDIS_URL", redis_url)
        .spawn()
        .context("spawn naming-server")?;
    let url = base_url(&listening_line(&mut naming, "naming-server").await?)?;
    Ok((naming, url))
}

/// The `http://…` or `https://…` base URL in a listening line.
fn base_url(line: &str) -> Result<String> {
    word(line, "https://", true).or_else(|_| word(line, "http://", true))
}

/// Reads the child's first stdout line, `… listening on http://ADDR …`,
/// and returns it.
async fn listening_line(child: &mut Child, what: &str) -> Result<String> {
    let stdout = child.stdout.take().context("child stdout not captured")?;
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(START_TIMEOUT, lines.next_line())
        .await
        .with_context(|| format!("{what} did not report its address in time"))??
        .with_context(|| format!("{what} exited before listening"))?;
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(line)
}

/// The first word of `line` starting with `prefix`, with the prefix kept
/// (`http://`) or dropped (`peer=`).
fn word(line: &str, prefix: &str, keep_prefix: bool) -> Result<String> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(prefix))
        .map(|rest| {
            if keep_prefix {
                format!("{prefix}{rest}")
            } else {
                rest.to_owned()
            }
        })
        .with_context(|| format!("no {prefix}… in the first line {line:?}"))
}

/// A running storage-server process and the data dir it keeps across restarts.
pub struct StorageNode {
    pub(crate) child: Option<Child>,
    url: String,
    peer_addr: String,
    node_id: String,
    pub(crate) data_dir: PathBuf,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) log: Option<PathBuf>,
}

impl StorageNode {
    pub(crate) async fn spawn(
        naming_url: &str,
        data_dir: &Path,
        env: &[(String, String)],
        log: Option<PathBuf>,
    ) -> Result<Self> {
        // A node's own `NAMING_URL` (a list of replicas, say) wins.
        let naming_url = env
            .iter()
            .find(|(key, _)| key == "NAMING_URL")
            .map_or(naming_url, |(_, url)| url.as_str());
        let mut child = server_command("storage-server", env, log.as_deref())?
            .env("TCP_PORT", "0")
            .env("NAMING_URL", naming_url)
            .env("DATA_DIR", data_dir)
            .spawn()
            .context("spawn storage-server")?;
        let line = listening_line(&mut child, "storage-server").await?;
        let node_id = std::fs::read_to_string(data_dir.join("node_id"))
            .context("storage-server wrote no DATA_DIR/node_id")?
            .trim()
            .to_owned();
        Ok(Self {
            child: Some(child),
            url: base_url(&line)?,
            peer_addr: word(&line, "peer=", false)?,
            node_id,
            data_dir: data_dir.to_owned(),
            env: env.to_vec(),
            log,
        })
    }

    /// HTTP base URL of the node (changes when it restarts on a new port).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `host:port` of the node's peer-transfer listener.
    pub fn peer_addr(&self) -> &str {
        &self.peer_addr
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Path of a stored chunk file, if this node holds it.
    pub fn chunk_path(&self, chunk_id: &str) -> Option<PathBuf> {
        let path = dfs_common::layout::chunk_path(&self.data_dir, chunk_id).ok()?;
        path.exists().then_some(path)
    }

    /// Puts chunk `chunk_id` with `data` straight into the node's data
    /// directory, as an older version (or a hand) could have left it,
    /// bypassing every check of the HTTP API.
    pub fn plant_chunk(&self, chunk_id: &str, data: &[u8]) -> Result<()> {
        let dir = dfs_common::layout::chunk_dir(
            &self.data_dir.join(dfs_common::layout::CHUNKS_DIR),
            chunk_id,
        )?;
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(chunk_id), data)?;
        let meta = serde_json::json!({"size": data.len(), "crc32c": crc32c::crc32c(data)});
        std::fs::write(dir.join(format!("{chunk_id}.meta")), meta.to_string())?;
        Ok(())
    }

    /// Files left in the node's temp dir.
    pub fn temp_files(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.data_dir.join("tmp"))
            .map(|dir| dir.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default()
    }
}
