//! [`Check`]: the rules every request body of both servers must keep, the
//! same ones their OpenAPI specs declare (the patterns of
//! [`crate::api::patterns`], lengths, ranges). The extractors of
//! [`crate::http`] apply them, so a handler only sees a body that passed,
//! and bad input is a 400 (or a 413 for a size over a limit) naming the
//! field, whichever route it reaches.

use thiserror::Error;

use crate::api::{
    AllocateChunkRequest, ChainAssignment, ChunkReport, FinalizeRequest, HeartbeatRequest,
    InitFileRequest, MAX_CHUNK_REPORT, MAX_REASON_LEN, NodeReport, PeerRef, RegisterRequest,
    StartDistribution, SuspectReplica,
};
use crate::chain::{ReplicateRequest, validate_chain};
use crate::gcs::GcsUrl;
use crate::{MAX_CHUNK_SIZE, MAX_FILE_SIZE, MAX_REPLICATION, MIN_CHUNK_SIZE, validate};

/// Why a request was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum Invalid {
    /// A field breaks its rule: 400.
    #[error("{0}")]
    BadRequest(String),
    /// A size or count over its limit: 413.
    #[error("{0}")]
    TooLarge(String),
}

/// A request whose fields can be checked against their declared rules.
pub trait Check {
    /// `Ok` when every field keeps its rule.
    fn check(&self) -> Result<(), Invalid>;
}

/// Longest piece of a refused value quoted back in an error.
const SHOWN_CHARS: usize = 64;

/// `value` quoted for an error message, cut short when long.
fn shown(value: &str) -> String {
    match value.char_indices().nth(SHOWN_CHARS) {
        Some((end, _)) => format!("{:?}…", &value[..end]),
        None => format!("{value:?}"),
    }
}

fn bad(message: String) -> Invalid {
    Invalid::BadRequest(message)
}

/// An id of the `[A-Za-z0-9_-]{1,128}` kind (chunk, node, job, cluster).
pub fn id(what: &str, value: &str) -> Result<(), Invalid> {
    validate::chunk_id(value).map_err(|_| {
        bad(format!(
            "invalid {what} {}: ids are 1-128 characters of A-Z, a-z, 0-9, '_' and '-'",
            shown(value)
        ))
    })
}

/// A remote file name.
pub fn file_name(value: &str) -> Result<(), Invalid> {
    validate::file_name(value).map_err(|e| bad(e.to_string()))
}

/// A peer-transfer `host:port`.
fn peer_addr(what: &str, value: &str) -> Result<(), Invalid> {
    if validate::peer_addr(value) {
        return Ok(());
    }
    Err(bad(format!(
        "invalid {what} {}: expected host:port with a port 1-65535",
        shown(value)
    )))
}

/// A storage node's HTTP base URL.
fn node_url(value: &str) -> Result<(), Invalid> {
    if validate::node_url(value) {
        return Ok(());
    }
    Err(bad(format!(
        "invalid node URL {}: expected http(s)://host…, at most {} characters of printable \
         ASCII without ','",
        shown(value),
        validate::MAX_NODE_URL_LEN
    )))
}

/// `value` of field `what` within `min..=max`.
fn within(what: &str, value: u64, min: u64, max: u64) -> Result<(), Invalid> {
    if (min..=max).contains(&value) {
        return Ok(());
    }
    Err(bad(format!(
        "{what} {value} is out of range: {min}..={max}"
    )))
}

/// A chunk size, when one is asked for.
fn chunk_size(value: Option<u64>) -> Result<(), Invalid> {
    value.map_or(Ok(()), |size| {
        within("chunk_size", size, MIN_CHUNK_SIZE, MAX_CHUNK_SIZE)
    })
}

/// A `gs://bucket/object` URL.
pub fn gcs_url(value: &str) -> Result<(), Invalid> {
    value
        .parse::<GcsUrl>()
        .map(drop)
        .map_err(|e| bad(format!("source {}: {e}", shown(value))))
}

