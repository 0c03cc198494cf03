//! `dfs mount` on real FUSE mounts (needs /dev/fuse and fusermount3, from
//! fuse3): files read byte for byte (whole, random 4 KiB reads, mmap), the
//! tree follows creates and deletes, writes are refused, a rotten replica
//! is skipped and reported, a mount on a node that holds the file asks no
//! node for chunks, and Ctrl-C or `fusermount3 -u` leaves nothing mounted.

use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use dfs_tests::{RunningDfs, TestCluster, wait_until};

const KIB64: u64 = 64 * 1024;
const WAIT: Duration = Duration::from_secs(15);

/// A running `dfs mount`, unmounted (lazily, whatever state the process is
/// in) when dropped.
struct Mounted {
    dfs: Option<RunningDfs>,
    point: PathBuf,
}

impl Mounted {
    /// Mounts the cluster at a new folder, with `env` for `dfs`.
    async fn start(cluster: &TestCluster, env: &[(&str, &str)]) -> Result<Self> {
        let point = cluster.scratch_dir().join("mnt");
        std::fs::create_dir_all(&point)?;
        let arg = point.to_str().context("utf-8 path")?;
        let dfs = cluster.spawn_dfs(&["mount", arg, "--refresh", "300ms"], env)?;
        let mounted = Self {
            dfs: Some(dfs),
            point,
        };
        wait_until(WAIT, || async { mounted.is_mounted() })
            .await
            .with_context(|| format!("never mounted: {:?}", mounted.stderr()))?;
        Ok(mounted)
    }

    fn stderr(&self) -> Vec<String> {
        self.dfs
            .as_ref()
            .map(RunningDfs::stderr)
            .unwrap_or_default()
    }

