//! Real Redis topologies on loopback TCP ports, from Debian's
//! `redis-server` and `redis-cli`: [`RedisCluster`] (3 masters, 3
//! replicas) and [`RedisSentinel`] (1 master, 1 replica, 3 sentinels), and
//! [`Metadata`], whichever of them (or a single [`Redis`]) a test cluster
//! keeps its metadata on.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::process::{Child, Command};

use crate::redis::{Redis, redis_server};
use crate::wait_until;

/// How long a topology may take to form (cluster slots agreed, replicas
/// linked, sentinels aware of the replica).
const FORM_TIMEOUT: Duration = Duration::from_secs(30);

/// Which kind of Redis a test cluster keeps its metadata on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MetadataKind {
    /// One `redis-server` on a Unix socket.
    #[default]
    Single,
    /// Redis Cluster: 3 masters, 3 replicas.
    Cluster,
    /// Redis Sentinel: 1 master, 1 replica, 3 sentinels.
    Sentinel,
}

/// The Redis a test cluster runs on.
pub enum Metadata {
    Single(Redis),
    Cluster(RedisCluster),
    Sentinel(RedisSentinel),
}

impl Metadata {
    pub async fn start(kind: MetadataKind) -> Result<Self> {
        Ok(match kind {
            MetadataKind::Single => Self::Single(Redis::start().await?),
            MetadataKind::Cluster => Self::Cluster(RedisCluster::start().await?),
            MetadataKind::Sentinel => Self::Sentinel(RedisSentinel::start().await?),
        })
    }

    /// The naming server's `REDIS_URL`.
    pub fn url(&self) -> String {
        match self {
            Self::Single(redis) => redis.url().to_owned(),
            Self::Cluster(cluster) => cluster.url(),
            Self::Sentinel(sentinel) => sentinel.url(),
        }
    }

    /// The single server, for tests of its outage or its socket.
    pub fn single(&mut self) -> Result<&mut Redis> {
        match self {
            Self::Single(redis) => Ok(redis),
            _ => bail!("this test cluster does not run on a single Redis"),
        }
    }
}

/// The password of every Redis server of a Cluster or Sentinel setup (not
/// of the sentinels): a `/` in it must be percent-encoded in `REDIS_URL`.
pub const PASSWORD: &str = "s3cret/pass";
/// [`PASSWORD`] as it goes in a URL.
const PASSWORD_IN_URL: &str = "s3cret%2Fpass";

/// A `redis-server` on a loopback TCP port.
struct Server {
    port: u16,
    child: Child,
    /// Whether it takes [`PASSWORD`] (a sentinel takes none).
    auth: bool,
}

impl Server {
    /// Runs `redis-server ARGS…` (a config file, if any, first) on `port`,
    /// its files in `dir`, without persistence, and waits until it answers
    /// PING.
    /// With `auth`, the server asks for [`PASSWORD`] and gives it to its
    /// master.
    async fn start(port: u16, dir: &Path, args: &[String], auth: bool) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut command = redis_server(args, dir);
        command.args(["--bind", "127.0.0.1", "--port", &port.to_string()]);
        if auth {
            command.args(["--requirepass", PASSWORD, "--masterauth", PASSWORD]);
        }
        let mut child = command
            .spawn()
            .context("cannot run redis-server (install it: apt-get install redis-server)")?;
        let up = wait_until(Duration::from_secs(10), || async {
            cli(port, auth, &["PING"]).await.is_ok_and(|r| r == "PONG")
        })
        .await;
        if let Some(status) = child.try_wait()? {
            bail!("redis-server on port {port} exited at start: {status}");
        }
        up.with_context(|| format!("redis-server on port {port} did not answer PING"))?;
        Ok(Self { port, child, auth })
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `redis-cli ARGS…` on this server.
    async fn cli(&self, args: &[&str]) -> Result<String> {
        cli(self.port, self.auth, args).await
    }
}

