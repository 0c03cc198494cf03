//! Redis key names. Every key of one file, and its name key, share the hash
//! tag `{H}` (16 hex digits of the FNV-1a 64 hash of the file name), so the
//! scripts that touch them run in one Redis Cluster slot:
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
//! | `dfs:{meta}:cluster_id` | string | id of this store, made on first use |
//! | `dfs:{nodes}:repaired` | set | lost nodes whose chunks a repair scan covered |
//! | `dfs:{nodes}:repair_wanted` | string | set when a scan is due (a node was forgotten) |
//! | `dfs:{nodes}:repair_lease` | string | held (with a TTL) by the replica scanning |

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
/// Id of this metadata store, made on first use.
pub const CLUSTER_ID: &str = "dfs:{meta}:cluster_id";

/// Stable 64-bit FNV-1a hash of a name as 16 hex digits (never std's
/// randomly seeded hasher: every naming server must agree).
pub fn name_hash(name: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// A fresh file id for `name`: its name hash, `-`, 16 random hex digits.
pub fn new_file_id(name: &str) -> String {
    format!("{}-{:016x}", name_hash(name), rand::random::<u64>())
}

/// The name hash a well-formed file id starts with.
pub fn file_hash(file_id: &str) -> Option<&str> {
    let (hash, random) = file_id.split_once('-')?;
    let hex16 = |s: &str| s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex16(hash) && hex16(random)).then_some(hash)
}

/// A fresh chunk id for chunk `index` of `file_id`; never reused, even when
/// the same index is written again.
pub fn new_chunk_id(file_id: &str, index: u64) -> String {
    format!("{file_id}-{index}-{:08x}", rand::random::<u32>())
}

/// The file id and index a chunk id was made for by [`new_chunk_id`];
/// `None` for any other id.
pub fn chunk_owner(chunk_id: &str) -> Option<(&str, u64)> {
    let mut parts = chunk_id.rsplitn(3, '-');
    let random = parts.next()?;
    let index = parts.next()?;
    let file_id = parts.next()?;
    let hex8 = random.len() == 8 && random.bytes().all(|b| b.is_ascii_hexdigit());
    let index = index
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| index.parse().ok())??;
    (hex8 && file_hash(file_id).is_some()).then_some((file_id, index))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_and_file_keys_share_a_slot() {
        // FNV-1a 64 test vectors.
        assert_eq!(name_hash(""), "cbf29ce484222325");
        assert_eq!(name_hash("a"), "af63dc4c8601ec8c");
        let id = new_file_id("dir/file.txt");
        let keys = FileKeys::of(&id).expect("well-formed id");
        let tag = format!("{{{}}}", name_hash("dir/file.txt"));
        for key in [name_key("dir/file.txt"), keys.file, keys.chunks, keys.alloc] {
            assert!(key.contains(&tag), "{key} lacks {tag}");
        }
        assert!(FileKeys::of("nope").is_none());
        assert!(FileKeys::of("0123456789abcdef-xyz").is_none());
        assert!(FileKeys::of("0123456789abcdef-0123456789abcdeg").is_none());
    }

    #[test]
    fn chunk_ids_name_their_file_and_index() {
        let file_id = new_file_id("a/b");
        let chunk_id = new_chunk_id(&file_id, 42);
        assert_eq!(chunk_owner(&chunk_id), Some((file_id.as_str(), 42)));
        let f = "0123456789abcdef-0123456789abcdef";
        assert_eq!(chunk_owner(&format!("{f}-0-deadbeef")), Some((f, 0)));
        for other in [
            "",
            "chunk",
            "deadbeef",
            "0-deadbeef",
            &format!("{f}-x-deadbeef"),
            &format!("{f}-+1-deadbeef"),
            &format!("{f}-1-deadbee"),
            &format!("{f}-1-deadbeefa"),
            &format!("{f}-99999999999999999999-deadbeef"),
            "0123456789abcdef-0123456789abcdeg-1-deadbeef",
            "0123456789abcdef-1-deadbeef",
        ] {
            assert_eq!(chunk_owner(other), None, "{other}");
        }
    }
}
