//! Fuzzing both servers with schemathesis (PyPI; `scripts/test.sh` installs
//! it), from the committed OpenAPI specs, against a live cluster with a
//! token set: real Redis, a naming server, two storage nodes and a GCS
//! emulator (so no request can make a node look for cloud credentials).
//! Every check runs (the settings are in `tests/fuzz/schemathesis.toml`):
//! no 5xx but the few the specs document for conditions the fuzzer causes
//! on purpose, every status and content type and body as the spec says,
//! every request that breaks the spec refused. The test fails with
//! schemathesis's report when anything is found.
//!
//! The cluster starts with a committed file, a distribution job and their
//! chunks, and the fuzzer draws their ids and name for about a third of
//! the parameters that take one, so it also reaches the paths where they
//! exist. It may delete or overwrite them as it goes: that is fine.
//!
//! A bounded pass by default: 50 examples per operation, seed 1.
//! `FUZZ_EXAMPLES` and `FUZZ_SEED` change them; `scripts/fuzz.sh N` runs
//! this test with N examples on the release binaries.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use dfs_tests::{FakeGcs, TestCluster, write_random_file};
use serde_json::{Value, json};
use tokio::process::Command;

const TOKEN: &str = "fuzz-token";
const DEFAULT_EXAMPLES: u64 = 50;
const DEFAULT_SEED: u64 = 1;
/// The longest one request may take: the slowest documented path is a
/// node call to a fuzzed address (5 s to connect, 20 s per call).
const REQUEST_TIMEOUT_SECS: u64 = 60;

/// A number from the environment variable `name`, or `default`.
fn setting(name: &str, default: u64) -> Result<u64> {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .with_context(|| format!("{name}={value:?} is not a number")),
        Err(_) => Ok(default),
    }
}

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

/// How long a run of `examples` per operation may take before it counts
/// as hung: generous, since a debug build and a busy machine are slow.
fn run_timeout(examples: u64) -> Duration {
    Duration::from_secs(300 + examples.saturating_mul(3))
}

/// A committed file: its id, name and chunk ids.
struct Seeded {
    file_id: String,
    name: String,
    chunk_ids: Vec<String>,
}

/// Creates file `name` (two chunks, on both nodes).
async fn create_file(cluster: &TestCluster, name: &str) -> Result<Seeded> {
    let local = cluster.scratch_dir().join("seeded");
    write_random_file(&local, 100_000, 3)?;
    let local = local.to_str().context("non-UTF-8 temp path")?;
    let args = ["create", local, name, "--chunk-size", "64KiB"];
    cluster
        .dfs_ok(args.iter().chain(&["--replication", "2"]))
        .await?;
    let record = cluster.file_record(name).await?;
    let text = |value: &Value| value.as_str().map(str::to_owned);
    let chunks = record["chunks"].as_array().context("no chunks")?;
    Ok(Seeded {
        file_id: text(&record["file_id"]).context("no file_id")?,
        name: name.to_owned(),
        chunk_ids: chunks.iter().filter_map(|c| text(&c["chunk_id"])).collect(),
    })
}

/// Fills the cluster with something to find: a file, a distribution job of
/// it, and a second file for the fuzzer's deletes, so the first survives
/// them. Returns the TOML that has the fuzzer draw their ids and names.
async fn seed_cluster(cluster: &TestCluster) -> Result<String> {
    let kept = create_file(cluster, "fuzz/kept.bin").await?;
    let doomed = create_file(cluster, "fuzz/doomed.bin").await?;
    let job = cluster
        .post_json("/distributions", &json!({"name": kept.name}))
        .await?;
    let job_id = job["job_id"].as_str().context("no job_id")?.to_owned();
    let node_ids = cluster
        .storage_nodes()
        .iter()
        .map(|node| node.node_id().to_owned())
        .collect();
    // Ranges of every kind for the seeded chunks (65536 and 34464 bytes).
    let ranges = [
        "bytes=0-9",
        "bytes=-100",
        "bytes=34000-",
        "bytes=0-99999999999999999999",
        "bytes=65536-",
        "bytes=-0",
        "bytes=9-0",
        "bytes=0-1,4-5",
        "Bytes=1-1",
        "items=0-1",
        "bytes=x",
    ];
    let ranges = ranges.map(str::to_owned).to_vec();
    // (dictionary, values, parameter, operation: none for every one)
    let bindings = [
        ("file_ids", vec![kept.file_id], "path.file_id", None),
        ("names", vec![kept.name], "query.name", None),
        ("chunk_ids", kept.chunk_ids, "path.chunk_id", None),
        ("node_ids", node_ids, "path.node_id", None),
        ("job_ids", vec![job_id], "path.job_id", None),
        ("ranges", ranges, "header.Range", None),
        (
            "doomed_file_ids",
            vec![doomed.file_id],
            "path.file_id",
            Some("delete_file"),
        ),
        (
            "doomed_chunk_ids",
            doomed.chunk_ids,
            "path.chunk_id",
            Some("delete_chunk"),
        ),
    ];
    let binding = |dictionary: &str, parameter: &str| {
        format!("\"{parameter}\" = {{ dictionary = \"{dictionary}\", probability = 0.3 }}")
    };
    let mut toml = String::from("\n[dictionaries]\n");
    for (dictionary, values, _, _) in &bindings {
        toml.push_str(&format!(
            "{dictionary} = {{ values = {} }}\n",
            json!(values)
        ));
    }
    toml.push_str("\n[parameters]\n");
    for (dictionary, _, parameter, _) in bindings.iter().filter(|b| b.3.is_none()) {
        toml.push_str(&binding(dictionary, parameter));
        toml.push('\n');
    }
    for (dictionary, _, parameter, operation) in &bindings {
        if let Some(operation) = operation {
            toml.push_str(&format!(
                "\n[[operations]]\ninclude-operation-id = \"{operation}\"\nparameters = {{ {} }}\n",
                binding(dictionary, parameter)
            ));
        }
    }
    Ok(toml)
}