    fn is_mounted(&self) -> bool {
        let point = self.point.to_string_lossy();
        std::fs::read_to_string("/proc/mounts").is_ok_and(|mounts| {
            mounts
                .lines()
                .any(|line| line.split(' ').nth(1) == Some(&point))
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.point.join(name)
    }

    /// Sends `signal` (e.g. "INT") to `dfs mount`, or runs `fusermount3 -u`
    /// when `None`; then checks that it exits 0 and leaves nothing mounted.
    async fn stop(mut self, signal: Option<&str>) -> Result<()> {
        let dfs = self.dfs.take().context("already stopped")?;
        match signal {
            Some(signal) => {
                let pid = dfs.id().context("dfs mount is not running")?;
                let status = std::process::Command::new("kill")
                    .args([format!("-{signal}"), pid.to_string()])
                    .status()?;
                ensure!(status.success(), "kill -{signal} failed");
            }
            None => {
                let status = std::process::Command::new("fusermount3")
                    .arg("-u")
                    .arg(&self.point)
                    .status()?;
                ensure!(status.success(), "fusermount3 -u failed");
            }
        }
        let finished = dfs.finish(WAIT).await?;
        ensure!(
            finished.status.success(),
            "dfs mount ended with {}: {:?}",
            finished.status,
            finished.stderr
        );
        ensure!(
            !self.is_mounted(),
            "{} is still mounted",
            self.point.display()
        );
        Ok(())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if self.is_mounted() {
            let _ = std::process::Command::new("fusermount3")
                .arg("-uz")
                .arg(&self.point)
                .status();
        }
    }
}

/// A cluster of `nodes` nodes with `name` stored from a local file of
/// `len` random bytes, in chunks of 64 KiB with `replication` replicas.
async fn cluster_with_file(
    nodes: usize,
    name: &str,
    len: u64,
    replication: u32,
) -> Result<(TestCluster, PathBuf)> {
    let cluster = TestCluster::builder().storage_nodes(nodes).start().await?;
    let local = cluster.create_random(name, len, replication).await?;
    Ok((cluster, local))
}

/// The whole file `path` read through a mapping of it.
#[allow(unsafe_code)]
fn mapped(path: &Path) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    // SAFETY: the mount is read-only and a dfs file's bytes never change.
    let map = unsafe { memmap2::Mmap::map(&file)? };
    Ok(map.to_vec())
}

#[tokio::test]
async fn a_file_reads_through_the_mount_whole_at_random_and_mapped() -> Result<()> {
    let len = 5 * KIB64 + 4321;
    let (cluster, local) = cluster_with_file(3, "models/v1/weights.bin", len, 2).await?;
    let expected = std::fs::read(&local)?;
    let mount = Mounted::start(&cluster, &[]).await?;

    let file = mount.path("models/v1/weights.bin");
    ensure!(std::fs::metadata(&file)?.len() == len, "wrong size");
    let listed: Vec<String> = std::fs::read_dir(mount.path("models/v1"))?
        .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_>>()?;
    ensure!(listed == ["weights.bin"], "models/v1 lists {listed:?}");
    ensure!(std::fs::metadata(mount.path("models"))?.is_dir());

    ensure!(std::fs::read(&file)? == expected, "sequential read differs");
    let handle = std::fs::File::open(&file)?;
    let mut block = vec![0u8; 4096];
    for i in 0..64u64 {
        // Offsets spread over the file, across chunk edges, up to its end.
        let offset = (i * 7919 * 4096 + i * 13) % (len - 4096);
        handle.read_exact_at(&mut block, offset)?;
        let start = usize::try_from(offset)?;
        ensure!(
            block == expected[start..start + 4096],
            "4 KiB at {offset} differs"
        );
    }
    ensure!(mapped(&file)? == expected, "mapped read differs");

    // Read-only, and unknown names are unknown.
    let refused = std::fs::write(mount.path("models/new.bin"), b"x")
        .err()
        .context("a write went through")?;
    ensure!(
        refused.raw_os_error() == Some(30),
        "write failed with {refused}, not EROFS"
    );
    let missing = std::fs::metadata(mount.path("models/v2")).err();
    ensure!(
        missing.is_some_and(|e| e.kind() == ErrorKind::NotFound),
        "an unknown name is not ENOENT"
    );
    // Ctrl-C with `handle` still open: the mount goes all the same.
    mount.stop(Some("INT")).await?;
    drop(handle);
    Ok(())
}

#[tokio::test]
async fn the_tree_follows_creates_and_deletes_and_fusermount_ends_the_mount() -> Result<()> {
    let (cluster, local) = cluster_with_file(2, "a/first.bin", 1000, 1).await?;
    let mount = Mounted::start(&cluster, &[]).await?;
    ensure!(std::fs::read(mount.path("a/first.bin"))? == std::fs::read(&local)?);

    let path = local.to_str().context("utf-8 path")?;
    cluster
        .dfs_ok(["create", path, "b/c/second.bin", "--replication", "1"])
        .await?;
    wait_until(WAIT, || async {
        std::fs::read(mount.path("b/c/second.bin")).is_ok_and(|b| b.len() == 1000)
    })
    .await
    .context("a new file never showed")?;

    cluster.dfs_ok(["delete", "a/first.bin"]).await?;
    wait_until(WAIT, || async {
        !mount.path("a/first.bin").exists() && !mount.path("a").exists()
    })
    .await
    .context("a deleted file never went")?;
    mount.stop(None).await
}

#[tokio::test]
async fn a_mount_on_a_node_reads_its_files_and_skips_a_rotten_one() -> Result<()> {
    let len = 4 * KIB64 + 10;
    let (cluster, local) = cluster_with_file(3, "here.bin", len, 3).await?;
    let record = cluster.file_record("here.bin").await?;
    let first = record["chunks"][0]["chunk_id"]
        .as_str()
        .context("chunk id")?;
    // Node 0's copy of chunk 0 rots.
    let rotten = cluster.storage(0).chunk_path(first).context("chunk 0")?;
    let mut bytes = std::fs::read(&rotten)?;
    bytes[7] ^= 0x5a;
    std::fs::write(&rotten, bytes)?;

    let gets = "dfs_http_chunk_gets_total";
    let before = cluster.metric_total(gets).await?;
    let reports = cluster.naming_metric("dfs_suspect_reports_total").await?;
    let data_dir = cluster.storage(0).data_dir().to_string_lossy().into_owned();
    let mount = Mounted::start(&cluster, &[("DFS_LOCAL_DATA_DIR", &data_dir)]).await?;
    ensure!(
        std::fs::read(mount.path("here.bin"))? == std::fs::read(&local)?,
        "read through the mount differs"
    );
    let fetched = cluster.metric_total(gets).await? - before;
    if fetched != 1 {
        bail!("{fetched} chunks fetched over HTTP; only the rotten one should be");
    }
    let reported = cluster.naming_metric("dfs_suspect_reports_total").await? - reports;
    ensure!(reported == 1, "{reported} bad copies reported, expected 1");
    mount.stop(Some("TERM")).await
}

#[tokio::test]
async fn after_a_distribute_a_mount_on_any_node_asks_no_node_for_chunks() -> Result<()> {
    let len = 6 * KIB64 + 99;
    let (cluster, local) = cluster_with_file(3, "fleet.bin", len, 1).await?;
    cluster.dfs_ok(["distribute", "fleet.bin"]).await?;
    let gets = "dfs_http_chunk_gets_total";
    let before = cluster.metric_total(gets).await?;
    let data_dir = cluster.storage(2).data_dir().to_string_lossy().into_owned();
    let mount = Mounted::start(&cluster, &[("DFS_LOCAL_DATA_DIR", &data_dir)]).await?;
    ensure!(
        std::fs::read(mount.path("fleet.bin"))? == std::fs::read(&local)?,
        "read through the mount differs"
    );
    let fetched = cluster.metric_total(gets).await? - before;
    ensure!(
        fetched == 0,
        "{fetched} chunks fetched over HTTP on a node holding them all"
    );
    mount.stop(Some("TERM")).await
}

#[tokio::test]
async fn a_chunk_no_replica_can_serve_is_eio() -> Result<()> {
    let (cluster, _) = cluster_with_file(1, "lost.bin", 2 * KIB64, 1).await?;
    let record = cluster.file_record("lost.bin").await?;
    let second = record["chunks"][1]["chunk_id"]
        .as_str()
        .context("chunk id")?;
    let path = cluster.storage(0).chunk_path(second).context("chunk 1")?;
    let mut bytes = std::fs::read(&path)?;
    bytes[0] ^= 0x5a;
    std::fs::write(&path, bytes)?;

    let mount = Mounted::start(&cluster, &[]).await?;
    let handle = std::fs::File::open(mount.path("lost.bin"))?;
    let mut block = vec![0u8; 4096];
    let failed = handle
        .read_exact_at(&mut block, KIB64 + 100)
        .err()
        .context("a chunk with no good copy was read")?;
    ensure!(
        failed.raw_os_error() == Some(5),
        "failed with {failed}, not EIO"
    );
    drop(handle);
    mount.stop(Some("INT")).await
}
