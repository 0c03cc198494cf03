//! The `Range` header of `GET /chunks/{chunk_id}`, read per RFC 9110 §14:
//! one satisfiable byte range is served as a 206, an unsatisfiable one is
//! a 416, and anything else (no header, another unit, several ranges,
//! invalid syntax, an `If-Range` that does not match) gets the whole chunk.

use std::ops::RangeInclusive;

use axum::http::{HeaderMap, header};

/// What a request asks of a chunk of `len` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requested {
    /// The whole chunk, as a 200.
    Whole,
    /// These bytes, as a 206.
    Part(RangeInclusive<u64>),
    /// A range the chunk cannot satisfy: a 416.
    Unsatisfiable,
}

/// One range-spec of a `bytes` range-set (RFC 9110 §14.1.1), with
/// positions too large for a `u64` saturated (they are past any chunk).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spec {
    /// `first-last`, or `first-` (to the end).
    From { first: u64, last: Option<u64> },
    /// `-n`: the last n bytes.
    Suffix(u64),
}

/// A run of ASCII digits as a number, saturating; `None` if not digits.
fn digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.bytes().fold(0u64, |n, b| {
        n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}

/// Parses one range-spec; `None` when it is invalid (which makes the
/// whole header invalid), including a last position before the first.
fn spec(text: &str) -> Option<Spec> {
    let (first, last) = text.split_once('-')?;
    if first.is_empty() {
        return digits(last).map(Spec::Suffix);
    }
    let first = digits(first)?;
    let last = match last {
        "" => None,
        last => Some(digits(last).filter(|&last| last >= first)?),
    };
    Some(Spec::From { first, last })
}

/// The range-specs of a `bytes=…` value; `None` for another unit or
/// invalid syntax. Empty list elements and the spaces around elements are
/// allowed (RFC 9110 §5.6.1).
fn byte_ranges(value: &str) -> Option<Vec<Spec>> {
    let (unit, set) = value.trim().split_once('=')?;
    if !unit.eq_ignore_ascii_case("bytes") {
        return None;
    }
    let specs = set
        .split(',')
        .map(|element| element.trim_matches([' ', '\t']))
        .filter(|element| !element.is_empty())
        .map(spec)
        .collect::<Option<Vec<_>>>()?;
    (!specs.is_empty()).then_some(specs)
}

/// Whether an `If-Range` header lets the range apply: only a strong ETag
/// equal to the chunk's does (a date or another tag asks for the whole).
fn if_range_holds(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_RANGE)
        .is_none_or(|value| value.as_bytes() == etag.as_bytes())
}

/// What `headers` ask of a chunk of `len` bytes whose ETag is `etag`.
pub fn requested(headers: &HeaderMap, len: u64, etag: &str) -> Requested {
    let mut values = headers.get_all(header::RANGE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Requested::Whole;
    };
    let Some(specs) = value.to_str().ok().and_then(byte_ranges) else {
        return Requested::Whole;
    };
    let ([spec], true) = (specs.as_slice(), if_range_holds(headers, etag)) else {
        return Requested::Whole;
    };
    match *spec {
        Spec::From { first, .. } if first >= len => Requested::Unsatisfiable,
        Spec::From { first, last } => {
            let last = last.map_or(len - 1, |last| last.min(len - 1));
            Requested::Part(first..=last)
        }
        Spec::Suffix(0) => Requested::Unsatisfiable,
        // The last bytes of an empty chunk are all of it: nothing to cut.
        Spec::Suffix(_) if len == 0 => Requested::Whole,
        Spec::Suffix(n) => Requested::Part(len.saturating_sub(n)..=len - 1),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    const ETAG: &str = "\"0000abcd\"";

    fn ask(len: u64, headers: &[(header::HeaderName, &[u8])]) -> Requested {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                name.clone(),
                HeaderValue::from_bytes(value).expect("test header value"),
            );
        }
        requested(&map, len, ETAG)
    }

    fn range(len: u64, value: &str) -> Requested {
        ask(len, &[(header::RANGE, value.as_bytes())])
    }

    #[test]
    fn one_satisfiable_range_is_a_part() {
        for (value, part) in [
            ("bytes=0-9", 0..=9),
            ("bytes=990-", 990..=999),
            ("bytes=999-999", 999..=999),
            ("bytes=500-5000", 500..=999),
            ("bytes=0-99999999999999999999999", 0..=999),
            ("bytes=-10", 990..=999),
            ("bytes=-1000", 0..=999),
            ("bytes=-2000", 0..=999),
            ("bytes=-99999999999999999999999", 0..=999),
            ("Bytes=0-0", 0..=0),
            ("BYTES=5-6", 5..=6),
            ("bytes=0007-0008", 7..=8),
            ("bytes= 1-2 ", 1..=2),
            ("bytes=1-2, ,", 1..=2),
        ] {
            assert_eq!(range(1000, value), Requested::Part(part), "{value}");
        }
    }

    #[test]
    fn unsatisfiable_ranges() {
        for value in [
            "bytes=1000-",
            "bytes=1000-1000",
            "bytes=2000-3000",
            "bytes=99999999999999999999999-",
            "bytes=-0",
        ] {
            assert_eq!(range(1000, value), Requested::Unsatisfiable, "{value}");
        }
        assert_eq!(range(0, "bytes=0-"), Requested::Unsatisfiable);
        assert_eq!(range(0, "bytes=-0"), Requested::Unsatisfiable);
        assert_eq!(range(0, "bytes=-5"), Requested::Whole);
    }

    #[test]
    fn everything_else_gets_the_whole_chunk() {
        for value in [
            "",
            "bytes",
            "bytes=",
            "bytes=,",
            "bytes=-",
            "bytes=abc",
            "bytes=5-3",
            "bytes=1-2-3",
            "bytes=0 -1",
            "bytes=+1-2",
            "bytes=0x1-2",
            "bytes 0-1",
            "items=0-1",
            "none",
            "bytes=0-1,10-11",
            "bytes=0-1,0-1",
            "bytes=0-1,5-3",
            "bytes=0-1,2000-",
        ] {
            assert_eq!(range(1000, value), Requested::Whole, "{value:?}");
        }
        assert_eq!(ask(1000, &[]), Requested::Whole);
        assert_eq!(
            ask(1000, &[(header::RANGE, b"bytes=\xff-1")]),
            Requested::Whole
        );
        let twice = [
            (header::RANGE, &b"bytes=0-1"[..]),
            (header::RANGE, &b"bytes=0-1"[..]),
        ];
        assert_eq!(ask(1000, &twice), Requested::Whole);
    }

    #[test]
    fn if_range_must_name_this_chunk() {
        let with = |if_range: &str| {
            ask(
                1000,
                &[
                    (header::RANGE, b"bytes=0-9"),
                    (header::IF_RANGE, if_range.as_bytes()),
                ],
            )
        };
        assert_eq!(with(ETAG), Requested::Part(0..=9));
        assert_eq!(with("\"ffffffff\""), Requested::Whole);
        assert_eq!(with(&format!("W/{ETAG}")), Requested::Whole);
        assert_eq!(with("Wed, 21 Oct 2015 07:28:00 GMT"), Requested::Whole);
        assert_eq!(
            ask(1000, &[(header::IF_RANGE, ETAG.as_bytes())]),
            Requested::Whole
        );
    }
}
