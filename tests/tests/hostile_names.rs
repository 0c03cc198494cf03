//! File names may hold any character but NUL: `dfs ls`, `dfs stat` and
//! `dfs jobs` show control characters escaped (`\n`, `\t`, `\u{1b}`), so a
//! name can neither forge table lines nor send terminal escapes.

use anyhow::{Context, Result, ensure};
use dfs_tests::{TestCluster, write_random_file};

/// The hostile names, and how `dfs` shows them.
const NAMES: [(&str, &str); 4] = [
    ("evil\nfake  999  9", "evil\\nfake  999  9"),
    ("tab\there", "tab\\there"),
    ("\u{1b}[2J\u{1b}[31mred", "\\u{1b}[2J\\u{1b}[31mred"),
    ("cr\rback\\slash", "cr\\rback\\\\slash"),
];

/// Fails when `out` holds a control character other than the newlines
/// ending its lines.
fn printable(out: &str) -> Result<()> {
    let bad: Vec<char> = out
        .chars()
        .filter(|&c| c.is_control() && c != '\n')
        .collect();
    ensure!(bad.is_empty(), "raw control characters {bad:?} in {out:?}");
    Ok(())
}

#[tokio::test]
async fn ls_stat_and_jobs_escape_control_characters() -> Result<()> {
    let cluster = TestCluster::builder().storage_nodes(2).start().await?;
    let local = cluster.scratch_dir().join("small");
    write_random_file(&local, 1000, 5)?;
    let local = local.to_str().context("non-UTF-8 temp path")?;
    for (name, _) in NAMES {
        cluster
            .dfs_ok(["create", local, name, "--replication", "1"])
            .await?;
    }

    let ls = cluster.dfs_ok(["ls"]).await?;
    printable(&ls)?;
    let lines: Vec<&str> = ls.lines().collect();
    ensure!(lines.len() == 1 + NAMES.len(), "one line per file: {ls:?}");
    for (_, shown) in NAMES {
        ensure!(
            lines
                .iter()
                .any(|line| line.starts_with(&format!("{shown}  "))),
            "no line for {shown:?} in {ls:?}"
        );
    }

    for (name, shown) in NAMES {
        let stat = cluster.dfs_ok(["stat", name]).await?;
        printable(&stat)?;
        ensure!(
            stat.starts_with(&format!("name:         {shown}\n")),
            "{stat:?}"
        );
    }

    let (name, shown) = NAMES[2];
    let distributed = cluster.dfs_ok(["distribute", name]).await?;
    printable(&distributed)?;
    ensure!(distributed.starts_with(shown), "{distributed:?}");
    let jobs = cluster.dfs_ok(["jobs"]).await?;
    printable(&jobs)?;
    let row = jobs
        .lines()
        .nth(1)
        .with_context(|| format!("no job in {jobs:?}"))?;
    ensure!(row.contains(&format!("  {shown}  dfs")), "{jobs:?}");
    let job_id = row.split_whitespace().next().context("empty job row")?;
    let job = cluster.dfs_ok(["jobs", job_id]).await?;
    printable(&job)?;
    ensure!(
        job.contains(&format!("\nname:        {shown}\n")),
        "{job:?}"
    );
    Ok(())
}
