//! End-to-end test harness: real `redis-server` (on a Unix socket), real
//! `naming-server` and `storage-server` processes on loopback ports, and the
//! real `dfs` binary.
//!
//! The binaries come from the cargo target directory (`target/debug` for
//! `cargo nextest run`); build them first with `cargo build --workspace --bins`
//! (the project's test script does). Every process is killed when its handle
//! drops, and every test owns its temp dirs, so tests run in parallel.
//!
//! [`FakeGcs`] runs the real fake-gcs-server (a GCS emulator) the same way.
//!
//! A cluster may run with a token ([`ClusterBuilder::token`]), serve HTTPS
//! with a test CA ([`ClusterBuilder::tls`]), and keep its servers' logs
//! for the test to read ([`ClusterBuilder::capture_logs`]).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use tokio::process::{Child, Command};

mod builder;
pub mod fake_gcs;
mod metrics;
mod outage;
mod redis;
mod redis_topologies;
mod servers;
mod tmpfs;

pub use builder::{ClusterBuilder, TlsFiles};
pub use fake_gcs::FakeGcs;
pub use metrics::Scrape;
pub use outage::{Finished, RunningDfs};
pub use redis::Redis;
pub use redis_topologies::{Metadata, MetadataKind, RedisCluster, RedisSentinel};
pub use servers::StorageNode;
use servers::spawn_naming;
pub use tmpfs::Tmpfs;

