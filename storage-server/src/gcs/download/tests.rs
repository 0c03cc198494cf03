use std::sync::Arc;

use super::*;
use crate::throttle::Throttle;

#[test]
fn layout_covers_the_object() {
    let chunks = chunk_layout(10, 4, |i| format!("c{i}"));
    let sizes: Vec<_> = chunks.iter().map(|c| (c.offset, c.size)).collect();
    assert_eq!(sizes, [(0, 4), (4, 4), (8, 2)]);
    assert_eq!(chunks[2].chunk_id, "c2");
    assert_eq!(check_layout(&chunks, 10), Ok(()));
    assert!(check_layout(&chunks, 11).is_err());
    assert!(check_layout(&chunks[1..], 6).is_err());
    let mut gap = chunks.clone();
    gap[1].offset = 5;
    assert!(check_layout(&gap, 10).is_err());
    assert_eq!(check_layout(&[], 0), Ok(()));
    assert!(chunk_layout(0, 4, |i| i.to_string()).is_empty());
}

#[test]
fn batches_are_consecutive_and_bounded() {
    assert_eq!(batches(&[0, 1, 2, 3, 4], 2), [0..2, 2..4, 4..5]);
    assert_eq!(batches(&[0, 2, 3, 5], 4), [0..1, 2..4, 5..6]);
    assert_eq!(batches(&[1, 2, 3], 1), [1..2, 2..3, 3..4]);
    assert!(batches(&[], 3).is_empty());
}

#[test]
fn crcs_combine_like_the_whole() {
    let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let metas = data.chunks(3000).map(|piece| ChunkMeta {
        size: piece.len() as u64,
        crc32c: crc32c::crc32c(piece),
    });
    assert_eq!(combine_crcs(metas), crc32c::crc32c(&data));
    assert_eq!(combine_crcs([]), 0);
}

/// A store and a client that never connects, to drive [`Job::store_chunk`].
struct Fixture {
    _dir: tempfile::TempDir,
    store: ChunkStore,
    client: GcsClient,
    url: GcsUrl,
}

impl Fixture {
    async fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = ChunkStore::open(dir.path()).await.expect("store");
        let client =
            GcsClient::new(Some("127.0.0.1:9"), Arc::new(Throttle::new(None))).expect("client");
        let url = GcsUrl::new("bkt", "obj").expect("url");
        Self {
            _dir: dir,
            store,
            client,
            url,
        }
    }

    fn job<'a>(&'a self, chunks: &'a [ChunkSpec]) -> Job<'a> {
        Job {
            client: &self.client,
            url: &self.url,
            generation: 1,
            chunks,
            store: &self.store,
            on_chunk: &|_| {},
        }
    }
}

fn frames(
    pieces: Vec<Result<&'static [u8], std::io::Error>>,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Unpin {
    futures::stream::iter(
        pieces
            .into_iter()
            .map(|piece| piece.map(Bytes::from_static)),
    )
}

#[tokio::test]
async fn frames_are_split_at_chunk_boundaries() {
    let chunks = chunk_layout(10, 4, |i| format!("c{i}"));
    let fixture = Fixture::new().await;
    let job = fixture.job(&chunks);
    {
        let mut body = frames(vec![Ok(b"ab"), Ok(b"cdefg"), Ok(b"hij")]);
        let mut pending = Bytes::new();
        for (chunk, expected) in chunks.iter().zip([&b"abcd"[..], b"efgh", b"ij"]) {
            let meta = job
                .store_chunk(chunk, &mut body, &mut pending)
                .await
                .expect("stored");
            assert_eq!(meta.crc32c, crc32c::crc32c(expected));
            assert_eq!(meta.size, expected.len() as u64);
        }
        assert!(pending.is_empty());
    }
}

#[tokio::test]
async fn a_cut_body_stores_nothing_and_is_retryable() {
    let chunks = chunk_layout(8, 4, |i| format!("c{i}"));
    let fixture = Fixture::new().await;
    let job = fixture.job(&chunks);
    {
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        let mut body = frames(vec![Ok(b"abcde"), Err(reset)]);
        let mut pending = Bytes::new();
        job.store_chunk(&chunks[0], &mut body, &mut pending)
            .await
            .expect("first chunk complete");
        let cut = job.store_chunk(&chunks[1], &mut body, &mut pending).await;
        assert!(
            matches!(&cut, Err(Failure::Transient(reason)) if reason.contains("reset by peer")),
            "{cut:?}"
        );
        assert!(matches!(
            job.store.meta("c1").await,
            Err(StoreError::NotFound)
        ));

        let mut short = frames(vec![Ok(b"ab")]);
        let ended = job
            .store_chunk(&chunks[1], &mut short, &mut Bytes::new())
            .await;
        assert!(
            matches!(&ended, Err(Failure::Transient(reason)) if reason.contains("2 bytes before the end")),
            "{ended:?}"
        );
        assert_eq!(job.store.chunk_count(), 1);
    }
}
