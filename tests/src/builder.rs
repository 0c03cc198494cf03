//! [`ClusterBuilder`]: what a [`TestCluster`] runs with (nodes, settings,
//! token, TLS, captured logs), and starting it.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::TestCluster;
use crate::redis_topologies::{Metadata, MetadataKind};
use crate::servers::spawn_naming;

/// PEM files of a cluster that serves HTTPS: the servers' certificate and
/// key, and the CA that signed it (given to every client as `DFS_CA_CERT`).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The servers' certificate (`TLS_CERT`).
    pub cert: PathBuf,
    /// Its private key (`TLS_KEY`).
    pub key: PathBuf,
    /// The CA that signed it (`DFS_CA_CERT`).
    pub ca: PathBuf,
}

/// Builder for [`TestCluster`].
#[derive(Default)]
pub struct ClusterBuilder {
    storage_nodes: usize,
    naming_env: Vec<(String, String)>,
    storage_env: Vec<(String, String)>,
    token: Option<String>,
    tls: Option<TlsFiles>,
    capture_logs: bool,
    tmpfs: Option<u64>,
    metadata: MetadataKind,
}

impl ClusterBuilder {
    pub fn storage_nodes(mut self, n: usize) -> Self {
        self.storage_nodes = n;
        self
    }

    pub fn naming_env(mut self, key: &str, value: &str) -> Self {
        self.naming_env.push((key.into(), value.into()));
        self
    }

    pub fn storage_env(mut self, key: &str, value: &str) -> Self {
        self.storage_env.push((key.into(), value.into()));
        self
    }

    /// Gives every storage node a data dir of its own on a tmpfs of `size`
    /// bytes, which really fills up (see [`Tmpfs`](crate::Tmpfs)).
    pub fn storage_tmpfs(mut self, size: u64) -> Self {
        self.tmpfs = Some(size);
        self
    }

    /// Keeps the metadata on a Redis of this kind (a single server unless told).
    pub fn metadata(mut self, kind: MetadataKind) -> Self {
        self.metadata = kind;
        self
    }

    /// Sets `DFS_TOKEN` on every server and on `dfs` runs.
    pub fn token(mut self, token: &str) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Every server serves HTTPS only with `files` (`TLS_CERT`, `TLS_KEY`),
    /// and every client, the harness's own included, trusts their CA
    /// (`DFS_CA_CERT`).
    pub fn tls(mut self, files: TlsFiles) -> Self {
        self.tls = Some(files);
        self
    }

    /// Sends every server's stderr to a file instead of the test's, for
    /// [`TestCluster::server_logs`].
    pub fn capture_logs(mut self) -> Self {
        self.capture_logs = true;
        self
    }

    pub async fn start(self) -> Result<TestCluster> {
        let redis = Metadata::start(self.metadata).await?;
        let root = tempfile::tempdir()?;
        let mut naming_env = vec![("HEARTBEAT_TIMEOUT".to_owned(), "2s".to_owned())];
        naming_env.extend(self.naming_env);
        let mut storage_env = self.storage_env;
        let mut shared = Vec::new();
        if let Some(token) = &self.token {
            shared.push(("DFS_TOKEN".to_owned(), token.clone()));
        }
        let mut http = reqwest::Client::builder();
        if let Some(tls) = &self.tls {
            let path = |p: &Path| p.to_string_lossy().into_owned();
            shared.push(("TLS_CERT".to_owned(), path(&tls.cert)));
            shared.push(("TLS_KEY".to_owned(), path(&tls.key)));
            shared.push(("DFS_CA_CERT".to_owned(), path(&tls.ca)));
            let ca = reqwest::Certificate::from_pem_bundle(&std::fs::read(&tls.ca)?)?;
            http = http.tls_certs_merge(ca);
        }
        naming_env.extend(shared.iter().cloned());
        storage_env.extend(shared);
        let logs = if self.capture_logs {
            let dir = root.path().join("logs");
            std::fs::create_dir_all(&dir)?;
            Some(dir)
        } else {
            None
        };
        let naming_log = logs.as_ref().map(|dir| dir.join("naming-server.log"));
        let (naming, naming_url) =
            spawn_naming(&redis.url(), &naming_env, naming_log.as_deref()).await?;
        let mut cluster = TestCluster {
            redis,
            naming,
            naming_url,
            naming_replicas: Vec::new(),
            naming_env,
            storage: Vec::new(),
            token: self.token,
            ca_cert: self.tls.map(|tls| tls.ca),
            http: http.build()?,
            tmpfs: self.tmpfs,
            mounts: Vec::new(),
            root,
            logs,
        };
        for _ in 0..self.storage_nodes {
            cluster.spawn_storage(&storage_env).await?;
        }
        cluster.wait_for_live_nodes(self.storage_nodes).await?;
        Ok(cluster)
    }
}
