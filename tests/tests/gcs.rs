//! The GCS reader of the storage server (`storage_server::gcs`) against the
//! real fake-gcs-server: chunked parallel downloads into a real chunk store,
//! resume, the end-to-end CRC32C check, retries and the bandwidth cap.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use dfs_client::RetryPolicy;
use dfs_common::gcs::GcsUrl;
use dfs_tests::FakeGcs;
use storage_server::gcs::{
    ChunkDone, ChunkSpec, DownloadOptions, Downloaded, GcsClient, GcsError, chunk_layout,
};
use storage_server::store::ChunkStore;
use storage_server::throttle::Throttle;
use tokio::io::AsyncReadExt;

const CHUNK: u64 = 256 * 1024;
const BUCKET: &str = "dfs-test-bucket";

/// Retries fast enough to keep failing tests short.
const QUICK_RETRY: RetryPolicy =
    RetryPolicy::new(3, Duration::from_millis(50), Duration::from_millis(200));

/// Deterministic bytes that differ from chunk to chunk.
fn test_data(len: u64, seed: u32) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761) ^ seed).to_le_bytes()[1])
        .collect()
}

/// An emulator with one bucket holding `data` as `object`.
async fn emulator_with(object: &str, data: &[u8]) -> Result<(FakeGcs, GcsUrl)> {
    let gcs = FakeGcs::start().await?;
    gcs.create_bucket(BUCKET).await?;
    gcs.upload(BUCKET, object, data.to_vec()).await?;
    Ok((gcs, GcsUrl::new(BUCKET, object)?))
}

fn client(gcs: &FakeGcs, bytes_per_sec: Option<u64>) -> Result<GcsClient> {
    let throttle = Arc::new(Throttle::new(bytes_per_sec));
    Ok(GcsClient::new(Some(&gcs.url()), throttle)?.with_retry(QUICK_RETRY))
}

async fn new_store() -> Result<(tempfile::TempDir, ChunkStore)> {
    let dir = tempfile::tempdir()?;
    let store = ChunkStore::open(dir.path()).await?;
    Ok((dir, store))
}

fn layout(size: u64, chunk: u64, prefix: &str) -> Vec<ChunkSpec> {
    chunk_layout(size, chunk, |i| format!("{prefix}-{i}"))
}

/// Collects what `on_chunk` reports.
#[derive(Default)]
struct Reports(Mutex<Vec<ChunkDone>>);

impl Reports {
    fn push(&self, done: ChunkDone) {
        self.0.lock().expect("reports lock").push(done);
    }

    fn sorted(&self) -> Vec<ChunkDone> {
        let mut all = self.0.lock().expect("reports lock").clone();
        all.sort_by_key(|done| done.index);
        all
    }
}

async fn download(
    client: &GcsClient,
    url: &GcsUrl,
    chunks: &[ChunkSpec],
    store: &ChunkStore,
    options: DownloadOptions,
    reports: &Reports,
) -> Result<Downloaded, GcsError> {
    let info = client.stat(url).await?;
    client
        .download(url, &info, chunks, store, options, &|done| {
            reports.push(done)
        })
        .await
}

/// Each chunk is stored with exactly its slice of `data` and that slice's CRC.
async fn assert_stored(store: &ChunkStore, chunks: &[ChunkSpec], data: &[u8]) -> Result<()> {
    for chunk in chunks {
        let (mut file, meta) = store
            .open_chunk(&chunk.chunk_id)
            .await
            .with_context(|| format!("chunk {} stored", chunk.index))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).await?;
        let range = chunk.offset as usize..(chunk.offset + chunk.size) as usize;
        ensure!(
            bytes == data[range.clone()],
            "chunk {} bytes differ",
            chunk.index
        );
        ensure!(
            meta.crc32c == crc32c::crc32c(&data[range]),
            "chunk {} CRC",
            chunk.index
        );
    }
    Ok(())
}

