//! Room on the disk of `DATA_DIR`: its size and free space, and whether
//! the node is full. A write that fails for lack of space (ENOSPC, or a
//! quota) makes it full; it stays full until the free space has grown by
//! [`ROOM_AGAIN`] since then (chunks deleted, the disk grown), so one freed
//! chunk does not invite the next write that fails.

use std::path::{Path, PathBuf};

use dfs_common::MAX_CHUNK_SIZE;
use dfs_common::units::format_size;
use tokio::sync::watch;

use super::error::{IoContext, StoreError};

/// Free space a full node must regain before it takes chunks again: the
/// largest chunk there is.
pub const ROOM_AGAIN: u64 = MAX_CHUNK_SIZE;

/// The disk of `DATA_DIR` as the node reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskStats {
    /// Size of the filesystem.
    pub capacity_bytes: u64,
    /// Bytes free for this process (`statvfs`'s available blocks).
    pub free_bytes: u64,
    /// A write ran out of space and not enough has been freed since.
    pub full: bool,
}

/// Tracks whether the disk is full.
#[derive(Debug)]
pub(super) struct Space {
    root: PathBuf,
    /// `Some(free bytes)` measured right after the write that ran out of
    /// space; `None` while there is room.
    full: watch::Sender<Option<u64>>,
}

impl Space {
    pub(super) fn new(root: &Path) -> Self {
        Self {
            root: root.to_owned(),
            full: watch::Sender::new(None),
        }
    }

    /// Size and free space of the filesystem holding the data directory.
    fn measure(&self) -> Result<(u64, u64), StoreError> {
        let stat = nix::sys::statvfs::statvfs(self.root.as_path())
            .map_err(std::io::Error::from)
            .context(|| format!("statvfs {}", self.root.display()))?;
        let fragment = stat.fragment_size();
        let capacity = stat.blocks().saturating_mul(fragment);
        let free = stat.blocks_available().saturating_mul(fragment);
        Ok((capacity, free))
    }

    /// The disk now; a full disk that has regained [`ROOM_AGAIN`] is
    /// no longer full.
    pub(super) fn stats(&self) -> Result<DiskStats, StoreError> {
        let (capacity_bytes, free_bytes) = self.measure()?;
        let cleared = self.full.send_if_modified(|full| match *full {
            Some(since) if free_bytes >= since.saturating_add(ROOM_AGAIN) => {
                *full = None;
                true
            }
            _ => false,
        });
        if cleared {
            tracing::info!(free_bytes, "the disk has room again; taking new chunks");
        }
        Ok(DiskStats {
            capacity_bytes,
            free_bytes,
            full: self.full.borrow().is_some(),
        })
    }

    /// Whether the node is full (re-checked against the disk when it was).
    pub(super) fn is_full(&self) -> bool {
        if self.full.borrow().is_none() {
            return false;
        }
        self.stats().map_or(true, |stats| stats.full)
    }

    /// A write just failed for lack of space (its temp file already gone):
    /// the node is full from now on, measured from the space left now.
    pub(super) fn ran_out(&self) {
        let free = self.measure().map_or(0, |(_, free)| free);
        // Watchers hear of the change from room to full only.
        let became_full = self.full.send_if_modified(|full| {
            let had_room = full.is_none();
            *full = Some(free);
            had_room
        });
        if became_full {
            tracing::warn!(
                free_bytes = free,
                data_dir = %self.root.display(),
                "the disk is full: taking no new chunks until {} more is free",
                format_size(ROOM_AGAIN)
            );
        }
    }

    /// Changes whenever the node becomes full (or has room again).
    pub(super) fn watch(&self) -> watch::Receiver<Option<u64>> {
        self.full.subscribe()
    }
}
