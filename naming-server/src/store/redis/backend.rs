//! The three kinds of Redis that `REDIS_URL` can name, behind one
//! connection handle ([`Backend`]): a single server (`redis://`,
//! `rediss://`, `redis+unix://`), Redis Cluster
//! (`redis+cluster://[:PASSWORD@]HOST:PORT,HOST:PORT,…`, any reachable seed
//! nodes) and Redis Sentinel
//! (`redis+sentinel://[:PASSWORD@]HOST:PORT,…/MASTER_NAME`).
//!
//! Each is one multiplexed connection (per Cluster node), made on first use
//! and made again after it is lost:
//! - a single server through [`ConnectionManager`];
//! - Cluster through the `redis` crate's cluster connection, which follows
//!   MOVED/ASK and re-reads the slot map when a master fails over. A
//!   pipeline whose commands span several hash tags is sent as one pipeline
//!   per tag, concurrently (Cluster refuses a pipeline across slots);
//! - Sentinel by asking the sentinels for the master, and asking again when
//!   the master's connection fails or the server says it is now a replica.
//!   A command the old master refused (READONLY, or no connection at all),
//!   or one that only reads, is sent once more to the new one; a write
//!   lost with a dropped connection is not, since it may have run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::try_join_all;
use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster::{ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Cmd, ConnectionAddr, ErrorKind, IntoConnectionInfo, Pipeline,
    RedisError, RedisFuture, RedisResult, ServerErrorKind, Value,
};

/// Longest wait to connect to one server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest wait for one reply.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the metadata lives, as read from `REDIS_URL`.
#[derive(Debug, PartialEq, Eq)]
pub enum Topology {
    /// A URL the `redis` crate reads as it is.
    Single(String),
    Cluster {
        seeds: Vec<(String, u16)>,
        auth: Auth,
    },
    Sentinel {
        sentinels: Vec<(String, u16)>,
        master: String,
        auth: Auth,
    },
}

/// The user name and password of a Cluster or Sentinel URL; they apply to
/// the Redis servers (not to the sentinels).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Auth {
    username: Option<String>,
    password: Option<String>,
}

const CLUSTER_SCHEME: &str = "redis+cluster://";
const SENTINEL_SCHEME: &str = "redis+sentinel://";

impl Topology {
    pub fn parse(url: &str) -> Result<Self, String> {
        if let Some(rest) = url.strip_prefix(CLUSTER_SCHEME) {
            let (auth, hosts) = split_auth(rest)?;
            let hosts = hosts.strip_suffix('/').unwrap_or(hosts);
            if hosts.contains('/') {
                return Err(format!(
                    "{url}: a Cluster URL names seed nodes only \
                     ({CLUSTER_SCHEME}HOST:PORT,HOST:PORT,…), no path"
                ));
            }
            Ok(Self::Cluster {
                seeds: host_list(url, hosts)?,
                auth,
            })
        } else if let Some(rest) = url.strip_prefix(SENTINEL_SCHEME) {
            let (auth, rest) = split_auth(rest)?;
            let Some((hosts, master)) = rest.split_once('/') else {
                return Err(format!(
                    "{url}: a Sentinel URL ends in the master's name \
                     ({SENTINEL_SCHEME}HOST:PORT,…/MASTER_NAME)"
                ));
            };
            if master.is_empty() || master.contains('/') {
                return Err(format!("{url}: {master:?} is not a master name"));
            }
            Ok(Self::Sentinel {
                sentinels: host_list(url, hosts)?,
                master: master.to_owned(),
                auth,
            })
        } else {
            Ok(Self::Single(url.to_owned()))
        }
    }

    /// Whether the masters have replicas that a failover promotes, so that
    /// a commit must reach one before it is acknowledged.
    pub fn fails_over(&self) -> bool {
        !matches!(self, Self::Single(_))
    }
}

/// `[USER:PASSWORD@]REST` → the (percent-decoded) credentials and REST.
fn split_auth(rest: &str) -> Result<(Auth, &str), String> {
    let Some((userinfo, rest)) = rest.rsplit_once('@') else {
        return Ok((Auth::default(), rest));
    };
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|_| "the credentials in REDIS_URL are not UTF-8".to_owned())
    };
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let non_empty = |s: String| (!s.is_empty()).then_some(s);
    Ok((
        Auth {
            username: non_empty(decode(user)?),
            password: non_empty(decode(password)?),
        },
        rest,
    ))
}