#[tokio::test]
async fn downloads_a_multi_chunk_object_in_parallel_batches() -> Result<()> {
    let size = CHUNK * 53 / 10; // 5.3 chunks: the last one partial
    let data = test_data(size, 1);
    let (gcs, url) = emulator_with("dir/seed object.bin", &data).await?;
    let client = client(&gcs, None)?;
    for (parallel, batch) in [(4, 2), (1, 1)] {
        let (_dir, store) = new_store().await?;
        let chunks = layout(size, CHUNK, &format!("p{parallel}b{batch}"));
        assert_eq!(chunks.len(), 6);
        let reports = Reports::default();
        let options = DownloadOptions { parallel, batch };
        let done = download(&client, &url, &chunks, &store, options, &reports).await?;
        assert_eq!(done.crc32c, crc32c::crc32c(&data));
        assert!(done.verified);
        assert_eq!((done.fetched_chunks, done.resumed_chunks), (6, 0));
        assert_stored(&store, &chunks, &data).await?;
        let reported: Vec<_> = reports
            .sorted()
            .iter()
            .map(|d| (d.index, d.meta.size, d.resumed))
            .collect();
        let expected: Vec<_> = chunks.iter().map(|c| (c.index, c.size, false)).collect();
        assert_eq!(reported, expected, "parallel {parallel} batch {batch}");
    }
    Ok(())
}

#[tokio::test]
async fn a_missing_object_is_a_clear_error() -> Result<()> {
    let (gcs, _) = emulator_with("present", b"x").await?;
    let client = client(&gcs, None)?;
    let missing = GcsUrl::new(BUCKET, "missing.bin")?;
    let err = client.stat(&missing).await.expect_err("no such object");
    assert_eq!(
        err.to_string(),
        format!("object gs://{BUCKET}/missing.bin not found")
    );
    let no_bucket = GcsUrl::new("no-such-bucket", "x")?;
    let err = client.stat(&no_bucket).await.expect_err("no such bucket");
    assert!(matches!(err, GcsError::NotFound { .. }), "{err}");
    Ok(())
}

#[tokio::test]
async fn corrupted_bytes_fail_the_object_crc_check() -> Result<()> {
    let size = CHUNK * 3 + 1000;
    let data = test_data(size, 2);
    let (gcs, url) = emulator_with("rotten.bin", &data).await?;
    // The emulator's copy rots after upload: its metadata keeps the CRC32C
    // of the original bytes, reads serve the altered ones.
    let offset = CHUNK + 12_345;
    gcs.corrupt(BUCKET, "rotten.bin", offset, b"XXXX")?;
    let mut served = data.clone();
    served[offset as usize..offset as usize + 4].copy_from_slice(b"XXXX");

    let (_dir, store) = new_store().await?;
    let chunks = layout(size, CHUNK, "rot");
    let options = DownloadOptions {
        parallel: 2,
        batch: 2,
    };
    let reports = Reports::default();
    let err = download(
        &client(&gcs, None)?,
        &url,
        &chunks,
        &store,
        options,
        &reports,
    )
    .await
    .expect_err("CRC mismatch");
    assert_eq!(
        err.to_string(),
        format!(
            "object CRC32C mismatch: GCS says {:08x}, chunks combine to {:08x}",
            crc32c::crc32c(&data),
            crc32c::crc32c(&served)
        )
    );
    Ok(())
}

#[tokio::test]
async fn an_overwritten_object_is_never_mixed_with_its_new_version() -> Result<()> {
    let data = test_data(CHUNK * 2, 3);
    let (gcs, url) = emulator_with("moving.bin", &data).await?;
    let client = client(&gcs, None)?;
    let info = client.stat(&url).await?;
    gcs.upload(BUCKET, "moving.bin", test_data(CHUNK * 2, 4))
        .await?;

    let (_dir, store) = new_store().await?;
    let chunks = layout(info.size, CHUNK, "moving");
    let options = DownloadOptions {
        parallel: 1,
        batch: 1,
    };
    let err = client
        .download(&url, &info, &chunks, &store, options, &|_| {})
        .await
        .expect_err("old generation is gone");
    assert!(matches!(err, GcsError::GenerationGone { .. }), "{err}");
    assert!(err.to_string().contains("overwritten or deleted"), "{err}");
    assert_eq!(store.chunk_count(), 0);
    Ok(())
}

