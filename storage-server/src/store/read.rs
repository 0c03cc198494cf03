//! Finding a stored chunk's meta without parsing its `.meta` file each
//! time: metas read lately are kept in memory.

use std::fmt;
use std::fs::Metadata;
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use quick_cache::sync::Cache;

use super::ChunkMeta;
use super::error::{IoContext, StoreError};

/// How many chunk metas are kept (about 100 bytes each, so a few MiB).
const CACHED_METAS: usize = 64 * 1024;

/// Metas of chunks read lately, by chunk id, each valid only for the data
/// file it was read with (its inode and length). A chunk file is never
/// changed in place, only renamed into place or removed, so a chunk written
/// again under the same id, or set aside, never matches a stale entry.
pub(super) struct MetaCache(Cache<String, (u64, ChunkMeta)>);

impl fmt::Debug for MetaCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MetaCache({} metas)", self.0.len())
    }
}

impl MetaCache {
    pub(super) fn new() -> Self {
        Self(Cache::new(CACHED_METAS))
    }

    /// The meta of chunk `id`, whose data file has metadata `data`: from
    /// memory, or read from `meta_path` and kept. `None` when the meta is
    /// missing, corrupt or disagrees with the data file (the chunk counts
    /// as absent). Blocking.
    pub(super) fn load(
        &self,
        id: &str,
        meta_path: &Path,
        data: &Metadata,
    ) -> Result<Option<ChunkMeta>, StoreError> {
        if let Some(meta) = self.get(id, data.ino(), data.len()) {
            return Ok(Some(meta));
        }
        let meta = read_meta(id, meta_path, data.len())?;
        if let Some(meta) = meta {
            self.0.insert(id.to_owned(), (data.ino(), meta));
        }
        Ok(meta)
    }

    /// The meta kept for chunk `id` if it is valid for a data file with
    /// inode `inode` and length `len`; never reads the disk.
    pub(super) fn get(&self, id: &str, inode: u64, len: u64) -> Option<ChunkMeta> {
        self.0
            .get(id)
            .filter(|(kept, meta)| *kept == inode && meta.size == len)
            .map(|(_, meta)| meta)
    }

    /// Drops what is kept of chunk `id` (it was deleted or set aside).
    pub(super) fn forget(&self, id: &str) {
        self.0.remove(id);
    }
}

/// Reads the meta of a chunk whose data file is `data_len` bytes long. A
/// missing or corrupt meta, or one that disagrees with the data file, means
/// the chunk is absent (`None`, logged). Blocking.
fn read_meta(id: &str, meta_path: &Path, data_len: u64) -> Result<Option<ChunkMeta>, StoreError> {
    let bytes = match std::fs::read(meta_path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == ErrorKind::NotFound => {
            tracing::warn!(
                chunk_id = id,
                "chunk has no meta file; treating it as absent"
            );
            return Ok(None);
        }
        Err(err) => return Err(err).context(|| format!("reading {}", meta_path.display())),
    };
    match serde_json::from_slice::<ChunkMeta>(&bytes) {
        Ok(meta) if meta.size == data_len => Ok(Some(meta)),
        Ok(meta) => {
            tracing::warn!(
                chunk_id = id,
                meta_size = meta.size,
                data_len,
                "chunk size disagrees with its meta; treating it as absent"
            );
            Ok(None)
        }
        Err(err) => {
            tracing::warn!(chunk_id = id, error = %err, "corrupt chunk meta; treating it as absent");
            Ok(None)
        }
    }
}
