//! Small reads that never leave the async thread when everything they need
//! is in memory: the path in the kernel's dentry cache (`openat2` with
//! `RESOLVE_CACHED`), the meta in the store's [`MetaCache`](super::read),
//! the bytes in the page cache (`preadv2` with `RWF_NOWAIT`). Each of those
//! calls fails at once instead of waiting for the disk, and the caller then
//! takes the blocking way ([`ChunkStore::read_with`]), which also reports
//! any real error. A hot small read so costs no hand-off to the blocking
//! pool.

use std::io::IoSliceMut;
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{CWD, Mode, OFlags, ResolveFlags};
use rustix::io::{Errno, ReadWriteFlags};

use super::{ChunkMeta, ChunkStore};

/// The largest read served this way.
pub const CACHED_READ_MAX: u64 = 64 * 1024;

/// Off once the kernel or filesystem turned down one of the calls as
/// unsupported: then every read goes the blocking way.
#[derive(Debug)]
pub(super) struct CachedReads(AtomicBool);

impl CachedReads {
    pub(super) fn new() -> Self {
        Self(AtomicBool::new(true))
    }

    fn on(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Notes `err`: an unsupported call turns cached reads off for good.
    fn failed(&self, err: Errno) {
        if matches!(err, Errno::NOSYS | Errno::INVAL | Errno::OPNOTSUPP) {
            tracing::info!(error = %err, "reads from memory unsupported here; every read goes to the blocking pool");
            self.0.store(false, Ordering::Relaxed);
        }
    }
}

impl ChunkStore {
    /// Reads part of chunk `id` without blocking, when it can: `range`
    /// says, from the chunk's meta, which `(offset, length)` to read (at
    /// most [`CACHED_READ_MAX`] bytes), or `None` to decline. `None` when
    /// anything needed is not in memory or any call fails.
    pub fn read_cached(
        &self,
        id: &str,
        range: impl FnOnce(ChunkMeta) -> Option<(u64, u64)>,
    ) -> Option<(ChunkMeta, Vec<u8>)> {
        if !self.cached_reads.on() {
            return None;
        }
        let (_, data_path, _) = self.paths(id).ok()?;
        let flags = OFlags::RDONLY | OFlags::CLOEXEC;
        let file = rustix::fs::openat2(CWD, &data_path, flags, Mode::empty(), ResolveFlags::CACHED)
            .map_err(|err| self.cached_reads.failed(err))
            .ok()?;
        let stat = rustix::fs::fstat(&file).ok()?;
        let len = u64::try_from(stat.st_size).ok()?;
        let meta = self.metas.get(id, stat.st_ino, len)?;
        let (offset, len) = range(meta)?;
        if len > CACHED_READ_MAX {
            return None;
        }
        let mut buf = vec![0; usize::try_from(len).ok()?];
        let read = rustix::io::preadv2(
            &file,
            &mut [IoSliceMut::new(&mut buf)],
            offset,
            ReadWriteFlags::NOWAIT,
        )
        .map_err(|err| self.cached_reads.failed(err))
        .ok()?;
        (read == buf.len()).then_some((meta, buf))
    }
}
