//! Framing of the peer transfer protocol (see `PROTOCOL.md` beside this file).
//! Integers are big-endian. Every frame starts with [`MAGIC`] and a version
//! byte, the only part that stays put across versions.

use std::time::Duration;

use dfs_common::validate::{self, MAX_CHUNK_ID_LEN};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt};

/// First four bytes of every request and response header.
pub const MAGIC: [u8; 4] = *b"DFSP";
/// The protocol version this build speaks (2: every connection opens with
/// the handshake of [`super::handshake`]).
pub const VERSION: u8 = 2;
/// `length` value meaning "up to the end of the chunk".
pub const TO_END: u64 = u64::MAX;
/// Longest error message a response carries; longer ones are cut.
pub const MAX_MESSAGE_LEN: usize = 1024;
/// Longest silence tolerated while a frame or payload is on the wire, on
/// either side.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest a server waits for a chunk that has not arrived; longer waits
/// asked for are cut to this.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// Bytes of a request before the chunk id.
const REQUEST_FIXED: usize = 28;
/// Bytes of a response header before the message.
const RESPONSE_FIXED: usize = 32;
/// Bytes every frame starts with: magic, version, and three bytes whose
/// meaning the version decides.
const PREFIX: usize = 8;

#[derive(Debug, Error)]
pub enum WireError {
    #[error("bad magic {0:02x?}: not a dfs peer")]
    BadMagic([u8; 4]),
    #[error("unsupported protocol version {0} (this node speaks {VERSION})")]
    UnsupportedVersion(u8),
    #[error("unknown request type {0}")]
    BadKind(u8),
    #[error("unknown authentication mode {0} in the hello")]
    BadAuthMode(u8),
    #[error("frame of type {0} where the answer to the challenge was due")]
    NotAuthenticated(u8),
    #[error("reserved bytes of a handshake frame are not zero")]
    Reserved,
    #[error("unknown response status {0}")]
    BadStatus(u8),
    #[error("invalid chunk id in request: {0}")]
    BadChunkId(String),
    #[error("error message of {0} bytes is longer than {MAX_MESSAGE_LEN}")]
    MessageTooLong(usize),
    #[error("frame truncated: connection closed mid-frame")]
    Truncated,
    #[error(transparent)]
    Io(std::io::Error),
}

impl From<std::io::Error> for WireError {
    fn from(err: std::io::Error) -> Self {
        if err.kind() == std::io::ErrorKind::UnexpectedEof {
            Self::Truncated
        } else {
            Self::Io(err)
        }
    }
}

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// Send bytes `offset..offset+length` of a chunk.
    Get = 1,
    /// The answer to the server's challenge (a handshake frame, only as
    /// the first frame of a connection that needs it).
    Auth = 2,
}

/// One request frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub kind: RequestKind,
    pub chunk_id: String,
    /// First byte wanted.
    pub offset: u64,
    /// Bytes wanted, or [`TO_END`].
    pub length: u64,
    /// How long the server may wait for a chunk it does not have yet, in ms
    /// (the server caps it).
    pub wait_ms: u32,
}

impl Request {
    /// A request for a whole chunk.
    pub fn whole(chunk_id: &str, wait_ms: u32) -> Self {
        Self {
            kind: RequestKind::Get,
            chunk_id: chunk_id.to_owned(),
            offset: 0,
            length: TO_END,
            wait_ms,
        }
    }

    /// The frame's bytes. The chunk id must be valid (at most 128 bytes).
    pub fn encode(&self) -> Vec<u8> {
        let id = self.chunk_id.as_bytes();
        let mut out = Vec::with_capacity(REQUEST_FIXED + id.len());
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.push(self.kind as u8);
        out.push(u8::try_from(id.len()).unwrap_or(u8::MAX));
        out.push(0);
        out.extend_from_slice(&self.offset.to_be_bytes());
        out.extend_from_slice(&self.length.to_be_bytes());
        out.extend_from_slice(&self.wait_ms.to_be_bytes());
        out.extend_from_slice(id);
        out
    }
}

/// Reads one request; `Ok(None)` when the peer closed the connection
/// cleanly before a new frame.
pub async fn read_request<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<Request>, WireError> {
    let mut prefix = [0u8; PREFIX];
    let first = r.read(&mut prefix).await.map_err(WireError::Io)?;
    if first == 0 {
        return Ok(None);
    }
    r.read_exact(&mut prefix[first..]).await?;
    check_prefix(&prefix)?;
    let kind = match prefix[5] {
        1 => RequestKind::Get,
        other => return Err(WireError::BadKind(other)),
    };
    let id_len = usize::from(prefix[6]);
    if id_len == 0 || id_len > MAX_CHUNK_ID_LEN {
        return Err(WireError::BadChunkId(format!("{id_len} bytes long")));
    }
    let mut rest = [0u8; REQUEST_FIXED - PREFIX];
    r.read_exact(&mut rest).await?;
    let mut id = vec![0u8; id_len];
    r.read_exact(&mut id).await?;
    let chunk_id = String::from_utf8(id).map_err(|_| WireError::BadChunkId("not UTF-8".into()))?;
    validate::chunk_id(&chunk_id).map_err(|e| WireError::BadChunkId(e.to_string()))?;
    Ok(Some(Request {
        kind,
        chunk_id,
        offset: be_u64(&rest[0..8]),
        length: be_u64(&rest[8..16]),
        wait_ms: be_u32(&rest[16..20]),
    }))
}

