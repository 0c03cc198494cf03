//! The handshake with a token: a peer server that requires it serves only
//! connections that answer its challenge, each answer good for its own
//! connection only.

use std::time::Duration;

use dfs_common::auth::Token;
use storage_server::peer::wire::{self, Request, Status};
use storage_server::peer::{self, PeerError, handshake};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Node, data, expect, expect_hang_up};

#[tokio::test]
async fn a_token_guards_every_connection() {
    let (a, b) = (Node::guarded("s3cret").await, Node::start(None).await);
    let chunk = data(50_000, 8);
    a.put("guarded", &chunk).await;
    let right = Token::from_setting(Some("s3cret"));
    let wrong = Token::from_setting(Some("guess"));
    for token in [None, wrong.as_ref()] {
        let result = peer::fetch(
            &a.addr,
            "guarded",
            expect(&chunk),
            Duration::ZERO,
            &b.store,
            token,
        )
        .await;
        assert!(
            matches!(&result, Err(PeerError::Unauthorized { .. })),
            "{result:?}"
        );
    }
    assert_eq!(b.store.chunk_count(), 0);
    assert_eq!(b.temp_files(), 0);
    // The wrong answer was refused and counted (the node without a token
    // never answered: it knew it could not).
    assert!(a.store.metrics().peer_auth_failures.get() > 0);
    let meta = peer::fetch(
        &a.addr,
        "guarded",
        expect(&chunk),
        Duration::ZERO,
        &b.store,
        right.as_ref(),
    )
    .await
    .expect("fetch with the token");
    assert_eq!(meta.size, chunk.len() as u64);
    assert!(b.read("guarded").await == chunk);
}

/// Reads a refusal, then the server's hang-up.
async fn expect_refused(stream: &mut TcpStream) {
    let header = wire::read_response(stream).await.expect("header");
    assert_eq!(header.status, Status::Unauthorized, "{header:?}");
    assert_eq!(header.length, 0);
    assert!(header.message.contains("DFS_TOKEN"), "{}", header.message);
    assert!(!header.message.contains("s3cret"), "{}", header.message);
    expect_hang_up(stream).await;
}

#[tokio::test]
async fn an_answer_is_good_for_its_own_connection_only() {
    let a = Node::guarded("s3cret").await;
    let chunk = data(20_000, 9);
    a.put("once", &chunk).await;
    let token = Token::from_setting(Some("s3cret")).expect("token");
    let request = Request::whole("once", 0).encode();

    let mut first = TcpStream::connect(&a.addr).await.expect("connect");
    let hello = handshake::read_hello(&mut first).await.expect("hello");
    assert!(hello.auth_required);
    let answer = handshake::answer(&token, &hello.nonce);
    let mut frames = handshake::encode_auth(&answer).to_vec();
    frames.extend(&request);
    first.write_all(&frames).await.expect("send");
    let header = wire::read_response(&mut first).await.expect("header");
    assert_eq!(header.status, Status::Ok, "{header:?}");
    let mut payload = vec![0u8; chunk.len()];
    first.read_exact(&mut payload).await.expect("payload");
    assert!(payload == chunk);

    // The same answer, replayed on a new connection: its nonce differs.
    let mut second = TcpStream::connect(&a.addr).await.expect("connect");
    let hello = handshake::read_hello(&mut second).await.expect("hello");
    assert!(!handshake::verify(&token, &hello.nonce, &answer));
    second.write_all(&frames).await.expect("send");
    expect_refused(&mut second).await;

    // A request where the answer is due.
    let mut third = TcpStream::connect(&a.addr).await.expect("connect");
    handshake::read_hello(&mut third).await.expect("hello");
    third.write_all(&request).await.expect("send");
    expect_refused(&mut third).await;
    assert!(a.store.metrics().peer_auth_failures.get() >= 2);
}