/// `HOST:PORT,HOST:PORT,…` (a host may be `[IPv6]`).
fn host_list(url: &str, hosts: &str) -> Result<Vec<(String, u16)>, String> {
    let list = hosts
        .split(',')
        .map(|item| {
            let (host, port) = item
                .rsplit_once(':')
                .ok_or_else(|| format!("{url}: {item:?} is not HOST:PORT"))?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let port = port
                .parse::<u16>()
                .map_err(|_| format!("{url}: {port:?} in {item:?} is not a port"))?;
            if host.is_empty() {
                return Err(format!("{url}: {item:?} has no host"));
            }
            Ok((host.to_owned(), port))
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(list)
}

/// One handle on the metadata store's Redis, whatever its kind: cheap to
/// clone, shared by every request.
#[derive(Clone)]
pub enum Backend {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
    Sentinel(Arc<Sentinel>),
}

impl Backend {
    /// Sets the connection up without connecting (it connects on first use).
    pub fn new(topology: &Topology) -> RedisResult<Self> {
        match topology {
            Topology::Single(url) => {
                let client = redis::Client::open(url.as_str())?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(RESPONSE_TIMEOUT))
                    .set_number_of_retries(2)
                    .set_min_delay(Duration::from_millis(50))
                    .set_max_delay(Duration::from_millis(500));
                Ok(Self::Single(ConnectionManager::new_lazy_with_config(
                    client, config,
                )?))
            }
            Topology::Cluster { seeds, auth } => {
                let seeds = seeds
                    .iter()
                    .map(|(host, port)| {
                        ConnectionAddr::Tcp(host.clone(), *port).into_connection_info()
                    })
                    .collect::<RedisResult<Vec<_>>>()?;
                let mut builder = ClusterClientBuilder::new(seeds)
                    // A failover takes the cluster's node timeout and an
                    // election: retry for a few seconds, then say 503.
                    .retries(6)
                    .min_retry_wait(100)
                    .max_retry_wait(1_000);
                if let Some(user) = &auth.username {
                    builder = builder.username(user);
                }
                if let Some(password) = &auth.password {
                    builder = builder.password(password);
                }
                let config = ClusterConfig::new()
                    .set_connection_timeout(CONNECT_TIMEOUT)
                    .set_response_timeout(RESPONSE_TIMEOUT);
                Ok(Self::Cluster(
                    builder
                        .build()?
                        .get_pending_async_connection_with_config(config),
                ))
            }
            Topology::Sentinel {
                sentinels,
                master,
                auth,
            } => {
                let addrs = sentinels
                    .iter()
                    .map(|(host, port)| ConnectionAddr::Tcp(host.clone(), *port));
                let mut builder =
                    SentinelClientBuilder::new(addrs, master, SentinelServerType::Master)?;
                if let Some(user) = &auth.username {
                    builder = builder.set_client_to_redis_username(user);
                }
                if let Some(password) = &auth.password {
                    builder = builder.set_client_to_redis_password(password);
                }
                Ok(Self::Sentinel(Arc::new(Sentinel {
                    client: tokio::sync::Mutex::new(builder.build()?),
                    master: Mutex::new(None),
                })))
            }
        }
    }
}

impl ConnectionLike for Backend {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(conn) => conn.req_packed_command(cmd),
            Self::Cluster(conn) => conn.req_packed_command(cmd),
            Self::Sentinel(sentinel) => Box::pin(sentinel.command(cmd)),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Cluster(conn) => Box::pin(cluster_pipeline(conn, pipeline, offset, count)),
            Self::Sentinel(sentinel) => Box::pin(sentinel.pipeline(pipeline, offset, count)),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(conn) => conn.get_db(),
            Self::Cluster(_) | Self::Sentinel(_) => 0,
        }
    }
}

/// A command's arguments, its name first.
fn args(cmd: &Cmd) -> impl Iterator<Item = &[u8]> {
    cmd.args_iter().map(|arg| match arg {
        redis::Arg::Simple(bytes) => bytes,
        _ => &[][..],
    })
}

/// Whether `cmd` only reads, so that running it twice changes nothing
/// (scripts are not looked into: they count as writes).
fn reads_only(cmd: &Cmd) -> bool {
    const READS: &[&[u8]] = &[
        b"EXISTS",
        b"GET",
        b"MGET",
        b"HGET",
        b"HMGET",
        b"HGETALL",
        b"HKEYS",
        b"HVALS",
        b"HLEN",
        b"SMEMBERS",
        b"SISMEMBER",
        b"SCARD",
        b"ZRANGE",
        b"ZRANGEBYLEX",
        b"ZRANGEBYSCORE",
        b"ZCARD",
        b"ZSCORE",
        b"TTL",
        b"PTTL",
        b"PING",
    ];
    args(cmd)
        .next()
        .is_some_and(|name| READS.contains(&name.to_ascii_uppercase().as_slice()))
}

