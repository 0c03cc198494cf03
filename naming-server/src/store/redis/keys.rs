//! Redis key names. Every key of one file, and its name key, share the hash
//! tag `{H}` (16 hex digits of the FNV-1a 64 hash of the file name, see
//! [`crate::store::ids`]), so the scripts that touch them run in one Redis
//! Cluster slot:
//!
//! | key | type | content |
//! |-----|------|---------|
//! | `dfs:{H}:name:<name>` | string | file id of the committed file |
//! | `dfs:{H}:file:<file_id>` | hash | name, size, chunk_size, replication, state, created_at_ms |
//! | `dfs:{H}:chunks:<file_id>` | hash | index → JSON `{chunk_id, size, crc32c, nodes}` |
//! | `dfs:{H}:alloc:<file_id>` | hash | chunk id → JSON `{index, targets}` (pending only) |
//! | `dfs:{files}:names` | zset | committed names, score 0 (listing by ZRANGEBYLEX) |
//! | `dfs:{pending}:expiry` | zset | pending file id → expiry, ms |
//! | `dfs:{nodes}:all` | set | node ids |
//! | `dfs:{nodes}:node:<id>` | hash | url, tcp_addr, last_heartbeat_ms, disk stats |
//! | `dfs:{nodes}:trash:<id>` | set | chunk ids the node should delete |
//! | `dfs:{nodes}:suspect:<id>` | set | chunk ids a reader found bad on the node, to verify |
//! | `dfs:{nodes}:repair_queue` | set | file ids with a bad replica, to repair |
//! | `dfs:{meta}:cluster_id` | string | id of this store, made on first use |
//! | `dfs:{nodes}:repaired` | set | lost nodes whose chunks a repair scan covered |
//! | `dfs:{nodes}:repair_wanted` | string | set when a scan is due (a node was forgotten) |
//! | `dfs:{nodes}:repair_lease` | string | held (with a TTL) by the replica scanning |
//! | `dfs:{jobs}:job:<job_id>`, `dfs:{jobs}:recent` | hash, zset | distribution jobs (see `jobs.rs`) |

use crate::store::ids::{file_hash, name_hash};

/// Sorted set of committed names.
pub const NAMES: &str = "dfs:{files}:names";
/// Sorted set of pending file ids by expiry time.
pub const EXPIRY: &str = "dfs:{pending}:expiry";
/// Set of registered node ids.
pub const NODES: &str = "dfs:{nodes}:all";
/// Lost nodes whose chunks a repair scan has covered.
pub const REPAIRED: &str = "dfs:{nodes}:repaired";
/// Set when a repair scan is due.
pub const REPAIR_WANTED: &str = "dfs:{nodes}:repair_wanted";
/// Held by the naming-server replica running a repair scan.
pub const REPAIR_LEASE: &str = "dfs:{nodes}:repair_lease";
/// File ids queued for repair (a replica was found bad).
pub const REPAIR_QUEUE: &str = "dfs:{nodes}:repair_queue";
/// Id of this metadata store, made on first use.
pub const CLUSTER_ID: &str = "dfs:{meta}:cluster_id";

pub fn name_key(name: &str) -> String {
    format!("dfs:{{{}}}:name:{name}", name_hash(name))
}

/// The three keys of one file.
pub struct FileKeys {
    pub file: String,
    pub chunks: String,
    pub alloc: String,
}

impl FileKeys {
    /// `None` for a malformed id (such a file cannot exist).
    pub fn of(file_id: &str) -> Option<Self> {
        let hash = file_hash(file_id)?;
        Some(Self {
            file: format!("dfs:{{{hash}}}:file:{file_id}"),
            chunks: format!("dfs:{{{hash}}}:chunks:{file_id}"),
            alloc: format!("dfs:{{{hash}}}:alloc:{file_id}"),
        })
    }
}

pub fn node_key(node_id: &str) -> String {
    format!("dfs:{{nodes}}:node:{node_id}")
}

pub fn trash_key(node_id: &str) -> String {
    format!("dfs:{{nodes}}:trash:{node_id}")
}

pub fn suspect_key(node_id: &str) -> String {
    format!("dfs:{{nodes}}:suspect:{node_id}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ids::new_file_id;

    #[test]
    fn name_and_file_keys_share_a_slot() {
        let id = new_file_id("dir/file.txt");
        let keys = FileKeys::of(&id).expect("well-formed id");
        let tag = format!("{{{}}}", name_hash("dir/file.txt"));
        for key in [name_key("dir/file.txt"), keys.file, keys.chunks, keys.alloc] {
            assert!(key.contains(&tag), "{key} lacks {tag}");
        }
        assert!(FileKeys::of("nope").is_none());
        assert!(FileKeys::of("0123456789abcdef-xyz").is_none());
    }

    /// The hash tag of `key` (Redis Cluster hashes only it).
    fn tag(key: &str) -> Option<&str> {
        let (_, rest) = key.split_once('{')?;
        let (tag, _) = rest.split_once('}')?;
        (!tag.is_empty()).then_some(tag)
    }

    #[test]
    fn global_keys_each_sit_in_one_slot_and_node_keys_share_it() {
        for key in [NAMES, EXPIRY, NODES, CLUSTER_ID] {
            assert!(tag(key).is_some(), "{key} has no hash tag");
        }
        // The node scripts and the registration transaction touch these
        // together: one slot.
        for key in [
            node_key("n1"),
            trash_key("n1"),
            suspect_key("n1"),
            REPAIR_QUEUE.to_owned(),
            REPAIRED.to_owned(),
            REPAIR_WANTED.to_owned(),
            REPAIR_LEASE.to_owned(),
        ] {
            assert_eq!(tag(&key), tag(NODES), "{key}");
        }
    }
}