/// Runs schemathesis on the committed spec of `server`, served at `base`,
/// with the settings in `config`.
async fn fuzz(
    server: &str,
    base: &str,
    config: &Path,
    examples: u64,
    seed: u64,
    work: &Path,
) -> Result<Output> {
    let spec = repo_path(&format!("openapi/{server}.json"));
    let mut command = Command::new("schemathesis");
    command
        .arg("--config-file")
        .arg(config)
        .arg("run")
        .arg(&spec)
        .args(["--url", base])
        .args(["--header", &format!("Authorization: Bearer {TOKEN}")])
        .args(["--max-examples", &examples.to_string()])
        .args(["--seed", &seed.to_string()])
        .args(["--request-timeout", &REQUEST_TIMEOUT_SECS.to_string()])
        .args(["--generation-database", "none", "--no-color"])
        // Reports and caches land in a directory of the test's own.
        .current_dir(work)
        .kill_on_drop(true);
    let limit = run_timeout(examples);
    tokio::time::timeout(limit, command.output())
        .await
        .with_context(|| format!("schemathesis on {server} took over {limit:?}"))?
        .context("cannot run schemathesis: `pip install schemathesis` (scripts/test.sh does)")
}

#[tokio::test]
async fn schemathesis_finds_nothing_on_either_server() -> Result<()> {
    let examples = setting("FUZZ_EXAMPLES", DEFAULT_EXAMPLES)?;
    let seed = setting("FUZZ_SEED", DEFAULT_SEED)?;
    let gcs = FakeGcs::start().await?;
    let cluster = TestCluster::builder()
        .storage_nodes(2)
        .token(TOKEN)
        .storage_env("STORAGE_EMULATOR_HOST", &gcs.url())
        // The 502s and 503s the fuzzer causes on purpose are logged as
        // warnings; errors are what a failure needs.
        .naming_env("RUST_LOG", "error")
        .storage_env("RUST_LOG", "error")
        .start()
        .await?;
    let work = tempfile::tempdir()?;
    // The committed settings, and the dictionaries of what the cluster holds.
    let settings = std::fs::read_to_string(repo_path("tests/fuzz/schemathesis.toml"))?;
    let config = work.path().join("schemathesis.toml");
    std::fs::write(&config, settings + &seed_cluster(&cluster).await?)?;
    let mut failures = Vec::new();
    // The storage node first: fuzzing the naming server may delete the
    // seeded files, and their chunks with them.
    for (server, base) in [
        ("storage-server", cluster.storage(0).url()),
        ("naming-server", cluster.naming_url()),
    ] {
        let output = fuzz(server, base, &config, examples, seed, work.path()).await?;
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        // The case counts, for the record (shown with --no-capture).
        let counts = report
            .lines()
            .skip_while(|line| !line.starts_with("Test cases:"))
            .nth(1)
            .unwrap_or("no case count in the report")
            .trim();
        println!("{server}: {counts} ({examples} examples per operation, seed {seed})");
        if !output.status.success() {
            failures.push(format!(
                "schemathesis on {server} ({}):\n{report}",
                output.status
            ));
        }
    }
    ensure!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}
