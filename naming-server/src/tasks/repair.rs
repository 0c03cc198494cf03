//! Background repair: every few seconds, [`scan_if_due`] looks for a
//! storage node lost for `REPAIR_AFTER` (or forgotten) and, if one replica
//! of the naming server should scan, re-replicates every committed file.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::domain::Naming;
use crate::domain::repair::scan_if_due;

/// Runs background repair scans until `shutdown` (not at all when
/// `REPAIR_AFTER` is off).
pub async fn run(naming: Naming, shutdown: CancellationToken) {
    let Some(after) = naming.settings.repair_after else {
        return;
    };
    let lost_after = after.max(naming.settings.heartbeat_timeout);
    // Often enough that a forgotten node's chunks are copied within seconds.
    let every = (lost_after / 2).clamp(Duration::from_millis(100), Duration::from_secs(5));
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        // Not raced against shutdown: the scan stops between files and
        // releases its lease, so another replica can take over at once.
        if let Err(error) = scan_if_due(&naming, lost_after, &shutdown).await {
            tracing::warn!(%error, "background repair failed; retrying later");
        }
    }
}
