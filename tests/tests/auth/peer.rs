//! The peer port of a real storage node with a token: no answer, a wrong
//! answer and a replayed answer are refused and counted; the right one is
//! served.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use dfs_common::auth::Token;
use dfs_tests::chunk_id;
use reqwest::StatusCode;
use storage_server::peer::handshake;
use storage_server::peer::wire::{self, Request, Status};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{TOKEN, cluster, token};

/// Opens a peer connection to `addr`; returns it with the server's nonce.
async fn peer_connect(addr: &str) -> Result<(TcpStream, [u8; handshake::NONCE_LEN])> {
    let mut stream = TcpStream::connect(addr).await?;
    let hello = handshake::read_hello(&mut stream).await?;
    ensure!(
        hello.auth_required,
        "a node with a token asks for no answer"
    );
    Ok((stream, hello.nonce))
}

/// Sends `frames`; expects the refusal and the server's hang-up.
async fn peer_refused(mut stream: TcpStream, frames: &[u8]) -> Result<()> {
    stream.write_all(frames).await?;
    let header = wire::read_response(&mut stream).await?;
    ensure!(header.status == Status::Unauthorized, "{header:?}");
    ensure!(!header.message.contains(TOKEN), "{}", header.message);
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest))
        .await
        .context("the node kept the connection open")?;
    ensure!(
        closed.as_ref().map_or(true, |n| *n == 0),
        "{closed:?} {rest:?}"
    );
    Ok(())
}

#[tokio::test]
async fn peer_connections_need_the_token_and_answers_do_not_replay() -> Result<()> {
    let cluster = cluster(1).await?;
    let node = cluster.storage(0);
    let id = chunk_id("peer-guarded");
    let data = vec![9u8; 100_000];
    let stored = cluster
        .authorized(
            cluster
                .http()
                .put(format!("{}/chunks/{id}", node.url()))
                .header("x-dfs-crc32c", crc32c::crc32c(&data).to_string())
                .header("x-dfs-chunk-signature", token()?.sign_chunk_id(&id))
                .body(data.clone()),
        )
        .send()
        .await?;
    ensure!(stored.status() == StatusCode::CREATED, "{stored:?}");
    let request = Request::whole(&id, 0).encode();
    let with_answer = |answer: &[u8; handshake::ANSWER_LEN]| {
        let mut frames = handshake::encode_auth(answer).to_vec();
        frames.extend(&request);
        frames
    };
    let failures = cluster
        .storage_metric(0, "dfs_peer_auth_failures_total")
        .await?;

    // No answer, and an answer made with another token.
    let (stream, _) = peer_connect(node.peer_addr()).await?;
    peer_refused(stream, &request).await?;
    let guess = Token::from_setting(Some("guess")).context("token")?;
    let (stream, nonce) = peer_connect(node.peer_addr()).await?;
    peer_refused(stream, &with_answer(&handshake::answer(&guess, &nonce))).await?;

    // The right answer is served; replayed on a new connection, refused.
    let (mut stream, nonce) = peer_connect(node.peer_addr()).await?;
    let answer = handshake::answer(&token()?, &nonce);
    stream.write_all(&with_answer(&answer)).await?;
    let header = wire::read_response(&mut stream).await?;
    ensure!(header.status == Status::Ok, "{header:?}");
    let mut payload = vec![0u8; data.len()];
    stream.read_exact(&mut payload).await?;
    ensure!(payload == data, "the node served other bytes");
    let (stream, _) = peer_connect(node.peer_addr()).await?;
    peer_refused(stream, &with_answer(&answer)).await?;

    let counted = cluster
        .storage_metric(0, "dfs_peer_auth_failures_total")
        .await?;
    ensure!(counted == failures + 3, "{failures} -> {counted}");
    ensure!(std::fs::read(node.chunk_path(&id).context("chunk")?)? == data);
    Ok(())
}
