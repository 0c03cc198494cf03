//! The naming server's list of registered storage nodes, as this node
//! checks a replication chain against it before it connects anywhere: a
//! replicate call pulls only from some registered node's peer address
//! (`tcp_addr`), and calls a downstream node only by a registered id at
//! that node's registered URL. The list (`GET /nodes`) is cached and
//! fetched again on a miss, at most once per [`MIN_REFRESH`] however many
//! requests miss, so unknown names cannot make this node hammer the naming
//! server.

use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use dfs_client::NamingClient;
use dfs_common::api::NodeInfo;
use thiserror::Error;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// Shortest time between two fetches of the node list.
pub const MIN_REFRESH: Duration = Duration::from_millis(250);

/// Why a chain cannot be used.
#[derive(Debug, Error)]
pub enum RegistryError {
    /// The address or node is not a registered storage node's.
    #[error("{0}")]
    Unregistered(String),
    /// The naming server could not say.
    #[error("cannot check the chain against the naming server's node list: {0}")]
    Unavailable(String),
}

/// The cached node list.
#[derive(Debug)]
pub struct Registry {
    naming: NamingClient,
    nodes: RwLock<Snapshot>,
    /// Held while the list is fetched: concurrent misses wait for one fetch.
    refresh: Mutex<()>,
}

#[derive(Debug, Default)]
struct Snapshot {
    nodes: Vec<NodeInfo>,
    fetched: Option<Instant>,
}

impl Registry {
    /// An empty cache over `naming`'s `GET /nodes`.
    pub fn new(naming: NamingClient) -> Self {
        Self {
            naming,
            nodes: RwLock::new(Snapshot::default()),
            refresh: Mutex::new(()),
        }
    }

    /// `tcp_addr` (`host:port`) is some registered node's peer address.
    pub async fn check_source(&self, tcp_addr: &str) -> Result<(), RegistryError> {
        let tcp_addr = tcp_addr.trim();
        let found = self.find(|node| node.tcp_addr.trim() == tcp_addr).await?;
        found.then_some(()).ok_or_else(|| {
            RegistryError::Unregistered(format!(
                "source {tcp_addr:?} is not the peer address of any registered storage node"
            ))
        })
    }

    /// Node `node_id` is registered, at `url`.
    pub async fn check_node(&self, node_id: &str, url: &str) -> Result<(), RegistryError> {
        let url = url.trim_end_matches('/');
        let found = self
            .find(|node| node.node_id == node_id && node.url.trim_end_matches('/') == url)
            .await?;
        found.then_some(()).ok_or_else(|| {
            RegistryError::Unregistered(format!(
                "node {node_id} at {url:?} is not a registered storage node"
            ))
        })
    }

    /// Whether some node of the list matches; on a miss, fetches the list
    /// again (unless another call fetched it since this one began), no
    /// sooner than [`MIN_REFRESH`] after the last fetch.
    async fn find(&self, matches: impl Fn(&NodeInfo) -> bool) -> Result<bool, RegistryError> {
        let asked = Instant::now();
        if self.read(|s| s.nodes.iter().any(&matches)) {
            return Ok(true);
        }
        let _refreshing = self.refresh.lock().await;
        let (found, fetched) = self.read(|s| (s.nodes.iter().any(&matches), s.fetched));
        if found || fetched.is_some_and(|at| at >= asked) {
            return Ok(found);
        }
        if let Some(at) = fetched {
            tokio::time::sleep_until(at + MIN_REFRESH).await;
        }
        let list = self
            .naming
            .nodes()
            .await
            .map_err(|e| RegistryError::Unavailable(e.to_string()))?;
        let found = list.nodes.iter().any(&matches);
        *self.nodes.write().unwrap_or_else(PoisonError::into_inner) = Snapshot {
            nodes: list.nodes,
            fetched: Some(Instant::now()),
        };
        Ok(found)
    }

    fn read<T>(&self, f: impl FnOnce(&Snapshot) -> T) -> T {
        f(&self.nodes.read().unwrap_or_else(PoisonError::into_inner))
    }
}
