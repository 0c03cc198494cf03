//! Plain-text output of `ls`, `stat`, `nodes`, `repair` and `jobs`:
//! aligned columns for humans. Every text that comes from a server is
//! shown through [`escape`], so a hostile name cannot forge table lines or
//! send terminal escapes.

use dfs_common::api::{
    Distribution, FileInfo, FileRecord, FileState, NodeInfo, NodeState, RepairReport,
};
use indicatif::HumanBytes;

/// `text` as `str::escape_debug` shows it, without the quotes and leaving
/// quotes alone: control and other unprintable characters become `\n`,
/// `\t`, `\u{1b}` and the like, and `\` becomes `\\`, so what is shown
/// is one line and says exactly which name it is.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' | '\'' => out.push(c),
            // Escaped as inside a string: a combining mark stays as it is.
            c => out.extend(format!("a{c}").escape_debug().skip(1)),
        }
    }
    out
}

/// Column alignment.
#[derive(Clone, Copy)]
enum Align {
    Left,
    Right,
}

/// Rows as columns separated by two spaces; the last column is not padded.
fn table(header: &[&str], align: &[Align], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let last = row.len().saturating_sub(1);
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(
                |(i, cell)| match (align.get(i).copied().unwrap_or(Align::Left), i == last) {
                    (Align::Left, true) => cell.clone(),
                    (Align::Left, false) => format!("{cell:<w$}", w = widths[i]),
                    (Align::Right, _) => format!("{cell:>w$}", w = widths[i]),
                },
            )
            .collect();
        out.push_str(&cells.join("  "));
        out.push('\n');
    }
    out
}

/// A page of `dfs ls`: name, size in bytes, chunk count, aligned within the
/// page, under a header line when `header`; nothing at all for no files.
pub fn files(files: &[FileInfo], header: bool) -> String {
    if files.is_empty() {
        return String::new();
    }
    let rows: Vec<Vec<String>> = files
        .iter()
        .map(|f| {
            vec![
                escape(&f.name),
                f.size.to_string(),
                f.chunk_count.to_string(),
            ]
        })
        .collect();
    let out = table(
        &["NAME", "SIZE", "CHUNKS"],
        &[Align::Left, Align::Right, Align::Right],
        &rows,
    );
    match header {
        true => out,
        false => out
            .split_once('\n')
            .map(|(_, rows)| rows.to_owned())
            .unwrap_or_default(),
    }
}

/// `dfs stat`: the file's metadata, then one line per chunk.
pub fn stat(record: &FileRecord) -> String {
    let info = &record.info;
    let state = match info.state {
        FileState::Pending => "pending",
        FileState::Committed => "committed",
    };
    let mut out = format!(
        "name:         {}\nfile_id:      {}\nsize:         {} ({})\nchunk_size:   {} ({})\n\
         chunks:       {}\nreplication:  {}\nstate:        {state}\ncreated_ms:   {}\n",
        escape(&info.name),
        escape(&info.file_id),
        info.size,
        HumanBytes(info.size),
        info.chunk_size,
        HumanBytes(info.chunk_size),
        info.chunk_count,
        info.replication,
        info.created_at_ms,
    );
    if record.chunks.is_empty() {
        return out;
    }
    out.push('\n');
    let rows: Vec<Vec<String>> = record
        .chunks
        .iter()
        .map(|c| {
            let replicas: Vec<String> = c
                .replicas
                .iter()
                .map(|r| {
                    let health = if r.alive { "alive" } else { "dead" };
                    format!("{}({health})", escape(&r.node_id))
                })
                .chain(
                    c.bad_replicas
                        .iter()
                        .map(|b| format!("{}({})", escape(&b.node_id), b.problem)),
                )
                .collect();
            vec![
                c.index.to_string(),
                escape(&c.chunk_id),
                c.size.to_string(),
                format!("{:08x}", c.crc32c),
                replicas.join(","),
            ]
        })
        .collect();
    let align = [
        Align::Right,
        Align::Left,
        Align::Right,
        Align::Left,
        Align::Left,
    ];
    out.push_str(&table(
        &["INDEX", "CHUNK_ID", "SIZE", "CRC32C", "REPLICAS"],
        &align,
        &rows,
    ));
    out
}

/// The summary line of `dfs repair`.
pub fn repair(report: &RepairReport) -> String {
    let trimmed = match report.trimmed {
        0 => String::new(),
        n => format!("; dropped {n} extra copies"),
    };
    if report.under_replicated == 0 {
        return format!(
            "{}: every chunk has {} live replicas{trimmed}\n",
            escape(&report.name),
            report.replication
        );
    }
    format!(
        "{}: repaired {} of {} under-replicated chunks ({} new copies){trimmed}\n",
        escape(&report.name),
        report.repaired,
        report.under_replicated,
        report.copies
    )
}

