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

/// The committed files whose names start with a prefix, a page at a time
/// (in name order, as `GET /files` gives them), so a listing of any length
/// is shown as it arrives and never held whole.
pub struct Listing<'a> {
    naming: &'a dfs_client::NamingClient,
    prefix: &'a str,
    /// The cursor of the next page; `None` once the last page came.
    after: Option<Option<String>>,
}

impl<'a> Listing<'a> {
    /// Files per page asked for.
    const PAGE: u32 = 1000;

    pub fn new(naming: &'a dfs_client::NamingClient, prefix: &'a str) -> Self {
        Self {
            naming,
            prefix,
            after: Some(None),
        }
    }

    /// The next page; `None` after the last.
    pub async fn next_page(
        &mut self,
    ) -> Result<Option<Vec<dfs_common::api::FileInfo>>, error::Error> {
        let Some(after) = self.after.take() else {
            return Ok(None);
        };
        let page = self
            .naming
            .list_files(self.prefix, Some(Self::PAGE), after.as_deref())
            .await?;
        self.after = match page.next {
            None => None,
            Some(next) if after.as_deref() == Some(next.as_str()) => {
                return Err(error::Error::bad_response(
                    self.naming.base_url(),
                    format!("the naming server repeated listing cursor {next:?}"),
                ));
            }
            Some(next) => Some(Some(next)),
        };
        Ok(Some(page.files))
    }
}

/// Every committed file whose name starts with `prefix`.
pub async fn list_all(
    naming: &dfs_client::NamingClient,
    prefix: &str,
) -> Result<Vec<dfs_common::api::FileInfo>, error::Error> {
    let mut listing = Listing::new(naming, prefix);
    let mut files = Vec::new();
    while let Some(page) = listing.next_page().await? {
        files.extend(page);
    }
    Ok(files)
}
