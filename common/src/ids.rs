//! The shape of the ids the naming server makes: a file id starts with
//! the hash of its name, and a chunk id names its file and index, so a
//! storage node's chunk can always be traced to its file. Both servers
//! parse them here: the naming server to judge orphans, storage nodes to
//! refuse any other id on a write.

/// The name hash a well-formed file id (16 hex digits, `-`, 16 hex
/// digits) starts with.
pub fn file_hash(file_id: &str) -> Option<&str> {
    let (hash, random) = file_id.split_once('-')?;
    let hex16 = |s: &str| s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex16(hash) && hex16(random)).then_some(hash)
}

/// The file id and index of a chunk id in the form the naming server makes
/// (`<file id>-<index>-<8 hex digits>`); `None` for any other id.
pub fn chunk_owner(chunk_id: &str) -> Option<(&str, u64)> {
    let mut parts = chunk_id.rsplitn(3, '-');
    let random = parts.next()?;
    let index = parts.next()?;
    let file_id = parts.next()?;
    let hex8 = random.len() == 8 && random.bytes().all(|b| b.is_ascii_hexdigit());
    let index = index
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| index.parse().ok())??;
    (hex8 && file_hash(file_id).is_some()).then_some((file_id, index))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_ids_start_with_their_hash() {
        let id = "0123456789abcdef-fedcba9876543210";
        assert_eq!(file_hash(id), Some("0123456789abcdef"));
        assert_eq!(file_hash("nope"), None);
        assert_eq!(file_hash("0123456789abcdef-xyz"), None);
        assert_eq!(file_hash("0123456789abcdef-0123456789abcdeg"), None);
    }

    #[test]
    fn chunk_ids_name_their_file_and_index() {
        let f = "0123456789abcdef-0123456789abcdef";
        assert_eq!(chunk_owner(&format!("{f}-0-deadbeef")), Some((f, 0)));
        assert_eq!(chunk_owner(&format!("{f}-42-00000000")), Some((f, 42)));
        for other in [
            "",
            "chunk",
            "deadbeef",
            "0-deadbeef",
            &format!("{f}-x-deadbeef"),
            &format!("{f}-+1-deadbeef"),
            &format!("{f}-1-deadbee"),
            &format!("{f}-1-deadbeefa"),
            &format!("{f}-99999999999999999999-deadbeef"),
            "0123456789abcdef-0123456789abcdeg-1-deadbeef",
            "0123456789abcdef-1-deadbeef",
        ] {
            assert_eq!(chunk_owner(other), None, "{other}");
        }
    }
}
