//! Where a storage node keeps its chunks under its `DATA_DIR`: the storage
//! server writes this layout, and a `dfs` running on the same host reads
//! the chunks of its own node straight from it (`DFS_LOCAL_DATA_DIR`).
//!
//! ```text
//! node_id            the node's id, written once
//! chunks/AB/CD/ID    chunk ID's bytes, where ABCD… is format!("{:08x}", crc32c(ID))
//! ```
//!
//! A chunk file holds only the chunk's bytes, so it can be read, sent with
//! `sendfile()` or mapped as it is.

use std::path::{Path, PathBuf};

use crate::validate::{self, InvalidChunkId};

/// The file in `DATA_DIR` that holds the node's id.
pub const NODE_ID_FILE: &str = "node_id";

/// The folder in `DATA_DIR` that holds the stored chunks.
pub const CHUNKS_DIR: &str = "chunks";

/// The folder, under the chunks folder `chunks`, of chunk `id` (checked
/// with [`validate::chunk_id`] first, so the path never leaves `chunks`).
pub fn chunk_dir(chunks: &Path, id: &str) -> Result<PathBuf, InvalidChunkId> {
    validate::chunk_id(id)?;
    let hash = format!("{:08x}", crc32c::crc32c(id.as_bytes()));
    Ok(chunks.join(&hash[0..2]).join(&hash[2..4]))
}

/// The file of chunk `id` in the data directory `data_dir`.
pub fn chunk_path(data_dir: &Path, id: &str) -> Result<PathBuf, InvalidChunkId> {
    Ok(chunk_dir(&data_dir.join(CHUNKS_DIR), id)?.join(id))
}

/// The node id in the text of a [`NODE_ID_FILE`], if it is one (node ids
/// travel in URLs and Redis keys: the same characters as chunk ids).
pub fn parse_node_id(text: &str) -> Option<&str> {
    let id = text.trim();
    validate::chunk_id(id).is_ok().then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_go_two_hash_levels_deep_and_never_outside() {
        let id = "abc-0";
        let hash = format!("{:08x}", crc32c::crc32c(id.as_bytes()));
        let path = chunk_path(Path::new("/d"), id).expect("valid id");
        assert_eq!(
            path,
            Path::new("/d/chunks")
                .join(&hash[0..2])
                .join(&hash[2..4])
                .join(id)
        );
        assert!(chunk_path(Path::new("/d"), "../x").is_err());
        assert!(chunk_path(Path::new("/d"), "").is_err());
    }

    #[test]
    fn node_ids_are_trimmed_and_checked() {
        assert_eq!(parse_node_id("0123abcd\n"), Some("0123abcd"));
        assert_eq!(parse_node_id("a/b\n"), None);
        assert_eq!(parse_node_id("\n"), None);
    }
}
