//! `dfs`: the command-line client. Parses flags and prints; the work is in
//! the `dfs_cli` library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use dfs_cli::download::{self, Destination};
use dfs_cli::local::LocalNode;
use dfs_cli::replicas::ChunkSource;
use dfs_cli::upload::{self, CreateOptions};
use dfs_cli::{format, jobs};
use dfs_client::{ClusterAccess, NamingClient, StorageClient};
use dfs_common::api::StartDistribution;
use dfs_common::units::parse_size;
use futures::StreamExt;

/// Client of a dfs cluster: store, read and inspect replicated files.
#[derive(Debug, Parser)]
#[command(name = "dfs", version)]
struct Cli {
    /// Base URL of the naming server, or of several replicas of it,
    /// comma-separated: a call that cannot connect to one goes to the next.
    #[arg(
        long,
        env = "DFS_NAMING_URL",
        default_value = "http://127.0.0.1:8000",
        global = true
    )]
    naming_url: String,
    /// Bearer token of the cluster (needed when its servers run with
    /// DFS_TOKEN), sent to the naming server and the storage nodes.
    #[arg(long, env = "DFS_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// PEM file of a certificate authority to trust, besides the system's,
    /// for servers that serve HTTPS with a private CA.
    #[arg(long, env = "DFS_CA_CERT", global = true)]
    ca_cert: Option<PathBuf>,
    /// DATA_DIR of the storage node on this host, if any: `read` takes the
    /// chunks that node holds straight from its files (checked against
    /// their CRC32C) and asks other nodes only for the rest.
    #[arg(long, env = "DFS_LOCAL_DATA_DIR", global = true)]
    local_data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Upload a local file under a remote name (fails if the name exists), or
    /// several files under a prefix.
    Create {
        /// Local file to upload; several upload 8 at a time.
        #[arg(required = true, num_args = 1..)]
        local_paths: Vec<PathBuf>,
        /// Name to store it under; for several files, a prefix ending in
        /// '/' that each is stored under with its own file name.
        remote_name: String,
        /// Chunk size, 64KiB to 64MiB (e.g. 8MiB, 64K); the server's default when absent.
        #[arg(long, value_parser = parse_size)]
        chunk_size: Option<u64>,
        /// Copies of each chunk, on distinct nodes; the server's default when absent.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i64::from(dfs_common::MAX_REPLICATION)))]
        replication: Option<u32>,
    },
    /// Download a file; the local file appears only once complete.
    Read {
        /// Remote file name.
        remote_name: String,
        /// Where to write it; '-' writes to stdout.
        local_path: PathBuf,
    },
    /// Print a file's size in bytes, nothing else.
    Size {
        /// Remote file name.
        remote_name: String,
    },
    /// Delete a file; its chunks are removed from the nodes in the background.
    Delete {
        /// Remote file name.
        remote_name: String,
    },
    /// List files (name, size, chunks), optionally only those under a prefix.
    Ls {
        /// Only names starting with this.
        prefix: Option<String>,
    },
    /// Show a file's chunks, their CRC32C and where their replicas live.
    Stat {
        /// Remote file name.
        remote_name: String,
    },
    /// Copy chunks that lost replicas (dead or forgotten nodes) to live
    /// nodes until each has the file's replication factor again.
    Repair {
        /// Remote file name.
        remote_name: String,
    },
    /// Show storage nodes: alive or dead, free space, chunk count.
    Nodes,
    /// Remove a dead storage node from the node list (refused while it is
    /// alive; a forgotten node that comes back registers again).
    ForgetNode {
        /// The node's id, as `dfs nodes` shows it.
        node_id: String,
    },
    /// Copy a Google Cloud Storage object into dfs, onto every live node.
    Seed {
        /// The object, as gs://bucket/object.
        source: String,
        /// Name to store it under.
        remote_name: String,
        /// Chunk size, 64KiB to 64MiB; the server's default when absent.
        #[arg(long, value_parser = parse_size)]
        chunk_size: Option<u64>,
        /// Print the job id and return at once instead of waiting.
        #[arg(long)]
        no_wait: bool,
    },
    /// Copy an existing file to every live node that lacks it.
    Distribute {
        /// Remote file name.
        remote_name: String,
        /// Print the job id and return at once instead of waiting.
        #[arg(long)]
        no_wait: bool,
    },
    /// Mount the namespace read-only at MOUNTPOINT (FUSE) until Ctrl-C,
    /// SIGTERM or `fusermount3 -u MOUNTPOINT`. Files read from this host's
    /// node first (--local-data-dir), else from the live replicas.
    Mount {
        /// An existing, empty directory.
        mountpoint: PathBuf,
        /// How old the listing may get before it is read again; new and
        /// deleted files show within this plus 1 s.
        #[arg(long, default_value = "2s", value_parser = dfs_common::units::parse_duration)]
        refresh: std::time::Duration,
    },
    /// Show recent distribution jobs, or one job node by node.
    Jobs {
        /// The job to show; all recent ones when absent.
        job_id: Option<String>,
        /// Follow the job until it ends: a progress bar per node on a
        /// terminal, else a line per change; then its table. Exits non-zero
        /// when the job fails.
        #[arg(long, requires = "job_id")]
        watch: bool,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, whatever a server put in its message.
            eprintln!("error: {}", format::escape(&e.to_string()));
            ExitCode::FAILURE
        }
    }
}