/// Why `dfs repair` left chunks short, on one line.
pub fn repair_problems(report: &RepairReport) -> String {
    let each: Vec<String> = report
        .problems
        .iter()
        .map(|p| format!("chunk {}: {}", p.index, escape(&p.error)))
        .collect();
    format!(
        "{}: {} chunks still have fewer than {} live replicas: {}",
        escape(&report.name),
        report.problems.len(),
        report.replication,
        each.join("; ")
    )
}

/// `dfs nodes`: id, URL, alive/dead, free and total space, chunk count,
/// chunks found bad and set aside.
pub fn nodes(nodes: &[NodeInfo]) -> String {
    let rows: Vec<Vec<String>> = nodes
        .iter()
        .map(|n| {
            vec![
                escape(&n.node_id),
                escape(&n.url),
                match (n.alive, n.stats.full) {
                    (true, false) => "alive",
                    (true, true) => "alive (full)",
                    (false, _) => "dead",
                }
                .to_owned(),
                HumanBytes(n.stats.free_bytes).to_string(),
                HumanBytes(n.stats.capacity_bytes).to_string(),
                n.stats.chunk_count.to_string(),
                n.stats.quarantined_chunks.to_string(),
            ]
        })
        .collect();
    let align = [
        Align::Left,
        Align::Left,
        Align::Left,
        Align::Right,
        Align::Right,
        Align::Right,
        Align::Right,
    ];
    table(
        &[
            "NODE_ID",
            "URL",
            "STATE",
            "FREE",
            "CAPACITY",
            "CHUNKS",
            "QUARANTINED",
        ],
        &align,
        &rows,
    )
}

pub(crate) fn lowercase<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// `dfs jobs`: one line per job, newest first.
pub fn jobs(jobs: &[Distribution]) -> String {
    let rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|job| {
            let done = job
                .nodes
                .iter()
                .filter(|n| n.state == NodeState::Done)
                .count();
            vec![
                escape(&job.job_id),
                lowercase(&job.state),
                format!("{done}/{}", job.nodes.len()),
                HumanBytes(job.size).to_string(),
                escape(&job.name),
                escape(&job.source),
            ]
        })
        .collect();
    table(
        &["JOB_ID", "STATE", "NODES", "SIZE", "NAME", "SOURCE"],
        &[
            Align::Left,
            Align::Left,
            Align::Right,
            Align::Right,
            Align::Left,
            Align::Left,
        ],
        &rows,
    )
}