/// The hash tag of a command's first key (`{nodes}` of
/// `dfs:{nodes}:all`), or `None` for a command without a key (`WAIT`).
fn hash_tag(cmd: &Cmd) -> Option<Vec<u8>> {
    let mut args = args(cmd);
    let name = args.next()?.to_ascii_uppercase();
    let key = match name.as_slice() {
        // EVALSHA SHA NUMKEYS KEY…
        b"EVALSHA" | b"EVAL" => {
            let mut rest = args.skip(1);
            let numkeys = rest.next()?;
            if numkeys == b"0" {
                return None;
            }
            rest.next()?
        }
        b"WAIT" | b"PING" | b"SCRIPT" | b"MULTI" | b"EXEC" => return None,
        _ => args.next()?,
    };
    // Redis hashes the text between the first `{` and the next `}` when
    // it is not empty, else the whole key.
    let tag = key.iter().position(|&b| b == b'{').and_then(|open| {
        let len = key[open + 1..].iter().position(|&b| b == b'}')?;
        (len > 0).then(|| &key[open..open + len + 2])
    });
    Some(tag.unwrap_or(key).to_vec())
}

/// Runs a pipeline on the cluster: as it is when its keys share one hash
/// tag (or it is a transaction), else one pipeline per tag, concurrently,
/// with the replies put back in the pipeline's order. A command without a
/// key goes with the command before it (`WAIT` after the write it waits for).
async fn cluster_pipeline(
    conn: &mut ClusterConnection,
    pipeline: &Pipeline,
    offset: usize,
    count: usize,
) -> RedisResult<Vec<Value>> {
    let mut groups: Vec<Pipeline> = Vec::new();
    let mut group_of: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut order: Vec<usize> = Vec::with_capacity(pipeline.len());
    for cmd in pipeline.cmd_iter() {
        let group = match hash_tag(cmd) {
            Some(tag) => *group_of.entry(tag).or_insert_with(|| {
                groups.push(redis::pipe());
                groups.len() - 1
            }),
            None => match order.last() {
                Some(&last) => last,
                None => {
                    groups.push(redis::pipe());
                    groups.len() - 1
                }
            },
        };
        groups[group].add_command(cmd.clone());
        order.push(group);
    }
    if groups.len() <= 1 || pipeline.is_transaction() {
        return conn.req_packed_commands(pipeline, offset, count).await;
    }
    let replies = try_join_all(groups.iter().map(|group| {
        let mut conn = conn.clone();
        async move { conn.req_packed_commands(group, 0, group.len()).await }
    }))
    .await?;
    let mut replies: Vec<std::vec::IntoIter<Value>> =
        replies.into_iter().map(Vec::into_iter).collect();
    order
        .into_iter()
        .map(|group| {
            replies[group]
                .next()
                .ok_or_else(|| RedisError::from((ErrorKind::Client, "a pipeline reply is missing")))
        })
        .collect()
}

/// The master a set of sentinels names, and the connection to it.
pub struct Sentinel {
    client: tokio::sync::Mutex<SentinelClient>,
    master: Mutex<Option<MultiplexedConnection>>,
}

/// Whether `e` says the connection no longer leads to the master.
fn master_lost(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || matches!(
            e.kind(),
            ErrorKind::Server(ServerErrorKind::ReadOnly | ServerErrorKind::MasterDown)
        )
}

/// Whether the command that failed with `e` certainly did not run (else
/// it may have, before the connection was lost).
fn not_run(e: &RedisError) -> bool {
    e.is_connection_refusal() || e.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly)
}

