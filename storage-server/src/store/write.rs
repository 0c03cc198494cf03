//! Writing a chunk in two steps: [`ChunkStore::receive`] streams the bytes
//! into `tmp/` and checks them, [`ChunkStore::commit`] makes them durable
//! and puts them in place. A caller with a stream of chunks (a node pulling
//! a distribution) receives the next chunk while the last one commits.
//!
//! Receiving overlaps the network with the disk: while one piece is
//! written on the blocking pool, the next is read from the body into the
//! other of two buffers, and nothing is copied between them.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::task::JoinHandle;

use super::dirs::sync_dir_now;
use super::error::IoContext;
use super::temp::TempPath;
use super::{ChunkMeta, ChunkStore, StoreError, WriteOutcome, blocking};

/// Size of each of the two buffers a receive fills and writes in turn.
const PIECE: usize = 1024 * 1024;

/// A chunk received into `tmp/` whose size and CRC32C were checked: not
/// durable and not visible yet. [`ChunkStore::commit`] stores it; dropping
/// it deletes the temp file.
#[derive(Debug)]
pub struct Received {
    id: String,
    temp: TempPath,
    file: File,
    meta: ChunkMeta,
}

impl Received {
    /// Size and CRC32C of the received bytes.
    pub fn meta(&self) -> ChunkMeta {
        self.meta
    }

    /// The received bytes, read back from the temp file (still in the page
    /// cache): for a small chunk passed on while it commits.
    pub async fn bytes(&self) -> Result<bytes::Bytes, StoreError> {
        let path = self.temp.path().to_owned();
        blocking(move || {
            let data = std::fs::read(&path).context(|| reading(&path))?;
            Ok(bytes::Bytes::from(data))
        })
        .await
    }
}

impl ChunkStore {
    /// Stores chunk `id` from `body`: at most `limit` bytes whose CRC32C must
    /// be `expected_crc` when given. Nothing is stored unless both hold. The
    /// returned meta carries the CRC32C computed from the bytes. A write
    /// that runs out of space leaves nothing behind and makes the node full.
    pub async fn write<R: AsyncRead + Unpin>(
        &self,
        id: &str,
        expected_crc: Option<u32>,
        limit: u64,
        body: R,
    ) -> Result<(WriteOutcome, ChunkMeta), StoreError> {
        let received = self.receive(id, expected_crc, limit, body).await?;
        self.commit(received).await
    }

    /// The first half of [`ChunkStore::write`]: streams `body` into a temp
    /// file and checks its size and CRC32C, without syncing it.
    pub async fn receive<R: AsyncRead + Unpin>(
        &self,
        id: &str,
        expected_crc: Option<u32>,
        limit: u64,
        body: R,
    ) -> Result<Received, StoreError> {
        self.metrics.chunk_writes.inc();
        let received = self.receive_checked(id, expected_crc, limit, body).await;
        self.note_full(received)
    }

    async fn receive_checked<R: AsyncRead + Unpin>(
        &self,
        id: &str,
        expected_crc: Option<u32>,
        limit: u64,
        mut body: R,
    ) -> Result<Received, StoreError> {
        self.paths(id)?;
        let temp = TempPath::new(&self.tmp, id);
        let path = temp.path().to_owned();
        let file = blocking(move || File::create(&path).context(|| creating(&path))).await?;
        let mut writer = PieceWriter::new(temp.path(), file);
        let mut buf = Vec::with_capacity(PIECE);
        let (mut size, mut crc) = (0u64, 0u32);
        loop {
            let filled = fill(&mut body, &mut buf).await?;
            size += filled as u64;
            if size > limit {
                return Err(StoreError::TooLarge { limit });
            }
            if filled == 0 {
                break;
            }
            crc = crc32c::crc32c_append(crc, &buf);
            buf = writer.write(buf).await?;
        }
        let file = writer.finish().await?;
        if let Some(expected) = expected_crc.filter(|&expected| expected != crc) {
            return Err(StoreError::CrcMismatch {
                expected,
                actual: crc,
            });
        }
        Ok(Received {
            id: id.to_owned(),
            temp,
            file,
            meta: ChunkMeta { size, crc32c: crc },
        })
    }