/// `dfs jobs JOB_ID`: the job, then one line per chain node, head first
/// (`bypassed`: the nodes below it pull around it).
pub fn job(job: &Distribution) -> String {
    let mut out = format!(
        "job_id:      {}\nname:        {}\nsource:      {}\nsize:        {} ({} chunks of {})\nstate:       {}\nthroughput:  {}/s\n",
        escape(&job.job_id),
        escape(&job.name),
        escape(&job.source),
        job.size,
        job.chunk_count,
        HumanBytes(job.chunk_size),
        lowercase(&job.state),
        HumanBytes(job.throughput_bytes_per_sec),
    );
    if let Some(error) = &job.error {
        out.push_str(&format!("error:       {}\n", escape(error)));
    }
    out.push('\n');
    let rows: Vec<Vec<String>> = job
        .nodes
        .iter()
        .map(|n| {
            let state = lowercase(&n.state);
            vec![
                escape(&n.node_id),
                if n.bypassed {
                    format!("{state}, bypassed")
                } else {
                    state
                },
                format!("{}/{}", n.chunks_done, job.chunk_count),
                HumanBytes(n.bytes_done).to_string(),
                format!("{}/s", HumanBytes(n.throughput_bytes_per_sec)),
                escape(n.error.as_deref().unwrap_or_default()),
            ]
        })
        .collect();
    out.push_str(&table(
        &["NODE_ID", "STATE", "CHUNKS", "BYTES", "RATE", "ERROR"],
        &[
            Align::Left,
            Align::Left,
            Align::Right,
            Align::Right,
            Align::Right,
            Align::Left,
        ],
        &rows,
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use dfs_common::api::{BadReplica, ChunkLocation, ChunkProblem, NodeStats, Replica};

    fn info(name: &str, size: u64, chunk_count: u64) -> FileInfo {
        FileInfo {
            file_id: format!("id-{name}"),
            name: name.into(),
            size,
            chunk_size: 65536,
            chunk_count,
            replication: 2,
            state: FileState::Committed,
            created_at_ms: 7,
        }
    }

    #[test]
    fn escape_shows_control_characters_and_keeps_the_rest() {
        assert_eq!(escape("plain name.txt"), "plain name.txt");
        assert_eq!(escape("a\nb\tc\rd"), "a\\nb\\tc\\rd");
        assert_eq!(escape("\u{1b}[31mred"), "\\u{1b}[31mred");
        assert_eq!(escape("del\u{7f} nul\0"), "del\\u{7f} nul\\0");
        assert_eq!(escape("back\\slash"), "back\\\\slash");
        assert_eq!(escape("it's \"quoted\""), "it's \"quoted\"");
        assert_eq!(escape("h\u{e9}llo w\u{f6}rld"), "h\u{e9}llo w\u{f6}rld");
        assert_eq!(escape("e\u{301}"), "e\u{301}");
        assert_eq!(escape("rtl\u{202e}txt"), "rtl\\u{202e}txt");
    }

    #[test]
    fn hostile_names_cannot_forge_lines() {
        let out = files(
            &[
                info("evil\nfake  999  9", 5, 1),
                info("\u{1b}[2Jclear", 6, 1),
            ],
            true,
        );
        assert_eq!(
            out.lines().collect::<Vec<_>>(),
            [
                "NAME                SIZE  CHUNKS",
                "evil\\nfake  999  9     5       1",
                "\\u{1b}[2Jclear         6       1",
            ]
        );
        let record = FileRecord {
            info: info("tab\there", 0, 0),
            chunks: vec![],
        };
        assert!(stat(&record).starts_with("name:         tab\\there\n"));
    }

    #[test]
    fn ls_columns_align() {
        let page = [info("a", 5, 1), info("longer/name", 123456, 2)];
        let expected = [
            "NAME           SIZE  CHUNKS",
            "a                 5       1",
            "longer/name  123456       2",
        ];
        assert_eq!(files(&page, true).lines().collect::<Vec<_>>(), expected);
        // Later pages of a listing: the rows alone.
        assert_eq!(
            files(&page, false).lines().collect::<Vec<_>>(),
            expected[1..]
        );
        assert_eq!(files(&[], true), "");
    }

    #[test]
    fn stat_lists_chunks_and_replicas() {
        let record = FileRecord {
            info: info("f", 70000, 2),
            chunks: vec![ChunkLocation {
                chunk_id: "c0".into(),
                index: 0,
                size: 65536,
                crc32c: 0xab,
                replicas: vec![
                    Replica {
                        node_id: "n1".into(),
                        url: "http://a".into(),
                        alive: true,
                    },
                    Replica {
                        node_id: "n2".into(),
                        url: "http://b".into(),
                        alive: false,
                    },
                ],
                bad_replicas: vec![BadReplica {
                    node_id: "n3".into(),
                    problem: ChunkProblem::Corrupt,
                }],
            }],
        };
        let out = stat(&record);
        assert!(out.contains("size:         70000 (68.36 KiB)"), "{out}");
        assert!(
            out.contains("INDEX  CHUNK_ID   SIZE  CRC32C    REPLICAS\n"),
            "{out}"
        );
        assert!(
            out.contains("    0  c0        65536  000000ab  n1(alive),n2(dead),n3(corrupt)\n"),
            "{out}"
        );
    }

    #[test]
    fn nodes_show_health_and_space() {
        let node = NodeInfo {
            node_id: "n1".into(),
            url: "http://127.0.0.1:5001".into(),
            tcp_addr: "127.0.0.1:50051".into(),
            alive: false,
            last_heartbeat_ms: 0,
            stats: NodeStats {
                capacity_bytes: 10 << 30,
                free_bytes: 3 << 30,
                chunk_count: 42,
                full: false,
                quarantined_chunks: 2,
                ..NodeStats::default()
            },
        };
        let full = NodeInfo {
            node_id: "n2".into(),
            alive: true,
            stats: NodeStats {
                free_bytes: 1 << 20,
                full: true,
                ..node.stats
            },
            ..node.clone()
        };
        let out = nodes(&[node, full]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[1..],
            [
                "n1       http://127.0.0.1:5001  dead          3.00 GiB  10.00 GiB      42            2",
                "n2       http://127.0.0.1:5001  alive (full)  1.00 MiB  10.00 GiB      42            2",
            ]
        );
    }
}
