//! The peer transfer protocol between two real chunk stores in one process:
//! a real listener, real sockets, `sendfile()` on the sending side.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dfs_common::auth::Token;
use storage_server::peer::handshake::{self, Hello};
use storage_server::peer::wire::{self, Request, RequestKind, ResponseHeader, Status};
use storage_server::peer::{self, Expected, PeerError};
use storage_server::store::{ChunkStore, StoreError};
use storage_server::throttle::Throttle;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

#[path = "peer/handshake_auth.rs"]
mod handshake_auth;

/// A chunk store with a peer server in front of it.
struct Node {
    dir: tempfile::TempDir,
    store: Arc<ChunkStore>,
    addr: String,
    shutdown: CancellationToken,
}

impl Node {
    async fn start(rate: Option<u64>) -> Self {
        Self::spawn(rate, None).await
    }

    /// A node whose peer server requires `token`.
    pub(crate) async fn guarded(token: &str) -> Self {
        Self::spawn(None, Token::from_setting(Some(token))).await
    }

    async fn spawn(rate: Option<u64>, token: Option<Token>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(ChunkStore::open(dir.path()).await.expect("open store"));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let shutdown = CancellationToken::new();
        tokio::spawn(peer::serve(
            listener,
            store.clone(),
            Arc::new(Throttle::new(rate)),
            token,
            shutdown.clone(),
        ));
        Self {
            dir,
            store,
            addr,
            shutdown,
        }
    }

    async fn put(&self, id: &str, data: &[u8]) {
        self.store
            .write(id, Some(crc32c::crc32c(data)), u64::MAX, data)
            .await
            .expect("store chunk");
    }

    async fn read(&self, id: &str) -> Vec<u8> {
        let (mut file, _) = self.store.open_chunk(id).await.expect("open chunk");
        let mut data = Vec::new();
        file.read_to_end(&mut data).await.expect("read chunk");
        data
    }

    fn chunk_path(&self, id: &str) -> PathBuf {
        let hash = format!("{:08x}", crc32c::crc32c(id.as_bytes()));
        self.dir
            .path()
            .join("chunks")
            .join(&hash[0..2])
            .join(&hash[2..4])
            .join(id)
    }

    fn temp_files(&self) -> usize {
        std::fs::read_dir(self.dir.path().join("tmp"))
            .expect("tmp dir")
            .count()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A raw connection to an open peer server, past its hello.
async fn connect(addr: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let hello = handshake::read_hello(&mut stream).await.expect("hello");
    assert!(!hello.auth_required, "an open server asks for no answer");
    stream
}

pub(crate) fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 11) as u8)
        .collect()
}

pub(crate) fn expect(data: &[u8]) -> Expected {
    Expected {
        size: Some(data.len() as u64),
        crc32c: Some(crc32c::crc32c(data)),
    }
}

#[tokio::test]
async fn fetches_a_whole_chunk_with_sendfile() {
    let (a, b) = (Node::start(None).await, Node::start(None).await);
    let chunk = data(3 * 1024 * 1024 + 17, 1);
    a.put("c1", &chunk).await;
    let meta = peer::fetch(
        &a.addr,
        "c1",
        expect(&chunk),
        Duration::ZERO,
        &b.store,
        None,
    )
    .await
    .expect("fetch");
    assert_eq!(meta.size, chunk.len() as u64);
    assert_eq!(meta.crc32c, crc32c::crc32c(&chunk));
    assert!(b.read("c1").await == chunk, "fetched bytes differ");
    // Each store has its own metrics: the sender's and the receiver's.
    let (sender, receiver) = (a.store.metrics(), b.store.metrics());
    assert!(sender.peer_sendfile_calls.get() > 0);
    assert_eq!(sender.peer_sendfile_bytes.get(), chunk.len() as u64);
    assert_eq!(receiver.peer_received_bytes.get(), chunk.len() as u64);

    // Without expectations, the sender's CRC alone guards the transfer;
    // a chunk already here is returned as is.
    let again = peer::fetch(
        &a.addr,
        "c1",
        Expected::default(),
        Duration::ZERO,
        &b.store,
        None,
    )
    .await
    .expect("fetch again");
    assert_eq!(again, meta);
    let empty = Vec::new();
    a.put("empty", &empty).await;
    let meta = peer::fetch(
        &a.addr,
        "empty",
        expect(&empty),
        Duration::ZERO,
        &b.store,
        None,
    )
    .await
    .expect("fetch empty chunk");
    assert_eq!(meta.size, 0);
}

