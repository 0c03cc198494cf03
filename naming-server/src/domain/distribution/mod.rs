//! Distributions: copying a file to every live node over the storage
//! nodes' peer chain, or seeding a new file from GCS.
//!
//! - [`plan`]: which nodes form the chain and what each is told.
//! - [`jobs`]: start a job, hand it out, take the nodes' reports (a done
//!   node becomes a replica; the first done node of a seed commits it).
//! - [`adapt`]: which nodes a running job pulls around, from the reports.
//! - [`progress`]: a job's state, derived on every read from its plan, the
//!   nodes' last reports and their heartbeats, so any replica answers alike.

use dfs_common::now_ms;

use super::{Naming, millis};

pub mod adapt;
pub mod jobs;
pub mod plan;
pub mod progress;

/// Source name of a job that copies an existing dfs file.
pub const DFS_SOURCE: &str = "dfs";
/// A running chain node silent for this long counts as failed (nodes report
/// every second while they work).
pub const STALE_REPORT_MS: u64 = 30_000;

/// When a seed's pending file expires if no chain node reports again from
/// now on. It outlives the silence that fails the job, so a slow but live
/// seed is never reaped between two reports, whatever `PENDING_TTL` is.
pub fn seed_lease_expiry(naming: &Naming) -> u64 {
    let ttl_ms = millis(naming.settings.pending_ttl);
    now_ms().saturating_add(ttl_ms.max(STALE_REPORT_MS))
}
