//! Human-readable sizes, durations and bandwidths, as accepted by every flag
//! and environment variable.

use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
#[error("invalid {kind} {input:?}: {hint}")]
pub struct ParseError {
    kind: &'static str,
    input: String,
    hint: &'static str,
}

fn split_number(s: &str) -> Option<(u64, &str)> {
    let s = s.trim();
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let n = s[..digits].parse().ok()?;
    Some((n, s[digits..].trim()))
}

/// Parses a byte size: `1048576`, `64K`, `64KiB`, `8M`, `8MiB`, `1G`, `1GiB`,
/// `1T`. Suffixes are case-insensitive and binary (K = 1024).
pub fn parse_size(s: &str) -> Result<u64, ParseError> {
    let err = || ParseError {
        kind: "size",
        input: s.to_owned(),
        hint: "expected a number of bytes with an optional K, M, G or T suffix (binary), e.g. 8MiB",
    };
    let (n, suffix) = split_number(s).ok_or_else(err)?;
    let shift = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(err()),
    };
    n.checked_mul(1u64 << shift).ok_or_else(err)
}

/// A byte count for people: `8 MiB`, `1.5 GiB`, `512 B` (binary units, one
/// decimal when not whole).
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut unit = 0;
    let mut scale: u64 = 1024;
    while unit + 1 < UNITS.len() && bytes >= scale * 1024 {
        scale *= 1024;
        unit += 1;
    }
    if bytes.is_multiple_of(scale) {
        format!("{} {}", bytes / scale, UNITS[unit])
    } else {
        format!("{:.1} {}", bytes as f64 / scale as f64, UNITS[unit])
    }
}

/// Parses a duration: `500ms`, `15s`, `2m`, `1h`, `7d`; a bare number is
/// seconds.
pub fn parse_duration(s: &str) -> Result<Duration, ParseError> {
    let err = || ParseError {
        kind: "duration",
        input: s.to_owned(),
        hint: "expected a number with an optional ms, s, m, h or d suffix, e.g. 15s",
    };
    let (n, suffix) = split_number(s).ok_or_else(err)?;
    let ms = match suffix.to_ascii_lowercase().as_str() {
        "ms" => Some(n),
        "" | "s" => n.checked_mul(1000),
        "m" | "min" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        "d" => n.checked_mul(86_400_000),
        _ => None,
    };
    ms.map(Duration::from_millis).ok_or_else(err)
}

/// Parses a bandwidth in bits per second, `k`/`m`/`g` being decimal
/// (`10m` = 10 Mbit/s), and returns it in **bytes** per second.
pub fn parse_bandwidth(s: &str) -> Result<u64, ParseError> {
    let err = || ParseError {
        kind: "bandwidth",
        input: s.to_owned(),
        hint: "expected bits per second with an optional k, m or g suffix, e.g. 10m for 10 Mbit/s",
    };
    let (n, suffix) = split_number(s).ok_or_else(err)?;
    let mult: u64 = match suffix.to_ascii_lowercase().as_str() {
        "" | "bps" => 1,
        "k" | "kbit" | "kbps" => 1_000,
        "m" | "mbit" | "mbps" => 1_000_000,
        "g" | "gbit" | "gbps" => 1_000_000_000,
        _ => return Err(err()),
    };
    let bits = n.checked_mul(mult).ok_or_else(err)?;
    if bits < 8 {
        return Err(err());
    }
    Ok(bits / 8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("8MiB"), Ok(8 << 20));
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert_eq!(parse_size(" 1GiB "), Ok(1 << 30));
        assert!(parse_size("").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("8XB").is_err());
        assert!(parse_size("99999999999999999999").is_err());
        assert!(parse_size("99999999999T").is_err());
    }

    #[test]
    fn sizes_for_people() {
        assert_eq!(format_size(0), "0 B");
        assert_eq!(format_size(1023), "1023 B");
        assert_eq!(format_size(64 << 10), "64 KiB");
        assert_eq!(format_size(8 << 20), "8 MiB");
        assert_eq!(format_size(3 << 29), "1.5 GiB");
        assert_eq!(format_size(1 << 50), "1 PiB");
        assert_eq!(format_size(u64::MAX), "16384.0 PiB");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("5 days").is_err());
    }

    #[test]
    fn bandwidths() {
        assert_eq!(parse_bandwidth("10m"), Ok(1_250_000));
        assert_eq!(parse_bandwidth("1g"), Ok(125_000_000));
        assert_eq!(parse_bandwidth("800k"), Ok(100_000));
        assert!(parse_bandwidth("0").is_err());
        assert!(parse_bandwidth("10x").is_err());
    }
}