    /// The second half of [`ChunkStore::write`]: syncs the received bytes
    /// and their meta, renames both into place (meta first) and syncs the
    /// directory. A chunk already stored with the same CRC32C is
    /// [`WriteOutcome::AlreadyPresent`]; with another, a conflict.
    pub async fn commit(
        &self,
        received: Received,
    ) -> Result<(WriteOutcome, ChunkMeta), StoreError> {
        let committed = self.commit_checked(received).await;
        self.note_full(committed)
    }

    async fn commit_checked(
        &self,
        received: Received,
    ) -> Result<(WriteOutcome, ChunkMeta), StoreError> {
        let Received {
            id,
            temp,
            file,
            meta,
        } = received;
        let (dir, data_path, meta_path) = self.paths(&id)?;
        // Both syncs at once: the filesystem may fold them into one commit.
        let data_temp = temp.path().to_owned();
        let sync_data = blocking(move || file.sync_all().context(|| syncing(&data_temp)));
        let meta_temp = TempPath::new(&self.tmp, &format!("{id}.meta"));
        let meta_json = meta_bytes(meta)?;
        let meta_temp_path = meta_temp.path().to_owned();
        let write_meta = blocking(move || write_synced(&meta_temp_path, &meta_json));
        tokio::try_join!(sync_data, write_meta)?;

        let _guard = self.lock(&id).await;
        let (metas, chunks) = (std::sync::Arc::clone(&self.metas), self.chunks.clone());
        let outcome = blocking(move || {
            match std::fs::metadata(&data_path) {
                Ok(existing) => {
                    if let Some(existing) = metas.load(&id, &meta_path, &existing)? {
                        return if existing.crc32c == meta.crc32c {
                            Ok(WriteOutcome::AlreadyPresent)
                        } else {
                            Err(StoreError::Conflict {
                                existing: existing.crc32c,
                                new: meta.crc32c,
                            })
                        };
                    }
                }
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(err).context(|| format!("stat {}", data_path.display())),
            }
            let new_dirs = make_dirs(&chunks, &dir)?;
            meta_temp
                .persist(&meta_path)
                .context(|| renaming(&meta_path))?;
            temp.persist(&data_path).context(|| renaming(&data_path))?;
            sync_dir_now(&dir)?;
            // A new directory's entry lives in its parent: sync up to the
            // first directory that already existed.
            for created in new_dirs {
                if let Some(parent) = created.parent() {
                    sync_dir_now(parent)?;
                }
            }
            Ok(WriteOutcome::Created)
        })
        .await?;
        if outcome == WriteOutcome::Created {
            self.note_chunk(meta.size);
            self.commits.send_modify(|n| *n = n.wrapping_add(1));
        }
        Ok((outcome, meta))
    }

    /// Marks the node full when `result` ran out of space.
    fn note_full<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(StoreError::Full { .. }) = &result {
            self.metrics.chunk_writes_full.inc();
            self.space.ran_out();
        }
        result
    }

    /// Writes a small file durably: temp file, fsync, rename over `dest`.
    pub(super) async fn write_small_file(
        &self,
        dest: &Path,
        contents: &[u8],
    ) -> Result<(), StoreError> {
        let temp = TempPath::new(&self.tmp, "small");
        let (dest, contents) = (dest.to_owned(), contents.to_vec());
        blocking(move || {
            write_synced(temp.path(), &contents)?;
            temp.persist(&dest).context(|| renaming(&dest))
        })
        .await
    }
}

/// Reads from `body` until `buf` holds [`PIECE`] bytes or the body ends;
/// how many bytes it holds.
async fn fill<R: AsyncRead + Unpin>(body: &mut R, buf: &mut Vec<u8>) -> Result<usize, StoreError> {
    buf.clear();
    while buf.len() < PIECE {
        let room = PIECE - buf.len();
        let n = (&mut *body)
            .take(room as u64)
            .read_buf(buf)
            .await
            .map_err(StoreError::Upload)?;
        if n == 0 {
            break;
        }
    }
    Ok(buf.len())
}

/// Writes pieces to a file on the blocking pool, one at a time, while the
/// caller fills the next one.
struct PieceWriter {
    path: PathBuf,
    state: WriterState,
    /// Bytes handed to the file so far.
    written: u64,
}

enum WriterState {
    /// No write running: the file and a spare buffer.
    Idle(File, Vec<u8>),
    /// A write running; it hands back the file and its buffer.
    Busy(JoinHandle<(File, Vec<u8>, std::io::Result<()>)>),
    /// A write failed (already reported).
    Failed,
}

