//! The `dfs` client: everything the command line does, as a library so the
//! binary stays thin and tests (and later commands) reuse it.
//!
//! Layout:
//! - HTTP calls go through the `dfs-client` crate, shared with the servers:
//!   [`dfs_client::NamingClient`] (one method per naming-server route) and
//!   [`dfs_client::StorageClient`] (chunk reads and writes on the nodes).
//! - [`upload`]: `dfs create` (chunked, concurrent, retried with exclusions).
//! - [`download`]: `dfs read` (replica fallback, CRC32C checks, atomic write).
//! - [`replicas`]: where `read` and `mount` take a chunk from, verified:
//!   [`local`], the storage node on this host (`DFS_LOCAL_DATA_DIR`), whose
//!   chunk files come first, then the live replicas, spread per reader.
//! - [`mount`]: `dfs mount`, the namespace as a read-only FUSE filesystem.
//! - [`jobs`]: `seed`, `distribute` and `jobs` (distribution jobs).
//! - [`format`]: text output of `ls`, `stat`, `nodes` and `jobs`.
//! - [`patience`]: the naming-server calls of `create` and `read`, retried
//!   through a naming-server restart or brief outage.
//! - [`error`]: the CLI's error type (a client error, or the CLI's own:
//!   local I/O, bad input, a chunk that failed everywhere, a failed job);
//!   each value displays as one line.
//!
//! Memory stays bounded by [`CONCURRENCY`] × chunk size whatever the file size.

pub mod download;
pub mod error;
pub mod format;
pub mod jobs;
pub mod local;
pub mod mount;
pub mod patience;
pub mod replicas;
pub mod upload;

/// Chunks in flight at once during `create` and `read`.
pub const CONCURRENCY: usize = 4;

/// A byte-counting progress bar on stderr when stderr is a terminal; a
/// hidden one otherwise, so scripts and logs stay quiet.
pub fn progress_bar() -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(0);
    let template = "{bar:40.cyan/blue} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}";
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Every committed file whose name starts with `prefix`.
pub async fn list_all(
    naming: &dfs_client::NamingClient,
    prefix: &str,
) -> Result<Vec<dfs_common::api::FileInfo>, error::Error> {
    let mut listing = naming.listing(prefix);
    let mut files = Vec::new();
    while let Some(page) = listing.next_page().await? {
        files.extend(page);
    }
    Ok(files)
}