impl Check for RegisterRequest {
    fn check(&self) -> Result<(), Invalid> {
        id("node id", &self.node_id)?;
        node_url(&self.url)?;
        peer_addr("tcp_addr", &self.tcp_addr)
    }
}

impl Check for HeartbeatRequest {
    fn check(&self) -> Result<(), Invalid> {
        if self.bad.len() > MAX_CHUNK_REPORT {
            return Err(Invalid::TooLarge(format!(
                "{} bad chunks in one heartbeat; at most {MAX_CHUNK_REPORT}",
                self.bad.len()
            )));
        }
        self.deleted.iter().try_for_each(|c| id("chunk id", c))?;
        self.bad
            .iter()
            .try_for_each(|b| id("chunk id", &b.chunk_id))
    }
}

impl Check for SuspectReplica {
    fn check(&self) -> Result<(), Invalid> {
        id("chunk id", &self.chunk_id)?;
        id("node id", &self.node_id)?;
        if self.reason.chars().count() > MAX_REASON_LEN {
            return Err(Invalid::TooLarge(format!(
                "reason of {} characters; at most {MAX_REASON_LEN}",
                self.reason.chars().count()
            )));
        }
        Ok(())
    }
}

impl Check for ChunkReport {
    fn check(&self) -> Result<(), Invalid> {
        id("cluster id", &self.cluster_id)?;
        if self.chunk_ids.len() > MAX_CHUNK_REPORT {
            return Err(Invalid::TooLarge(format!(
                "{} chunk ids in one report; at most {MAX_CHUNK_REPORT}",
                self.chunk_ids.len()
            )));
        }
        self.chunk_ids.iter().try_for_each(|c| id("chunk id", c))
    }
}

impl Check for InitFileRequest {
    fn check(&self) -> Result<(), Invalid> {
        file_name(&self.name)?;
        if self.size > MAX_FILE_SIZE {
            return Err(Invalid::TooLarge(format!(
                "the file has {} bytes, over the limit of {MAX_FILE_SIZE}",
                self.size
            )));
        }
        chunk_size(self.chunk_size)?;
        self.replication.map_or(Ok(()), |replication| {
            within("replication", replication.into(), 1, MAX_REPLICATION.into())
        })
    }
}

impl Check for AllocateChunkRequest {
    fn check(&self) -> Result<(), Invalid> {
        self.exclude.iter().try_for_each(|n| id("node id", n))
    }
}

impl Check for FinalizeRequest {
    fn check(&self) -> Result<(), Invalid> {
        within("size", self.size, 0, MAX_FILE_SIZE)?;
        for chunk in &self.chunks {
            let index = chunk.index;
            id("chunk id", &chunk.chunk_id)?;
            within(
                &format!("chunk {index}: size"),
                chunk.size,
                1,
                MAX_CHUNK_SIZE,
            )?;
            let replicas = chunk.replicas.len() as u64;
            within(
                &format!("chunk {index}: the number of replicas"),
                replicas,
                1,
                MAX_REPLICATION.into(),
            )?;
            chunk.replicas.iter().try_for_each(|n| id("node id", n))?;
        }
        Ok(())
    }
}

impl Check for StartDistribution {
    fn check(&self) -> Result<(), Invalid> {
        file_name(&self.name)?;
        self.source.as_deref().map_or(Ok(()), gcs_url)?;
        chunk_size(self.chunk_size)
    }
}

impl Check for NodeReport {
    fn check(&self) -> Result<(), Invalid> {
        id("node id", &self.node_id)?;
        self.source
            .as_deref()
            .map_or(Ok(()), |source| id("source node id", source))
    }
}

impl Check for PeerRef {
    fn check(&self) -> Result<(), Invalid> {
        id("node id", &self.node_id)?;
        peer_addr("tcp_addr", &self.tcp_addr)
    }
}

