//! `gs://bucket/object` URLs: the source of `dfs seed`.
//!
//! The rules follow Cloud Storage's naming rules closely enough to reject
//! typos early (on the CLI and in the naming server) without second-guessing
//! GCS: a bucket is 3–222 characters of lowercase letters, digits, `-`, `_`
//! and `.`, starting and ending with a letter or digit, with dot-separated
//! parts of at most 63 characters (and at most 63 characters without dots);
//! an object name is 1–1024 bytes of UTF-8 without NUL, CR or LF, and not
//! `.` or `..`.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// The scheme prefix of a GCS URL.
pub const GCS_SCHEME: &str = "gs://";
/// Longest bucket name (with dots; 63 without).
pub const MAX_BUCKET_LEN: usize = 222;
/// Longest part of a bucket name between dots.
pub const MAX_BUCKET_PART_LEN: usize = 63;
/// Longest object name, in bytes of UTF-8.
pub const MAX_OBJECT_LEN: usize = 1024;

/// A parsed `gs://bucket/object`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GcsUrl {
    pub bucket: String,
    /// The object name, as stored in GCS (not percent-encoded).
    pub object: String,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum InvalidGcsUrl {
    #[error("a GCS URL starts with gs://")]
    Scheme,
    #[error("a GCS URL names an object: gs://BUCKET/OBJECT")]
    NoObject,
    #[error("bucket name must be 3 to {MAX_BUCKET_LEN} characters long")]
    BucketLength,
    #[error(
        "bucket name may contain only lowercase letters, digits, '-', '_' and '.', \
         and must start and end with a letter or digit"
    )]
    BucketCharacter,
    #[error(
        "bucket name parts between dots must be 1 to {MAX_BUCKET_PART_LEN} characters \
         (and a name without dots at most {MAX_BUCKET_PART_LEN})"
    )]
    BucketPart,
    #[error("object name is {0} bytes long; the limit is {MAX_OBJECT_LEN}")]
    ObjectTooLong(usize),
    #[error("object name contains a NUL, carriage return or newline")]
    ObjectCharacter,
    #[error("object name cannot be '.' or '..'")]
    ObjectDots,
}

impl GcsUrl {
    /// Builds a URL from its parts, checking both.
    pub fn new(bucket: &str, object: &str) -> Result<Self, InvalidGcsUrl> {
        bucket_name(bucket)?;
        object_name(object)?;
        Ok(Self {
            bucket: bucket.to_owned(),
            object: object.to_owned(),
        })
    }
}

impl FromStr for GcsUrl {
    type Err = InvalidGcsUrl;

    /// Parses `gs://bucket/object`; everything after the first `/` following
    /// the bucket is the object name, slashes included.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s.strip_prefix(GCS_SCHEME).ok_or(InvalidGcsUrl::Scheme)?;
        let (bucket, object) = rest.split_once('/').ok_or(InvalidGcsUrl::NoObject)?;
        if object.is_empty() {
            return Err(InvalidGcsUrl::NoObject);
        }
        Self::new(bucket, object)
    }
}

impl fmt::Display for GcsUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{GCS_SCHEME}{}/{}", self.bucket, self.object)
    }
}

/// Checks a bucket name against the rules in the module docs.
pub fn bucket_name(bucket: &str) -> Result<(), InvalidGcsUrl> {
    if !(3..=MAX_BUCKET_LEN).contains(&bucket.len()) {
        return Err(InvalidGcsUrl::BucketLength);
    }
    let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = bucket.as_bytes();
    let ends_ok =
        bytes.first().is_some_and(|&b| allowed(b)) && bytes.last().is_some_and(|&b| allowed(b));
    if !ends_ok
        || !bytes
            .iter()
            .all(|&b| allowed(b) || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(InvalidGcsUrl::BucketCharacter);
    }
    if bucket
        .split('.')
        .any(|part| part.is_empty() || part.len() > MAX_BUCKET_PART_LEN)
    {
        return Err(InvalidGcsUrl::BucketPart);
    }
    Ok(())
}

/// Checks an object name against the rules in the module docs.
pub fn object_name(object: &str) -> Result<(), InvalidGcsUrl> {
    if object.is_empty() {
        return Err(InvalidGcsUrl::NoObject);
    }
    if object.len() > MAX_OBJECT_LEN {
        return Err(InvalidGcsUrl::ObjectTooLong(object.len()));
    }
    if object.contains(['\0', '\r', '\n']) {
        return Err(InvalidGcsUrl::ObjectCharacter);
    }
    if object == "." || object == ".." {
        return Err(InvalidGcsUrl::ObjectDots);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<GcsUrl, InvalidGcsUrl> {
        s.parse()
    }

    #[test]
    fn parses_and_prints() {
        let url = parse("gs://my-bucket_1/dir/sub/file.bin").expect("valid");
        assert_eq!(url.bucket, "my-bucket_1");
        assert_eq!(url.object, "dir/sub/file.bin");
        assert_eq!(url.to_string(), "gs://my-bucket_1/dir/sub/file.bin");
        let url = parse("gs://a.b.example.com/héllo wörld?#").expect("valid");
        assert_eq!(url.object, "héllo wörld?#");
        assert_eq!(parse("gs://abc//x").expect("valid").object, "/x");
    }

    #[test]
    fn rejects_bad_shapes() {
        assert_eq!(parse("s3://bucket/o"), Err(InvalidGcsUrl::Scheme));
        assert_eq!(parse("bucket/o"), Err(InvalidGcsUrl::Scheme));
        assert_eq!(parse("gs://bucket"), Err(InvalidGcsUrl::NoObject));
        assert_eq!(parse("gs://bucket/"), Err(InvalidGcsUrl::NoObject));
    }

    #[test]
    fn bucket_rules() {
        assert_eq!(bucket_name("abc"), Ok(()));
        assert_eq!(bucket_name("ab"), Err(InvalidGcsUrl::BucketLength));
        assert_eq!(bucket_name(&"a".repeat(63)), Ok(()));
        assert_eq!(bucket_name(&"a".repeat(64)), Err(InvalidGcsUrl::BucketPart));
        let dotted = [&"a".repeat(63)[..]; 3].join(".");
        assert_eq!(bucket_name(&dotted), Ok(()));
        assert_eq!(
            bucket_name(&"a.".repeat(112)),
            Err(InvalidGcsUrl::BucketLength)
        );
        for bad in ["Abc", "ab c", "-abc", "abc-", "ab/c", "abç"] {
            assert_eq!(
                bucket_name(bad),
                Err(InvalidGcsUrl::BucketCharacter),
                "{bad}"
            );
        }
        assert_eq!(bucket_name("ab..c"), Err(InvalidGcsUrl::BucketPart));
    }

    #[test]
    fn object_rules() {
        assert_eq!(object_name(&"x".repeat(1024)), Ok(()));
        assert_eq!(
            object_name(&"é".repeat(513)),
            Err(InvalidGcsUrl::ObjectTooLong(1026))
        );
        for bad in ["a\nb", "a\rb", "a\0b"] {
            assert_eq!(object_name(bad), Err(InvalidGcsUrl::ObjectCharacter));
        }
        assert_eq!(object_name(".."), Err(InvalidGcsUrl::ObjectDots));
        assert_eq!(object_name("../x"), Ok(()));
        assert!(GcsUrl::new("bucket", "").is_err());
    }
}
