//! Background repair. Every tick (at most a second apart), a replica of
//! the naming server repairs files queued because a replica of theirs was
//! found bad, then, unless `REPAIR_AFTER` is off, [`scan_if_due`] looks for
//! a storage node lost for `REPAIR_AFTER` (or forgotten, or back) and, if
//! this replica should scan, repairs every committed file.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::domain::Naming;
use crate::domain::repair::{repair_queued, scan_if_due};

/// Queued files repaired per tick at most, so a tick stays bounded.
const QUEUED_PER_TICK: usize = 100;

/// Runs background repair until `shutdown`.
pub async fn run(naming: Naming, shutdown: CancellationToken) {
    let lost_after = naming
        .settings
        .repair_after
        .map(|after| after.max(naming.settings.heartbeat_timeout));
    // Often enough that a bad replica or a forgotten node is dealt with
    // within seconds.
    let every = lost_after.map_or(Duration::from_secs(1), |lost| {
        (lost / 2).clamp(Duration::from_millis(100), Duration::from_secs(1))
    });
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        if let Err(error) = repair_queued(&naming, QUEUED_PER_TICK).await {
            tracing::warn!(%error, "repairing a file with a bad replica failed; retrying later");
        }
        // Not raced against shutdown: the scan stops between files and
        // releases its lease, so another replica can take over at once.
        if let Some(lost_after) = lost_after
            && let Err(error) = scan_if_due(&naming, lost_after, &shutdown).await
        {
            tracing::warn!(%error, "background repair failed; retrying later");
        }
    }
}
