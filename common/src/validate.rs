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

/// Checks a file id: 16 lowercase hex digits, `-`, 16 more, as the naming
/// server makes them.
pub fn file_id(id: &str) -> bool {
    let hex16 = |s: &str| {
        s.len() == 16
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    id.split_once('-')
        .is_some_and(|(hash, random)| hex16(hash) && hex16(random))
}

/// Longest peer-transfer host name.
pub const MAX_HOST_LEN: usize = 253;

/// Checks a peer-transfer address, `host:port`: a host name or IPv4
/// address of `[A-Za-z0-9._-]` (1-253 characters) or an IPv6 address in
/// brackets (one that parses), and a port 1-65535 without sign or leading
/// zero.
pub fn peer_addr(addr: &str) -> bool {
    let Some((host, port)) = addr.rsplit_once(':') else {
        return false;
    };
    let port_ok = !port.starts_with('0')
        && (1..=5).contains(&port.len())
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u16>().is_ok();
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(ipv6) => {
            (2..=45).contains(&ipv6.len())
                && ipv6
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
                && ipv6.parse::<std::net::Ipv6Addr>().is_ok()
        }
        None => {
            (1..=MAX_HOST_LEN).contains(&host.len())
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        }
    };
    port_ok && host_ok
}

/// Longest storage-node base URL.
pub const MAX_NODE_URL_LEN: usize = 512;

/// Checks a storage node's HTTP base URL: `http://` or `https://`, a host
/// right after it, at most [`MAX_NODE_URL_LEN`] characters of printable
/// ASCII without `,` (it travels in comma-separated headers), and a URL
/// the HTTP client parses.
pub fn node_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    rest.is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
        && url.len() <= MAX_NODE_URL_LEN
        && url.bytes().all(|b| b.is_ascii_graphic() && b != b',')
        && url::Url::parse(url).is_ok_and(|parsed| parsed.has_host())
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

    #[test]
    fn file_ids() {
        assert!(file_id("0123456789abcdef-fedcba9876543210"));
        for bad in [
            "",
            "0123456789abcdef",
            "0123456789ABCDEF-fedcba9876543210",
            "0123456789abcdef-fedcba987654321",
            "0123456789abcdef-fedcba98765432100",
            "0123456789abcdeg-fedcba9876543210",
        ] {
            assert!(!file_id(bad), "{bad}");
        }
    }

    #[test]
    fn peer_addrs() {
        for good in [
            "127.0.0.1:50051",
            "node-1.example:1",
            "a_b:65535",
            "[::1]:80",
            "[fe80::1:2]:8080",
        ] {
            assert!(peer_addr(good), "{good}");
        }
        for bad in [
            "",
            "host",
            "host:",
            ":80",
            "host:0",
            "host:080",
            "host:65536",
            "host:+80",
            "ho st:80",
            "host:80 ",
            "[::1:80",
            "[]:80",
            "[00a]:80",
            "[1:2:3]:80",
            "a:b:80",
            "h\u{e9}:80",
        ] {
            assert!(!peer_addr(bad), "{bad}");
        }
        assert!(peer_addr(&format!("{}:1", "h".repeat(MAX_HOST_LEN))));
        assert!(!peer_addr(&format!("{}:1", "h".repeat(MAX_HOST_LEN + 1))));
    }

    #[test]
    fn node_urls() {
        for good in [
            "http://127.0.0.1:5001",
            "https://node-b:443/base",
            "http://[::1]:5001",
            "http://h",
        ] {
            assert!(node_url(good), "{good}");
        }
        for bad in [
            "",
            "ftp://h",
            "http://",
            "http:///x",
            "http://h 1",
            "http://a,b",
            "HTTP://h",
            "http://[zz]",
            "http://h:99999",
            "http://h\u{e9}",
        ] {
            assert!(!node_url(bad), "{bad}");
        }
        let long = format!("http://{}", "h".repeat(MAX_NODE_URL_LEN - 7));
        assert!(node_url(&long));
        assert!(!node_url(&format!("{long}h")));
    }
}
