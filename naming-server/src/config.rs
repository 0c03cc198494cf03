//! Command-line flags, each with an environment-variable fallback.

use std::time::Duration;

use clap::Parser;
use dfs_common::logging::LogSettings;
use dfs_common::serve::ClusterSettings;
use dfs_common::units::{parse_duration, parse_size};
use dfs_common::{MAX_CHUNK_SIZE, MAX_REPLICATION, MIN_CHUNK_SIZE};

/// Settings of one naming-server process.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "naming-server",
    version,
    about = "dfs naming server: file and node metadata in Redis"
)]
pub struct Config {
    /// Address to listen on for HTTP; port 0 picks a free port.
    #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:8000")]
    pub listen_addr: String,

    /// Redis holding all metadata: one server (`redis://127.0.0.1:6379/0`),
    /// Redis Cluster (`redis+cluster://HOST:PORT,HOST:PORT,…`, any seed
    /// nodes) or Sentinel (`redis+sentinel://HOST:PORT,…/MASTER_NAME`); a
    /// password as `redis://:PASSWORD@…`.
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379/0")]
    pub redis_url: String,

    /// On Cluster or Sentinel, how long a finalize, delete or replica change
    /// waits for a replica to hold it before it is answered on the master's
    /// word alone, e.g. `500ms`.
    #[arg(long, env = "REDIS_WAIT_TIMEOUT", default_value = "500ms", value_parser = parse_positive_duration)]
    pub redis_wait_timeout: Duration,

    /// Replicas per chunk when a file does not ask for a number (1-16).
    #[arg(long, env = "REPLICATION_FACTOR", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_REPLICATION)))]
    pub replication_factor: u32,

    /// Chunk size when a file does not ask for one (64KiB-64MiB), e.g. `8MiB`.
    #[arg(long, env = "CHUNK_SIZE", default_value = "8MiB", value_parser = parse_chunk_size)]
    pub chunk_size: u64,

    /// Free space every storage node keeps: a chunk is placed on a node only
    /// when the node's free space minus this is at least the chunk's size,
    /// e.g. `1GiB`, `0`.
    #[arg(long, env = "FREE_SPACE_RESERVE", default_value = "1GiB", value_parser = parse_reserve)]
    pub free_space_reserve: u64,

    /// A storage node silent for this long counts as dead, e.g. `15s`.
    #[arg(long, env = "HEARTBEAT_TIMEOUT", default_value = "15s", value_parser = parse_positive_duration)]
    pub heartbeat_timeout: Duration,

    /// Pending uploads not finalized within this time expire and their chunks are collected.
    #[arg(long, env = "PENDING_TTL", default_value = "1h", value_parser = parse_positive_duration)]
    pub pending_ttl: Duration,

    /// A storage node silent this long (at least `HEARTBEAT_TIMEOUT`) is lost:
    /// its chunks are copied to live nodes in the background. `off` leaves
    /// that to `dfs repair`.
    #[arg(long, env = "REPAIR_AFTER", default_value = "10m", value_parser = parse_repair_after)]
    pub repair_after: RepairAfter,

    #[command(flatten)]
    pub cluster: ClusterSettings,

    #[command(flatten)]
    pub logs: LogSettings,
}

fn parse_chunk_size(s: &str) -> Result<u64, String> {
    let size = parse_size(s).map_err(|e| e.to_string())?;
    if (MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&size) {
        Ok(size)
    } else {
        Err(format!(
            "chunk size must be between {MIN_CHUNK_SIZE} and {MAX_CHUNK_SIZE} bytes"
        ))
    }
}

fn parse_reserve(s: &str) -> Result<u64, String> {
    parse_size(s).map_err(|e| e.to_string())
}

/// `REPAIR_AFTER`: a duration, or `None` for `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepairAfter(pub Option<Duration>);

fn parse_repair_after(s: &str) -> Result<RepairAfter, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(RepairAfter(None));
    }
    parse_positive_duration(s).map(|d| RepairAfter(Some(d)))
}

fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    match parse_duration(s) {
        Ok(d) if d.is_zero() => Err("duration must be more than zero".to_owned()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let config = Config::try_parse_from(["naming-server"]).expect("defaults parse");
        assert_eq!(config.chunk_size, 8 << 20);
        assert_eq!(config.replication_factor, 3);
        assert_eq!(config.pending_ttl, Duration::from_secs(3600));
        assert_eq!(config.free_space_reserve, 1 << 30);
        let config = Config::try_parse_from([
            "naming-server",
            "--chunk-size",
            "64KiB",
            "--heartbeat-timeout",
            "500ms",
            "--free-space-reserve",
            "0",
        ])
        .expect("overrides parse");
        assert_eq!(config.chunk_size, 64 << 10);
        assert_eq!(config.heartbeat_timeout, Duration::from_millis(500));
        assert_eq!(config.free_space_reserve, 0);
        assert!(Config::try_parse_from(["naming-server", "--free-space-reserve", "lots"]).is_err());
        assert!(Config::try_parse_from(["naming-server", "--chunk-size", "1KiB"]).is_err());
        assert!(Config::try_parse_from(["naming-server", "--replication-factor", "0"]).is_err());
        assert!(Config::try_parse_from(["naming-server", "--pending-ttl", "0s"]).is_err());
        assert_eq!(
            config.repair_after,
            RepairAfter(Some(Duration::from_secs(600)))
        );
        let off = Config::try_parse_from(["naming-server", "--repair-after", "off"]);
        assert_eq!(off.expect("off parses").repair_after, RepairAfter(None));
        assert!(Config::try_parse_from(["naming-server", "--repair-after", "0s"]).is_err());
    }

    #[test]
    fn tls_cert_and_key_go_together() {
        assert!(Config::try_parse_from(["naming-server", "--tls-cert", "c.pem"]).is_err());
        assert!(Config::try_parse_from(["naming-server", "--tls-key", "k.pem"]).is_err());
        let both = ["naming-server", "--tls-cert", "c.pem", "--tls-key", "k.pem"];
        let config = Config::try_parse_from(both).expect("both parse");
        assert_eq!(config.cluster.tls.tls_cert, Some(PathBuf::from("c.pem")));
        assert_eq!(config.cluster.tls.scheme(), "https");
    }
}
