//! `dfs mount MOUNTPOINT`: the namespace as a read-only FUSE filesystem
//! (through `fuser`).
//!
//! - The tree ([`namespace`]) comes from the naming server's listing, read
//!   again when it is older than the refresh interval and someone looks
//!   (lookup, getattr, opendir); the kernel keeps entries and attributes for
//!   [`ATTR_TTL`]. A new or deleted file shows within refresh + 1 s.
//! - Opening a file fetches its chunk list once; reads go through
//!   [`ChunkSource`] (this host's node's chunk files first, else a live
//!   replica over HTTP), every chunk checked against its CRC32C, a bad
//!   replica skipped and reported (once per open: a local copy verified
//!   since the open is mapped again without a new check when it is needed
//!   again, so random reads touch only the pages they read). Each open file
//!   keeps at most [`WINDOW`] chunks in memory and reads the next one ahead
//!   while a file is read in order. A file's bytes never change (a new file under the
//!   same name is another inode), so the kernel keeps its page cache
//!   across opens.
//! - Reads run on the tokio runtime and answer the kernel when done, so the
//!   FUSE loop never waits on the network; opens and listings do.
//! - Errors: unknown names ENOENT, anything that would write EROFS, a chunk
//!   no replica can serve or a naming server that cannot be reached EIO.
//! - Ctrl-C or SIGTERM unmounts and exits (detaching the mount when a
//!   file in it is still open); `fusermount3 -u` ends it too.

pub mod namespace;

use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::OsStr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, UNIX_EPOCH};

use bytes::Bytes;
use dfs_client::NamingClient;
use dfs_common::api::FileRecord;
use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    KernelConfig, LockOwner, MountOption, OpenAccMode, OpenFlags, ReplyAttr, ReplyData,
    ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, Request,
};
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::replicas::{ChunkSource, Origin};
use namespace::{Namespace, Node};

/// How long the kernel may keep an entry or attributes before asking again.
pub const ATTR_TTL: Duration = Duration::from_secs(1);
/// Chunks an open file keeps in memory at most (the ones being read and
/// the one read ahead).
pub const WINDOW: usize = 3;
/// The kernel's readahead asked for (it may allow less).
const READAHEAD: u32 = 1 << 20;

/// Mounts the namespace at `mountpoint` until Ctrl-C, SIGTERM or an
/// unmount; `refresh` is how old a listing may get before it is read again.
pub async fn run(
    naming: NamingClient,
    source: ChunkSource,
    mountpoint: &Path,
    refresh: Duration,
) -> Result<(), Error> {
    let shown = mountpoint.display().to_string();
    if !mountpoint.is_dir() {
        return Err(Error::Invalid(format!("{shown} is not a directory")));
    }
    let fs = DfsFs {
        runtime: tokio::runtime::Handle::current(),
        naming,
        source,
        refresh,
        listing: Mutex::new(Listing {
            tree: Namespace::default(),
            read_at: None,
        }),
        open: Mutex::new(HashMap::new()),
        next_fh: AtomicU64::new(1),
        owner: (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        ),
    };
    let mut config = fuser::Config::default();
    config.mount_options = vec![
        MountOption::RO,
        MountOption::FSName("dfs".into()),
        MountOption::Subtype("dfs".into()),
        MountOption::NoSuid,
        MountOption::NoDev,
        MountOption::DefaultPermissions,
    ];
    // Two loops: one answers while the other waits on the kernel.
    config.n_threads = Some(2);
    config.clone_fd = true;
    let mut session = fuser::Session::new(fs, mountpoint, &config).map_err(|e| {
        Error::io(
            format!("cannot mount at {shown} (needs /dev/fuse and fusermount3 from fuse3)"),
            e,
        )
    })?;
    let mut unmounter = session.unmount_callable();
    let (ended_tx, ended) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("dfs-fuse".into())
        .spawn(move || {
            let _ = ended_tx.send(session.run());
        })
        .map_err(|e| Error::io("cannot start the FUSE thread", e))?;
    eprintln!("mounted at {shown}; Ctrl-C or `fusermount3 -u {shown}` unmounts");
    let stop = CancellationToken::new();
    tokio::spawn(dfs_common::shutdown::cancel_on_signal(stop.clone()));
    let ended = tokio::select! {
        ended = ended => ended,
        () = stop.cancelled() => {
            if let Err(error) = unmounter.unmount() {
                // Busy (a file still open): detach it now; the files still
                // open fail from here on.
                tracing::info!(%error, "unmount refused; detaching lazily");
                lazy_unmount(mountpoint)
                    .map_err(|e| Error::io(format!("cannot unmount {shown}"), e))?;
            }
            return Ok(());
        }
    };
    match ended {
        Ok(Ok(())) | Err(_) => Ok(()),
        Ok(Err(e)) => Err(Error::io(format!("the mount at {shown} failed"), e)),
    }
}