/// `redis-cli -p PORT ARGS…` (with [`PASSWORD`] when `auth`), its output
/// trimmed; an error when it fails.
async fn cli(port: u16, auth: bool, args: &[&str]) -> Result<String> {
    let mut command = Command::new("redis-cli");
    if auth {
        command.env("REDISCLI_AUTH", PASSWORD);
    }
    let out = command
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .context("cannot run redis-cli (install it: apt-get install redis-tools)")?;
    if !out.status.success() {
        bail!(
            "redis-cli {args:?} on port {port}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The value of `field` in an `INFO`-style reply (`field:value` lines).
fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|line| line.trim().strip_prefix(field)?.strip_prefix(':'))
}

/// A free loopback port whose cluster bus port (+10000) is free too.
fn free_cluster_port() -> Result<u16> {
    for _ in 0..100 {
        let port = crate::free_port()?;
        if port <= 55_535 && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no free port pair (PORT, PORT+10000) on loopback")
}

/// A Redis Cluster of 6 servers: 3 masters, each with one replica
/// (`redis-cli --cluster create … --cluster-replicas 1`), node timeout 2 s.
pub struct RedisCluster {
    servers: Vec<Server>,
    _dir: tempfile::TempDir,
}

impl RedisCluster {
    /// Starts the servers, joins them into a cluster and waits until every
    /// server says the cluster is ok and each master has its replica linked.
    pub async fn start() -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut servers = Vec::new();
        for i in 0..6 {
            let port = free_cluster_port()?;
            let args = [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "2000",
            ]
            .map(String::from);
            let dir = dir.path().join(format!("s{i}"));
            servers.push(Server::start(port, &dir, &args, true).await?);
        }
        let addrs: Vec<String> = servers.iter().map(Server::addr).collect();
        let mut create = vec!["--cluster", "create"];
        create.extend(addrs.iter().map(String::as_str));
        create.extend(["--cluster-replicas", "1", "--cluster-yes"]);
        servers[0].cli(&create).await?;
        let cluster = Self { servers, _dir: dir };
        cluster.wait_until_healthy().await?;
        Ok(cluster)
    }

    /// `redis+cluster://:PASSWORD@…` with every server as a seed.
    pub fn url(&self) -> String {
        let addrs: Vec<String> = self.servers.iter().map(Server::addr).collect();
        format!("redis+cluster://:{PASSWORD_IN_URL}@{}", addrs.join(","))
    }

    /// Waits until every server says `cluster_state:ok`, and every master
    /// has a replica done with its first sync.
    async fn wait_until_healthy(&self) -> Result<()> {
        wait_until(FORM_TIMEOUT, || async {
            let mut masters_with_replicas = 0;
            for server in &self.servers {
                let Ok(info) = server.cli(&["CLUSTER", "INFO"]).await else {
                    return false;
                };
                if info_field(&info, "cluster_state") != Some("ok") {
                    return false;
                }
                let Ok(replication) = server.cli(&["INFO", "replication"]).await else {
                    return false;
                };
                if info_field(&replication, "role") == Some("master") {
                    // `slave0:ip=…,port=…,state=online,…` once its sync is done.
                    let online = info_field(&replication, "slave0")
                        .is_some_and(|replica| replica.contains("state=online"));
                    if !online {
                        return false;
                    }
                    masters_with_replicas += 1;
                }
            }
            masters_with_replicas == 3
        })
        .await
        .context("the Redis cluster did not become healthy")
    }

    /// The ports of the servers that are masters now.
    pub async fn masters(&self) -> Result<Vec<u16>> {
        let mut masters = Vec::new();
        for server in &self.servers {
            if let Ok(info) = server.cli(&["INFO", "replication"]).await
                && info_field(&info, "role") == Some("master")
            {
                masters.push(server.port);
            }
        }
        Ok(masters)
    }

    /// The port of the master serving `key`'s slot.
    pub async fn master_of(&self, key: &str) -> Result<u16> {
        let slot: u16 = self.servers[0]
            .cli(&["CLUSTER", "KEYSLOT", key])
            .await?
            .parse()?;
        for port in self.masters().await? {
            let nodes = cli(port, true, &["CLUSTER", "NODES"]).await?;
            let mine = nodes
                .lines()
                .find(|line| line.contains("myself"))
                .context("CLUSTER NODES lists no myself")?;
            if owns_slot(mine, slot) {
                return Ok(port);
            }
        }
        bail!("no master owns slot {slot}")
    }

    /// The process id of server `port` (to SIGKILL it while others use
    /// the cluster).
    pub fn pid(&self, port: u16) -> Result<u32> {
        self.servers
            .iter()
            .find(|s| s.port == port)
            .and_then(|s| s.child.id())
            .with_context(|| format!("no running server on port {port}"))
    }
}

/// Whether a `CLUSTER NODES` line's slot ranges (`0-5460 …`) hold `slot`.
fn owns_slot(line: &str, slot: u16) -> bool {
    line.split_whitespace().skip(8).any(|range| {
        let (lo, hi) = range.split_once('-').unwrap_or((range, range));
        matches!((lo.parse::<u16>(), hi.parse::<u16>()), (Ok(lo), Ok(hi)) if (lo..=hi).contains(&slot))
    })
}

/// The master name the sentinels watch.
pub const SENTINEL_MASTER: &str = "dfs";

/// Redis Sentinel: a master, one replica and 3 sentinels (quorum 2, a
/// master silent for 1 s is down).
pub struct RedisSentinel {
    master: Server,
    replica: Server,
    sentinels: Vec<Server>,
    _dir: tempfile::TempDir,
}

impl RedisSentinel {
    /// Starts the servers and waits until the replica is linked and every
    /// sentinel knows it.
    pub async fn start() -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let master =
            Server::start(crate::free_port()?, &dir.path().join("master"), &[], true).await?;
        let replica_args = ["--replicaof", "127.0.0.1", &master.port.to_string()].map(String::from);
        let replica = Server::start(
            crate::free_port()?,
            &dir.path().join("replica"),
            &replica_args,
            true,
        )
        .await?;
        let mut sentinels = Vec::new();
        for i in 0..3 {
            let port = crate::free_port()?;
            let sdir = dir.path().join(format!("sentinel{i}"));
            std::fs::create_dir_all(&sdir)?;
            let conf = sdir.join("sentinel.conf");
            std::fs::write(
                &conf,
                format!(
                    "sentinel monitor {SENTINEL_MASTER} 127.0.0.1 {} 2\n\
                     sentinel down-after-milliseconds {SENTINEL_MASTER} 1000\n\
                     sentinel failover-timeout {SENTINEL_MASTER} 10000\n\
                     sentinel auth-pass {SENTINEL_MASTER} {PASSWORD}\n",
                    master.port
                ),
            )?;
            let args = [conf.to_string_lossy().into_owned(), "--sentinel".to_owned()];
            sentinels.push(Server::start(port, &sdir, &args, false).await?);
        }
        let setup = Self {
            master,
            replica,
            sentinels,
            _dir: dir,
        };
        wait_until(FORM_TIMEOUT, || async {
            let linked = setup
                .replica
                .cli(&["INFO", "replication"])
                .await
                .is_ok_and(|info| info_field(&info, "master_link_status") == Some("up"));
            let mut known = true;
            for sentinel in &setup.sentinels {
                known &= sentinel
                    .cli(&["SENTINEL", "REPLICAS", SENTINEL_MASTER])
                    .await
                    .is_ok_and(|r| !r.is_empty());
            }
            linked && known
        })
        .await
        .context("the Sentinel setup did not form")?;
        Ok(setup)
    }

    /// `redis+sentinel://:PASSWORD@SENTINELS/dfs`.
    pub fn url(&self) -> String {
        let addrs: Vec<String> = self.sentinels.iter().map(Server::addr).collect();
        format!(
            "redis+sentinel://:{PASSWORD_IN_URL}@{}/{SENTINEL_MASTER}",
            addrs.join(",")
        )
    }

    /// The master's process id (to SIGKILL it while others use it: the
    /// sentinels then promote the replica).
    pub fn master_pid(&self) -> Result<u32> {
        self.master.child.id().context("the master is not running")
    }

    /// Waits until the sentinels name the replica as the master.
    pub async fn wait_for_promotion(&self) -> Result<()> {
        let want = self.replica.port.to_string();
        wait_until(FORM_TIMEOUT, || async {
            self.sentinels[0]
                .cli(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", SENTINEL_MASTER])
                .await
                .is_ok_and(|addr| addr.lines().nth(1) == Some(want.as_str()))
        })
        .await
        .context("the sentinels did not promote the replica")
    }
}
