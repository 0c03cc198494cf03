//! `dfs-sim`: compares distribution designs for k = 10 … 10,000 nodes on a
//! modelled fleet; prints a Markdown table and writes it, with the raw rows
//! as JSON, to `--out` (`sim/plot.py` draws the PNG from the JSON).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use dfs_sim::{Scenario, sweep, table};

#[derive(Parser)]
#[command(about)]
struct Args {
    /// Fleet sizes to simulate.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "10,30,100,300,1000,3000,10000"
    )]
    nodes: Vec<usize>,
    /// Every node's link rate, Gbit/s each way.
    #[arg(long, default_value_t = 10.0)]
    gbit: f64,
    /// One node in this many is slow (the first, then every n-th); 0: none.
    #[arg(long, default_value_t = 20)]
    slow_every: usize,
    /// How many times slower a slow node's links are.
    #[arg(long, default_value_t = 4.0)]
    slow_factor: f64,
    /// Per-hop latency, milliseconds.
    #[arg(long, default_value_t = 0.2)]
    latency_ms: f64,
    /// File size, MiB.
    #[arg(long, default_value_t = 1024)]
    size_mib: u64,
    /// Chunk size, MiB.
    #[arg(long, default_value_t = 8)]
    chunk_mib: u64,
    /// Folder for table.md and rows.json.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let base = Scenario {
        nodes: 0,
        rate: args.gbit * 1e9 / 8.0,
        slow_every: args.slow_every,
        slow_factor: args.slow_factor,
        latency: args.latency_ms / 1e3,
        size: args.size_mib << 20,
        chunk: args.chunk_mib << 20,
    };
    let rows = sweep(&base, &args.nodes);
    let table = format!(
        "S = {} MiB, c = {} MiB, B = {} Gbit/s, 1 node in {} at B/{}, {} ms a hop, one holder at B\n\n{}",
        args.size_mib,
        args.chunk_mib,
        args.gbit,
        args.slow_every,
        args.slow_factor,
        args.latency_ms,
        table(&rows)
    );
    print!("{table}");
    if let Some(out) = args.out {
        std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
        std::fs::write(out.join("table.md"), &table)?;
        let json = serde_json::json!({ "scenario": base, "rows": rows });
        std::fs::write(out.join("rows.json"), serde_json::to_vec_pretty(&json)?)?;
    }
    Ok(())
}
