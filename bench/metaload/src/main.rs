//! `dfs-metaload`: the metadata load of `bench/scale.sh`. Everything goes
//! through the naming server's HTTP API, so the files it makes are made by
//! the same code and the same Redis scripts as a `dfs create`'s; no chunk
//! byte is written (the storage nodes it registers are never called).
//!
//! ```text
//! dfs-metaload nodes 3                    # register 3 stand-in storage nodes
//! dfs-metaload load 1000000 --prefix m/   # m/0000000 … m/0999999, one chunk each
//! dfs-metaload lookups 1000000 --prefix m/ --requests 20000
//! dfs-metaload list --prefix m/
//! ```
//!
//! Each prints one JSON object on stdout; the naming server comes from
//! `DFS_NAMING_URL`, the token from `DFS_TOKEN`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use dfs_client::{ClusterAccess, NamingClient};
use dfs_common::api::{
    AllocateChunkRequest, FinalizeRequest, FinalizedChunk, InitFileRequest, NodeStats,
    RegisterRequest,
};
use futures::{StreamExt, TryStreamExt, stream};
use rand::Rng;
use serde_json::json;

#[derive(Parser)]
#[command(about = "Metadata load through the naming server's API (bench/scale.sh)")]
struct Args {
    /// The naming server.
    #[arg(long, env = "DFS_NAMING_URL", default_value = "http://127.0.0.1:8000")]
    naming_url: String,
    /// The cluster token, when it has one.
    #[arg(long, env = "DFS_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Registers COUNT stand-in storage nodes (`load-N.invalid`), with room
    /// to spare, as targets for allocations.
    Nodes { count: u32 },
    /// Creates files PREFIX0000000 … (one 4 KiB chunk each, replication 3):
    /// init, allocate, finalize.
    Load {
        files: u64,
        #[arg(long, default_value = "load/")]
        prefix: String,
        /// Files in flight at once.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
    },
    /// REQUESTS name look-ups (`GET /files?name=`) of random files among the
    /// first FILES: latency percentiles and rate.
    Lookups {
        files: u64,
        #[arg(long, default_value = "load/")]
        prefix: String,
        #[arg(long, default_value_t = 20_000)]
        requests: u64,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
    },
    /// Lists every file under PREFIX, a page at a time: files/s.
    List {
        #[arg(long, default_value = "load/")]
        prefix: String,
    },
}

/// The name of file `i` under `prefix` (sorted as numbered).
fn name(prefix: &str, i: u64) -> String {
    format!("{prefix}{i:07}")
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let naming = NamingClient::new(&args.naming_url, &ClusterAccess::new(args.token.as_deref()))?
        .with_timeout(Duration::from_secs(30));
    let report = match args.command {
        Command::Nodes { count } => nodes(&naming, count).await?,
        Command::Load {
            files,
            prefix,
            concurrency,
        } => load(&naming, files, &prefix, concurrency).await?,
        Command::Lookups {
            files,
            prefix,
            requests,
            concurrency,
        } => lookups(&naming, files, &prefix, requests, concurrency).await?,
        Command::List { prefix } => list(&naming, &prefix).await?,
    };
    println!("{report}");
    Ok(())
}

async fn nodes(naming: &NamingClient, count: u32) -> Result<serde_json::Value> {
    for i in 0..count {
        let node_id = format!("load-{i}");
        naming
            .register(&RegisterRequest {
                url: format!("http://{node_id}.invalid:5001"),
                tcp_addr: format!("{node_id}.invalid:50051"),
                node_id,
                stats: NodeStats {
                    capacity_bytes: 1 << 50,
                    free_bytes: 1 << 50,
                    ..NodeStats::default()
                },
            })
            .await?;
    }
    Ok(json!({"nodes": count}))
}

/// Size of each file's one chunk.
const FILE_SIZE: u64 = 4096;

async fn create_one(naming: &NamingClient, name: String) -> Result<()> {
    let info = naming
        .init_file(&InitFileRequest {
            name,
            size: FILE_SIZE,
            chunk_size: None,
            replication: Some(3),
        })
        .await?;
    let allocation = naming
        .allocate_chunk(
            &info.file_id,
            &AllocateChunkRequest {
                index: 0,
                exclude: Vec::new(),
            },
        )
        .await?;
    naming
        .finalize(
            &info.file_id,
            &FinalizeRequest {
                size: FILE_SIZE,
                chunks: vec![FinalizedChunk {
                    index: 0,
                    chunk_id: allocation.chunk_id,
                    size: FILE_SIZE,
                    crc32c: 0x1234_5678,
                    replicas: allocation.targets.into_iter().map(|t| t.node_id).collect(),
                }],
            },
        )
        .await?;
    Ok(())
}

async fn load(
    naming: &NamingClient,
    files: u64,
    prefix: &str,
    concurrency: usize,
) -> Result<serde_json::Value> {
    let started = Instant::now();
    let mut done = 0u64;
    let mut creates = stream::iter(0..files)
        .map(|i| create_one(naming, name(prefix, i)))
        .buffer_unordered(concurrency.max(1));
    while let Some(created) = creates.next().await {
        created?;
        done += 1;
        if done % 100_000 == 0 {
            eprintln!(
                "dfs-metaload: {done} of {files} files in {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(json!({"files": files, "seconds": seconds, "files_per_s": files as f64 / seconds}))
}

async fn lookups(
    naming: &NamingClient,
    files: u64,
    prefix: &str,
    requests: u64,
    concurrency: usize,
) -> Result<serde_json::Value> {
    if files == 0 {
        bail!("no files to look up");
    }
    let picks: Vec<u64> = {
        let mut rng = rand::rng();
        (0..requests).map(|_| rng.random_range(0..files)).collect()
    };
    let started = Instant::now();
    let mut latencies: Vec<Duration> = stream::iter(picks)
        .map(|i| async move {
            let asked = Instant::now();
            let record = naming.file_by_name(&name(prefix, i)).await?;
            let took = asked.elapsed();
            if record.chunks.len() != 1 {
                bail!(
                    "{} has {} chunks, not 1",
                    record.info.name,
                    record.chunks.len()
                );
            }
            anyhow::Ok(took)
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await?;
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort();
    let at = |q: f64| {
        let i = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i].as_secs_f64() * 1e3
    };
    Ok(json!({
        "requests": requests,
        "concurrency": concurrency,
        "p50_ms": at(0.50),
        "p99_ms": at(0.99),
        "req_per_s": requests as f64 / seconds,
    }))
}

async fn list(naming: &NamingClient, prefix: &str) -> Result<serde_json::Value> {
    let started = Instant::now();
    let mut listing = naming.listing(prefix);
    let (mut files, mut pages) = (0u64, 0u64);
    while let Some(page) = listing.next_page().await.context("list a page")? {
        files += page.len() as u64;
        pages += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(
        json!({"files": files, "pages": pages, "seconds": seconds, "files_per_s": files as f64 / seconds}),
    )
}
