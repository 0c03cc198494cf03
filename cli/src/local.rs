//! The storage node on this host, when `dfs` is told where its data lives
//! (`--local-data-dir` / `DFS_LOCAL_DATA_DIR`): `dfs read` takes the chunks
//! that node holds straight from its chunk files (the layout of
//! [`dfs_common::layout`]), with no HTTP and no other process in the way,
//! and asks the other nodes only for the rest.
//!
//! The files are read as they are on disk: the caller checks each chunk's
//! size and CRC32C against the naming server's record, exactly as it checks
//! a chunk fetched over HTTP, so a rotten or half-gone local copy is
//! skipped and reported like a bad remote one.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use dfs_common::layout;

use crate::error::Error;

/// A storage node's data directory on this host.
#[derive(Debug, Clone)]
pub struct LocalNode {
    node_id: String,
    data_dir: PathBuf,
}

/// Why a local chunk could not be had.
#[derive(Debug)]
pub struct LocalMiss {
    /// What went wrong, in words.
    pub reason: String,
    /// The node's copy is missing or of the wrong size: worth reporting
    /// (as opposed to a failure of this host, such as a permission error).
    pub bad: bool,
}

impl LocalNode {
    /// The node whose `DATA_DIR` is `data_dir`, known by the node id the
    /// storage server keeps there.
    pub fn open(data_dir: &Path) -> Result<Self, Error> {
        let path = data_dir.join(layout::NODE_ID_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Error::io(
                format!(
                    "local data dir {}: cannot read the node id from {}",
                    data_dir.display(),
                    path.display()
                ),
                e,
            )
        })?;
        let node_id = layout::parse_node_id(&text).ok_or_else(|| {
            Error::Invalid(format!(
                "local data dir {}: {} does not hold a node id",
                data_dir.display(),
                path.display()
            ))
        })?;
        Ok(Self {
            node_id: node_id.to_owned(),
            data_dir: data_dir.to_owned(),
        })
    }

    /// The id of the node.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// The bytes of the node's file of chunk `chunk_id`, which should hold
    /// `size` bytes, mapped; blocking. Nothing here is verified beyond the
    /// length.
    pub fn read_chunk(&self, chunk_id: &str, size: u64) -> Result<Bytes, LocalMiss> {
        self.map_chunk(chunk_id, size, true)
    }

    /// [`LocalNode::read_chunk`] for a chunk whose copy here was verified
    /// lately and is read in parts: mapped without reading it ahead, so
    /// only the pages read are touched.
    pub fn reread_chunk(&self, chunk_id: &str, size: u64) -> Result<Bytes, LocalMiss> {
        self.map_chunk(chunk_id, size, false)
    }

    fn map_chunk(&self, chunk_id: &str, size: u64, whole: bool) -> Result<Bytes, LocalMiss> {
        let path = layout::chunk_path(&self.data_dir, chunk_id).map_err(|e| LocalMiss {
            reason: format!("chunk id {chunk_id:?}: {e}"),
            bad: false,
        })?;
        let failed = |e: std::io::Error| LocalMiss {
            bad: e.kind() == ErrorKind::NotFound,
            reason: format!("local copy {}: {e}", path.display()),
        };
        let file = std::fs::File::open(&path).map_err(failed)?;
        let len = file.metadata().map_err(failed)?.len();
        if len != size {
            return Err(LocalMiss {
                reason: format!(
                    "local copy {} has {len} bytes, expected {size}",
                    path.display()
                ),
                bad: true,
            });
        }
        if size == 0 {
            return Ok(Bytes::new());
        }
        map(&file, whole).map_err(failed)
    }
}

/// The whole of `file`, mapped into memory (all of it read ahead by the
/// kernel when `populate`): no copy of its bytes, and no fresh memory to
/// fault in.
#[allow(unsafe_code)]
fn map(file: &std::fs::File, populate: bool) -> std::io::Result<Bytes> {
    // SAFETY: the mapping is valid while the file's bytes stay as they
    // were and it does not shrink. A stored chunk file is never written in
    // place: the storage server writes a chunk under tmp/, syncs it and
    // renames it into place, and drops it by unlinking it or renaming it
    // into quarantine/, none of which touches a mapping of the old file.
    let map = unsafe {
        let mut options = memmap2::MmapOptions::new();
        if populate {
            options.populate();
        }
        options.map(file)?
    };
    Ok(Bytes::from_owner(map))
}