/// How long a process may take to come up before the test fails.
pub(crate) const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Path of a workspace binary, next to the test executable's target dir.
pub fn bin_path(name: &str) -> PathBuf {
    // The test binary lives in target/<profile>/deps/.
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable is in target/<profile>/deps");
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` before the tests",
        path.display()
    );
    path
}

/// Polls `condition` every 50 ms until it holds, or fails after `timeout`.
pub async fn wait_until<F, Fut>(timeout: Duration, mut condition: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if condition().await {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("condition not met within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A chunk id in the form the naming server makes
/// (`<file id>-<index>-<8 hex digits>`), derived from `label` so a test can
/// name its chunks: storage nodes refuse to store ids of any other form.
pub fn chunk_id(label: &str) -> String {
    let hash = u64::from(crc32c::crc32c(label.as_bytes()));
    format!("{hash:016x}-{:016x}-0-{hash:08x}", label.len())
}

pub(crate) fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Redis, one naming server and N storage servers, each with its own temp dir.
pub struct TestCluster {
    pub redis: Metadata,
    pub(crate) naming: Child,
    pub(crate) naming_url: String,
    /// More naming servers on the same Redis ([`TestCluster::add_naming`]).
    pub(crate) naming_replicas: Vec<Child>,
    pub(crate) naming_env: Vec<(String, String)>,
    pub(crate) storage: Vec<StorageNode>,
    pub(crate) token: Option<String>,
    pub(crate) ca_cert: Option<PathBuf>,
    pub(crate) http: reqwest::Client,
    /// Size of the tmpfs each storage node's data dir gets, if any.
    pub(crate) tmpfs: Option<u64>,
    /// Unmounted after the processes are gone, before `root` is removed.
    pub(crate) mounts: Vec<Tmpfs>,
    pub(crate) root: tempfile::TempDir,
    pub(crate) logs: Option<PathBuf>,
}

impl TestCluster {
    pub fn builder() -> ClusterBuilder {
        ClusterBuilder::default()
    }

    pub fn naming_url(&self) -> &str {
        &self.naming_url
    }

    /// Starts another naming server on the same Redis (the storage nodes
    /// keep talking to the first); returns it and its base URL.
    pub async fn naming_replica(&self) -> Result<(Child, String)> {
        let log = self.logs.as_ref().map(|dir| dir.join("naming-replica.log"));
        spawn_naming(&self.redis.url(), &self.naming_env, log.as_deref()).await
    }

    /// Creates the data dir of storage node `i` (on a tmpfs of its own
    /// when the cluster has them).
    fn node_dir(&mut self, i: usize) -> Result<PathBuf> {
        let dir = self.root.path().join(format!("node{i}"));
        std::fs::create_dir_all(&dir)?;
        if let Some(size) = self.tmpfs {
            self.mounts.push(Tmpfs::mount(&dir, size)?);
        }
        Ok(dir)
    }

    /// Starts storage node number `storage.len()` with `env`.
    pub(crate) async fn spawn_storage(&mut self, env: &[(String, String)]) -> Result<usize> {
        let i = self.storage.len();
        let dir = self.node_dir(i)?;
        let log = self
            .logs
            .as_ref()
            .map(|logs| logs.join(format!("storage-{i}.log")));
        let node = StorageNode::spawn(&self.naming_url, &dir, env, log).await?;
        self.storage.push(node);
        Ok(i)
    }

    /// Everything the servers wrote to stderr so far (needs
    /// [`ClusterBuilder::capture_logs`]).
    pub fn server_logs(&self) -> Result<String> {
        let dir = self.logs.as_ref().context("logs are not captured")?;
        let mut text = String::new();
        for entry in std::fs::read_dir(dir)? {
            text.push_str(&std::fs::read_to_string(entry?.path())?);
        }
        Ok(text)
    }

    /// The cluster's token, if it has one.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// The harness's HTTP client (trusting the cluster's CA, if any).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// `request` with the cluster's token, if it has one.
    pub fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// A folder owned by this test for local files.
    pub fn scratch_dir(&self) -> &Path {
        self.root.path()
    }

    pub fn storage(&self, i: usize) -> &StorageNode {
        &self.storage[i]
    }

    pub fn storage_nodes(&self) -> &[StorageNode] {
        &self.storage
    }

    /// Adds and starts one more storage node; returns its index.
    pub async fn add_storage(&mut self) -> Result<usize> {
        let env = self
            .storage
            .first()
            .map(|n| n.env.clone())
            .unwrap_or_default();
        self.spawn_storage(&env).await
    }

    /// Kills storage node `i` (SIGKILL: no goodbye to the naming server).
    pub async fn stop_storage(&mut self, i: usize) -> Result<()> {
        if let Some(mut child) = self.storage[i].child.take() {
            child.kill().await?;
        }
        Ok(())
    }

    /// Starts storage node `i` again on its old data dir (same node id).
    pub async fn start_storage(&mut self, i: usize) -> Result<()> {
        let old = &self.storage[i];
        if old.is_running() {
            bail!("storage node {i} is already running");
        }
        let node =
            StorageNode::spawn(&self.naming_url, &old.data_dir, &old.env, old.log.clone()).await?;
        self.storage[i] = node;
        Ok(())
    }

    /// Polls distribution job `job_id` until it leaves `running` (for at
    /// most 90 s); returns it.
    pub async fn finished_job(&self, job_id: &str) -> Result<serde_json::Value> {
        const JOB_TIMEOUT: Duration = Duration::from_secs(90);
        let deadline = std::time::Instant::now() + JOB_TIMEOUT;
        loop {
            let job = self.get_json(&format!("/distributions/{job_id}")).await?;
            if job["state"] != "running" {
                return Ok(job);
            }
            if std::time::Instant::now() > deadline {
                bail!("job {job_id} still running after {JOB_TIMEOUT:?}: {job}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills storage node `i` and starts it again on its data dir (same
    /// node id) with `env` set on top of its environment.
    pub async fn restart_storage_with(&mut self, i: usize, env: &[(&str, &str)]) -> Result<()> {
        self.stop_storage(i).await?;
        let old = &self.storage[i];
        let mut node_env = old.env.clone();
        node_env.retain(|(key, _)| !env.iter().any(|(k, _)| k == key));
        node_env.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let node =
            StorageNode::spawn(&self.naming_url, &old.data_dir, &node_env, old.log.clone()).await?;
        self.storage[i] = node;
        Ok(())
    }

    /// `GET {naming}{path}` with the cluster's token, as JSON.
    pub async fn get_json(&self, path: &str) -> Result<serde_json::Value> {
        let request = self.http.get(format!("{}{path}", self.naming_url));
        self.naming_json(request, &format!("GET {path}")).await
    }

    /// `POST {naming}{path}` with a JSON body and the cluster's token; the
    /// reply as JSON.
    pub async fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value> {
        let request = self
            .http
            .post(format!("{}{path}", self.naming_url))
            .json(body);
        self.naming_json(request, &format!("POST {path}")).await
    }

    /// Sends a naming-server request with the cluster's token; a 2xx reply
    /// as JSON, anything else an error naming `what`.
    async fn naming_json(
        &self,
        request: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<serde_json::Value> {
        let response = self.authorized(request).send().await?;
        let status = response.status();
        let body = response.text().await?;
        if !status.is_success() {
            bail!("{what}: {status}: {body}");
        }
        Ok(serde_json::from_str(&body)?)
    }

    /// Counter `name` from storage node `i`'s `GET /metrics` (summed over
    /// its label sets).
    pub async fn storage_metric(&self, i: usize, name: &str) -> Result<u64> {
        self.storage_scrape(i).await?.count(name, &[])
    }

    /// Counter `name` from the naming server's `GET /metrics` (summed over
    /// its label sets).
    pub async fn naming_metric(&self, name: &str) -> Result<u64> {
        self.naming_scrape().await?.count(name, &[])
    }

    /// Storage node `i`'s `GET /metrics`, parsed.
    pub async fn storage_scrape(&self, i: usize) -> Result<Scrape> {
        Scrape::get(&self.http, self.storage[i].url()).await
    }

    /// The naming server's `GET /metrics`, parsed.
    pub async fn naming_scrape(&self) -> Result<Scrape> {
        Scrape::get(&self.http, &self.naming_url).await
    }

    /// Index of the storage node with this id.
    pub fn storage_index(&self, node_id: &str) -> Result<usize> {
        self.storage
            .iter()
            .position(|n| n.node_id() == node_id)
            .with_context(|| format!("no storage node {node_id}"))
    }

    /// `GET /files?name=`: the committed file `name` with its chunks.
    pub async fn file_record(&self, name: &str) -> Result<serde_json::Value> {
        let mut url = reqwest::Url::parse("http://query.invalid/")?;
        url.query_pairs_mut().append_pair("name", name);
        self.get_json(&format!("/files?{}", url.query().unwrap_or_default()))
            .await
    }

    /// Sum of counter `name` over every running storage node.
    pub async fn metric_total(&self, name: &str) -> Result<u64> {
        let mut sum = 0;
        for (i, node) in self.storage.iter().enumerate() {
            if node.is_running() {
                sum += self.storage_metric(i, name).await?;
            }
        }
        Ok(sum)
    }

    /// Checks that every chunk of file `name` has `replication` replicas and
    /// that each replica serves, over HTTP, exactly the bytes of `local` it
    /// stands for; returns the chunk count.
    pub async fn check_replicas(
        &self,
        name: &str,
        local: &Path,
        replication: usize,
    ) -> Result<usize> {
        let record = self.file_record(name).await?;
        let bytes = std::fs::read(local)?;
        let chunk_size = record["chunk_size"].as_u64().context("chunk_size")?;
        let chunks = record["chunks"].as_array().context("chunks")?;
        for chunk in chunks {
            let index = chunk["index"].as_u64().context("index")?;
            let start = usize::try_from(index * chunk_size)?;
            let end = (start + usize::try_from(chunk_size)?).min(bytes.len());
            let id = chunk["chunk_id"].as_str().context("chunk_id")?;
            let replicas = chunk["replicas"].as_array().context("replicas")?;
            if replicas.len() != replication {
                bail!(
                    "chunk {index} has {} replicas, not {replication}: {chunk}",
                    replicas.len()
                );
            }
            for replica in replicas {
                let url = format!("{}/chunks/{id}", replica["url"].as_str().context("url")?);
                let response = self.authorized(self.http.get(&url)).send().await?;
                if response.status() != reqwest::StatusCode::OK {
                    bail!("{url}: {}", response.status());
                }
                if response.bytes().await?[..] != bytes[start..end] {
                    bail!(
                        "{url} holds other bytes than {} [{start}..{end}]",
                        local.display()
                    );
                }
            }
        }
        Ok(chunks.len())
    }

    /// Number of nodes the naming server sees alive.
    pub async fn live_nodes(&self) -> Result<usize> {
        let nodes = self.get_json("/nodes").await?;
        let list = nodes["nodes"]
            .as_array()
            .ok_or_else(|| anyhow!("bad /nodes: {nodes}"))?;
        Ok(list.iter().filter(|n| n["alive"] == true).count())
    }

    /// Waits until exactly `n` storage nodes are alive.
    pub async fn wait_for_live_nodes(&self, n: usize) -> Result<()> {
        wait_until(START_TIMEOUT, || async {
            self.live_nodes().await.ok() == Some(n)
        })
        .await
        .with_context(|| format!("waiting for {n} live storage nodes"))
    }

    /// Runs the real `dfs` binary against this cluster.
    pub async fn dfs<I, S>(&self, args: I) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.dfs_with_env(args, &[]).await
    }

    /// Runs `dfs` with extra environment variables (e.g. `DFS_LOG`).
    pub async fn dfs_with_env<I, S>(&self, args: I, env: &[(&str, &str)]) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let output = self
            .dfs_command(args, env)
            .stdin(Stdio::null())
            .output()
            .await
            .context("run dfs")?;
        Ok(output)
    }

    /// `dfs ARGS` against this cluster (its naming URL, token and CA), with
    /// extra environment variables.
    pub(crate) fn dfs_command<I, S>(&self, args: I, env: &[(&str, &str)]) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut command = Command::new(bin_path("dfs"));
        command
            .args(args)
            .env("DFS_NAMING_URL", &self.naming_url)
            .envs(env.iter().copied())
            .env_remove("DFS_TOKEN")
            .env_remove("DFS_CA_CERT");
        if let Some(token) = &self.token {
            command.env("DFS_TOKEN", token);
        }
        if let Some(ca) = &self.ca_cert {
            command.env("DFS_CA_CERT", ca);
        }
        command
    }

    /// Runs `dfs` and fails unless it exits 0; returns its stdout.
    pub async fn dfs_ok<I, S>(&self, args: I) -> Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let output = self.dfs(&args).await?;
        if !output.status.success() {
            bail!(
                "dfs {:?} failed ({}): {}",
                args,
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(String::from_utf8(output.stdout)?)
    }

    /// Stores `len` seeded random bytes as `name`, in chunks of 64 KiB
    /// with `replication` replicas, through `dfs create`; returns the local
    /// file they came from (in the scratch dir).
    pub async fn create_random(&self, name: &str, len: u64, replication: u32) -> Result<PathBuf> {
        let local = self
            .scratch_dir()
            .join(format!("{}.local", name.replace('/', "_")));
        write_random_file(&local, len, len)?;
        let path = local.to_str().context("utf-8 path")?;
        let replication = replication.to_string();
        let args = [
            "create",
            path,
            name,
            "--chunk-size",
            "64KiB",
            "--replication",
            &replication,
        ];
        self.dfs_ok(args).await?;
        Ok(local)
    }

    /// Kills the naming server (tests of its absence).
    pub async fn stop_naming(&mut self) -> Result<()> {
        self.naming.kill().await?;
        Ok(())
    }
}

/// `each` of every chain node of a distribution job, head first.
pub fn job_nodes<T>(job: &serde_json::Value, each: impl Fn(&serde_json::Value) -> T) -> Vec<T> {
    job["nodes"]
        .as_array()
        .map(|nodes| nodes.iter().map(each).collect())
        .unwrap_or_default()
}

/// `(node_id, state)` of every chain node of a distribution job, head first.
pub fn job_node_states(job: &serde_json::Value) -> Vec<(String, String)> {
    job_nodes(job, |n| {
        let field = |k: &str| n[k].as_str().unwrap_or_default().to_owned();
        (field("node_id"), field("state"))
    })
}

/// Writes `len` bytes of deterministic pseudo-random data to `path`.
pub fn write_random_file(path: &Path, len: u64, seed: u64) -> Result<()> {
    use rand::{RngCore, SeedableRng};
    use std::io::Write;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut block = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        rng.fill_bytes(&mut block[..n]);
        out.write_all(&block[..n])?;
        left -= n as u64;
    }
    out.flush()?;
    Ok(())
}

/// Fails unless `actual` has the length and bytes of `expected` (compared
/// by streaming CRC32C: files may be large).
pub fn same_file(expected: &Path, actual: &Path) -> Result<()> {
    let (e, a) = (
        std::fs::metadata(expected)?.len(),
        std::fs::metadata(actual)?.len(),
    );
    if e != a {
        bail!("{} has {a} bytes, expected {e}", actual.display());
    }
    if file_crc32c(expected)? != file_crc32c(actual)? {
        bail!("{} differs from {}", actual.display(), expected.display());
    }
    Ok(())
}

/// CRC32C of a whole file, streamed.
pub fn file_crc32c(path: &Path) -> Result<u32> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut block = vec![0u8; 1 << 20];
    let mut crc = 0;
    loop {
        let n = file.read(&mut block)?;
        if n == 0 {
            return Ok(crc);
        }
        crc = crc32c::crc32c_append(crc, &block[..n]);
    }
}
