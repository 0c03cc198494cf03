//! Files: names, pending uploads, look-ups, listings, deletes, and the
//! expiry of uploads never finalized.
//!
//! A name is either absent or maps to a committed file; a file is pending
//! from `init` until its finalize (`chunks.rs`) commits it, and a pending
//! file not finalized within `PENDING_TTL` expires.

use dfs_common::api::{FileInfo, FileList, FileRecord, FileSize, FileState, InitFileRequest};
use dfs_common::{MAX_FILE_SIZE, chunk_count, now_ms};

use super::nodes::{self, NodeDirectory};
use super::{DomainError, DomainResult, Naming, millis};
use crate::store::ids::new_file_id;
use crate::store::{StoredChunk, WhichChunks};

const DEFAULT_LIST_LIMIT: usize = 100;

/// `TooLarge` for a file over the size limit.
pub fn check_size(what: &str, size: u64) -> DomainResult<()> {
    if size > MAX_FILE_SIZE {
        return Err(DomainError::TooLarge(format!(
            "{what} has {size} bytes, over the limit of {MAX_FILE_SIZE}"
        )));
    }
    Ok(())
}

/// A committed file's info; pending and unknown files are `NotFound`.
pub async fn committed(naming: &Naming, file_id: &str) -> DomainResult<FileInfo> {
    let info = naming.store.file(file_id).await?;
    match info.state {
        FileState::Committed => Ok(info),
        FileState::Pending => Err(not_finalized(file_id)),
    }
}

fn not_finalized(file_id: &str) -> DomainError {
    DomainError::NotFound(format!("file {file_id} is not finalized yet"))
}

/// A pending file; `Conflict` when it is already committed.
pub async fn pending(naming: &Naming, file_id: &str) -> DomainResult<FileInfo> {
    let info = naming.store.file(file_id).await?;
    match info.state {
        FileState::Pending => Ok(info),
        FileState::Committed => Err(DomainError::Conflict(format!(
            "file {file_id} is already committed"
        ))),
    }
}

/// Creates a pending file: its chunks are then allocated, written and
/// finalized. Needs as many live nodes as the file's replication factor.
/// The request keeps its `Check` rules (name, size, chunk size,
/// replication); the server's defaults fill what it leaves out.
pub async fn init(naming: &Naming, request: InitFileRequest) -> DomainResult<FileInfo> {
    let settings = &naming.settings;
    let chunk_size = request.chunk_size.unwrap_or(settings.chunk_size);
    let replication = request.replication.unwrap_or(settings.replication);
    nodes::require(naming, replication, nodes::live(naming).await?.len())?;
    let now = now_ms();
    let info = FileInfo {
        file_id: new_file_id(&request.name),
        name: request.name,
        size: request.size,
        chunk_size,
        chunk_count: chunk_count(request.size, chunk_size),
        replication,
        state: FileState::Pending,
        created_at_ms: now,
    };
    let expires = now.saturating_add(millis(settings.pending_ttl));
    naming.store.create_file(info.clone(), expires).await?;
    Ok(info)
}

/// A committed file with all its chunks located: one round trip to the
/// store (with the node directory, unless cached).
pub async fn record(naming: &Naming, file_id: &str) -> DomainResult<FileRecord> {
    let (info, chunks, directory) = committed_with_nodes(naming, file_id, WhichChunks::All).await?;
    Ok(FileRecord {
        info,
        chunks: chunks.into_iter().map(|c| directory.locate(c)).collect(),
    })
}

/// A committed file, its chunks (`which`) and the node directory, in one
/// round trip to the store; `NotFound` while the file is pending.
pub async fn committed_with_nodes(
    naming: &Naming,
    file_id: &str,
    which: WhichChunks,
) -> DomainResult<(FileInfo, Vec<StoredChunk>, NodeDirectory)> {
    let (info, chunks, directory) = NodeDirectory::with_file(naming, file_id, which).await?;
    if info.state != FileState::Committed {
        return Err(not_finalized(file_id));
    }
    Ok((info, chunks, directory))
}

/// The committed file called `name`, with all its chunks located. A name
/// looked up before costs one round trip to the store: its file id comes
/// from this replica's [`NameHints`], and the file's own record, which
/// holds its name, proves the hint still right (a file deleted, or a new
/// file of that name, is never served from it). Otherwise, or when the
/// hint is wrong, two: the name, then the file.
pub async fn record_by_name(naming: &Naming, name: &str) -> DomainResult<FileRecord> {
    if let Some(file_id) = naming.names.get(name) {
        match record(naming, &file_id).await {
            Ok(record) if record.info.name == name => return Ok(record),
            Ok(_) | Err(DomainError::NotFound(_)) => naming.names.forget(name),
            Err(e) => return Err(e),
        }
    }
    let file_id = id_by_name(naming, name).await?;
    let record = record(naming, &file_id).await?;
    naming.names.remember(name, file_id);
    Ok(record)
}

/// Name → file id of names this replica looked up lately (10 000 of them
/// at most): hints, each checked against the file's record before use.
pub struct NameHints(quick_cache::sync::Cache<String, String>);

impl Default for NameHints {
    fn default() -> Self {
        Self(quick_cache::sync::Cache::new(10_000))
    }
}

impl NameHints {
    fn get(&self, name: &str) -> Option<String> {
        self.0.get(name)
    }

    fn remember(&self, name: &str, file_id: String) {
        self.0.insert(name.to_owned(), file_id);
    }

    fn forget(&self, name: &str) {
        self.0.remove(name);
    }
}

/// The id of the committed file called `name`.
pub async fn id_by_name(naming: &Naming, name: &str) -> DomainResult<String> {
    Ok(naming.store.file_id_by_name(name).await?)
}

/// `Conflict` when a committed file is called `name`.
pub async fn check_name_free(naming: &Naming, name: &str) -> DomainResult<()> {
    match naming.store.file_id_by_name(name).await {
        Ok(_) => Err(DomainError::Conflict(format!(
            "a file named {name:?} already exists"
        ))),
        Err(crate::store::StoreError::NotFound(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// A page of committed files whose names start with `prefix`, after the
/// cursor `after`, at most `limit` (default 100) of them.
pub async fn list(
    naming: &Naming,
    prefix: &str,
    after: Option<&str>,
    limit: Option<usize>,
) -> DomainResult<FileList> {
    // The HTTP query keeps limit within 1-1000; a page is never empty.
    let limit = limit.unwrap_or(DEFAULT_LIST_LIMIT).max(1);
    let page = naming.store.list(prefix, after, limit).await?;
    Ok(FileList {
        files: page.files,
        next: page.next,
    })
}

/// The size of a committed file.
pub async fn size(naming: &Naming, file_id: &str) -> DomainResult<FileSize> {
    let info = committed(naming, file_id).await?;
    Ok(FileSize { size: info.size })
}

/// Deletes a file (committed, or a pending upload to abandon): its
/// metadata goes at once, its chunks from the nodes after their next
/// heartbeat.
pub async fn delete(naming: &Naming, file_id: &str) -> DomainResult<()> {
    naming.store.delete_file(file_id).await?;
    naming.metrics.files_deleted.inc();
    tracing::info!("file deleted");
    Ok(())
}

/// Expires up to `batch` pending uploads whose time is up; how many.
pub async fn expire_pending(naming: &Naming, batch: usize) -> DomainResult<usize> {
    let reaped = naming.store.reap_expired(now_ms(), batch).await?;
    naming.metrics.uploads_expired.inc_by(reaped as u64);
    Ok(reaped)
}