/// Detaches the mount at once, even while in use: `umount2(MNT_DETACH)`
/// where this process may (root, as in a container without fusermount3),
/// else `fusermount3 -u -z`.
fn lazy_unmount(mountpoint: &Path) -> std::io::Result<()> {
    match nix::mount::umount2(mountpoint, nix::mount::MntFlags::MNT_DETACH) {
        Ok(()) => return Ok(()),
        Err(nix::errno::Errno::EPERM) => {}
        Err(e) => return Err(e.into()),
    }
    let status = std::process::Command::new("fusermount3")
        .arg("-u")
        .arg("-z")
        .arg(mountpoint)
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "fusermount3 -u -z: {status}"
        )))
    }
}

struct DfsFs {
    runtime: tokio::runtime::Handle,
    naming: NamingClient,
    source: ChunkSource,
    refresh: Duration,
    listing: Mutex<Listing>,
    open: Mutex<HashMap<u64, Arc<OpenFile>>>,
    next_fh: AtomicU64,
    /// Who owns every file: the user who mounted.
    owner: (u32, u32),
}

struct Listing {
    tree: Namespace,
    read_at: Option<Instant>,
}

impl DfsFs {
    /// Runs `f` on the tree, read again first when it is older than the
    /// refresh interval. A listing that fails keeps the last tree.
    fn with_tree<T>(&self, f: impl FnOnce(&Namespace) -> T) -> T {
        let mut listing = self.listing.lock().unwrap_or_else(|p| p.into_inner());
        if listing
            .read_at
            .is_none_or(|at| at.elapsed() >= self.refresh)
        {
            match self.runtime.block_on(crate::list_all(&self.naming, "")) {
                Ok(files) => {
                    let skipped = listing.tree.rebuild(files);
                    if !skipped.is_empty() {
                        tracing::warn!(?skipped, "names that cannot be paths are not shown");
                    }
                    listing.read_at = Some(Instant::now());
                }
                Err(error) => tracing::warn!(%error, "listing failed; showing the last one"),
            }
        }
        f(&listing.tree)
    }

    fn attr(&self, ino: u64, node: &Node) -> FileAttr {
        let (uid, gid) = self.owner;
        let (kind, perm, size, nlink, mtime_ms, blksize) = match node {
            Node::Dir {
                children, mtime_ms, ..
            } => (
                FileType::Directory,
                0o555,
                0,
                2 + children.len() as u32,
                *mtime_ms,
                4096,
            ),
            Node::File { info, .. } => (
                FileType::RegularFile,
                0o444,
                info.size,
                1,
                info.created_at_ms,
                u32::try_from(info.chunk_size.min(1 << 20)).unwrap_or(4096),
            ),
        };
        let time = UNIX_EPOCH + Duration::from_millis(mtime_ms);
        FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: time,
            mtime: time,
            ctime: time,
            crtime: time,
            kind,
            perm,
            nlink,
            uid,
            gid,
            rdev: 0,
            flags: 0,
            blksize,
        }
    }
}