#[tokio::test]
async fn resume_skips_stored_chunks_and_still_checks_them() -> Result<()> {
    let size = CHUNK * 4 + 7;
    let data = test_data(size, 5);
    let (gcs, url) = emulator_with("resume.bin", &data).await?;
    let client = client(&gcs, None)?;
    let chunks = layout(size, CHUNK, "resume");
    let options = DownloadOptions {
        parallel: 2,
        batch: 2,
    };
    let slice = |c: &ChunkSpec| data[c.offset as usize..(c.offset + c.size) as usize].to_vec();

    // Chunk 2 is already there, as after an interrupted download.
    let (_dir, store) = new_store().await?;
    let pre = &chunks[2];
    store
        .write(&pre.chunk_id, None, pre.size, &slice(pre)[..])
        .await?;
    let reports = Reports::default();
    let done = download(&client, &url, &chunks, &store, options, &reports).await?;
    assert_eq!((done.fetched_chunks, done.resumed_chunks), (4, 1));
    assert!(done.verified);
    assert_stored(&store, &chunks, &data).await?;
    let resumed: Vec<_> = reports.sorted().iter().map(|d| d.resumed).collect();
    assert_eq!(resumed, [false, false, true, false, false]);

    // A stored chunk is trusted for its bytes but not for the object: a bad
    // one is caught by the combined CRC.
    let (_dir, store) = new_store().await?;
    let mut wrong = slice(pre);
    wrong[0] ^= 0xff;
    store
        .write(&pre.chunk_id, None, pre.size, &wrong[..])
        .await?;
    let err = download(&client, &url, &chunks, &store, options, &Reports::default())
        .await
        .expect_err("bad resumed chunk");
    assert!(matches!(err, GcsError::CrcMismatch { .. }), "{err}");
    Ok(())
}

#[tokio::test]
async fn emulator_killed_mid_download_gives_up_then_resumes() -> Result<()> {
    let chunk = 128 * 1024;
    let size = chunk * 8;
    let data = test_data(size, 6);
    let (mut gcs, url) = emulator_with("killed.bin", &data).await?;
    // 1 MB/s: the download would take about a second.
    let client = client(&gcs, Some(1_000_000))?;
    let info = client.stat(&url).await?;
    let chunks = layout(size, chunk, "killed");
    let options = DownloadOptions {
        parallel: 1,
        batch: 1,
    };
    let (_dir, store) = new_store().await?;

    let first = tokio::sync::Notify::new();
    let on_chunk = |_| first.notify_one();
    let started = Instant::now();
    let (result, stopped) = tokio::join!(
        client.download(&url, &info, &chunks, &store, options, &on_chunk),
        async {
            first.notified().await;
            gcs.stop().await
        }
    );
    stopped?;
    let err = result.expect_err("emulator is gone");
    let elapsed = started.elapsed();
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "giving up on {url} after 3 failed attempts; last: "
        )),
        "{message}"
    );
    assert!(
        elapsed < Duration::from_secs(10),
        "gave up after {elapsed:?}"
    );
    let kept = store.chunk_count();
    assert!(
        (1..8).contains(&kept),
        "{kept} chunks stored before the kill"
    );

    // Back up with the same objects: the next download resumes.
    gcs.restart().await?;
    let done = client
        .download(&url, &info, &chunks, &store, options, &|_| {})
        .await?;
    assert_eq!((done.resumed_chunks, done.fetched_chunks), (kept, 8 - kept));
    assert!(done.verified);
    assert_stored(&store, &chunks, &data).await?;
    Ok(())
}

#[tokio::test]
async fn the_bandwidth_cap_holds() -> Result<()> {
    let size = 10 * CHUNK + CHUNK / 2; // 2.625 MiB
    let data = test_data(size, 7);
    let (gcs, url) = emulator_with("capped.bin", &data).await?;
    let rate = 1_000_000; // 8 Mbit/s
    let client = client(&gcs, Some(rate))?;
    let info = client.stat(&url).await?;
    let (_dir, store) = new_store().await?;
    let chunks = layout(size, CHUNK, "capped");
    let options = DownloadOptions {
        parallel: 4,
        batch: 2,
    };
    let started = Instant::now();
    client
        .download(&url, &info, &chunks, &store, options, &|_| {})
        .await?;
    let secs = started.elapsed().as_secs_f64();
    let expected = size as f64 / rate as f64;
    assert!(
        secs >= expected * 0.95 && secs <= expected * 1.10,
        "{size} bytes at {rate} B/s took {secs:.3}s; expected {expected:.3}s"
    );
    Ok(())
}
