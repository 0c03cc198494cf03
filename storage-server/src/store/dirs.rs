//! Directory helpers of the store: fsync a directory, empty `tmp/`, count
//! the stored chunks at start-up, list them for orphan sweeps and scrubs.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use dfs_common::validate;
use tokio::fs;

use super::error::{IoContext, StoreError};

/// fsyncs a directory so renames inside it survive a crash.
pub(super) async fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    let path = dir.to_owned();
    match tokio::task::spawn_blocking(move || sync_dir_now(&path)).await {
        Ok(synced) => synced,
        Err(join) => Err(StoreError::Io {
            context: format!("syncing directory {}", dir.display()),
            source: std::io::Error::other(join),
        }),
    }
}

/// [`sync_dir`], on the calling thread. Blocking.
pub(super) fn sync_dir_now(dir: &Path) -> Result<(), StoreError> {
    std::fs::File::open(dir)
        .and_then(|dir| dir.sync_all())
        .context(|| format!("syncing directory {}", dir.display()))
}

/// Removes every entry of `dir`; returns how many there were.
pub(super) async fn clean_dir(dir: &Path) -> Result<u64, StoreError> {
    let mut removed = 0;
    for entry in entries(dir).await? {
        let path = entry.path();
        let is_dir = entry.file_type().await.is_ok_and(|t| t.is_dir());
        let result = if is_dir {
            fs::remove_dir_all(&path).await
        } else {
            fs::remove_file(&path).await
        };
        result.context(|| format!("removing {}", path.display()))?;
        removed += 1;
    }
    Ok(removed)
}

/// Counts data files (not `.meta`) two directory levels below `chunks`,
/// and their bytes.
pub(super) async fn count_chunks(chunks: &Path) -> Result<(u64, u64), StoreError> {
    let (mut count, mut bytes) = (0, 0);
    for ab in list_dirs(chunks).await? {
        for entry in chunk_entries(&ab).await? {
            count += 1;
            bytes += entry.metadata().await.map_or(0, |meta| meta.len());
        }
    }
    Ok((count, bytes))
}

/// Ids of the chunks in `ab` (one first-level directory) whose data file
/// was last modified before `before`; none when `ab` does not exist.
pub(super) async fn chunk_ids_modified_before(
    ab: &Path,
    before: SystemTime,
) -> Result<Vec<String>, StoreError> {
    if !fs::try_exists(ab).await.unwrap_or(false) {
        return Ok(Vec::new());
    }
    let mut ids = Vec::new();
    for entry in chunk_entries(ab).await? {
        // A chunk deleted since the listing is simply skipped.
        let Ok(meta) = entry.metadata().await else {
            continue;
        };
        if meta.modified().is_ok_and(|modified| modified < before) {
            ids.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    Ok(ids)
}

/// Every chunk id with a data or a meta file in the directories of `ab`
/// (one first-level directory); none when `ab` does not exist.
pub(super) async fn ids_in(ab: &Path) -> Result<BTreeSet<String>, StoreError> {
    if !fs::try_exists(ab).await.unwrap_or(false) {
        return Ok(BTreeSet::new());
    }
    Ok(leaf_entries(ab)
        .await?
        .iter()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let id = name.strip_suffix(".meta").unwrap_or(&name);
            validate::chunk_id(id).is_ok().then(|| id.to_owned())
        })
        .collect())
}

/// Data files (not `.meta`) with valid chunk ids in the directories of `ab`.
async fn chunk_entries(ab: &Path) -> Result<Vec<fs::DirEntry>, StoreError> {
    let mut found = leaf_entries(ab).await?;
    found.retain(|entry| {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        !name.ends_with(".meta") && validate::chunk_id(&name).is_ok()
    });
    Ok(found)
}

/// Every entry of every directory in `ab`.
async fn leaf_entries(ab: &Path) -> Result<Vec<fs::DirEntry>, StoreError> {
    let mut found = Vec::new();
    for cd in list_dirs(ab).await? {
        found.extend(entries(&cd).await?);
    }
    Ok(found)
}

/// The directories in `dir`.
async fn list_dirs(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let mut dirs = Vec::new();
    for entry in entries(dir).await? {
        if entry.file_type().await.is_ok_and(|t| t.is_dir()) {
            dirs.push(entry.path());
        }
    }
    Ok(dirs)
}

/// Every entry of `dir`.
async fn entries(dir: &Path) -> Result<Vec<fs::DirEntry>, StoreError> {
    let mut read = fs::read_dir(dir)
        .await
        .context(|| format!("listing {}", dir.display()))?;
    let mut found = Vec::new();
    while let Some(entry) = read
        .next_entry()
        .await
        .context(|| format!("listing {}", dir.display()))?
    {
        found.push(entry);
    }
    Ok(found)
}