impl Filesystem for DfsFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // Reads as large as the kernel allows: fewer round trips per chunk.
        if let Err(max) = config.set_max_readahead(READAHEAD) {
            let _ = config.set_max_readahead(max);
        }
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let found = self.with_tree(|tree| {
            let ino = tree.child(parent.0, name.to_str()?)?;
            Some(self.attr(ino, tree.node(ino)?))
        });
        match found {
            Some(attr) => reply.entry(&ATTR_TTL, &attr, Generation(0)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.with_tree(|tree| tree.node(ino.0).map(|node| self.attr(ino.0, node))) {
            Some(attr) => reply.attr(&ATTR_TTL, &attr),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.with_tree(|tree| tree.node(ino.0).cloned()) {
            Some(Node::Dir { .. }) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Some(Node::File { .. }) => reply.error(Errno::ENOTDIR),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let listing = self.listing.lock().unwrap_or_else(|p| p.into_inner());
        let tree = &listing.tree;
        let Some(Node::Dir {
            parent, children, ..
        }) = tree.node(ino.0)
        else {
            reply.error(Errno::ENOENT);
            return;
        };
        let dots = [(ino.0, ".".to_owned()), (*parent, "..".to_owned())];
        let entries = dots
            .into_iter()
            .chain(children.iter().map(|(name, &child)| (child, name.clone())));
        for (i, (child, name)) in entries.enumerate().skip(offset as usize) {
            let kind = match tree.node(child) {
                Some(Node::File { .. }) => FileType::RegularFile,
                _ => FileType::Directory,
            };
            if reply.add(INodeNo(child), (i + 1) as u64, kind, &name) {
                break;
            }
        }
        reply.ok();
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if flags.acc_mode() != OpenAccMode::O_RDONLY {
            reply.error(Errno::EROFS);
            return;
        }
        let file_id = match self.with_tree(|tree| tree.node(ino.0).cloned()) {
            Some(Node::File { info, .. }) => info.file_id,
            Some(Node::Dir { .. }) => {
                reply.error(Errno::EISDIR);
                return;
            }
            None => {
                reply.error(Errno::ENOENT);
                return;
            }
        };
        let record = match self.runtime.block_on(self.naming.file(&file_id)) {
            Ok(record) => record,
            Err(e) if e.status().is_some_and(|s| s.as_u16() == 404) => {
                reply.error(Errno::ENOENT);
                return;
            }
            Err(error) => {
                tracing::warn!(%error, file_id, "cannot open");
                reply.error(Errno::EIO);
                return;
            }
        };
        if let Err(reason) = crate::download::check_layout(&record) {
            tracing::warn!(file_id, "unusable file record: {reason}");
            reply.error(Errno::EIO);
            return;
        }
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        let file = OpenFile {
            record,
            runtime: self.runtime.clone(),
            source: self.source.clone(),
            window: Mutex::new(Window::default()),
            local_checked: Arc::default(),
        };
        self.open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(fh, Arc::new(file));
        // The bytes of a file id never change: keep the page cache.
        reply.opened(FileHandle(fh), FopenFlags::FOPEN_KEEP_CACHE);
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let file = self
            .open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&fh.0)
            .cloned();
        let Some(file) = file else {
            reply.error(Errno::EBADF);
            return;
        };
        // Most reads find their chunk in memory: answered right here.
        if let Some(data) = file.ready(offset, u64::from(size)) {
            reply.data(&data);
            return;
        }
        self.runtime.spawn(async move {
            match file.read(offset, u64::from(size)).await {
                Ok(data) => reply.data(&data),
                Err(error) => {
                    tracing::warn!(file_id = %file.record.info.file_id, %error, "read failed");
                    reply.error(Errno::EIO);
                }
            }
        });
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&fh.0);
        reply.ok();
    }
}

/// A chunk on its way or in memory; errors as text (shared by every waiter).
type PendingChunk = Shared<BoxFuture<'static, Result<Bytes, String>>>;

/// One open file: its chunks, and the few of them in memory.
struct OpenFile {
    record: FileRecord,
    runtime: tokio::runtime::Handle,
    source: ChunkSource,
    window: Mutex<Window>,
    /// Chunks whose copy on this host's node was verified since the open:
    /// mapped again when needed, not checked again.
    local_checked: Arc<Mutex<HashSet<u64>>>,
}