impl Sentinel {
    /// The master's connection: the one in use, or a new one to the master
    /// the sentinels name now.
    async fn master(&self) -> RedisResult<MultiplexedConnection> {
        if let Some(conn) = self.master.lock().expect("lock").clone() {
            return Ok(conn);
        }
        let mut client = self.client.lock().await;
        if let Some(conn) = self.master.lock().expect("lock").clone() {
            return Ok(conn);
        }
        // Between a master's death and its replica's promotion the
        // sentinels name no master that answers: the store is unavailable.
        let no_master = |detail: String| {
            RedisError::from((
                ErrorKind::Io,
                "no master found through the sentinels",
                detail,
            ))
        };
        let found = tokio::time::timeout(CONNECT_TIMEOUT, client.async_get_client())
            .await
            .map_err(|_| no_master("no sentinel answered in time".to_owned()))?
            .map_err(|e| no_master(e.to_string()))?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT));
        let conn = found
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        *self.master.lock().expect("lock") = Some(conn.clone());
        Ok(conn)
    }

    fn forget_master(&self) {
        *self.master.lock().expect("lock") = None;
    }

    /// Sends with `send` on the master's connection. When the master is
    /// lost, or the reply says it is a replica now (`refused`), drops the
    /// connection; then, once, sends again to the master the sentinels
    /// name, if the request certainly did not run or is `repeatable`.
    async fn on_master<T, F>(
        &self,
        repeatable: bool,
        send: impl Fn(MultiplexedConnection) -> F,
        refused: impl Fn(&T) -> bool,
    ) -> RedisResult<T>
    where
        F: Future<Output = RedisResult<T>>,
    {
        let mut retried = false;
        loop {
            let result = send(self.master().await?).await;
            let again = match &result {
                Err(e) if master_lost(e) => Some(not_run(e) || repeatable),
                Ok(reply) if refused(reply) => Some(true),
                _ => None,
            };
            match again {
                Some(again) => {
                    self.forget_master();
                    if retried || !again {
                        return result;
                    }
                    retried = true;
                }
                None => return result,
            }
        }
    }

    async fn command(&self, cmd: &Cmd) -> RedisResult<Value> {
        let send =
            |mut conn: MultiplexedConnection| async move { conn.req_packed_command(cmd).await };
        self.on_master(reads_only(cmd), send, says_readonly).await
    }

    async fn pipeline(
        &self,
        pipeline: &Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        let send = |mut conn: MultiplexedConnection| async move {
            conn.req_packed_commands(pipeline, offset, count).await
        };
        // A demoted master answers each write of a pipeline READONLY.
        let refused = |values: &Vec<Value>| values.iter().any(says_readonly);
        let repeatable = pipeline.cmd_iter().all(reads_only);
        self.on_master(repeatable, send, refused).await
    }
}

/// Whether a reply is a demoted master's READONLY error.
fn says_readonly(value: &Value) -> bool {
    matches!(value, Value::ServerError(e) if e.code() == "READONLY")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(list: &[(&str, u16)]) -> Vec<(String, u16)> {
        list.iter().map(|(h, p)| ((*h).to_owned(), *p)).collect()
    }

    #[test]
    fn urls_name_the_backend() {
        assert_eq!(
            Topology::parse("redis://127.0.0.1:6379/0"),
            Ok(Topology::Single("redis://127.0.0.1:6379/0".into()))
        );
        assert_eq!(
            Topology::parse("redis+cluster://10.0.0.1:7000,[::1]:7001/"),
            Ok(Topology::Cluster {
                seeds: hosts(&[("10.0.0.1", 7000), ("::1", 7001)]),
                auth: Auth::default(),
            })
        );
        assert_eq!(
            Topology::parse("redis+sentinel://:p%40ss@h1:26379,h2:26380/mymaster"),
            Ok(Topology::Sentinel {
                sentinels: hosts(&[("h1", 26379), ("h2", 26380)]),
                master: "mymaster".into(),
                auth: Auth {
                    username: None,
                    password: Some("p@ss".into()),
                },
            })
        );
        assert!(Topology::parse("redis+cluster://h1").is_err());
        assert!(Topology::parse("redis+cluster://h1:x").is_err());
        assert!(Topology::parse("redis+cluster://h1:1/0").is_err());
        assert!(Topology::parse("redis+sentinel://h1:1").is_err());
        assert!(Topology::parse("redis+sentinel://h1:1/").is_err());
        assert!(Topology::parse("redis+sentinel://:1/m").is_err());
    }

    #[test]
    fn only_reads_count_as_safe_to_repeat() {
        assert!(reads_only(redis::cmd("HGETALL").arg("dfs:{a}:file:x")));
        assert!(reads_only(
            redis::cmd("zrangebylex").arg("k").arg("-").arg("+")
        ));
        assert!(!reads_only(redis::cmd("HSET").arg("k").arg("f").arg("v")));
        assert!(!reads_only(
            redis::cmd("EVALSHA").arg("0123").arg(1).arg("k")
        ));
        assert!(!reads_only(&redis::Cmd::new()));
    }

    #[test]
    fn commands_group_by_their_first_keys_hash_tag() {
        let tag = |cmd: &Cmd| hash_tag(cmd).map(|t| String::from_utf8(t).expect("utf-8"));
        assert_eq!(
            tag(redis::cmd("HGETALL").arg("dfs:{ab12}:file:x")),
            Some("{ab12}".into())
        );
        assert_eq!(
            tag(redis::cmd("EVALSHA")
                .arg("0123")
                .arg(2)
                .arg("dfs:{nodes}:all")
                .arg("k")),
            Some("{nodes}".into())
        );
        assert_eq!(tag(redis::cmd("EVALSHA").arg("0123").arg(0)), None);
        assert_eq!(tag(redis::cmd("WAIT").arg(1).arg(100)), None);
        assert_eq!(tag(redis::cmd("GET").arg("plain")), Some("plain".into()));
        assert_eq!(tag(redis::cmd("GET").arg("a{}b")), Some("a{}b".into()));
    }
}