impl PieceWriter {
    fn new(path: &Path, file: File) -> Self {
        Self {
            path: path.to_owned(),
            state: WriterState::Idle(file, Vec::with_capacity(PIECE)),
            written: 0,
        }
    }

    /// Waits for the previous write, then starts writing `piece` and its
    /// writeback to the disk; returns an empty buffer to fill next.
    async fn write(&mut self, piece: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        let (mut file, mut spare) = self.settle().await?;
        let offset = self.written;
        self.written += piece.len() as u64;
        self.state = WriterState::Busy(tokio::task::spawn_blocking(move || {
            let written = file
                .write_all(&piece)
                .and_then(|()| start_writeback(&file, offset, piece.len() as u64));
            (file, piece, written)
        }));
        spare.clear();
        Ok(spare)
    }

    /// Waits for the last write; the file.
    async fn finish(mut self) -> Result<File, StoreError> {
        Ok(self.settle().await?.0)
    }

    async fn settle(&mut self) -> Result<(File, Vec<u8>), StoreError> {
        match std::mem::replace(&mut self.state, WriterState::Failed) {
            WriterState::Idle(file, spare) => Ok((file, spare)),
            WriterState::Busy(handle) => {
                let (file, spare, written) = handle.await.map_err(|err| StoreError::Io {
                    context: format!("writing {}", self.path.display()),
                    source: std::io::Error::other(err),
                })?;
                written.context(|| format!("writing {}", self.path.display()))?;
                Ok((file, spare))
            }
            WriterState::Failed => Err(StoreError::Io {
                context: format!("writing {}", self.path.display()),
                source: std::io::Error::other("an earlier write failed"),
            }),
        }
    }
}

/// Asks the kernel to start writing `len` bytes of `file` from `offset` to
/// the disk, without waiting for it, so that the fsync at the chunk's
/// commit finds most of the chunk written already: a chunk's bytes reach
/// the disk while the rest of it is still arriving, not all after it.
/// Blocking only when the device's queue is full.
#[allow(unsafe_code)]
fn start_writeback(file: &File, offset: u64, len: u64) -> std::io::Result<()> {
    use nix::libc;
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (
        libc::off64_t::try_from(offset),
        libc::off64_t::try_from(len),
    ) else {
        return Ok(());
    };
    // SAFETY: sync_file_range only reads its integer arguments; the file
    // descriptor is open for as long as `file` is borrowed.
    let done = unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
    };
    if done == 0 {
        return Ok(());
    }
    match std::io::Error::last_os_error() {
        // Filesystems without it (ENOSYS, EINVAL, ESPIPE): the fsync at the
        // commit does all the writing, as it would without this call.
        err if matches!(
            err.raw_os_error(),
            Some(libc::ENOSYS | libc::EINVAL | libc::ESPIPE | libc::EOPNOTSUPP)
        ) =>
        {
            Ok(())
        }
        err => Err(err),
    }
}

/// The directories from the chunk root down to `dir` that had to be
/// created, outermost first. Blocking.
fn make_dirs(root: &Path, dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let mut missing = Vec::new();
    let mut at = dir;
    while at != root && !at.exists() {
        missing.push(at.to_owned());
        match at.parent() {
            Some(parent) => at = parent,
            None => break,
        }
    }
    missing.reverse();
    for created in &missing {
        match std::fs::create_dir(created) {
            Ok(()) => {}
            // Another write made it meanwhile: fine, it syncs it too.
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(err) => return Err(err).context(|| creating(created)),
        }
    }
    Ok(missing)
}

/// Creates `path` with `contents` and syncs it. Blocking.
fn write_synced(path: &Path, contents: &[u8]) -> Result<(), StoreError> {
    let mut file = File::create(path).context(|| creating(path))?;
    file.write_all(contents)
        .context(|| format!("writing {}", path.display()))?;
    file.sync_all().context(|| syncing(path))
}

fn meta_bytes(meta: ChunkMeta) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(&meta).map_err(|err| StoreError::Io {
        context: "encoding chunk meta".into(),
        source: err.into(),
    })
}

fn creating(path: &Path) -> String {
    format!("creating {}", path.display())
}

fn reading(path: &Path) -> String {
    format!("reading {}", path.display())
}

fn syncing(path: &Path) -> String {
    format!("syncing {}", path.display())
}

fn renaming(dest: &Path) -> String {
    format!("renaming into {}", dest.display())
}