/// The chunks an open file holds (oldest first), and the last one asked for.
#[derive(Default)]
struct Window {
    chunks: VecDeque<(u64, PendingChunk)>,
    last: Option<u64>,
}

impl OpenFile {
    /// The bytes of a read within one chunk that is in memory already, if
    /// it is; `None` means: fetch, through [`OpenFile::read`].
    fn ready(&self, offset: u64, len: u64) -> Option<Bytes> {
        let info = &self.record.info;
        let end = offset.saturating_add(len).min(info.size);
        if offset >= end {
            return Some(Bytes::new());
        }
        let index = offset / info.chunk_size;
        if (end - 1) / info.chunk_size != index {
            return None;
        }
        let mut window = self.window.lock().unwrap_or_else(|p| p.into_inner());
        let (_, pending) = window.chunks.iter().find(|(i, _)| *i == index)?;
        let chunk = pending.peek()?.clone().ok()?;
        self.advance(&mut window, index);
        let start = usize::try_from(offset - index * info.chunk_size).ok()?;
        let stop = start + usize::try_from(end - offset).ok()?;
        (stop <= chunk.len()).then(|| chunk.slice(start..stop))
    }

    /// Up to `len` bytes from `offset` (fewer at the end of the file).
    async fn read(&self, offset: u64, len: u64) -> Result<Bytes, String> {
        let info = &self.record.info;
        let end = offset.saturating_add(len).min(info.size);
        let mut parts = Vec::new();
        let mut pos = offset;
        while pos < end {
            let index = pos / info.chunk_size;
            let chunk = self.chunk(index).await?;
            let start =
                usize::try_from(pos - index * info.chunk_size).map_err(|e| e.to_string())?;
            let take = (chunk.len().saturating_sub(start) as u64).min(end - pos);
            if take == 0 {
                return Err(format!("chunk {index} is shorter than the file says"));
            }
            parts.push(chunk.slice(start..start + take as usize));
            pos += take;
        }
        Ok(match parts.len() {
            0 => Bytes::new(),
            1 => parts.swap_remove(0),
            _ => Bytes::from(parts.concat()),
        })
    }

    /// Chunk `index`, fetched once while it stays in the window.
    async fn chunk(&self, index: u64) -> Result<Bytes, String> {
        let pending = {
            let mut window = self.window.lock().unwrap_or_else(|p| p.into_inner());
            let pending = self.pending(&mut window, index);
            self.advance(&mut window, index);
            pending
        };
        pending.await
    }

    /// Notes a read of chunk `index`: when the file is read in order, the
    /// next chunk is fetched ahead.
    fn advance(&self, window: &mut Window, index: u64) {
        if window.last == Some(index) {
            return;
        }
        let in_order = window.last.is_none_or(|last| last + 1 == index);
        if in_order && index + 1 < self.record.chunks.len() as u64 {
            let ahead = self.pending(window, index + 1);
            self.runtime.spawn(ahead);
        }
        window.last = Some(index);
    }

    /// The window's entry for chunk `index`, started when missing; the
    /// oldest entries go to keep at most [`WINDOW`].
    fn pending(&self, window: &mut Window, index: u64) -> PendingChunk {
        if let Some((_, pending)) = window.chunks.iter().find(|(i, _)| *i == index) {
            return pending.clone();
        }
        let source = self.source.clone();
        let file_id = self.record.info.file_id.clone();
        let location = self.record.chunks.get(index as usize).cloned();
        let local_checked = Arc::clone(&self.local_checked);
        let pending = async move {
            let location = location.ok_or_else(|| format!("chunk {index} is not in the file"))?;
            let checked = local_checked
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(&index);
            if checked && let Some(data) = source.local_again(&location).await {
                return Ok(data);
            }
            let (data, origin) = source
                .fetch_from(&file_id, &location)
                .await
                .map_err(|e| e.to_string())?;
            if origin == Origin::Local {
                local_checked
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(index);
            }
            Ok(data)
        }
        .boxed()
        .shared();
        window.chunks.push_back((index, pending.clone()));
        while window.chunks.len() > WINDOW {
            window.chunks.pop_front();
        }
        pending
    }
}
