//! Settings: clap flags with environment-variable fallbacks.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use dfs_common::logging::LogSettings;
use dfs_common::serve::ClusterSettings;

/// Where the naming server is when neither `--naming-url`, `NAMING_URL`
/// nor `COORDINATOR_URL` says.
pub const DEFAULT_NAMING_URL: &str = "http://127.0.0.1:8000";

/// dfs storage server: stores chunks on local disk and serves them over HTTP.
#[derive(Debug, Clone, Parser)]
#[command(name = "storage-server", version, about)]
pub struct Config {
    /// HTTP address to listen on; port 0 picks a free port.
    #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:5001")]
    pub listen_addr: SocketAddr,

    /// TCP port of the peer-transfer listener, on the `--listen-addr` IP; port 0
    /// picks a free port. Advertised as part of `--worker-addr`.
    #[arg(long, env = "TCP_PORT", default_value_t = 50051)]
    pub tcp_port: u16,

    /// Base URL of the naming server, or of several replicas of it,
    /// comma-separated (a call that cannot connect to one goes to the
    /// next); `COORDINATOR_URL` is read when `NAMING_URL` is unset
    /// [default: http://127.0.0.1:8000].
    #[arg(long, env = "NAMING_URL")]
    pub naming_url: Option<String>,

    /// Directory holding the node id, the chunks and upload temp files.
    #[arg(long, env = "DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// HTTP base URL clients and peers use to reach this node [default:
    /// http://HOST:PORT, HOST being the listen IP when specific, else the hostname].
    #[arg(long, env = "ADVERTISE_URL")]
    pub advertise_url: Option<String>,

    /// `host:port` peers use for the peer-transfer TCP chain [default:
    /// HOST:PORT, HOST as for `--advertise-url`, PORT the bound `--tcp-port`].
    #[arg(long, env = "WORKER_ADDR")]
    pub worker_addr: Option<String>,

    #[command(flatten)]
    pub cluster: ClusterSettings,

    #[command(flatten)]
    pub logs: LogSettings,

    /// Ranged GCS requests kept in flight while seeding from Cloud Storage.
    #[arg(long, env = "GCS_PARALLEL_DOWNLOADS", default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub gcs_parallel_downloads: u16,

    /// Chunks fetched per ranged GCS request.
    #[arg(long, env = "GCS_BATCH_CHUNKS", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub gcs_batch_chunks: u16,

    /// GCS emulator base URL (e.g. http://127.0.0.1:4443); without it, real
    /// GCS with Application Default Credentials.
    #[arg(long, env = "STORAGE_EMULATOR_HOST")]
    pub storage_emulator_host: Option<String>,

    /// Test-only cap on this node's GCS download rate, in bits per second
    /// (`10m` = 10 Mbit/s).
    #[arg(long, env = "TEST_ONLY_LIMIT_GCS_BANDWIDTH", value_parser = parse_bandwidth)]
    pub test_only_limit_gcs_bandwidth: Option<u64>,

    /// Test-only cap on this node's sending on the peer chain, in bits per
    /// second (`10m` = 10 Mbit/s). When set, `PUT /test-only/p2p-bandwidth`
    /// (body: a new cap, e.g. `5m`) changes it while the node runs.
    #[arg(long, env = "TEST_ONLY_LIMIT_P2P_BANDWIDTH", value_parser = parse_bandwidth)]
    pub test_only_limit_p2p_bandwidth: Option<u64>,

    /// How often this node lists its chunks to the naming server and
    /// deletes the ones no file refers to (orphans).
    #[arg(long, env = "ORPHAN_SWEEP_INTERVAL", default_value = "1h", value_parser = parse_positive_duration)]
    pub orphan_sweep_interval: Duration,

    /// Chunks written more recently than this are never listed in an
    /// orphan sweep.
    #[arg(long, env = "ORPHAN_GRACE", default_value = "1h", value_parser = parse_duration)]
    pub orphan_grace: Duration,

    /// Time between the starts of two full integrity passes over this
    /// node's chunks (each re-read against its CRC32C).
    #[arg(long, env = "SCRUB_INTERVAL", default_value = "7d", value_parser = parse_positive_duration)]
    pub scrub_interval: Duration,

    /// The scrubber's read-rate cap, in bits per second (`400m` = 50 MB/s),
    /// so it never starves client traffic.
    #[arg(long, env = "SCRUB_BANDWIDTH", default_value = "400m", value_parser = parse_bandwidth)]
    pub scrub_bandwidth: u64,
}

fn parse_duration(s: &str) -> Result<Duration, dfs_common::units::ParseError> {
    dfs_common::units::parse_duration(s)
}

fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    match parse_duration(s) {
        Ok(d) if d.is_zero() => Err("duration must be more than zero".to_owned()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

/// clap value parser for bandwidths: bits per second in, bytes per second out.
fn parse_bandwidth(s: &str) -> Result<u64, dfs_common::units::ParseError> {
    dfs_common::units::parse_bandwidth(s)
}

impl Config {
    /// Parses flags and environment, then falls back to `COORDINATOR_URL`
    /// for the naming URL (clap's `env` takes a single name).
    pub fn from_args_and_env() -> Self {
        let mut config = Self::parse();
        config.naming_url = Some(resolve_naming_url(
            config.naming_url.take(),
            std::env::var("COORDINATOR_URL").ok(),
        ));
        config
    }

    /// The naming server's base URL, without a trailing slash.
    pub fn naming_url(&self) -> String {
        self.naming_url
            .as_deref()
            .unwrap_or(DEFAULT_NAMING_URL)
            .trim_end_matches('/')
            .to_owned()
    }

    /// The HTTP base URL to advertise, given the address actually bound
    /// (`https://` when the node serves TLS).
    pub fn advertise_url(&self, bound: SocketAddr) -> String {
        match &self.advertise_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!(
                "{}://{}:{}",
                self.cluster.tls.scheme(),
                advertise_host(bound.ip()),
                bound.port()
            ),
        }
    }

    /// The peer-transfer address to advertise, given the peer address bound.
    pub fn worker_addr(&self, peer_bound: SocketAddr) -> String {
        match &self.worker_addr {
            Some(addr) => addr.clone(),
            None => format!("{}:{}", advertise_host(peer_bound.ip()), peer_bound.port()),
        }
    }
}

/// First non-empty of the flag (or `NAMING_URL`), `COORDINATOR_URL`, else the default.
fn resolve_naming_url(flag: Option<String>, coordinator_env: Option<String>) -> String {
    [flag, coordinator_env]
        .into_iter()
        .flatten()
        .find(|url| !url.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_NAMING_URL.to_owned())
}

/// The listen IP when it is a specific address, else the machine's hostname.
fn advertise_host(ip: IpAddr) -> String {
    if !ip.is_unspecified() {
        return match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        };
    }
    hostname::get()
        .ok()
        .and_then(|name| name.into_string().ok())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> Config {
        Config::try_parse_from(std::iter::once("storage-server").chain(args.iter().copied()))
            .expect("parses")
    }

    #[test]
    fn naming_url_falls_back_to_coordinator_url() {
        let some = |s: &str| Some(s.to_owned());
        assert_eq!(
            resolve_naming_url(some("http://n"), some("http://c")),
            "http://n"
        );
        assert_eq!(resolve_naming_url(None, some("http://c")), "http://c");
        assert_eq!(resolve_naming_url(some(""), some("http://c")), "http://c");
        assert_eq!(resolve_naming_url(None, None), DEFAULT_NAMING_URL);
    }

    #[test]
    fn advertised_addresses() {
        let c = config(&["--tcp-port", "0"]);
        let bound: SocketAddr = "127.0.0.1:4321".parse().expect("addr");
        let peer_bound: SocketAddr = "127.0.0.1:7000".parse().expect("addr");
        assert_eq!(c.advertise_url(bound), "http://127.0.0.1:4321");
        assert_eq!(c.worker_addr(peer_bound), "127.0.0.1:7000");
        let v6: SocketAddr = "[::1]:80".parse().expect("addr");
        assert_eq!(c.advertise_url(v6), "http://[::1]:80");

        let any: SocketAddr = "0.0.0.0:5001".parse().expect("addr");
        let url = c.advertise_url(any);
        assert!(
            url.starts_with("http://") && !url.contains("0.0.0.0"),
            "{url}"
        );

        let c = config(&[
            "--advertise-url",
            "http://node-a:1/",
            "--worker-addr",
            "node-a:2",
        ]);
        assert_eq!(c.advertise_url(bound), "http://node-a:1");
        assert_eq!(c.worker_addr(bound), "node-a:2");

        let tls = config(&["--tls-cert", "c.pem", "--tls-key", "k.pem"]);
        assert_eq!(tls.advertise_url(bound), "https://127.0.0.1:4321");
        assert!(Config::try_parse_from(["s", "--tls-cert", "c.pem"]).is_err());
        assert!(Config::try_parse_from(["s", "--tls-key", "k.pem"]).is_err());
    }

    #[test]
    fn transfer_settings() {
        let c = config(&[]);
        assert_eq!((c.gcs_parallel_downloads, c.gcs_batch_chunks), (4, 1));
        assert_eq!(c.test_only_limit_p2p_bandwidth, None);
        let c = config(&["--test-only-limit-p2p-bandwidth", "10m"]);
        assert_eq!(c.test_only_limit_p2p_bandwidth, Some(1_250_000));
        assert!(Config::try_parse_from(["s", "--test-only-limit-gcs-bandwidth", "fast"]).is_err());
        assert!(Config::try_parse_from(["s", "--gcs-parallel-downloads", "0"]).is_err());
    }

    #[test]
    fn orphan_sweep_settings() {
        let c = config(&[]);
        let hour = Duration::from_secs(3600);
        assert_eq!((c.orphan_sweep_interval, c.orphan_grace), (hour, hour));
        let c = config(&["--orphan-sweep-interval", "200ms", "--orphan-grace", "0s"]);
        assert_eq!(c.orphan_sweep_interval, Duration::from_millis(200));
        assert_eq!(c.orphan_grace, Duration::ZERO);
        assert!(Config::try_parse_from(["s", "--orphan-sweep-interval", "0s"]).is_err());
    }
}
