//! The constrained strings of both HTTP APIs, as OpenAPI schemas. Each is a
//! plain JSON string on the wire; its schema declares the pattern the
//! servers enforce with [`crate::validate`] (and `check.rs`), and the
//! fields, parameters and headers that carry one refer to it with
//! `value_type`. A test below holds every pattern to its validator.
//!
//! Where a rule is more than a pattern can say (a name's `..` segments, a
//! URL that must parse, a byte length of multibyte text), the pattern is
//! the looser of the two: anything it refuses, the server refuses too.

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

/// An unsigned integer schema up to `max`, without a `format`: utoipa
/// would call a `u32` an `int32` and a `u64` an `int64`, whose ranges stop
/// at 2^31-1 and 2^63-1, short of what the servers take.
fn unsigned(max: u64, description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(0))
        .maximum(Some(max))
        .description(Some(description))
        .into()
}

/// A CRC32C (Castagnoli): an integer 0-4294967295.
pub struct Crc32c;

impl PartialSchema for Crc32c {
    fn schema() -> RefOr<Schema> {
        unsigned(
            u32::MAX.into(),
            "A CRC32C (Castagnoli): an integer 0-4294967295.",
        )
    }
}

impl ToSchema for Crc32c {}

/// A count, size, time or index the servers read as an unsigned 64-bit
/// integer: 0-18446744073709551615.
pub struct Uint64;

impl PartialSchema for Uint64 {
    fn schema() -> RefOr<Schema> {
        unsigned(
            u64::MAX,
            "An unsigned 64-bit integer: 0-18446744073709551615.",
        )
    }
}

impl ToSchema for Uint64 {}

/// A chunk id: 1-128 characters of `[A-Za-z0-9_-]`, safe as a file name.
#[derive(ToSchema)]
#[schema(value_type = String, pattern = "^[A-Za-z0-9_-]{1,128}$")]
pub struct ChunkId(pub String);

/// A storage node's id: 1-128 characters of `[A-Za-z0-9_-]`.
#[derive(ToSchema)]
#[schema(value_type = String, pattern = "^[A-Za-z0-9_-]{1,128}$")]
pub struct NodeId(pub String);

/// A distribution job's id: 1-128 characters of `[A-Za-z0-9_-]`.
#[derive(ToSchema)]
#[schema(value_type = String, pattern = "^[A-Za-z0-9_-]{1,128}$")]
pub struct JobId(pub String);

/// The id of a metadata store, which nodes keep to tell a wiped one.
#[derive(ToSchema)]
#[schema(value_type = String, pattern = "^[A-Za-z0-9_-]{1,128}$")]
pub struct ClusterId(pub String);

/// A file id, as the naming server makes them: 16 hex digits of the
/// name's hash, `-`, 16 random hex digits.
#[derive(ToSchema)]
#[schema(value_type = String, pattern = "^[0-9a-f]{16}-[0-9a-f]{16}$")]
pub struct FileId(pub String);

/// A remote file name: UTF-8, 1-1024 bytes, no NUL, no `..` path segment
/// (between `/` or `\`). Other control characters are allowed.
#[derive(ToSchema)]
#[schema(value_type = String, pattern = "^[^\\x00]{1,1024}$")]
pub struct FileName(pub String);

/// A peer-transfer address, `host:port`: a host name or IPv4 address of
/// `[A-Za-z0-9._-]`, or an IPv6 address in brackets; a port 1-65535.
/// (The pattern takes any hex digits, `:` and `.` in brackets; the server
/// also wants them to be an IPv6 address.)
#[derive(ToSchema)]
#[schema(
    value_type = String,
    pattern = "^([A-Za-z0-9._-]{1,253}|\\[[0-9A-Fa-f:.]{2,45}\\]):([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$"
)]
pub struct PeerAddr(pub String);

