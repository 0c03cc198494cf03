//! File and chunk ids. A file id starts with the hash of its name, which
//! is also the hash tag of every key of the file (see `redis/keys.rs`), so
//! any key of a file can be found from its id; a chunk id names its file
//! and index, so a storage node's chunk can be traced to its file. The
//! parsers of both shapes live in `dfs_common::ids`, shared with the
//! storage nodes.

pub use dfs_common::ids::{chunk_owner, file_hash};

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

/// A fresh chunk id for chunk `index` of `file_id`; never reused, even when
/// the same index is written again.
pub fn new_chunk_id(file_id: &str, index: u64) -> String {
    format!("{file_id}-{index}-{:08x}", rand::random::<u32>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_hashes_are_fnv1a() {
        // FNV-1a 64 test vectors.
        assert_eq!(name_hash(""), "cbf29ce484222325");
        assert_eq!(name_hash("a"), "af63dc4c8601ec8c");
        let id = new_file_id("dir/file.txt");
        assert_eq!(file_hash(&id), Some(name_hash("dir/file.txt").as_str()));
    }

    #[test]
    fn fresh_chunk_ids_name_their_file_and_index() {
        let file_id = new_file_id("a/b");
        let chunk_id = new_chunk_id(&file_id, 42);
        assert_eq!(chunk_owner(&chunk_id), Some((file_id.as_str(), 42)));
    }
}
