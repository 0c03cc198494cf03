//! The handshake that opens every peer connection (see `PROTOCOL.md`): the
//! server's hello, carrying a fresh random nonce and whether it requires
//! authentication; when it does, the client's answer, HMAC-SHA256 keyed by
//! the cluster token over [`AUTH_CONTEXT`] ‖ nonce, before its first
//! request. A captured answer is worth nothing on another connection: its
//! nonce differs.

use dfs_common::auth::Token;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::wire::{self, MAGIC, RequestKind, VERSION, WireError};

/// Bytes of the server's nonce.
pub const NONCE_LEN: usize = 32;
/// Bytes of the client's answer (a whole HMAC-SHA256).
pub const ANSWER_LEN: usize = 32;
/// What the answer is a MAC of, before the nonce: keeps it apart from
/// every other use of the token.
pub const AUTH_CONTEXT: &[u8] = b"dfs peer auth v2\0";
/// Bytes of a hello and of an auth frame.
pub const FRAME_LEN: usize = 8 + NONCE_LEN;

/// The server's first frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// Whether the client must answer the challenge before any request.
    pub auth_required: bool,
    /// Fresh for every connection.
    pub nonce: [u8; NONCE_LEN],
}

impl Hello {
    /// A hello with a fresh nonce from the thread's CSPRNG.
    pub fn new(auth_required: bool) -> Self {
        Self {
            auth_required,
            nonce: rand::random(),
        }
    }

    /// The frame's bytes: magic, version, auth mode (0 none, 1
    /// HMAC-SHA256), two reserved zero bytes, the nonce.
    pub fn encode(&self) -> [u8; FRAME_LEN] {
        frame(u8::from(self.auth_required), &self.nonce)
    }
}

/// Reads the server's hello.
pub async fn read_hello<R: AsyncRead + Unpin>(r: &mut R) -> Result<Hello, WireError> {
    let (mode, nonce) = read_frame(r, |mode| match mode {
        0 | 1 => Ok(()),
        other => Err(WireError::BadAuthMode(other)),
    })
    .await?;
    Ok(Hello {
        auth_required: mode == 1,
        nonce,
    })
}

/// The answer to `nonce` with `token`.
pub fn answer(token: &Token, nonce: &[u8; NONCE_LEN]) -> [u8; ANSWER_LEN] {
    token.mac(AUTH_CONTEXT, nonce)
}

/// Whether `answer` answers `nonce` with `token` (constant-time).
pub fn verify(token: &Token, nonce: &[u8; NONCE_LEN], answer: &[u8; ANSWER_LEN]) -> bool {
    token.verify_mac(AUTH_CONTEXT, nonce, answer)
}

/// The client's auth frame: magic, version, request type AUTH, two
/// reserved zero bytes, the answer.
pub fn encode_auth(answer: &[u8; ANSWER_LEN]) -> [u8; FRAME_LEN] {
    frame(RequestKind::Auth as u8, answer)
}

/// Reads the client's auth frame and returns its answer; any other frame
/// (a request sent without answering) is an error.
pub async fn read_auth<R: AsyncRead + Unpin>(r: &mut R) -> Result<[u8; ANSWER_LEN], WireError> {
    let (_, answer) = read_frame(r, |kind| {
        if kind == RequestKind::Auth as u8 {
            Ok(())
        } else {
            Err(WireError::NotAuthenticated(kind))
        }
    })
    .await?;
    Ok(answer)
}

fn frame(kind: u8, body: &[u8; 32]) -> [u8; FRAME_LEN] {
    let mut out = [0u8; FRAME_LEN];
    out[..4].copy_from_slice(&MAGIC);
    out[4] = VERSION;
    out[5] = kind;
    out[8..].copy_from_slice(body);
    out
}

/// Reads a 40-byte handshake frame: its type byte (checked by `kind`
/// before the rest is read) and its 32-byte body.
async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    kind: impl FnOnce(u8) -> Result<(), WireError>,
) -> Result<(u8, [u8; 32]), WireError> {
    let mut bytes = [0u8; FRAME_LEN];
    r.read_exact(&mut bytes[..8]).await?;
    wire::check_prefix(&bytes[..8])?;
    kind(bytes[5])?;
    if bytes[6] != 0 || bytes[7] != 0 {
        return Err(WireError::Reserved);
    }
    r.read_exact(&mut bytes[8..]).await?;
    let mut body = [0u8; 32];
    body.copy_from_slice(&bytes[8..]);
    Ok((bytes[5], body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(text: &str) -> Token {
        Token::from_setting(Some(text)).expect("a token")
    }

    #[tokio::test]
    async fn hello_round_trips_with_fresh_nonces() {
        let hello = Hello::new(true);
        let bytes = hello.encode();
        assert_eq!(&bytes[..6], b"DFSP\x02\x01");
        let mut reader = bytes.as_slice();
        assert_eq!(read_hello(&mut reader).await.expect("decodes"), hello);
        assert_ne!(Hello::new(true).nonce, hello.nonce);
        let open = Hello::new(false).encode();
        let mut reader = open.as_slice();
        assert!(
            !read_hello(&mut reader)
                .await
                .expect("decodes")
                .auth_required
        );
        let mut bad = bytes;
        bad[5] = 7;
        let mut reader = bad.as_slice();
        assert!(matches!(
            read_hello(&mut reader).await,
            Err(WireError::BadAuthMode(7))
        ));
    }

    #[tokio::test]
    async fn answers_verify_only_for_their_nonce_and_token() {
        let t = token("s3cret");
        let hello = Hello::new(true);
        let reply = answer(&t, &hello.nonce);
        let frame = encode_auth(&reply);
        let mut reader = frame.as_slice();
        let got = read_auth(&mut reader).await.expect("decodes");
        assert!(verify(&t, &hello.nonce, &got));
        assert!(!verify(&t, &Hello::new(true).nonce, &got));
        assert!(!verify(&token("guess"), &hello.nonce, &got));
        // A request where the answer should be is refused, not served.
        let request = wire::Request::whole("0123456789abcdef-0123456789abcdef-0-00000000", 0);
        let encoded = request.encode();
        let mut reader = encoded.as_slice();
        assert!(matches!(
            read_auth(&mut reader).await,
            Err(WireError::NotAuthenticated(1))
        ));
    }
}