#[tokio::test]
async fn waits_for_a_chunk_that_is_on_its_way() {
    let (a, b) = (Node::start(None).await, Node::start(None).await);
    let chunk = data(256 * 1024, 2);
    let expected = expect(&chunk);
    let store = b.store.clone();
    let addr = a.addr.clone();
    let mut pending = tokio::spawn(async move {
        let start = Instant::now();
        let result = peer::fetch(
            &addr,
            "late",
            expected,
            Duration::from_secs(20),
            &store,
            None,
        )
        .await;
        (result, start.elapsed())
    });
    // Still waiting while the sender does not have it.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut pending)
            .await
            .is_err(),
        "fetch returned before the chunk existed"
    );
    a.put("late", &chunk).await;
    let (result, waited) = pending.await.expect("join");
    result.expect("fetch after arrival");
    assert!(waited < Duration::from_secs(10), "took {waited:?}");
    assert!(b.read("late").await == chunk);
}

#[tokio::test]
async fn missing_chunk_is_not_found_after_the_wait() {
    let (a, b) = (Node::start(None).await, Node::start(None).await);
    let start = Instant::now();
    let result = peer::fetch(
        &a.addr,
        "nothing",
        Expected::default(),
        Duration::from_millis(200),
        &b.store,
        None,
    )
    .await;
    assert!(
        matches!(&result, Err(PeerError::NotFound { chunk_id, .. }) if chunk_id == "nothing"),
        "{result:?}"
    );
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert!(matches!(
        b.store.meta("nothing").await,
        Err(StoreError::NotFound)
    ));
}