impl Check for ChainAssignment {
    fn check(&self) -> Result<(), Invalid> {
        id("job id", &self.job_id)?;
        if !validate::file_id(&self.file_id) {
            return Err(bad(format!("invalid file id {}", shown(&self.file_id))));
        }
        id("node id", &self.node_id)?;
        self.upstream.iter().try_for_each(Check::check)?;
        for (position, chunk) in (0u64..).zip(&self.chunks) {
            if chunk.index != position {
                return Err(bad(format!("chunk {position} has index {}", chunk.index)));
            }
            id("chunk id", &chunk.chunk_id)?;
            within(
                &format!("chunk {position}: size"),
                chunk.size,
                1,
                MAX_CHUNK_SIZE,
            )?;
            chunk.holders.iter().try_for_each(Check::check)?;
        }
        self.gcs.as_ref().map_or(Ok(()), |gcs| gcs_url(&gcs.url))
    }
}

impl Check for ReplicateRequest {
    fn check(&self) -> Result<(), Invalid> {
        peer_addr("source address", &self.source)?;
        if self.size == 0 {
            return Err(bad(format!(
                "size 0: a chunk has 1 to {MAX_CHUNK_SIZE} bytes"
            )));
        }
        if self.size > MAX_CHUNK_SIZE {
            return Err(Invalid::TooLarge(format!(
                "chunk is larger than the limit of {MAX_CHUNK_SIZE} bytes"
            )));
        }
        validate_chain(&self.downstream).map_err(|e| bad(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ChainChunk, FinalizedChunk, GcsSource, NodeStats};
    use crate::chain::DownstreamNode;

    #[test]
    fn long_values_are_cut_short() {
        assert_eq!(shown("a\nb"), "\"a\\nb\"");
        let long = "x".repeat(1000);
        assert_eq!(shown(&long), format!("{:?}…", "x".repeat(SHOWN_CHARS)));
    }

    #[test]
    fn sizes_at_the_edges() {
        let init = |size, chunk_size, replication| InitFileRequest {
            name: "a".into(),
            size,
            chunk_size,
            replication,
        };
        assert_eq!(init(0, None, None).check(), Ok(()));
        assert_eq!(
            init(MAX_FILE_SIZE, Some(MIN_CHUNK_SIZE), Some(1)).check(),
            Ok(())
        );
        assert!(matches!(
            init(MAX_FILE_SIZE + 1, None, None).check(),
            Err(Invalid::TooLarge(_))
        ));
        for (chunk_size, replication) in [
            (Some(MIN_CHUNK_SIZE - 1), None),
            (Some(MAX_CHUNK_SIZE + 1), None),
            (None, Some(0)),
            (None, Some(MAX_REPLICATION + 1)),
        ] {
            assert!(matches!(
                init(1, chunk_size, replication).check(),
                Err(Invalid::BadRequest(_))
            ));
        }
        assert_eq!(
            init(1, Some(MAX_CHUNK_SIZE), Some(MAX_REPLICATION)).check(),
            Ok(())
        );

        let replicate = |size| ReplicateRequest {
            source: "h:1".into(),
            size,
            crc32c: 0,
            downstream: Vec::new(),
            signature: None,
        };
        assert!(matches!(replicate(0).check(), Err(Invalid::BadRequest(_))));
        assert_eq!(replicate(1).check(), Ok(()));
        assert_eq!(replicate(MAX_CHUNK_SIZE).check(), Ok(()));
        assert!(matches!(
            replicate(MAX_CHUNK_SIZE + 1).check(),
            Err(Invalid::TooLarge(_))
        ));
    }

    #[test]
    fn replicate_requests_name_the_bad_field() {
        let request = |source: &str, downstream: Vec<DownstreamNode>| ReplicateRequest {
            source: source.into(),
            size: 1,
            crc32c: 0,
            downstream,
            signature: None,
        };
        let node = |id: &str, url: &str| DownstreamNode {
            node_id: id.into(),
            url: url.into(),
        };
        for (source, downstream, expected) in [
            ("", vec![], "source address"),
            ("nohost", vec![], "source address"),
            ("h:0", vec![], "source address"),
            ("h:1", vec![node("a/b", "http://h")], "node id"),
            ("h:1", vec![node("a", "ftp://h")], "node URL"),
            (
                "h:1",
                vec![node("a", "http://h"), node("a", "http://i")],
                "twice",
            ),
        ] {
            let err = request(source, downstream).check().expect_err(source);
            assert!(err.to_string().contains(expected), "{err}");
        }
        assert_eq!(
            request("[::1]:5", vec![node("a", "http://h")]).check(),
            Ok(())
        );
    }

    #[test]
    fn registrations_and_reports() {
        let register = |node_id: &str, url: &str, tcp_addr: &str| RegisterRequest {
            node_id: node_id.into(),
            url: url.into(),
            tcp_addr: tcp_addr.into(),
            stats: NodeStats::default(),
        };
        assert_eq!(register("n1", "http://h:1", "h:2").check(), Ok(()));
        assert!(register("n/1", "http://h:1", "h:2").check().is_err());
        assert!(register("n1", "http://h:1,x", "h:2").check().is_err());
        assert!(register("n1", "http://h:1", "h").check().is_err());

        let report = |ids: Vec<String>| ChunkReport {
            cluster_id: "c".into(),
            chunk_ids: ids,
        };
        let full: Vec<String> = (0..MAX_CHUNK_REPORT).map(|i| format!("c{i}")).collect();
        assert_eq!(report(full.clone()).check(), Ok(()));
        let mut over = full;
        over.push("one-more".into());
        assert!(matches!(report(over).check(), Err(Invalid::TooLarge(_))));
        assert!(report(vec!["../x".into()]).check().is_err());
    }

    #[test]
    fn finalize_needs_one_to_sixteen_replicas() {
        let finalize = |replicas: usize| FinalizeRequest {
            size: 1,
            chunks: vec![FinalizedChunk {
                index: 0,
                chunk_id: "c".into(),
                size: 1,
                crc32c: 0,
                replicas: (0..replicas).map(|i| format!("n{i}")).collect(),
            }],
        };
        assert!(finalize(0).check().is_err());
        assert_eq!(finalize(1).check(), Ok(()));
        assert_eq!(finalize(MAX_REPLICATION as usize).check(), Ok(()));
        assert!(finalize(MAX_REPLICATION as usize + 1).check().is_err());
    }

    #[test]
    fn assignments() {
        let peer = |tcp_addr: &str| PeerRef {
            node_id: "p".into(),
            tcp_addr: tcp_addr.into(),
        };
        let chunk = |index, size, holder: &str| ChainChunk {
            chunk_id: "c".into(),
            index,
            size,
            crc32c: None,
            holders: vec![peer(holder)],
        };
        let assignment = |file_id: &str, chunks, gcs: &str| ChainAssignment {
            job_id: "j".into(),
            file_id: file_id.into(),
            node_id: "n".into(),
            upstream: vec![peer("h:1")],
            chunks,
            gcs: Some(GcsSource {
                url: gcs.into(),
                generation: 1,
                size: 1,
                crc32c: None,
            }),
        };
        let file_id = "0123456789abcdef-0123456789abcdef";
        let good = || vec![chunk(0, 1, "h:1"), chunk(1, MAX_CHUNK_SIZE, "h:2")];
        assert_eq!(assignment(file_id, good(), "gs://bkt/o").check(), Ok(()));
        for (file_id, chunks, gcs) in [
            ("f", good(), "gs://bkt/o"),
            (file_id, vec![chunk(1, 1, "h:1")], "gs://bkt/o"),
            (file_id, vec![chunk(0, 0, "h:1")], "gs://bkt/o"),
            (
                file_id,
                vec![chunk(0, MAX_CHUNK_SIZE + 1, "h:1")],
                "gs://bkt/o",
            ),
            (file_id, vec![chunk(0, 1, " ")], "gs://bkt/o"),
            (file_id, good(), "s3://bkt/o"),
        ] {
            assert!(assignment(file_id, chunks, gcs).check().is_err());
        }
    }
}