/// Outcome of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The bytes follow the header.
    Ok = 0,
    /// The chunk is not here (after waiting as long as asked).
    NotFound = 1,
    /// The request was malformed (e.g. an invalid chunk id).
    BadRequest = 2,
    /// The range lies outside the chunk.
    RangeNotSatisfiable = 3,
    /// The request's version is not spoken here; the header carries ours.
    UnsupportedVersion = 4,
    /// The server failed (disk error); try another source.
    Internal = 5,
    /// The connection did not answer the challenge, or answered it wrong;
    /// the server closes it.
    Unauthorized = 6,
}

impl Status {
    fn from_u8(byte: u8) -> Option<Self> {
        Some(match byte {
            0 => Self::Ok,
            1 => Self::NotFound,
            2 => Self::BadRequest,
            3 => Self::RangeNotSatisfiable,
            4 => Self::UnsupportedVersion,
            5 => Self::Internal,
            6 => Self::Unauthorized,
            _ => return None,
        })
    }
}

/// The header of a response. With [`Status::Ok`], exactly `length` raw bytes
/// follow it; otherwise none, and `message` says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHeader {
    pub status: Status,
    /// Size of the whole chunk (0 unless OK).
    pub chunk_size: u64,
    /// CRC32C of the whole chunk (0 unless OK).
    pub chunk_crc32c: u32,
    /// Bytes that follow the header.
    pub length: u64,
    /// CRC32C of the bytes that follow.
    pub crc32c: u32,
    /// Why the request failed; empty with OK.
    pub message: String,
}

impl ResponseHeader {
    /// A failure response carrying `message` (cut to [`MAX_MESSAGE_LEN`]).
    pub fn error(status: Status, message: &str) -> Self {
        let mut end = message.len().min(MAX_MESSAGE_LEN);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        Self {
            status,
            chunk_size: 0,
            chunk_crc32c: 0,
            length: 0,
            crc32c: 0,
            message: message[..end].to_owned(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let message = &self.message.as_bytes()[..self.message.len().min(MAX_MESSAGE_LEN)];
        let mut out = Vec::with_capacity(RESPONSE_FIXED + message.len());
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.push(self.status as u8);
        // At most MAX_MESSAGE_LEN (1024), so it fits in u16.
        out.extend_from_slice(&(message.len() as u16).to_be_bytes());
        out.extend_from_slice(&self.chunk_size.to_be_bytes());
        out.extend_from_slice(&self.length.to_be_bytes());
        out.extend_from_slice(&self.chunk_crc32c.to_be_bytes());
        out.extend_from_slice(&self.crc32c.to_be_bytes());
        out.extend_from_slice(message);
        out
    }
}

/// Reads one response header (the payload, if any, is left on the stream).
pub async fn read_response<R: AsyncRead + Unpin>(r: &mut R) -> Result<ResponseHeader, WireError> {
    let mut prefix = [0u8; PREFIX];
    r.read_exact(&mut prefix).await?;
    check_prefix(&prefix)?;
    let status = Status::from_u8(prefix[5]).ok_or(WireError::BadStatus(prefix[5]))?;
    let message_len = usize::from(u16::from_be_bytes([prefix[6], prefix[7]]));
    if message_len > MAX_MESSAGE_LEN {
        return Err(WireError::MessageTooLong(message_len));
    }
    let mut rest = [0u8; RESPONSE_FIXED - PREFIX];
    r.read_exact(&mut rest).await?;
    let mut message = vec![0u8; message_len];
    r.read_exact(&mut message).await?;
    Ok(ResponseHeader {
        status,
        chunk_size: be_u64(&rest[0..8]),
        length: be_u64(&rest[8..16]),
        chunk_crc32c: be_u32(&rest[16..20]),
        crc32c: be_u32(&rest[20..24]),
        message: String::from_utf8_lossy(&message).into_owned(),
    })
}

/// Checks the magic and version a frame starts with.
pub(super) fn check_prefix(prefix: &[u8]) -> Result<(), WireError> {
    if prefix.len() < 5 {
        return Err(WireError::Truncated);
    }
    let magic = [prefix[0], prefix[1], prefix[2], prefix[3]];
    if magic != MAGIC {
        return Err(WireError::BadMagic(magic));
    }
    if prefix[4] != VERSION {
        return Err(WireError::UnsupportedVersion(prefix[4]));
    }
    Ok(())
}

fn be_u64(bytes: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[..8]);
    u64::from_be_bytes(b)
}

fn be_u32(bytes: &[u8]) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[..4]);
    u32::from_be_bytes(b)
}

#[cfg(test)]
mod tests;