#[tokio::test]
async fn corrupted_sender_copy_is_refused_and_nothing_stored() {
    let (a, b) = (Node::start(None).await, Node::start(None).await);
    let chunk = data(100_000, 3);
    a.put("rot", &chunk).await;
    let path = a.chunk_path("rot");
    let mut on_disk = std::fs::read(&path).expect("chunk file");
    on_disk[50_000] ^= 0xff;
    std::fs::write(&path, &on_disk).expect("corrupt chunk file");
    for expected in [expect(&chunk), Expected::default()] {
        let result = peer::fetch(&a.addr, "rot", expected, Duration::ZERO, &b.store, None).await;
        assert!(
            matches!(&result, Err(PeerError::CrcMismatch { expected, actual, .. })
                if *expected == crc32c::crc32c(&chunk) && *actual == crc32c::crc32c(&on_disk)),
            "{result:?}"
        );
    }
    assert!(b.store.metrics().peer_crc_mismatches.get() >= 2);
    assert!(matches!(
        b.store.meta("rot").await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(b.temp_files(), 0);
    assert_eq!(b.store.chunk_count(), 0);
}

#[tokio::test]
async fn mismatched_expectations_store_nothing() {
    let (a, b) = (Node::start(None).await, Node::start(None).await);
    let chunk = data(1000, 4);
    a.put("x", &chunk).await;
    let wrong_size = Expected {
        size: Some(999),
        crc32c: None,
    };
    let result = peer::fetch(&a.addr, "x", wrong_size, Duration::ZERO, &b.store, None).await;
    assert!(
        matches!(
            result,
            Err(PeerError::SizeMismatch {
                expected: 999,
                actual: 1000,
                ..
            })
        ),
        "{result:?}"
    );
    let wrong_crc = Expected {
        size: None,
        crc32c: Some(7),
    };
    let result = peer::fetch(&a.addr, "x", wrong_crc, Duration::ZERO, &b.store, None).await;
    assert!(
        matches!(result, Err(PeerError::CrcMismatch { expected: 7, .. })),
        "{result:?}"
    );
    assert_eq!(b.store.chunk_count(), 0);
    let result = peer::fetch(
        &a.addr,
        "bad/id",
        Expected::default(),
        Duration::ZERO,
        &b.store,
        None,
    )
    .await;
    assert!(
        matches!(result, Err(PeerError::Store(StoreError::InvalidId(_)))),
        "{result:?}"
    );
}

#[tokio::test]
async fn dead_or_failing_sources_are_told_apart() {
    let b = Node::start(None).await;
    let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let closed_addr = closed.local_addr().expect("addr").to_string();
    drop(closed);
    let result = peer::fetch(
        &closed_addr,
        "c",
        Expected::default(),
        Duration::ZERO,
        &b.store,
        None,
    )
    .await;
    assert!(
        matches!(result, Err(PeerError::Connect { .. })),
        "{result:?}"
    );

    // A sender that announces 1000 bytes, sends 400 and hangs up.
    let fake = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let fake_addr = fake.local_addr().expect("addr").to_string();
    let chunk = data(1000, 5);
    let sent = chunk.clone();
    tokio::spawn(async move {
        let (mut stream, _) = fake.accept().await.expect("accept");
        let hello = Hello::new(false).encode();
        stream.write_all(&hello).await.expect("hello");
        let request = wire::read_request(&mut stream).await.expect("request");
        assert_eq!(request.map(|r| r.chunk_id), Some("cut".to_owned()));
        let header = ResponseHeader {
            status: Status::Ok,
            chunk_size: 1000,
            chunk_crc32c: crc32c::crc32c(&sent),
            length: 1000,
            crc32c: crc32c::crc32c(&sent),
            message: String::new(),
        };
        stream.write_all(&header.encode()).await.expect("header");
        stream.write_all(&sent[..400]).await.expect("part");
    });
    let result = peer::fetch(
        &fake_addr,
        "cut",
        expect(&chunk),
        Duration::ZERO,
        &b.store,
        None,
    )
    .await;
    assert!(
        matches!(result, Err(PeerError::ConnectionLost { .. })),
        "{result:?}"
    );
    assert_eq!(b.store.chunk_count(), 0);
    assert_eq!(b.temp_files(), 0);

    // Something that is not a dfs peer.
    let http = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let http_addr = http.local_addr().expect("addr").to_string();
    tokio::spawn(async move {
        let (mut stream, _) = http.accept().await.expect("accept");
        let _ = stream
            .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
            .await;
    });
    let result = peer::fetch(
        &http_addr,
        "c",
        Expected::default(),
        Duration::ZERO,
        &b.store,
        None,
    )
    .await;
    assert!(
        matches!(result, Err(PeerError::Protocol { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn serves_ranges_and_refuses_bad_frames() {
    let a = Node::start(None).await;
    let chunk = data(10_000, 6);
    a.put("r", &chunk).await;
    let mut stream = connect(&a.addr).await;
    let ranged = Request {
        kind: RequestKind::Get,
        chunk_id: "r".into(),
        offset: 100,
        length: 1000,
        wait_ms: 0,
    };
    stream.write_all(&ranged.encode()).await.expect("send");
    let header = wire::read_response(&mut stream).await.expect("header");
    assert_eq!(header.status, Status::Ok);
    assert_eq!((header.chunk_size, header.length), (10_000, 1000));
    assert_eq!(header.chunk_crc32c, crc32c::crc32c(&chunk));
    let mut part = vec![0u8; 1000];
    stream.read_exact(&mut part).await.expect("payload");
    assert!(part == chunk[100..1100]);
    assert_eq!(header.crc32c, crc32c::crc32c(&part));

    // The connection takes further requests: the tail, then a bad range.
    let tail = Request {
        offset: 9_990,
        length: wire::TO_END,
        ..ranged.clone()
    };
    stream.write_all(&tail.encode()).await.expect("send");
    let header = wire::read_response(&mut stream).await.expect("header");
    assert_eq!(header.length, 10);
    let mut part = vec![0u8; 10];
    stream.read_exact(&mut part).await.expect("payload");
    assert!(part == chunk[9_990..]);
    let beyond = Request {
        offset: 9_000,
        length: 1001,
        ..ranged.clone()
    };
    stream.write_all(&beyond.encode()).await.expect("send");
    let header = wire::read_response(&mut stream).await.expect("header");
    assert_eq!(header.status, Status::RangeNotSatisfiable);
    assert_eq!(header.length, 0);
    assert!(header.message.contains("outside"), "{}", header.message);

    // Another version: told ours, then hung up on.
    let mut frame = ranged.encode();
    frame[4] = 9;
    stream.write_all(&frame).await.expect("send");
    let header = wire::read_response(&mut stream).await.expect("header");
    assert_eq!(header.status, Status::UnsupportedVersion);
    assert!(header.message.contains("version 9"), "{}", header.message);
    // The rest of the frame was never read, so the close may come as a reset.
    expect_hang_up(&mut stream).await;
}

#[tokio::test]
async fn throttled_sender_holds_its_rate() {
    let rate = 1_000_000; // 8 Mbit/s
    let a = Node::start(Some(rate)).await;
    let chunk = data(3 * 1024 * 1024, 7);
    a.put("slow", &chunk).await;

    // The send rate as the receiving socket sees it (no disk work counted).
    let mut stream = connect(&a.addr).await;
    let start = Instant::now();
    stream
        .write_all(&Request::whole("slow", 0).encode())
        .await
        .expect("send");
    let header = wire::read_response(&mut stream).await.expect("header");
    assert_eq!(header.length, chunk.len() as u64);
    let mut payload = vec![0u8; chunk.len()];
    stream.read_exact(&mut payload).await.expect("payload");
    let secs = start.elapsed().as_secs_f64();
    let expected = chunk.len() as f64 / rate as f64;
    assert!(
        (secs - expected).abs() <= expected * 0.05,
        "{} bytes at {rate} B/s took {secs:.3}s, expected {expected:.3}s",
        chunk.len()
    );
    assert!(payload == chunk);
    // Sent in paced pieces, not in one burst.
    assert!(a.store.metrics().peer_sendfile_calls.get() >= 30);
    eprintln!(
        "{} bytes at {rate} B/s: {secs:.3}s (ideal {expected:.3}s)",
        chunk.len()
    );
}

/// Waits for the server to hang up (cleanly, or with a reset when it left
/// bytes unread).
pub(crate) async fn expect_hang_up(stream: &mut TcpStream) {
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest))
        .await
        .expect("server hangs up");
    assert!(
        matches!(&read, Ok(0))
            || read
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "{read:?}"
    );
}
