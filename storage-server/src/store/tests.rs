use std::io::Cursor;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

use super::*;

const LIMIT: u64 = 1 << 20;

async fn new_store() -> (tempfile::TempDir, ChunkStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = ChunkStore::open(dir.path()).await.expect("open store");
    (dir, store)
}

async fn put(store: &ChunkStore, id: &str, data: &[u8]) -> Result<WriteOutcome, StoreError> {
    let crc = crc32c::crc32c(data);
    store
        .write(id, Some(crc), LIMIT, Cursor::new(data.to_vec()))
        .await
        .map(|(outcome, _)| outcome)
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// A body that yields some bytes, then fails like a dropped connection.
struct Broken(bool);

impl AsyncRead for Broken {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.0 {
            return Poll::Ready(Err(std::io::Error::other("connection reset")));
        }
        self.0 = true;
        buf.put_slice(b"partial");
        Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn round_trip_and_layout() {
    let (dir, store) = new_store().await;
    let data = b"hello chunk".repeat(1000);
    assert_eq!(
        put(&store, "c-1", &data).await.ok(),
        Some(WriteOutcome::Created)
    );
    let (mut file, meta) = store.open_chunk("c-1").await.expect("open");
    assert_eq!(meta.size, data.len() as u64);
    assert_eq!(meta.crc32c, crc32c::crc32c(&data));
    let mut back = Vec::new();
    file.read_to_end(&mut back).await.expect("read");
    assert_eq!(back, data);
    assert_eq!(store.meta("c-1").await.expect("meta"), meta);
    assert_eq!(store.chunk_count(), 1);

    let hash = format!("{:08x}", crc32c::crc32c(b"c-1"));
    let chunk_dir = dir.path().join("chunks").join(&hash[..2]).join(&hash[2..4]);
    assert!(chunk_dir.join("c-1").is_file());
    let meta_json = std::fs::read_to_string(chunk_dir.join("c-1.meta")).expect("meta file");
    assert_eq!(
        meta_json,
        format!("{{\"size\":{},\"crc32c\":{}}}", data.len(), meta.crc32c)
    );
    assert!(entries(&dir.path().join("tmp")).is_empty());
}

#[tokio::test]
async fn same_crc_is_idempotent_other_crc_conflicts() {
    let (_dir, store) = new_store().await;
    assert_eq!(
        put(&store, "c", b"one").await.ok(),
        Some(WriteOutcome::Created)
    );
    assert_eq!(
        put(&store, "c", b"one").await.ok(),
        Some(WriteOutcome::AlreadyPresent)
    );
    assert!(matches!(
        put(&store, "c", b"two").await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(store.chunk_count(), 1);
}

#[tokio::test]
async fn crc_mismatch_stores_nothing() {
    let (dir, store) = new_store().await;
    let result = store
        .write("c", Some(1234), LIMIT, Cursor::new(b"data".to_vec()))
        .await;
    assert!(matches!(
        result,
        Err(StoreError::CrcMismatch { expected: 1234, .. })
    ));
    assert!(matches!(store.meta("c").await, Err(StoreError::NotFound)));
    assert!(entries(dir.path()).iter().all(|p| p.ends_with("node_id")));
    assert_eq!(store.chunk_count(), 0);
}

#[tokio::test]
async fn unknown_crc_is_computed() {
    let (_dir, store) = new_store().await;
    let (outcome, meta) = store
        .write("c", None, LIMIT, Cursor::new(b"data".to_vec()))
        .await
        .expect("stored");
    assert_eq!(outcome, WriteOutcome::Created);
    let expected = ChunkMeta {
        size: 4,
        crc32c: crc32c::crc32c(b"data"),
    };
    assert_eq!(meta, expected);
    assert_eq!(store.meta("c").await.expect("meta"), expected);
}

#[tokio::test]
async fn size_limit_is_enforced() {
    let (dir, store) = new_store().await;
    let data = vec![7u8; 11];
    let crc = crc32c::crc32c(&data);
    let too_big = store
        .write("c", Some(crc), 10, Cursor::new(data.clone()))
        .await;
    assert!(matches!(too_big, Err(StoreError::TooLarge { limit: 10 })));
    assert!(entries(dir.path()).is_empty());
    let exact = store.write("c", Some(crc), 11, Cursor::new(data)).await;
    assert!(matches!(exact, Ok((WriteOutcome::Created, _))));
}

#[tokio::test]
async fn failed_upload_leaves_no_temp_file() {
    let (dir, store) = new_store().await;
    let result = store.write("c", Some(0), LIMIT, Broken(false)).await;
    assert!(matches!(result, Err(StoreError::Upload(_))));
    assert!(entries(dir.path()).is_empty());
}

#[tokio::test]
async fn invalid_ids_are_rejected() {
    let (dir, store) = new_store().await;
    for id in ["", "..", "a.b", "../x", "a/b", "x\0", &"a".repeat(129)] {
        assert!(
            matches!(put(&store, id, b"x").await, Err(StoreError::InvalidId(_))),
            "{id:?}"
        );
        assert!(matches!(
            store.open_chunk(id).await,
            Err(StoreError::InvalidId(_))
        ));
        assert!(matches!(
            store.delete(id).await,
            Err(StoreError::InvalidId(_))
        ));
    }
    assert!(entries(dir.path()).is_empty());
}

#[tokio::test]
async fn delete_removes_data_and_meta() {
    let (dir, store) = new_store().await;
    put(&store, "gone", b"bytes").await.expect("put");
    store.delete("gone").await.expect("delete");
    assert!(matches!(
        store.open_chunk("gone").await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.delete("gone").await,
        Err(StoreError::NotFound)
    ));
    assert!(entries(dir.path()).is_empty());
    assert_eq!(store.chunk_count(), 0);
}

#[tokio::test]
async fn corrupt_or_missing_meta_means_absent() {
    let (_dir, store) = new_store().await;
    put(&store, "bad", b"bytes").await.expect("put");
    put(&store, "nometa", b"bytes").await.expect("put");
    let (_, _, meta_path) = store.paths("bad").expect("paths");
    std::fs::write(&meta_path, b"{not json").expect("corrupt meta");
    let (_, _, meta_path) = store.paths("nometa").expect("paths");
    std::fs::remove_file(&meta_path).expect("remove meta");
    assert!(matches!(
        store.open_chunk("bad").await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.meta("nometa").await,
        Err(StoreError::NotFound)
    ));
    // A fresh upload repairs it.
    assert_eq!(
        put(&store, "nometa", b"bytes").await.ok(),
        Some(WriteOutcome::Created)
    );
}

#[tokio::test]
async fn reopen_cleans_tmp_keeps_chunks_and_node_id() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = ChunkStore::open(dir.path()).await.expect("open");
    let node_id = store.node_id().await.expect("node id");
    assert_eq!(node_id.len(), 32);
    put(&store, "kept", b"payload").await.expect("put");
    drop(store);
    std::fs::write(dir.path().join("tmp").join("crashed.part"), b"junk").expect("leftover");

    let store = ChunkStore::open(dir.path()).await.expect("reopen");
    assert_eq!(store.node_id().await.expect("node id"), node_id);
    assert_eq!(store.chunk_count(), 1);
    assert!(entries(&dir.path().join("tmp")).is_empty());
    assert_eq!(store.meta("kept").await.expect("meta").size, 7);
}

#[tokio::test]
async fn concurrent_writes_of_one_id_never_mix() {
    let (_dir, store) = new_store().await;
    let store = std::sync::Arc::new(store);
    let tasks: Vec<_> = (0..8u8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let data = vec![i % 2; 300_000];
                put(&store, "race", &data).await.map(|o| (o, i % 2))
            })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        match task.await.expect("join") {
            Ok((WriteOutcome::Created, _)) => created += 1,
            Ok((WriteOutcome::AlreadyPresent, _)) | Err(StoreError::Conflict { .. }) => {}
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert_eq!(created, 1);
    let (mut file, meta) = store.open_chunk("race").await.expect("open");
    let mut back = Vec::new();
    file.read_to_end(&mut back).await.expect("read");
    assert_eq!(crc32c::crc32c(&back), meta.crc32c);
    assert_eq!(store.chunk_count(), 1);
}

#[tokio::test]
async fn wait_for_sees_present_arriving_and_missing_chunks() {
    let (_dir, store) = new_store().await;
    let store = std::sync::Arc::new(store);
    put(&store, "here", b"already").await.expect("put");
    let meta = store
        .wait_for("here", Duration::ZERO)
        .await
        .expect("present");
    assert_eq!(meta.size, 7);

    // A waiter started before the chunk exists returns once it is committed,
    // long before its timeout.
    let waiter = {
        let store = store.clone();
        tokio::spawn(async move {
            let start = std::time::Instant::now();
            let meta = store.wait_for("later", Duration::from_secs(30)).await;
            (meta, start.elapsed())
        })
    };
    // Let the waiter subscribe, then commit an unrelated chunk (a spurious
    // wake-up) and the awaited one.
    tokio::task::yield_now().await;
    put(&store, "other", b"noise").await.expect("put");
    put(&store, "later", b"arrived").await.expect("put");
    let (meta, waited) = waiter.await.expect("join");
    assert_eq!(meta.expect("arrived").crc32c, crc32c::crc32c(b"arrived"));
    assert!(waited < Duration::from_secs(10), "waited {waited:?}");

    let start = std::time::Instant::now();
    let missing = store.wait_for("never", Duration::from_millis(200)).await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert!(matches!(
        store.wait_for("bad/id", Duration::ZERO).await,
        Err(StoreError::InvalidId(_))
    ));
}

#[tokio::test]
async fn verify_tells_sound_rotten_missing_and_absent_chunks_apart() {
    let (_dir, store) = new_store().await;
    let unlimited = Throttle::new(None);
    for id in ["sound", "rotten", "robbed"] {
        put(&store, id, b"some chunk bytes").await.expect("put");
    }
    let path = |id: &str| store.paths(id).expect("valid id").1;
    let mut bytes = std::fs::read(path("rotten")).expect("read");
    bytes[3] ^= 1;
    std::fs::write(path("rotten"), bytes).expect("rot");
    std::fs::remove_file(path("robbed")).expect("rob");
    let verdicts = [
        ("sound", Verdict::Sound),
        ("rotten", Verdict::Corrupt),
        ("robbed", Verdict::Missing),
        ("never", Verdict::Absent),
    ];
    for (id, expected) in verdicts {
        let verdict = store.verify(id, &unlimited).await.expect("verify");
        assert_eq!(verdict, expected, "{id}");
    }
    // A data file that outgrew its meta is corrupt too.
    std::fs::write(path("sound"), b"some chunk bytes, and more").expect("grow");
    assert_eq!(
        store.verify("sound", &unlimited).await.expect("verify"),
        Verdict::Corrupt
    );
}

#[tokio::test]
async fn quarantined_chunks_are_never_served_and_go_with_a_delete() {
    let (dir, store) = new_store().await;
    put(&store, "bad", b"bytes").await.expect("put");
    put(&store, "good", b"bytes").await.expect("put");
    assert_eq!(store.chunk_count(), 2);
    store.quarantine("bad").await.expect("quarantine");
    assert!(matches!(store.meta("bad").await, Err(StoreError::NotFound)));
    assert!(matches!(
        store.open_chunk("bad").await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.chunk_count(), 1);
    assert_eq!(store.quarantined_count().await.expect("count"), 1);
    assert!(dir.path().join("quarantine/bad").exists());
    assert!(dir.path().join("quarantine/bad.meta").exists());
    // Nothing is old enough to be purged yet.
    assert_eq!(store.purge_quarantine().await.expect("purge"), 0);
    // The same id may be stored again; a delete removes both copies.
    put(&store, "bad", b"bytes").await.expect("put again");
    store.delete("bad").await.expect("delete");
    assert_eq!(store.quarantined_count().await.expect("count"), 0);
    assert!(matches!(
        store.delete("bad").await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.meta("good").await.expect("good").size, 5);
}

#[tokio::test]
async fn a_received_chunk_is_invisible_until_committed_and_gone_if_dropped() {
    let (dir, store) = new_store().await;
    // Several pieces, so the two buffers take turns.
    let data: Vec<u8> = (0..3 * 1024 * 1024 + 17).map(|i| (i % 251) as u8).collect();
    let crc = crc32c::crc32c(&data);
    let kept = store
        .receive("kept", Some(crc), 8 << 20, Cursor::new(data.clone()))
        .await
        .expect("receive");
    let dropped = store
        .receive("dropped", Some(crc), 8 << 20, Cursor::new(data.clone()))
        .await
        .expect("receive");
    assert_eq!(kept.meta().size, data.len() as u64);
    assert!(matches!(
        store.meta("kept").await,
        Err(StoreError::NotFound)
    ));
    drop(dropped);
    let (outcome, meta) = store.commit(kept).await.expect("commit");
    assert_eq!((outcome, meta.crc32c), (WriteOutcome::Created, crc));
    let (mut file, _) = store.open_chunk("kept").await.expect("open");
    let mut read = Vec::new();
    file.read_to_end(&mut read).await.expect("read");
    assert_eq!(read, data);
    assert!(matches!(
        store.meta("dropped").await,
        Err(StoreError::NotFound)
    ));
    // Nothing left in tmp/, and only the kept chunk (data and meta) stored.
    assert!(entries(&dir.path().join("tmp")).is_empty());
    assert_eq!(entries(&dir.path().join("chunks")).len(), 2);
    assert_eq!(store.chunk_count(), 1);
}

#[tokio::test]
async fn committing_the_same_chunk_twice_keeps_one() {
    let (_dir, store) = new_store().await;
    let data = b"twice".to_vec();
    let crc = crc32c::crc32c(&data);
    let first = store.receive("c", Some(crc), LIMIT, Cursor::new(data.clone()));
    let first = first.await.expect("receive");
    let second = store.receive("c", Some(crc), LIMIT, Cursor::new(data));
    let second = second.await.expect("receive");
    assert_eq!(
        store.commit(second).await.expect("commit").0,
        WriteOutcome::Created
    );
    assert_eq!(
        store.commit(first).await.expect("commit").0,
        WriteOutcome::AlreadyPresent
    );
    assert_eq!(store.chunk_count(), 1);
}

#[tokio::test]
async fn small_reads_come_from_memory_once_the_meta_is_known() {
    let (_dir, store) = new_store().await;
    put(&store, "hot", b"0123456789").await.expect("put");
    let part = |meta: ChunkMeta| Some((2, meta.size - 4));
    // The meta was never read: the blocking way parses it first.
    assert_eq!(store.read_cached("hot", part), None);
    let (_, meta) = store.open_chunk("hot").await.expect("open");
    let (cached_meta, bytes) = store.read_cached("hot", part).expect("from memory");
    assert_eq!((cached_meta, bytes.as_slice()), (meta, &b"234567"[..]));
    // Declined, too large, or gone: the caller goes the blocking way.
    assert_eq!(store.read_cached("hot", |_| None), None);
    assert_eq!(
        store.read_cached("hot", |_| Some((0, CACHED_READ_MAX + 1))),
        None
    );
    store.delete("hot").await.expect("delete");
    assert_eq!(store.read_cached("hot", part), None);
    assert_eq!(store.read_cached("../escape", part), None);
}

#[tokio::test]
async fn stored_bytes_follow_writes_deletes_quarantines_and_a_reopen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = ChunkStore::open(dir.path()).await.expect("open");
    put(&store, "a", &[1; 1000]).await.expect("put a");
    put(&store, "b", &[2; 300]).await.expect("put b");
    put(&store, "c", &[3; 20]).await.expect("put c");
    // Again: already present, nothing more stored.
    put(&store, "a", &[1; 1000]).await.expect("put a again");
    assert_eq!((store.chunk_count(), store.stored_bytes()), (3, 1320));
    store.delete("b").await.expect("delete");
    store.quarantine("c").await.expect("quarantine");
    assert_eq!((store.chunk_count(), store.stored_bytes()), (1, 1000));
    drop(store);
    let store = ChunkStore::open(dir.path()).await.expect("reopen");
    assert_eq!((store.chunk_count(), store.stored_bytes()), (1, 1000));
}