/// Silent unless `DFS_LOG` (a `RUST_LOG`-style filter, e.g. `dfs_cli=info`)
/// asks otherwise: stderr carries the progress bar and the one-line error.
/// `RUST_LOG` is left to the servers, which often share the shell.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DFS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let access = ClusterAccess::new(cli.token.as_deref()).with_ca_cert(cli.ca_cert.as_deref())?;
    let naming = NamingClient::new(&cli.naming_url, &access)?;
    match cli.command {
        Command::Create {
            local_paths,
            remote_name,
            chunk_size,
            replication,
        } => {
            let files = create_targets(local_paths, &remote_name)?;
            let total = files.len();
            let storage = StorageClient::new(&access)?;
            let progress = dfs_cli::progress_bar();
            let options = CreateOptions {
                chunk_size,
                replication,
            };
            let mut created = std::pin::pin!(upload::create_many(
                &naming, &storage, files, options, &progress
            ));
            let mut failed = Vec::new();
            while let Some((name, result)) = created.next().await {
                match result {
                    Ok(record) => {
                        let info = record.info;
                        progress.suspend(|| {
                            emit(&format!(
                                "created {} ({} bytes, {} chunks, file_id {})\n",
                                info.name, info.size, info.chunk_count, info.file_id
                            ))
                        })?;
                    }
                    Err(e) => failed.push((name, e)),
                }
            }
            progress.finish_and_clear();
            match failed.len() {
                0 => {}
                // One file: its error alone, as ever.
                1 if !remote_name.ends_with('/') => return Err(failed.remove(0).1.into()),
                // Still one line on stderr: each failed file and why.
                n => {
                    let each: Vec<String> = failed
                        .iter()
                        .map(|(name, e)| format!("{name} ({e})"))
                        .collect();
                    anyhow::bail!("{n} of {total} files not created: {}", each.join("; "));
                }
            }
        }
        Command::Read {
            remote_name,
            local_path,
        } => {
            let destination = if local_path.as_os_str() == "-" {
                Destination::Stdout
            } else {
                Destination::File(&local_path)
            };
            let source = chunk_source(cli.local_data_dir.as_deref(), &access, &naming)?;
            let progress = dfs_cli::progress_bar();
            let result =
                download::read(&naming, &source, &remote_name, destination, &progress).await;
            progress.finish_and_clear();
            result?;
        }
        Command::Size { remote_name } => {
            emit(&format!(
                "{}\n",
                naming.file_by_name(&remote_name).await?.info.size
            ))?;
        }
        Command::Delete { remote_name } => {
            let record = naming.file_by_name(&remote_name).await?;
            naming.delete_file(&record.info.file_id).await?;
            emit(&format!("deleted {remote_name}\n"))?;
        }
        Command::Ls { prefix } => {
            let mut listing = naming.listing(prefix.as_deref().unwrap_or(""));
            let mut header = true;
            while let Some(files) = listing.next_page().await? {
                if !files.is_empty() {
                    emit(&format::files(&files, header))?;
                    header = false;
                }
            }
        }
        Command::Stat { remote_name } => {
            emit(&format::stat(&naming.file_by_name(&remote_name).await?))?;
        }
        Command::Nodes => {
            emit(&format::nodes(&naming.nodes().await?.nodes))?;
        }
        Command::Repair { remote_name } => {
            let record = naming.file_by_name(&remote_name).await?;
            let report = naming.repair_file(&record.info.file_id).await?;
            emit(&format::repair(&report))?;
            if !report.problems.is_empty() {
                anyhow::bail!("{}", format::repair_problems(&report));
            }
        }
        Command::ForgetNode { node_id } => {
            naming.forget_node(&node_id).await?;
            emit(&format!("forgot node {node_id}\n"))?;
        }
        Command::Seed {
            source,
            remote_name,
            chunk_size,
            no_wait,
        } => {
            let request = StartDistribution {
                name: remote_name,
                source: Some(source),
                chunk_size,
            };
            distribute(&naming, &request, no_wait).await?;
        }
        Command::Distribute {
            remote_name,
            no_wait,
        } => {
            let request = StartDistribution {
                name: remote_name,
                source: None,
                chunk_size: None,
            };
            distribute(&naming, &request, no_wait).await?;
        }
        Command::Mount {
            mountpoint,
            refresh,
        } => {
            let source = chunk_source(cli.local_data_dir.as_deref(), &access, &naming)?;
            dfs_cli::mount::run(naming, source, &mountpoint, refresh).await?;
        }
        Command::Jobs { job_id: None, .. } => {
            emit(&format::jobs(&naming.distributions().await?.jobs))?;
        }
        Command::Jobs {
            job_id: Some(job_id),
            watch: false,
        } => {
            emit(&format::job(&naming.distribution(&job_id).await?))?;
        }
        Command::Jobs {
            job_id: Some(job_id),
            watch: true,
        } => {
            let job = jobs::watch(&naming, &job_id).await?;
            emit(&format!("\n{}", format::job(&job)))?;
            let (line, warnings) = jobs::summary(&jobs::outcome(job)?);
            for warning in warnings {
                eprintln!("{warning}");
            }
            emit(&line)?;
        }
    }
    Ok(())
}