/// A storage node's HTTP base URL: `http://` or `https://` and a host, at
/// most 512 characters of printable ASCII without `,`, and a URL the HTTP
/// client can parse.
#[derive(ToSchema)]
#[schema(
    value_type = String,
    pattern = "^(http://[\\x21-\\x2B\\x2D\\x2E\\x30-\\x7E][\\x21-\\x2B\\x2D-\\x7E]{0,504}|https://[\\x21-\\x2B\\x2D\\x2E\\x30-\\x7E][\\x21-\\x2B\\x2D-\\x7E]{0,503})$"
)]
pub struct NodeUrl(pub String);

/// A Cloud Storage object, `gs://bucket/object`: a bucket of 3-222
/// characters of `[a-z0-9._-]` starting and ending with a letter or digit
/// (dot-separated parts of 1-63), an object name of 1-1024 bytes without
/// NUL, CR or LF, and not `.` or `..`.
#[derive(ToSchema)]
#[schema(
    value_type = String,
    pattern = "^gs://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]/[^\\x00\\n\\r]{1,1024}$"
)]
pub struct GcsObjectUrl(pub String);

/// A CRC32C (Castagnoli) in a header: decimal (at most 4294967295) or
/// `0x` and 1-8 hex digits.
#[derive(ToSchema)]
#[schema(value_type = String, pattern = "^(0[xX][0-9A-Fa-f]{1,8}|[0-9]{1,10})$")]
pub struct Crc32cHeader(pub String);

/// The `x-dfs-replicate-to` header: the nodes a chunk goes to next, in
/// order, as `node_id=url` pairs joined by `,` (at most 16, no node twice,
/// not the receiving node); empty for none.
#[derive(ToSchema)]
#[schema(
    value_type = String,
    pattern = "^[ \\t]*([A-Za-z0-9_-]{1,128}=(http://[\\x21-\\x2B\\x2D\\x2E\\x30-\\x7E][\\x21-\\x2B\\x2D-\\x7E]{0,504}|https://[\\x21-\\x2B\\x2D\\x2E\\x30-\\x7E][\\x21-\\x2B\\x2D-\\x7E]{0,503})[ \\t]*(,[ \\t]*[A-Za-z0-9_-]{1,128}=(http://[\\x21-\\x2B\\x2D\\x2E\\x30-\\x7E][\\x21-\\x2B\\x2D-\\x7E]{0,504}|https://[\\x21-\\x2B\\x2D\\x2E\\x30-\\x7E][\\x21-\\x2B\\x2D-\\x7E]{0,503})[ \\t]*){0,15})?$"
)]
pub struct ReplicateToHeader(pub String);

#[cfg(test)]
mod tests {
    use utoipa::PartialSchema;

    use super::*;
    use crate::api::parse_crc32c;
    use crate::chain::parse_replicate_to;
    use crate::gcs::GcsUrl;
    use crate::validate;

    /// The pattern `T` declares, compiled as the validators read it.
    fn pattern<T: PartialSchema>() -> regex::Regex {
        let schema = serde_json::to_value(T::schema()).expect("schema serializes");
        let pattern = schema["pattern"].as_str().expect("schema has a pattern");
        regex::RegexBuilder::new(pattern)
            .size_limit(1 << 26)
            .build()
            .expect("pattern compiles")
    }

    /// Every sample the validator accepts matches the pattern; with
    /// `exact`, every sample the pattern matches is accepted too.
    fn agree<T: PartialSchema>(samples: &[String], exact: bool, valid: impl Fn(&str) -> bool) {
        let pattern = pattern::<T>();
        for sample in samples {
            let (matches, accepted) = (pattern.is_match(sample), valid(sample));
            assert!(!accepted || matches, "accepted but unmatched: {sample:?}");
            assert!(
                !exact || accepted || !matches,
                "matched but refused: {sample:?}"
            );
        }
    }

