//! What a look-up costs the metadata store: Redis round trips per request,
//! with 5 and then 50 registered nodes.
//!
//! How they are counted: Redis's `INFO stats` field `total_reads_processed`
//! counts the read events it handled on client sockets. A client waiting
//! for each reply before its next command causes one read per command; a
//! pipeline written at once (as the `redis` crate writes one) arrives in one
//! read. So the reads between two `INFO` calls around one request, less the
//! second `INFO`'s own, are the round trips the naming server made for it,
//! whatever it sent in each. The naming server's background loops (a check
//! of the repair queue every second) can add reads to a window: each case
//! is measured a few times and the fewest taken, which only those loops
//! can inflate. Requests run one at a time, so no two share a read.

use std::future::Future;

use anyhow::{Context, Result, ensure};
use redis::aio::MultiplexedConnection;
use reqwest::StatusCode;
use serde_json::Value;

use super::support::{Api, KIB64, cluster, id};

/// Measurements per case; the fewest round trips count.
const TRIES: usize = 4;

/// Reads Redis's read-event counter over a connection of the test's own.
struct Reads(MultiplexedConnection);

impl Reads {
    async fn connect(url: &str) -> Result<Self> {
        let client = redis::Client::open(url)?;
        Ok(Self(client.get_multiplexed_async_connection().await?))
    }

    async fn total(&self) -> Result<u64> {
        let info: String = redis::cmd("INFO")
            .arg("stats")
            .query_async(&mut self.0.clone())
            .await?;
        info.lines()
            .find_map(|line| line.strip_prefix("total_reads_processed:"))
            .context("INFO stats has no total_reads_processed")?
            .trim()
            .parse()
            .context("total_reads_processed")
    }

    /// The Redis round trips made while `request` ran.
    async fn during(&self, request: impl Future<Output = Result<()>>) -> Result<u64> {
        let before = self.total().await?;
        request.await?;
        let after = self.total().await?;
        // Less the read of the second INFO itself.
        Ok(after.saturating_sub(before + 1))
    }
}

/// `GET /files?name=`: the record, every chunk with a live replica.
async fn look_up(api: &Api, name: &str) -> Result<()> {
    let (status, record) = api.get(&format!("/files?name={name}")).await?;
    ensure!(status == StatusCode::OK, "{name}: {status} {record}");
    ensure!(record["name"] == name, "{record}");
    let chunks = record["chunks"].as_array().context("chunks")?;
    ensure!(!chunks.is_empty(), "{record}");
    ensure!(
        chunks.iter().all(|c| c["replicas"][0]["alive"] == true),
        "{record}"
    );
    Ok(())
}

/// `GET /files/{id}/chunks/0`: the chunk with its live replicas.
async fn locate(api: &Api, file_id: &str) -> Result<()> {
    let (status, chunk) = api.get(&format!("/files/{file_id}/chunks/0")).await?;
    ensure!(status == StatusCode::OK, "{status} {chunk}");
    let replicas = chunk["replicas"].as_array().context("replicas")?;
    ensure!(
        replicas.len() == 3 && replicas.iter().all(|r| r["alive"] == true),
        "{chunk}"
    );
    Ok(())
}

/// Round trips of (a first look-up of a name, with the node directory
/// not cached; the same look-up repeated; a chunk location), the fewest
/// of [`TRIES`] each.
async fn measure(api: &Api, reads: &Reads, label: &str) -> Result<(u64, u64, u64)> {
    let mut names = Vec::new();
    let mut file: Value = Value::Null;
    for i in 0..TRIES {
        let name = format!("{label}/file-{i}");
        file = api.upload(&name, 2 * KIB64 + 1, 3).await?;
        names.push(name);
    }
    let (mut first, mut repeated, mut location) = (u64::MAX, u64::MAX, u64::MAX);
    for name in &names {
        // A registration drops the replica's cached node directory.
        api.register(&format!("{label}-extra")).await?;
        first = first.min(reads.during(look_up(api, name)).await?);
    }
    for _ in 0..TRIES {
        repeated = repeated.min(reads.during(look_up(api, &names[0])).await?);
    }
    let file_id = id(&file);
    for _ in 0..TRIES {
        location = location.min(reads.during(locate(api, &file_id)).await?);
    }
    Ok((first, repeated, location))
}

#[tokio::test]
async fn a_lookup_costs_at_most_two_round_trips_whatever_the_nodes() -> Result<()> {
    let cluster = cluster(&[("REPAIR_AFTER", "off")]).await?;
    let api = Api::new(&cluster);
    let reads = Reads::connect(&cluster.redis.url()).await?;

    api.register_nodes("few", 5).await?;
    let few = measure(&api, &reads, "few").await?;
    api.register_nodes("many", 45).await?;
    let many = measure(&api, &reads, "many").await?;

    for (nodes, (first, repeated, location)) in [(6, few), (51, many)] {
        ensure!(
            first <= 2,
            "{nodes} nodes: a first look-up took {first} round trips"
        );
        ensure!(
            repeated <= 1,
            "{nodes} nodes: a repeated look-up took {repeated} round trips"
        );
        ensure!(
            location <= 1,
            "{nodes} nodes: a chunk location took {location} round trips"
        );
    }
    ensure!(
        few == many,
        "round trips (first, repeated, location) grew with the nodes: {few:?} → {many:?}"
    );
    Ok(())
}

/// The name → file id hint of a repeated look-up never serves a deleted
/// file, nor hides a new file of the same name.
#[tokio::test]
async fn a_repeated_lookup_follows_deletes_and_new_files() -> Result<()> {
    let cluster = cluster(&[]).await?;
    let api = Api::new(&cluster);
    api.register_nodes("n", 3).await?;
    let old = id(&api.upload("again.bin", KIB64, 2).await?);
    look_up(&api, "again.bin").await?;
    look_up(&api, "again.bin").await?;

    let (status, _) = api.delete(&format!("/files/{old}")).await?;
    ensure!(status == StatusCode::NO_CONTENT, "delete: {status}");
    let (status, body) = api.get("/files?name=again.bin").await?;
    ensure!(status == StatusCode::NOT_FOUND, "{status} {body}");

    let new = id(&api.upload("again.bin", 3 * KIB64, 2).await?);
    ensure!(new != old);
    let (status, record) = api.get("/files?name=again.bin").await?;
    ensure!(status == StatusCode::OK, "{status} {record}");
    ensure!(
        record["file_id"] == new.as_str() && record["size"] == 3 * KIB64,
        "{record}"
    );
    Ok(())
}
