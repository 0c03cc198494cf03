//! Riding out a naming-server restart or brief outage. Every call `create`
//! and `read` make to the naming server goes through [`naming_call`]: it is
//! tried again with [`NAMING_RETRY`] (backoff with jitter, about 15 to 30 s
//! in all) while the failure is an outage ([`dfs_client::Error::is_outage`]:
//! no answer, or a 503 with `Retry-After`), then given up with one line
//! saying how long it waited. Other failures (a name taken, too few storage
//! nodes) come back at once.
//!
//! Only calls that are safe to repeat go through it: `init` and chunk
//! allocation leave at worst an unused pending file or allocation, which
//! the naming server collects (pending-upload TTL, finalize), finalize
//! answers the committed record when it is repeated after its reply was
//! lost, and look-ups change nothing.

use std::time::{Duration, Instant};

use dfs_client::RetryPolicy;

use crate::error::Error;

/// Attempts and waits for one naming-server call during an outage: waits
/// of 0.2, 0.4, 0.8, 1.6 s then 3 s (each stretched by up to as much again
/// by jitter), 9 attempts in all.
pub const NAMING_RETRY: RetryPolicy =
    RetryPolicy::new(9, Duration::from_millis(200), Duration::from_secs(3));

/// Runs the naming-server call `op` (`what` names it in logs and in the
/// error), retrying it through outages with [`NAMING_RETRY`].
pub async fn naming_call<T, F, Fut>(what: &str, op: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, dfs_client::Error>>,
{
    let started = Instant::now();
    NAMING_RETRY
        .retry(what, dfs_client::Error::is_outage, op)
        .await
        .map_err(|error| {
            if error.is_outage() {
                Error::GaveUp {
                    what: what.to_owned(),
                    waited: started.elapsed(),
                    error,
                }
            } else {
                Error::Client(error)
            }
        })
}