    fn strings(samples: &[&str]) -> Vec<String> {
        samples.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn crc32c_values_span_all_of_u32() {
        // The derive would say `int32`, which stops at 2147483647: half of
        // all CRCs would break the spec of every body that carries one.
        let schema = serde_json::to_value(Crc32c::schema()).expect("schema serializes");
        assert_eq!(schema["minimum"], 0);
        assert_eq!(schema["maximum"], u64::from(u32::MAX));
        assert!(schema.get("format").is_none(), "{schema}");
    }

    #[test]
    fn u64_values_span_all_of_u64() {
        let schema = serde_json::to_value(Uint64::schema()).expect("schema serializes");
        assert_eq!(schema["maximum"], u64::MAX);
        assert!(schema.get("format").is_none(), "{schema}");
    }

    #[test]
    fn ids() {
        let mut samples = strings(&["", "a", "A-z_09", "a.b", "a/b", "é", "a\n", " a", "a\0"]);
        samples.extend(["x".repeat(128), "x".repeat(129)]);
        let valid = |s: &str| validate::chunk_id(s).is_ok();
        agree::<ChunkId>(&samples, true, valid);
        agree::<NodeId>(&samples, true, valid);
        agree::<JobId>(&samples, true, valid);
        agree::<ClusterId>(&samples, true, valid);
        let mut files = strings(&[
            "0123456789abcdef-0123456789abcdef",
            "0123456789ABCDEF-0123456789abcdef",
        ]);
        files.extend([
            "0123456789abcdef-0123456789abcde".into(),
            "-".into(),
            "a".into(),
        ]);
        files.extend(samples);
        agree::<FileId>(&files, true, validate::file_id);
    }

    #[test]
    fn names() {
        let mut samples = strings(&[
            "",
            "a",
            "a\0b",
            "..",
            "a/../b",
            "tab\there",
            "\u{1b}[31m",
            "é",
        ]);
        samples.extend(["x".repeat(1024), "x".repeat(1025), "é".repeat(600)]);
        agree::<FileName>(&samples, false, |s| validate::file_name(s).is_ok());
    }

    #[test]
    fn addresses_and_urls() {
        let addrs = strings(&[
            "h:1",
            "h:65535",
            "h:65536",
            "h:0",
            "h:01",
            "h",
            ":1",
            "[::1]:5",
            "[::1:5",
            "a:b:1",
            "1.2.3.4:50051",
            "h :1",
            "h:1 ",
            "é:1",
        ]);
        agree::<PeerAddr>(&addrs, false, validate::peer_addr);
        let mut urls = strings(&[
            "http://h",
            "https://h:1/p",
            "http://",
            "http:///",
            "ftp://h",
            "http://a,b",
            "http://a b",
            "http://[zz]",
            "HTTP://h",
            "http://é",
        ]);
        urls.extend([
            format!("http://{}", "h".repeat(505)),
            format!("http://{}", "h".repeat(506)),
            format!("https://{}", "h".repeat(504)),
            format!("https://{}", "h".repeat(505)),
        ]);
        agree::<NodeUrl>(&urls, false, validate::node_url);
        let gcs = strings(&[
            "gs://bkt/o",
            "gs://bkt/",
            "gs://b/o",
            "gs://Bkt/o",
            "gs://bkt/a\nb",
            "gs://bkt/..",
            "gs://a..b/o",
            "s3://bkt/o",
        ]);
        agree::<GcsObjectUrl>(&gcs, false, |s| s.parse::<GcsUrl>().is_ok());
    }

    #[test]
    fn headers() {
        let crcs = strings(&[
            "0",
            "4294967295",
            "4294967296",
            "0000000001",
            "00000000001",
            "0x0",
            "0XdeadBEEF",
            "0x123456789",
            "0x",
            "x1",
            "+1",
            "-1",
            " 1",
            "1 ",
        ]);
        agree::<Crc32cHeader>(&crcs, false, |s| parse_crc32c(s).is_some());
        let chains = strings(&[
            "",
            " ",
            "a=http://h",
            " a=http://h:1 , b=https://i/p ",
            "a=http://h,",
            ",a=http://h",
            "a",
            "a=ftp://h",
            "a=http://h,a=http://i",
            "a/b=http://h",
            "a=http://h b",
        ]);
        agree::<ReplicateToHeader>(&chains, false, |s| parse_replicate_to(s).is_ok());
        let long: Vec<String> = (0..17).map(|i| format!("n{i}=http://h")).collect();
        agree::<ReplicateToHeader>(&[long[..16].join(","), long.join(",")], true, |s| {
            parse_replicate_to(s).is_ok()
        });
    }
}