/// Where `read` and `mount` take chunks from: this host's node (when
/// `local_data_dir` names its data), then the other replicas.
fn chunk_source(
    local_data_dir: Option<&std::path::Path>,
    access: &ClusterAccess,
    naming: &NamingClient,
) -> anyhow::Result<ChunkSource> {
    let local = local_data_dir.map(LocalNode::open).transpose()?;
    let storage = StorageClient::new(access)?;
    Ok(ChunkSource::new(storage, naming.clone(), local))
}

/// Starts a job; then prints its id (`no_wait`) or follows it to the end.
async fn distribute(
    naming: &NamingClient,
    request: &StartDistribution,
    no_wait: bool,
) -> anyhow::Result<()> {
    let job = naming.start_distribution(request).await?;
    if no_wait {
        return emit(&format!("{}\n", format::escape(&job.job_id)));
    }
    let progress = dfs_cli::progress_bar();
    let job = jobs::wait(naming, job, &progress).await;
    progress.finish_and_clear();
    let (line, warnings) = jobs::summary(&job?);
    for warning in warnings {
        eprintln!("{warning}");
    }
    emit(&line)
}

/// Writes `text` to stdout; a closed pipe (`dfs ls | head`) is not an error.
/// What `dfs create LOCAL… REMOTE` stores: one file under REMOTE, or
/// several under the prefix REMOTE (ending in '/'), each with its own file
/// name.
fn create_targets(locals: Vec<PathBuf>, remote: &str) -> anyhow::Result<Vec<(PathBuf, String)>> {
    if locals.len() == 1 && !remote.ends_with('/') {
        return Ok(locals.into_iter().map(|l| (l, remote.to_owned())).collect());
    }
    if !remote.ends_with('/') {
        anyhow::bail!(
            "to create several files, give a prefix ending in '/' (e.g. {remote}/) as the remote name"
        );
    }
    locals
        .into_iter()
        .map(|local| {
            let name = local
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| anyhow::anyhow!("{} has no UTF-8 file name", local.display()))?;
            let name = format!("{remote}{name}");
            Ok((local, name))
        })
        .collect()
}

fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::anyhow!("cannot write to stdout: {e}"))
        }
        _ => Ok(()),
    }
}
