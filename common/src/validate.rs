//! Rules for the names users give and the ids servers hand out.

use thiserror::Error;

/// Longest file name, in bytes of UTF-8.
pub const MAX_NAME_LEN: usize = 1024;
/// Longest chunk id.
pub const MAX_CHUNK_ID_LEN: usize = 128;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum InvalidName {
    #[error("file name is empty")]
    Empty,
    #[error("file name is {0} bytes long; the limit is {MAX_NAME_LEN}")]
    TooLong(usize),
    #[error("file name contains a NUL byte")]
    Nul,
    #[error("file name contains a '..' path segment")]
    DotDot,
}

/// Checks a remote file name: UTF-8 (guaranteed by `&str`), 1–1024 bytes,
/// no NUL, no `..` path segment.
pub fn file_name(name: &str) -> Result<(), InvalidName> {
    if name.is_empty() {
        return Err(InvalidName::Empty);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(InvalidName::TooLong(name.len()));
    }
    if name.contains('\0') {
        return Err(InvalidName::Nul);
    }
    if name.split(['/', '\\']).any(|segment| segment == "..") {
        return Err(InvalidName::DotDot);
    }
    Ok(())
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum InvalidChunkId {
    #[error("chunk id is empty")]
    Empty,
    #[error("chunk id is longer than {MAX_CHUNK_ID_LEN} characters")]
    TooLong,
    #[error("chunk id may contain only A-Z, a-z, 0-9, '_' and '-'")]
    BadCharacter,
}

/// Checks a chunk id: 1–128 characters of `[A-Za-z0-9_-]`, so it is always
/// safe as a single file name.
pub fn chunk_id(id: &str) -> Result<(), InvalidChunkId> {
    if id.is_empty() {
        return Err(InvalidChunkId::Empty);
    }
    if id.len() > MAX_CHUNK_ID_LEN {
        return Err(InvalidChunkId::TooLong);
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(InvalidChunkId::BadCharacter);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(file_name("a.txt"), Ok(()));
        assert_eq!(file_name("dir/sub/file..txt"), Ok(()));
        assert_eq!(file_name("héllo wörld"), Ok(()));
        assert_eq!(file_name(""), Err(InvalidName::Empty));
        assert_eq!(file_name(&"x".repeat(1024)), Ok(()));
        assert_eq!(
            file_name(&"x".repeat(1025)),
            Err(InvalidName::TooLong(1025))
        );
        assert_eq!(file_name("a\0b"), Err(InvalidName::Nul));
        assert_eq!(file_name(".."), Err(InvalidName::DotDot));
        assert_eq!(file_name("a/../b"), Err(InvalidName::DotDot));
        assert_eq!(file_name("a/.."), Err(InvalidName::DotDot));
    }

    #[test]
    fn chunk_ids() {
        assert_eq!(chunk_id("abc-DEF_123"), Ok(()));
        assert_eq!(chunk_id(""), Err(InvalidChunkId::Empty));
        assert_eq!(chunk_id("a/b"), Err(InvalidChunkId::BadCharacter));
        assert_eq!(chunk_id(".."), Err(InvalidChunkId::BadCharacter));
        assert_eq!(chunk_id("a.b"), Err(InvalidChunkId::BadCharacter));
        assert_eq!(chunk_id(&"a".repeat(129)), Err(InvalidChunkId::TooLong));
    }
}
