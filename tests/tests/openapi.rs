//! The OpenAPI documents under `openapi/` are generated from the code
//! (utoipa) and committed. They must equal what the code generates and
//! what the running servers serve on `/openapi.json`, be valid OpenAPI
//! (`openapi-spec-validator`), and turn into a client with a function for
//! every operation and no warning (`openapi-python-client`). Both tools
//! come from PyPI; `scripts/test.sh` installs them.
//!
//! `UPDATE_OPENAPI=1 cargo nextest run -p dfs-tests --test openapi`
//! rewrites the committed files from the code.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use dfs_tests::TestCluster;
use serde_json::Value;
use tokio::process::Command;

/// How long one run of a Python tool may take.
const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

fn committed_path(server: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../openapi")
        .join(format!("{server}.json"))
}

/// The servers and the documents their code generates.
fn generated_specs() -> [(&'static str, utoipa::openapi::OpenApi); 2] {
    [
        ("naming-server", naming_server::http::spec()),
        ("storage-server", storage_server::http::spec()),
    ]
}

#[test]
fn committed_specs_are_what_the_code_generates() -> Result<()> {
    let update = std::env::var_os("UPDATE_OPENAPI").is_some_and(|v| v == "1");
    for (server, spec) in generated_specs() {
        let path = committed_path(server);
        let mut generated = spec.to_pretty_json()?;
        generated.push('\n');
        if update {
            std::fs::write(&path, &generated)?;
            continue;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        ensure!(
            committed == generated,
            "{} is out of date: run `UPDATE_OPENAPI=1 cargo nextest run -p dfs-tests --test openapi` \
             and commit it",
            path.display()
        );
    }
    Ok(())
}

/// Runs `program args…`, bounded in time; its output, whatever the status.
async fn run(program: &str, args: &[&str], dir: &Path) -> Result<Output> {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(TOOL_TIMEOUT, output)
        .await
        .with_context(|| format!("{program} took over {TOOL_TIMEOUT:?}"))?
        .with_context(|| {
            format!("cannot run {program}: install it with `pip install {program}` (scripts/test.sh does)")
        })
}

/// Stdout and stderr of `output` as one text.
fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Every `operationId` of `spec`.
fn operation_ids(spec: &Value) -> Result<BTreeSet<String>> {
    let mut ids = BTreeSet::new();
    let paths = spec["paths"].as_object().context("spec has no paths")?;
    for (path, item) in paths {
        let item = item.as_object().context("bad path item")?;
        for (method, operation) in item {
            let id = operation["operationId"]
                .as_str()
                .with_context(|| format!("{method} {path} has no operationId"))?;
            ensure!(ids.insert(id.to_owned()), "operationId {id} is used twice");
        }
    }
    Ok(ids)
}

/// The names of the generated `.py` files under `dir`, recursively.
fn python_modules(dir: &Path, found: &mut BTreeSet<String>) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            python_modules(&path, found)?;
        } else if let Some(stem) = path
            .extension()
            .filter(|e| *e == "py")
            .and(path.file_stem())
        {
            found.insert(stem.to_string_lossy().into_owned());
        }
    }
    Ok(())
}

/// Validates the committed spec of `server` and generates a client from it.
async fn validate_and_generate(server: &str, spec: &Value, work: &Path) -> Result<()> {
    let path = committed_path(server);
    let path = path.to_str().context("non-UTF-8 path")?;
    let validated = run("openapi-spec-validator", &[path], work).await?;
    ensure!(
        validated.status.success(),
        "openapi-spec-validator rejects {path}:\n{}",
        text(&validated)
    );

    let out = work.join(server);
    let out_arg = out.to_str().context("non-UTF-8 path")?;
    // `/metrics` is OpenMetrics text, which the generator knows as text.
    let config = work.join("client-config.yaml");
    std::fs::write(
        &config,
        "content_type_overrides:\n  application/openmetrics-text: text/plain\n",
    )?;
    let config_arg = config.to_str().context("non-UTF-8 path")?;
    let generated = run(
        "openapi-python-client",
        &[
            "generate",
            "--path",
            path,
            "--output-path",
            out_arg,
            "--config",
            config_arg,
        ],
        work,
    )
    .await?;
    let said = text(&generated);
    ensure!(
        generated.status.success(),
        "openapi-python-client failed on {path}:\n{said}"
    );
    ensure!(
        !said.to_lowercase().contains("warning"),
        "openapi-python-client warned about {path}:\n{said}"
    );
    let mut modules = BTreeSet::new();
    python_modules(&out, &mut modules)?;
    let missing: Vec<String> = operation_ids(spec)?
        .into_iter()
        .filter(|id| !modules.contains(id))
        .collect();
    if !missing.is_empty() {
        bail!("the client generated from {path} lacks {missing:?}:\n{said}");
    }
    Ok(())
}

#[tokio::test]
async fn served_specs_are_the_committed_ones_and_make_whole_clients() -> Result<()> {
    let cluster = TestCluster::builder().storage_nodes(1).start().await?;
    let work = tempfile::tempdir()?;
    for (server, base) in [
        ("naming-server", cluster.naming_url()),
        ("storage-server", cluster.storage(0).url()),
    ] {
        let served: Value = reqwest::get(format!("{base}/openapi.json"))
            .await?
            .error_for_status()?
            .json()
            .await?;
        let committed: Value =
            serde_json::from_str(&std::fs::read_to_string(committed_path(server))?)?;
        ensure!(
            served == committed,
            "{server} serves another spec than openapi/{server}.json"
        );
        validate_and_generate(server, &committed, work.path()).await?;
    }
    Ok(())
}
